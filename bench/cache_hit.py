#!/usr/bin/env python3
"""Benchmark: whole-process wall time and peak memory of a credproc cache hit, against a bare
`python -c pass` of the same interpreter, in one run. Not a test: it reports numbers.

    python3 bench/cache_hit.py            # installs credproc into a fresh venv in a temp dir
    python3 bench/cache_hit.py --runs 200
    python3 bench/cache_hit.py --cache-key keyring   # also cache_key = "keyring", in the same run

With --cache-key keyring, a private Secret Service (tests/peers/secret_service.py: dbus-daemon and
gnome-keyring-daemon) holds the wrapping key, and the hit unwraps the cache key from the kernel
keyring (Linux) as it does in real use.

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
from credproc.core import cache, paths
from credproc.config import load
from credproc.core.credentials import Credentials
from credproc.app import store
from credproc.chain import role_identity
cfg = load(paths.config_file())
now = int(time.time())
creds = Credentials("ASIABENCHMARKEXAMPLE", "s" * 40, "t" * 600, now + 3600, "111111111111")
store(cfg).put(  # scoped to the config; the key as [settings] cache_key says: plain, or keyring-wrapped
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
    ap.add_argument("--cache-key", choices=["file", "keyring"], default="file",
                    help="keyring: measure cache_key = \"file\" and \"keyring\" side by side")
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
    modes = ["file"] if args.cache_key == "file" else ["file", "keyring"]
    envs, keyring = {}, None
    try:
        for mode in modes:
            home = os.path.join(work, mode)
            env = {"PATH": os.path.dirname(py) + ":/usr/bin:/bin", "HOME": home,
                   "XDG_CACHE_HOME": os.path.join(home, "cache"), "XDG_DATA_HOME": os.path.join(home, "data"),
                   "XDG_CONFIG_HOME": os.path.join(home, "config")}
            os.makedirs(os.path.join(home, "config", "credproc"))
            settings = ""
            if mode == "keyring":
                sys.path.insert(0, ROOT)
                from tests.peers.secret_service import SecretService

                keyring = SecretService(work).__enter__()
                env.update({k: keyring.env[k] for k in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")})
                settings = '[settings]\ncache_key = "keyring"\n'
            with open(os.path.join(home, "config", "credproc", "config.toml"), "w") as f:
                f.write(settings + CONFIG)
            subprocess.run([py, "-c", SEED], env=env, check=True)
            envs[mode] = env
        measure(args, py, exe, envs)
    finally:
        if keyring:
            from credproc.core import keywrap

            keywrap.forget(open(os.path.join(envs["keyring"]["XDG_DATA_HOME"], "credproc", "cache.key"), "rb").read())
            keyring.stop()
        shutil.rmtree(work, ignore_errors=True)


def measure(args, py, exe, envs):
    hit = [exe, "--role", "bench"]
    bare = [py, "-c", "pass"]
    cases = [("bare", bare, envs["file"])] + [(f"hit-{m}", hit, env) for m, env in envs.items()]
    if "keyring" in envs:  # the kernel keyring's copy dropped before each run: the full path asks the Secret Service
        cases.append(("hit-keyring-cold", hit, envs["keyring"]))
        from credproc.core import keywrap

        wrapped = open(os.path.join(envs["keyring"]["XDG_DATA_HOME"], "credproc", "cache.key"), "rb").read()
    for name, argv, env in cases[1:]:
        _, _, out, code = run_measured(argv, env)
        if code != 0 or not out.startswith(b'{"Version":1'):
            sys.exit(f"the cache hit ({name}) did not work (exit {code}): {out[:80]!r}")
    for _ in range(5):  # warm the page cache
        for _, argv, env in cases:
            run_measured(argv, env)
    times = {name: [] for name, _, _ in cases}
    rss = {name: [] for name, _, _ in cases}
    for _ in range(args.runs):  # interleaved, so drift affects all alike
        for name, argv, env in cases:
            if name == "hit-keyring-cold":
                keywrap.forget(wrapped)
            t, m, _, _ = run_measured(argv, env)
            times[name].append(t)
            rss[name].append(m)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"python: {sys.version.split()[0]} ({py}), runs: {args.runs} each, interleaved")
    labels = {"bare": "python -c pass", "hit-file": "cache hit, cache_key=file", "hit-keyring": "cache hit, cache_key=keyring",
              "hit-keyring-cold": "  same, not in kernel keyring"}
    for name, _, _ in cases:
        q = statistics.quantiles(times[name], n=10)
        print(f"  {labels[name]:<30} median {med[name] * 1000:6.1f} ms   p10 {q[0] * 1000:6.1f}   p90 {q[-1] * 1000:6.1f}   "
              f"peak RSS {max(rss[name]) / 1024:5.1f} MiB")
    for name, _, _ in cases[1:]:
        note = "(at most once an hour per user)" if name.endswith("cold") else "(target <= 4)"
        print(f"ratio (median {name} / median bare): {med[name] / med['bare']:.2f}  {note}")


if __name__ == "__main__":
    main()
