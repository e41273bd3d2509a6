"""Asking the user: on the controlling terminal, or through a configured command.

Under credential_process the SDK owns stdout (the protocol) and hides stderr, and the JS SDK's
stdin is a pipe that never delivers: prompts therefore use the controlling terminal (/dev/tty,
CONIN$/CONOUT$ on Windows) and nothing else. With no terminal, a prompt fails at once with
LoginRequired naming the `credproc login` command to run in one, unless `prompt = "gui"` found a
desktop session: then it is a dialog (gui.py).
"""

import os

from . import log
from .errors import AuthenticationFailed, ConfigError, Interrupted, LoginRequired, RecursionDetected


def open_tty():
    """(read_fd, write_fd) of the controlling terminal, or None."""
    if os.environ.get("CREDPROC_NO_PROMPT"):
        return None
    if os.name == "nt":  # pragma: no cover
        try:
            return os.open("CONIN$", os.O_RDWR), os.open("CONOUT$", os.O_RDWR)
        except OSError:
            return None
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal (Terraform in CI, an IDE, a daemon)
        return None
    try:
        foreground = os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        foreground = False
    if not foreground:  # a background job: reading the terminal would stop us (SIGTTIN), not fail
        os.close(fd)
        return None
    return fd, fd


class Terminal:
    """Prompts for one top-level request; `login_command` is what a user without a terminal is
    told to run."""

    def __init__(self, login_command, interactive=True, gui=None, desktop=False):
        """desktop: [settings] prompt = "gui" was asked for, so a browser sign-in may also start
        without a terminal where a desktop is there (an IDE, Terraform)."""
        self.login_command = login_command
        self.interactive = interactive
        self.gui = gui if interactive else None  # dialogs, used only when there is no terminal
        self.desktop = bool(desktop and interactive)
        self._fds = None
        self._opened = False

    def _tty(self):
        if not self._opened:
            self._opened = True
            self._fds = open_tty() if self.interactive else None
        return self._fds

    def available(self):
        return self._tty() is not None or self.gui is not None

    def attended(self):
        """A terminal is there, so a person started this and is watching it (a dialog is not
        enough: an IDE raises those on its own schedule)."""
        return self._tty() is not None

    def browser_possible(self):
        """Whether a browser sign-in may start: with a terminal, or with prompt = "gui" in a desktop
        session (the browser window is what the user sees)."""
        if self._tty() is not None:
            return True
        if self.desktop:
            from .devtools import desktop_available

            return desktop_available()
        return False

    def require_browser(self, what):
        if not self.browser_possible():
            hint = f"run in a terminal: {self.login_command}"
            if not self.desktop:
                hint += ' (or, on a desktop, set [settings] prompt = "gui" to let it open the browser without one)'
            raise LoginRequired(f"{what} is needed and there is no terminal (or desktop) to start it from", hint=hint)

    def terminal_fds(self):
        """(read_fd, write_fd) of the terminal for a child that may prompt on it (a credential
        helper with interactive = true), or None without one. Still owned by this Terminal."""
        return self._tty()

    def require(self, what):
        if self._tty() is None and self.gui is None:
            if self.interactive and os.environ.get("CREDPROC_NO_PROMPT"):
                raise LoginRequired(f"{what} is needed and prompts are turned off by CREDPROC_NO_PROMPT",
                                    hint=f"unset CREDPROC_NO_PROMPT and run: {self.login_command}")
            raise LoginRequired(f"{what} is needed and there is no terminal to ask on",
                                hint=f"run in a terminal: {self.login_command}")

    def say(self, message):
        """A line for the user on the terminal (silently dropped without one)."""
        from .text import clean

        message = clean(message)  # device codes, URLs and role names from servers
        fds = self._tty()
        if fds:
            os.write(fds[1], (message + "\n").encode())
        elif self.gui:
            self.gui.say(message)

    def notify(self, message):
        """Like say(), but as a desktop notification when there is no terminal (prompt = "gui")."""
        fds = self._tty()
        if fds:
            os.write(fds[1], (message + "\n").encode())
        elif self.gui:
            self.gui.notify(message)

    def progress(self, text):
        """A context manager: while it lasts, one line on the terminal counts the seconds spent
        waiting (for a Duo push, a browser sign-in). Nothing without a terminal."""
        return _Progress(self._tty(), text)

    def ask(self, prompt, what, secret=False):
        from .text import clean

        prompt = clean(prompt)
        if self.gui and self._tty() is None:
            return self.gui.ask(prompt, what, secret=secret)
        self.require(what)
        rfd, wfd = self._tty()
        # Echo goes off before the prompt appears, so nothing typed in answer to it is ever shown;
        # it comes back however the prompt ends: an answer, Ctrl-C, or a signal (_ModesOnSignal).
        with _ModesOnSignal(rfd) as guard:
            old = _echo_off(rfd) if secret else None
            guard.modes = old
            os.write(wfd, prompt.encode())
            try:
                line = _read_line(rfd)
            except KeyboardInterrupt:
                raise Interrupted("interrupted at the prompt") from None
            finally:
                if old is not None:
                    _restore(rfd, old)
                    os.write(wfd, b"\n")
        if line is None:
            raise AuthenticationFailed(f"no answer to the prompt for {what} (end of input)")
        return line

    def choose(self, title, options, what):
        """A numbered menu; returns the chosen index."""
        if self.gui and self._tty() is None:
            return self.gui.choose(title, options, what)
        self.require(what)
        self.say(title)
        for i, option in enumerate(options, 1):
            self.say(f"  {i}) {option}")
        for _ in range(3):
            answer = self.ask(f"Choose 1-{len(options)}: ", what).strip()
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return int(answer) - 1
            self.say(f"Please type a number from 1 to {len(options)}.")
        raise AuthenticationFailed(f"no valid choice for {what}")

    def close(self):
        if self._fds:
            os.close(self._fds[0])
            if self._fds[1] != self._fds[0]:
                os.close(self._fds[1])
        self._fds = None


class terminal_modes_restored:
    """Snapshot the terminal's modes and put them back on exit: a long-running command (serve,
    exec --server) can be stopped while a request thread has echo off at a secret prompt."""

    def __enter__(self):
        self.fd, self.modes = None, None
        fds = open_tty()
        if fds:
            self.fd = fds[0]
            try:
                import termios

                self.modes = termios.tcgetattr(self.fd)
            except (ImportError, OSError):
                pass
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            if self.modes is not None:
                try:
                    _restore(self.fd, self.modes)
                except OSError:
                    pass
            os.close(self.fd)


class _ModesOnSignal:
    """While a prompt has the terminal's echo off: SIGTERM, SIGHUP or SIGQUIT first put the
    terminal's modes back (`modes`, once set), then take their course (the handler that was there
    before, or the default action: credproc ends by that signal, as it would have). Only the main
    thread can set signal handlers: elsewhere (a request thread of serve) this does nothing, and
    terminal_modes_restored covers the command as a whole."""

    SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT")

    def __init__(self, fd):
        self.fd = fd
        self.modes = None
        self.previous = {}

    def _handle(self, signum, frame):
        import signal

        if self.modes is not None:
            try:
                _restore(self.fd, self.modes)
                os.write(self.fd, b"\n")
            except OSError:
                pass
        previous = self.previous.get(signum, signal.SIG_DFL)
        if callable(previous):
            return previous(signum, frame)
        signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        os.kill(os.getpid(), signum)

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                if hasattr(signal, name):
                    signum = getattr(signal, name)
                    if signal.getsignal(signum) == signal.SIG_IGN:  # e.g. SIGHUP under nohup: nothing ends us
                        continue
                    try:
                        self.previous[signum] = signal.signal(signum, self._handle)
                    except (ValueError, OSError):
                        pass
        return self

    def __exit__(self, *exc):
        import signal

        for signum, previous in self.previous.items():
            try:
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
            except (ValueError, OSError, TypeError):
                pass


class _Progress:
    def __init__(self, fds, text):
        self.fds = fds
        self.text = text
        self.stop = None
        self.thread = None

    def __enter__(self):
        if self.fds:
            import threading
            import time

            self.stop = threading.Event()
            start = time.monotonic()

            def tick():
                while not self.stop.wait(1.0):
                    try:
                        os.write(self.fds[1], f"\r{self.text} {int(time.monotonic() - start)} s ".encode())
                    except OSError:
                        return

            self.thread = threading.Thread(target=tick, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.thread:
            self.stop.set()
            self.thread.join(2)
            try:
                os.write(self.fds[1], b"\r\x1b[K")  # clear the line
            except OSError:
                pass


def _read_line(fd):
    buf = bytearray()
    while True:
        ch = os.read(fd, 1)
        if not ch:
            return buf.decode(errors="replace") if buf else None
        if ch in (b"\n", b"\r"):
            return buf.decode(errors="replace")
        buf += ch


def _echo_off(fd):
    try:
        import termios
    except ImportError:  # pragma: no cover - Windows console input is not echoed by os.read
        return None
    try:
        old = termios.tcgetattr(fd)
    except termios.error:
        return None
    new = list(old)
    new[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSAFLUSH, new)
    return old


def _restore(fd, old):
    import termios

    termios.tcsetattr(fd, termios.TCSADRAIN, old)


# The start of RecursionDetected's message in app.guard_recursion, as a child credproc prints it.
RECURSION_MARK = "credproc was started by a command credproc itself runs"


def clip(text, limit):
    """text cut to about limit characters at a word boundary, marked as cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:") + " ..."


def last_stderr_line(stderr, stdout=b""):
    """The last non-empty line a failed command wrote on stderr (its reason: "No YubiKey
    detected"), as plain text: terminal escape sequences and control characters removed, and
    whatever it printed on stdout (the secret, if it got that far) blanked out wherever it appears."""
    import re  # here, not at the top: only a failed command needs it

    _ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
    _CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
    lines = [_CONTROL.sub(" ", _ANSI.sub("", line)).strip()
             for line in stderr.decode(errors="replace").replace("\r", "\n").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    line = " ".join(lines[-1].split())
    for secret in sorted({w for w in stdout.decode(errors="replace").split() if len(w) >= 4}, key=len, reverse=True):
        line = line.replace(secret, "***")
    return line


def run_secret_command(command, what, key, timeout=120, whole_output=False):
    """Run a user-configured command (mfa_command, password_command, keys_command) without a shell
    and return its first output line (whole_output: all of it, stripped). What it prints is a
    secret: it is never logged or echoed."""
    try:
        import shlex  # here, not at the top: every run builds a Terminal, few run a command
        import subprocess

        argv = shlex.split(command)
    except ValueError as e:
        raise ConfigError(f"{key}: cannot parse {command!r}: {e}") from None
    if not argv:
        raise ConfigError(f"{key} is empty")
    env = dict(os.environ, CREDPROC_ACTIVE=str(os.getpid()))
    log.debug("running %s for %s: %s", key, what, argv[0])
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, env=env)
    except FileNotFoundError:
        raise ConfigError(f"{key}: command not found: {argv[0]}") from None
    except PermissionError:
        raise ConfigError(f"{key}: not executable: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise AuthenticationFailed(f"{key} ({argv[0]}) did not finish within {timeout} s") from None
    if proc.returncode != 0:
        # its stderr is diagnostics (e.g. "no YubiKey detected"), not the secret it prints on stdout
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        if proc.returncode == RecursionDetected.exit_code and any(RECURSION_MARK in line for line in err):
            raise RecursionDetected(f"{key} ({argv[0]}) runs credproc again, which refuses to recurse",
                                    hint=f"make {key} independent of credproc (e.g. not through an AWS profile "
                                         "that runs credproc)")
        last = last_stderr_line(proc.stderr, proc.stdout)
        detail = f": {clip(last, 200)}" if last else ""
        raise AuthenticationFailed(f"{key} ({argv[0]}) failed with exit code {proc.returncode}{detail}")
    text = proc.stdout.decode(errors="replace").strip()
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise AuthenticationFailed(f"{key} ({argv[0]}) printed nothing")
    return text if whole_output else lines[0].strip()
