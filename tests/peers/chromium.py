"""Debian's Chromium as the user's browser for the browser sign-in tests, headless, through a
wrapper script set as credproc's `browser` (credproc never adds --headless or --no-sandbox itself:
a wrapper that execs the real browser is what it must support). The wrapper records each launch
(its pid and argv) so tests can count launches and look at the running browser.

Installed by tests/peers/install-chromium.sh."""

import os
import shutil
import stat

CHROMIUM = "/usr/bin/chromium"
# headless, and without the background connections this machine's closed network refuses
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


def missing():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which("chromium"):
        return "chromium is not installed (tests/peers/install-chromium.sh installs it)"
    return None


class Wrapper:
    """A `browser` script: logs `PID ARGV...` per launch to launches.log, then execs chromium."""

    def __init__(self, folder):
        self.path = os.path.join(str(folder), "browser-wrapper")
        self.log = os.path.join(str(folder), "launches.log")
        exe = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
        with open(self.path, "w") as f:
            f.write("#!/bin/sh\n"
                    f"printf '%s %s\\n' \"$$\" \"$*\" >> '{self.log}'\n"
                    f"exec '{exe}' {' '.join(FLAGS)} \"$@\"\n")
        os.chmod(self.path, os.stat(self.path).st_mode | stat.S_IXUSR)

    def launches(self):
        """[(pid, argv string)] of every launch so far."""
        try:
            with open(self.log) as f:
                return [(int(line.split(" ", 1)[0]), line.split(" ", 1)[1].rstrip("\n")) for line in f if line.strip()]
        except FileNotFoundError:
            return []


def listening_inodes():
    """Socket inodes of every TCP socket in LISTEN state on this machine (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        inodes.add(fields[9])
        except FileNotFoundError:
            pass
    return inodes


def process_group(pgid):
    """pids of the live processes in a process group."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":  # pgrp, after state and ppid; not a zombie
                    pids.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def listening_sockets_of(pids):
    """The LISTEN sockets held by any of pids (socket inodes)."""
    listening = listening_inodes()
    found = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in listening:
                    found.add(target)
        except OSError:
            pass
    return found
