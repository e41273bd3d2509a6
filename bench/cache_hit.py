#!/usr/bin/env python3
"""Benchmark: whole-process wall time and peak memory of a credproc cache hit, against a bare
`python -c pass` of the same interpreter, in one run. Not a test: it reports numbers.

    python3 bench/cache_hit.py            # installs credproc into a fresh venv in a temp dir
    python3 bench/cache_hit.py --runs 200

The cache entry is written through credproc's own cache code with synthetic credentials (a hit
never looks inside them), so no network and no STS are needed.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED = r"""
import sys, time
from credproc import cache, paths
from credproc.config import load
from credproc.credentials import Credentials
from credproc.store import EncryptedFileCache
from credproc.chain import role_identity
cfg = load(paths.config_file())
now = int(time.time())
creds = Credentials("ASIABENCHMARKEXAMPLE", "s" * 40, "t" * 600, now + 3600, "111111111111")
EncryptedFileCache(paths.cache_dir(), paths.key_file(), scope=paths.config_file()).put(
    role_identity("bench"), cache.Entry(now + 3600, now + 2400, cfg.digest, cfg.fingerprint("bench"), creds.to_process_json()))
"""

CONFIG = """
[idp.corp]
type = "iam"
profile = "corp-user"
[role.bench]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Bench"
"""


def run_measured(argv, env):
    r, w = os.pipe()
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_CLOSE, r)])
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - t
    os.close(r)
    return elapsed, usage.ru_maxrss, b"".join(chunks), os.waitstatus_to_exitcode(status)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--venv", help="reuse this venv (with credproc installed) instead of making one")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="credproc-bench-")
    venv = args.venv or os.path.join(work, "venv")
    if not args.venv:
        print(f"creating a clean venv and installing credproc from {ROOT} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check", ROOT],
                       check=True)
    py = os.path.join(venv, "bin", "python")
    exe = os.path.join(venv, "bin", "credproc")
    env = {"PATH": os.path.dirname(py) + ":/usr/bin:/bin", "HOME": work,
           "XDG_CACHE_HOME": os.path.join(work, "cache"), "XDG_DATA_HOME": os.path.join(work, "data"),
           "XDG_CONFIG_HOME": os.path.join(work, "config")}
    os.makedirs(os.path.join(work, "config", "credproc"))
    with open(os.path.join(work, "config", "credproc", "config.toml"), "w") as f:
        f.write(CONFIG)
    subprocess.run([py, "-c", SEED], env=env, check=True)

    hit = [exe, "--role", "bench"]
    bare = [py, "-c", "pass"]
    _, _, out, code = run_measured(hit, env)
    if code != 0 or not out.startswith(b'{"Version":1'):
        sys.exit(f"the cache hit did not work (exit {code}): {out[:80]!r}")
    for _ in range(5):  # warm the page cache
        run_measured(hit, env), run_measured(bare, env)
    times = {"hit": [], "bare": []}
    rss = {"hit": [], "bare": []}
    for _ in range(args.runs):  # interleaved, so drift affects both alike
        for name, argv in (("bare", bare), ("hit", hit)):
            t, m, _, _ = run_measured(argv, env)
            times[name].append(t)
            rss[name].append(m)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"python: {sys.version.split()[0]} ({py}), runs: {args.runs} each, interleaved")
    for name, label in (("bare", "python -c pass"), ("hit", "credproc --role (cache hit)")):
        q = statistics.quantiles(times[name], n=10)
        print(f"  {label:<30} median {med[name] * 1000:6.1f} ms   p10 {q[0] * 1000:6.1f}   p90 {q[-1] * 1000:6.1f}   "
              f"peak RSS {max(rss[name]) / 1024:5.1f} MiB")
    print(f"ratio (median hit / median bare): {med['hit'] / med['bare']:.2f}  (target <= 4)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
