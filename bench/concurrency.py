#!/usr/bin/env python3
"""Benchmark: many credproc processes at once. Not a test: it reports numbers.

For each N, in the same run and interleaved:
  cold: N concurrent `credproc --role bench` with no cache entry for the role (the key exists, as
        after the entry expired): one of them signs in and calls STS, the others wait for it;
  hit:  N concurrent `credproc --role bench` served from the cache.
Each reports wall time (first spawn to last exit), summed CPU (user + system, from wait4), the
peak of the summed RSS of the live processes (sampled from /proc every few ms), and the STS calls counted at the endpoint (a counting proxy in front of a real
moto server, tests/peers/moto.py). Then, one process at a time (interleaved), a cache hit against
a bare `python -c pass` of the same venv (and the same hit through `python -m credproc` and through
a launcher that does not import re, unlike pip's), `status`, `--help`, `--version`, and what
`import re` and cryptography's AES-GCM extension module cost on their own.

    .venv/bin/python bench/concurrency.py                      # N = 1 10 40 50 100 200, 3 rounds each
    .venv/bin/python bench/concurrency.py --n 40 100 --rounds 5 --runs 100

Needs the venv from scripts/venv (credproc installed from its wheel, plus the test extra: moto).
The IAM idp has static keys and no MFA, so a cold call is exactly one AssumeRole.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CONFIG = """
[settings]
region = "us-east-1"
sts_endpoint_url = "{url}"

[idp.corp]
type = "iam"
profile = "corp-user"

[role.bench]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Bench"
"""


SEED = r"""
import time
from credproc.core import cache, paths
from credproc.config import load
from credproc.core.credentials import Credentials
from credproc.app import store
cfg = load(paths.config_file())
now = int(time.time())
creds = Credentials("ASIABENCHMARKEXAMPLE", "s" * 40, "t" * 600, now + 3600, "111111111111")
store(cfg).put("role:bench", cache.Entry(now + 3600, now + 2400, cfg.digest, cfg.fingerprint("bench"),
                                         creds.to_process_json()))
"""


class Sampler:
    """Peak of the summed RSS of a set of live pids, read from /proc/PID/statm."""

    def __init__(self, interval=0.005):
        self.pids = set()
        self.peak = 0
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                pids = list(self.pids)
            total = 0
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/statm", "rb") as f:
                        total += int(f.read().split()[1]) * self.page
                except (OSError, ValueError, IndexError):
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def add(self, pid):
        with self._lock:
            self.pids.add(pid)

    def discard(self, pid):
        with self._lock:
            self.pids.discard(pid)

    def stop(self):
        self._stop.set()
        self.thread.join()


def spawn(argv, env):
    return os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)], setsid=True)


def crowd(argv, env, n):
    """N processes at once: (wall s, summed CPU s, peak summed RSS bytes, failures). (wait4's ru_maxrss is
    no use here: a child posix_spawn'd from this process starts out counting this process' RSS.)"""
    sampler = Sampler()
    t = time.perf_counter()
    pids = []
    for _ in range(n):
        pid = spawn(argv, env)
        pids.append(pid)
        sampler.add(pid)
    cpu = failures = 0
    for _ in pids:
        pid, status, usage = os.wait4(-1, 0)
        sampler.discard(pid)
        cpu += usage.ru_utime + usage.ru_stime
        failures += os.waitstatus_to_exitcode(status) != 0
    wall = time.perf_counter() - t
    sampler.stop()
    return wall, cpu, sampler.peak, failures


# Runs single processes for one() from a small interpreter (python -I -S, no imports but os and sys:
# about 7 MiB), so that their ru_maxrss is theirs: a process spawned from this one (threads, moto's
# proxy) starts out counting this one's RSS. Protocol: argv NUL-separated per line; answers
# "wall cpu maxrss_kib exit_code".
RUNNER = r"""
import os, sys, time
out = sys.stdout
for line in sys.stdin:
    argv = line.rstrip("\n").split("\0")
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)], setsid=True)
    _, status, ru = os.wait4(pid, 0)
    out.write(f"{time.perf_counter() - t} {ru.ru_utime + ru.ru_stime} {ru.ru_maxrss} {os.waitstatus_to_exitcode(status)}\n")
    out.flush()
"""


class Runner:
    def __init__(self, py, env):
        self.proc = subprocess.Popen([py, "-I", "-S", "-c", RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True)

    def one(self, argv):
        """One process: (wall s, CPU s, peak RSS bytes, exit code)."""
        self.proc.stdin.write("\0".join(argv) + "\n")
        self.proc.stdin.flush()
        wall, cpu, rss, code = self.proc.stdout.readline().split()
        return float(wall), float(cpu), int(rss) * 1024, int(code)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def one(argv, env):
    """One process from this one (its RSS is not reported: see Runner): (wall s, CPU s, None, exit code)."""
    t = time.perf_counter()
    pid = spawn(argv, env)
    _, status, usage = os.wait4(pid, 0)
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime, None, os.waitstatus_to_exitcode(status)


def drop_entries(cache_dir):
    for name in os.listdir(cache_dir):
        if len(name) == 40 and not name.startswith("."):  # entries, not the .lock files (nor the key: elsewhere)
            os.unlink(os.path.join(cache_dir, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 10, 40, 50, 100, 200])
    ap.add_argument("--rounds", type=int, default=3, help="cold/hit rounds per N (medians reported)")
    ap.add_argument("--runs", type=int, default=60, help="single-process runs per case")
    ap.add_argument("--venv", default=os.path.join(ROOT, ".venv"))
    args = ap.parse_args()

    from tests.peers.moto import CountingProxy, MotoServer
    from tests.sandbox import STATIC_KEY_ID, STATIC_SECRET

    py = os.path.join(args.venv, "bin", "python")
    exe = os.path.join(args.venv, "bin", "credproc")
    work = tempfile.mkdtemp(prefix="credproc-bench-")
    moto = MotoServer()
    sts = CountingProxy(moto.url)
    try:
        home = os.path.join(work, "home")
        os.makedirs(os.path.join(home, ".aws"))
        with open(os.path.join(home, ".aws", "credentials"), "w") as f:
            f.write(f"[corp-user]\naws_access_key_id = {STATIC_KEY_ID}\naws_secret_access_key = {STATIC_SECRET}\n")
        config = os.path.join(work, "credproc.toml")
        with open(config, "w") as f:
            f.write(CONFIG.format(url=sts.url))
        env = {"PATH": os.path.dirname(py) + ":/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
               "XDG_CACHE_HOME": os.path.join(work, "cache"), "XDG_DATA_HOME": os.path.join(work, "data"),
               "XDG_CONFIG_HOME": os.path.join(work, "xdg-config"), "CREDPROC_CONFIG": config,
               "AWS_CONFIG_FILE": os.path.join(home, ".aws", "config"),
               "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, ".aws", "credentials")}
        # status also with an https endpoint, as real configs have (the loopback http one, for moto, costs
        # urllib.parse in the URL check): its entry seeded through credproc's own cache code
        config_https = os.path.join(work, "credproc-https.toml")
        with open(config_https, "w") as f:
            f.write(CONFIG.format(url="https://sts.us-east-1.amazonaws.com"))
        hit = [exe, "--role", "bench"]
        w, c, m, code = one(hit, env)  # creates the key and the entry
        if code != 0:
            sys.exit(f"credproc --role bench failed (exit {code})")
        cache_dir = os.path.join(work, "cache", "credproc")

        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
              f"{args.rounds} rounds per N, medians", flush=True)
        print(f"{'N':>4} {'case':<5} {'wall s':>8} {'CPU s':>8} {'peak summed RSS MiB':>20} "
              f"{'STS calls':>9} {'failed':>6}", flush=True)
        results = {}
        for n in args.n:
            rows = {"cold": [], "hit": []}
            for _ in range(args.rounds):
                drop_entries(cache_dir)
                sts.clear()
                rows["cold"].append(crowd(hit, env, n) + (len(sts.actions),))
                sts.clear()
                rows["hit"].append(crowd(hit, env, n) + (len(sts.actions),))
            for case, runs in rows.items():
                med = [statistics.median(r[i] for r in runs) for i in range(3)]
                results[(n, case)] = med
                print(f"{n:>4} {case:<5} {med[0]:8.2f} {med[1]:8.2f} {med[2] / 2**20:20.0f} "
                      f"{max(r[4] for r in runs):9d} {sum(r[3] for r in runs):6d}", flush=True)
            c, h = results[(n, "cold")], results[(n, "hit")]
            print(f"{n:>4} cold/hit: wall {c[0] / h[0]:.2f}x, CPU {c[1] / h[1]:.2f}x, peak summed RSS "
                  f"{c[2] / max(h[2], 1):.2f}x", flush=True)

        subprocess.run([py, "-c", SEED], env={**env, "CREDPROC_CONFIG": config_https}, check=True)  # after drop_entries
        # what pip's console script costs: the same hit through a launcher that does not import re
        plain = os.path.join(work, "credproc-without-re")
        with open(plain, "w") as f:
            f.write(f"#!{py}\nimport sys\nfrom credproc._entry import main\nif __name__ == '__main__':\n"
                    "    sys.exit(main())\n")
        os.chmod(plain, 0o755)
        single = [("bare", [py, "-c", "pass"]), ("hit", hit), ("hit via python -m", [py, "-m", "credproc", "--role", "bench"]),
                  ("hit, launcher w/o re", [plain, "--role", "bench"]),
                  ("python: import re", [py, "-c", "import re"]),
                  ("python: import AESGCM", [py, "-c", "from credproc.core.cache import aesgcm_class; aesgcm_class()"]),
                  ("status", [exe, "status"]), ("status, https config", [exe, "--config", config_https, "status"]),
                  ("--help", [exe, "--help"]), ("--version", [exe, "--version"])]
        runner = Runner(py, env)
        for _, argv in single:  # warm up, and check each works
            if runner.one(argv)[3] != 0:
                sys.exit(f"{argv[1:]} failed")
        times = {name: [] for name, _ in single}
        cpus = {name: [] for name, _ in single}
        rss = {name: [] for name, _ in single}
        for _ in range(args.runs):
            for name, argv in single:
                w, c, m, _ = runner.one(argv)
                times[name].append(w)
                cpus[name].append(c)
                rss[name].append(m)
        runner.close()
        print(f"\none process at a time, {args.runs} runs each, interleaved, medians:")
        mt = {k: statistics.median(v) for k, v in times.items()}
        mc = {k: statistics.median(v) for k, v in cpus.items()}
        for name, _ in single:
            print(f"  {name:<22} wall {mt[name] * 1000:6.1f} ms  CPU {mc[name] * 1000:6.1f} ms  "
                  f"peak RSS {statistics.median(rss[name]) / 2**20:5.1f} MiB  "
                  f"(wall {mt[name] / mt['bare']:.2f}x bare, CPU {mc[name] / mc['hit']:.2f}x hit)")
        print("\ntargets (issue 22):")
        print(f"  hit wall / bare wall              {mt['hit'] / mt['bare']:.2f}  (target <= 1.7; through a launcher "
              f"without re: {mt['hit, launcher w/o re'] / mt['bare']:.2f})")
        if (40, "cold") in results:
            print(f"  40 cold CPU / 40 hits CPU         {results[(40, 'cold')][1] / results[(40, 'hit')][1]:.2f}  "
                  f"(target <= 1.6)")
        if (100, "cold") in results:
            print(f"  100 cold wall / 100 hits wall     {results[(100, 'cold')][0] / results[(100, 'hit')][0]:.2f}  "
                  f"(target <= 3)")
        print(f"  status CPU / hit CPU              {mc['status'] / mc['hit']:.2f}  (target <= 1.8; with the https "
              f"config: {mc['status, https config'] / mc['hit']:.2f})")
        print(f"\nimport re costs {1000 * (mt['python: import re'] - mt['bare']):.1f} ms wall; cryptography's AESGCM "
              f"(extension module) {1000 * (mt['python: import AESGCM'] - mt['bare']):.1f} ms wall, "
              f"{(statistics.median(rss['python: import AESGCM']) - statistics.median(rss['bare'])) / 2**20:.1f} MiB")
    finally:
        sts.stop()
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
