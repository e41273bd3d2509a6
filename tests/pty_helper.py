"""Run a process with a real pseudo-terminal as its controlling terminal while its stdout and
stderr stay pipes: exactly the situation of credproc under `aws` in a terminal."""

import os
import pty
import select
import subprocess
import time


class PtyProcess:
    def __init__(self, argv, env):
        self.master, slave = pty.openpty()
        slave_name = os.ttyname(slave)

        def become_session_leader_with_tty():
            os.setsid()
            fd = os.open(slave_name, os.O_RDWR)  # first terminal opened by a session leader: controlling tty
            os.close(fd)

        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=become_session_leader_with_tty)
        # The parent keeps the slave open: while no process has it open the master reads EIO.
        self.slave = slave
        self.screen = b""

    def expect(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen on the terminal; screen: {self.screen!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 1024)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {text!r}; screen: {self.screen!r}")
                self.screen += chunk

    def send(self, line):
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout=30):
        out, err = self.proc.communicate(timeout=timeout)
        try:
            while select.select([self.master], [], [], 0.1)[0]:
                chunk = os.read(self.master, 1024)
                if not chunk:
                    break
                self.screen += chunk
        except OSError:
            pass
        os.close(self.master)
        os.close(self.slave)
        return self.proc.returncode, out, err
