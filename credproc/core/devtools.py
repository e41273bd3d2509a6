"""A Chromium-family browser (Chrome, Edge, Chromium, Brave) of the user's, driven through the Chrome
DevTools protocol over a pipe: the browser reads commands on its fd 3 and writes answers and events
on its fd 4 (`--remote-debugging-pipe`), each message one JSON text ended by a NUL byte. A pipe, not
a TCP port: no other local user (or web page) can reach the browser's debugger.

credproc launches it as `EXE <credproc's flags> about:blank` and navigates from there, so an `EXE`
that is a wrapper script exec'ing the real browser works (the tests use one that adds
--headless=new and --no-sandbox; credproc itself never adds either)."""

import json
import os
import select
import shutil
import signal
import sys
import time

from . import log
from .errors import ConfigError, ServiceError

MAX_MESSAGE = 32 << 20  # bytes: a DevTools message; a SAMLResponse is ~10 KB, a page's event rarely 1 MB
ANSWER_WAIT = 20.0  # seconds a browser that has started may take to answer on the pipe

# The usual names on PATH (Linux, and anything else with the same names), then the usual places.
PATH_NAMES = ("google-chrome", "google-chrome-stable", "chromium", "chromium-browser", "microsoft-edge",
              "microsoft-edge-stable", "brave-browser", "brave")
MACOS_APPS = ("Google Chrome.app/Contents/MacOS/Google Chrome", "Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
              "Chromium.app/Contents/MacOS/Chromium", "Brave Browser.app/Contents/MacOS/Brave Browser")
WINDOWS_EXES = (r"Google\Chrome\Application\chrome.exe", r"Microsoft\Edge\Application\msedge.exe",
                r"BraveSoftware\Brave-Browser\Application\brave.exe", r"Chromium\Application\chrome.exe")


def desktop_available():
    """Whether a browser window can be shown to the user: macOS and Windows always; elsewhere an X11
    or Wayland display."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def candidates():
    """Where a Chromium-family browser is looked for, in order."""
    found = list(PATH_NAMES)
    if sys.platform == "darwin":
        for root in ("/Applications", os.path.expanduser("~/Applications")):
            found += [os.path.join(root, app) for app in MACOS_APPS]
    elif sys.platform == "win32":
        for var in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA"):
            if os.environ.get(var):
                found += [os.path.join(os.environ[var], exe) for exe in WINDOWS_EXES]
    return found


def find(configured=None, key="browser"):
    """The command (argv) that starts the browser: `configured` as the `browser` setting reads (a known
    name such as chrome or edge, or a program with arguments: core/browser.launcher), which must be of
    the Chromium family; else the first of candidates() that exists. ConfigError (naming what was tried
    and the key) otherwise."""
    if configured:
        from .browser import launcher

        try:
            found = launcher(configured)
        except ConfigError as e:
            raise ConfigError(f"{key}: {e.message}", hint=e.hint or f"set {key} to the full path of Chrome, Edge, "
                                                                     "Chromium or Brave") from None
        if found.family != "chromium":
            raise ConfigError(f"{key}: {configured!r} is not a Chromium-family browser; a browser sign-in needs Chrome, "
                              "Edge, Chromium or Brave (it is driven through the DevTools protocol)",
                              hint="set the idp's own browser to one of those (the [settings] one may stay Firefox "
                                   "for credproc console)")
        return found.argv
    tried = candidates()
    for name in tried:
        path = os.path.expanduser(name)
        if os.sep in path or (os.altsep and os.altsep in path):
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return [os.path.abspath(path)]
        else:
            found = shutil.which(path)
            if found:
                return [os.path.abspath(found)]
    raise ConfigError("no Chromium-family browser (Chrome, Edge, Chromium, Brave) was found; tried: " + ", ".join(tried),
                      hint=f"install one, or set {key} to its full path")


class Browser:
    """One launched browser and its DevTools pipe. send() a command, read() the next message, call()
    a command and wait for its answer (events that arrive meanwhile are queued for read())."""

    def __init__(self, command, profile_dir, flags=()):
        """command: the browser's argv before credproc's flags (find()'s answer)."""
        if not hasattr(os, "posix_spawn"):
            raise ConfigError("the browser sign-in is not available on this platform yet (it needs to hand the "
                              "browser its DevTools pipe)", hint='use flow = "form" or "ecp" here')
        exe = self.exe = command[0]
        cmd_r, self._cmd_w = os.pipe()  # we write commands; the browser reads them on its fd 3
        self._evt_r, evt_w = os.pipe()  # the browser writes on its fd 4; we read
        devnull = os.open(os.devnull, os.O_RDWR)
        err = 2 if log.enabled else devnull  # the browser's own messages only with --debug
        argv = [*command, "--remote-debugging-pipe", f"--user-data-dir={profile_dir}", "--no-first-run",
                "--no-default-browser-check", *flags, "about:blank"]
        try:
            # stdin, stdout and stderr: never the credential_process pipe (the SDK would wait for the
            # browser to close it, and its chatter would corrupt the document)
            self.pid = os.posix_spawn(exe, argv, dict(os.environ), setpgroup=0, file_actions=[
                (os.POSIX_SPAWN_DUP2, cmd_r, 3), (os.POSIX_SPAWN_DUP2, evt_w, 4),
                (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, err, 2)])
        except OSError as e:
            for fd in (self._cmd_w, self._evt_r):
                os.close(fd)
            raise ConfigError(f"cannot start the browser {exe}: {e.strerror}",
                              hint="set browser to the full path of Chrome, Edge, Chromium or Brave") from None
        finally:
            for fd in (cmd_r, evt_w, devnull):
                os.close(fd)
        self._buffer = b""
        self._queue = []
        self._next_id = 0
        self.closed = False

    # -- the pipe --------------------------------------------------------------------------------
    def send(self, method, params=None, session=None):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._cmd_w, data):]
        except OSError:
            self.closed = True
            raise EOFError("the browser has exited") from None
        return self._next_id

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._evt_r], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._evt_r, 1 << 16)
            if not chunk:
                self.closed = True
                raise EOFError("the browser has exited")
            self._buffer += chunk
            if len(self._buffer) > MAX_MESSAGE and b"\0" not in self._buffer:
                raise ServiceError(f"the browser sent a DevTools message of more than {MAX_MESSAGE >> 20} MiB")
        raw, self._buffer = self._buffer.split(b"\0", 1)
        try:
            message = json.loads(raw)
        except ValueError:
            raise ServiceError("the browser sent something on its DevTools pipe that is not JSON") from None
        if not isinstance(message, dict):
            raise ServiceError("the browser sent a DevTools message that is not an object")
        return message

    def read(self, timeout):
        """The next message (queued first), None after timeout seconds; EOFError once the browser exits."""
        if self._queue:
            return self._queue.pop(0)
        return self._read_message(time.monotonic() + timeout)

    def call(self, method, params=None, session=None, timeout=None):
        """The result of a command; ServiceError when the browser answers with an error or not at all
        (within timeout seconds, default ANSWER_WAIT)."""
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + (ANSWER_WAIT if timeout is None else timeout)
        while True:
            message = self._read_message(deadline)
            if message is None:
                raise ServiceError(f"the browser {self.exe} did not answer on its DevTools pipe ({method})",
                                   hint="is it a Chromium-family browser (Chrome, Edge, Chromium, Brave), version 80 "
                                        "or newer? set browser to one")
            if message.get("id") == wanted:
                if "error" in message:
                    error = message["error"] if isinstance(message["error"], dict) else {}
                    raise ServiceError(f"the browser refused {method}: {str(error.get('message'))[:200]}")
                result = message.get("result")
                return result if isinstance(result, dict) else {}
            self._queue.append(message)

    # -- the end ---------------------------------------------------------------------------------
    def close(self, grace=5.0):
        """Ask the browser to close, then make sure it and every process it started are gone."""
        if not self.closed:
            try:
                self.send("Browser.close")
            except EOFError:
                pass
        deadline = time.monotonic() + grace
        exited = False
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid = self.pid
            if pid == self.pid:
                exited = True
                break
            time.sleep(0.05)
        try:  # its helpers (renderers, the zygote) are in its process group
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if not exited:
            log.debug("the browser did not exit within %.0f s of Browser.close; killed it", grace)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        for fd in (self._cmd_w, self._evt_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.closed = True
