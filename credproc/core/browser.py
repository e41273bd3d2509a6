"""Opening a URL in the user's browser: a sign-in URL, or the console's sign-in link, always
through a private page so that the URL is on no process's argv."""

import os

from . import log


def open_url(url):
    """Open a sign-in URL (an authorize URL with its state and PKCE challenge, a device-flow URL
    with its user code) where a graphical browser can be ($BROWSER honoured), never a text browser
    that would take over the terminal, never letting the browser inherit stdout (the
    credential_process pipe), and never putting the URL on an argv: another local user could read it
    there and replay the sign-in with their own login first. Failing to open one is not an error:
    the URL is on the terminal too."""
    open_secret_url(url)


# -- a secret link (the console's sign-in link) in a chosen browser and profile ---------------------
#
# A link that signs in whoever opens it must not go on a command line: any local user can read
# another's argv (`ps`, /proc/PID/cmdline) unless /proc is mounted with hidepid. So the browser is
# given a file instead: a 0600 page in a fresh 0700 directory that sends the browser on to the link,
# removed by a detached helper process shortly after (the browser reads it within seconds).

# Where the page may stay readable (by its owner only) for the browser to read it.
PAGE_LIFETIME = 60

# browser names -> (family, executables to look for: on PATH on Linux, full paths elsewhere)
_KNOWN = {
    "chrome": ("chromium", {"linux": ["google-chrome", "google-chrome-stable"],
                            "darwin": ["/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"],
                            "win32": [r"%ProgramFiles%\Google\Chrome\Application\chrome.exe",
                                      r"%ProgramFiles(x86)%\Google\Chrome\Application\chrome.exe",
                                      r"%LOCALAPPDATA%\Google\Chrome\Application\chrome.exe"]}),
    "chromium": ("chromium", {"linux": ["chromium", "chromium-browser"],
                              "darwin": ["/Applications/Chromium.app/Contents/MacOS/Chromium"],
                              "win32": [r"%LOCALAPPDATA%\Chromium\Application\chrome.exe"]}),
    "edge": ("chromium", {"linux": ["microsoft-edge", "microsoft-edge-stable"],
                          "darwin": ["/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge"],
                          "win32": [r"%ProgramFiles(x86)%\Microsoft\Edge\Application\msedge.exe",
                                    r"%ProgramFiles%\Microsoft\Edge\Application\msedge.exe"]}),
    "brave": ("chromium", {"linux": ["brave-browser", "brave"],
                           "darwin": ["/Applications/Brave Browser.app/Contents/MacOS/Brave Browser"],
                           "win32": [r"%ProgramFiles%\BraveSoftware\Brave-Browser\Application\brave.exe"]}),
    "firefox": ("firefox", {"linux": ["firefox"],
                            "darwin": ["/Applications/Firefox.app/Contents/MacOS/firefox"],
                            "win32": [r"%ProgramFiles%\Mozilla Firefox\firefox.exe",
                                      r"%ProgramFiles(x86)%\Mozilla Firefox\firefox.exe"]}),
}
KNOWN_BROWSERS = tuple(_KNOWN)


class Launcher:
    """How to start one configured browser: argv before the page, and its family's profile flag."""

    def __init__(self, argv, family, profile=None):
        self.argv = argv
        self.family = family
        self.profile = profile

    def command(self, page_url):
        args = list(self.argv)
        if self.profile and self.family == "firefox":
            args += ["-P", self.profile, "-new-tab"]
        elif self.profile:
            args.append(f"--profile-directory={self.profile}")
        return args + [page_url]


def _platform():
    import sys

    return "win32" if sys.platform.startswith("win") else "darwin" if sys.platform == "darwin" else "linux"


def launcher(browser, profile=None, which=None, exists=None):
    """The Launcher for a `browser` setting: a known name (chrome, chromium, edge, brave, firefox)
    or a command (a path, with arguments if wanted; Firefox if its program's name says so, else
    Chromium-family flags). Raises ConfigError when the browser is not there."""
    import shlex
    import shutil

    from .errors import ConfigError

    which = which or shutil.which
    exists = exists or (lambda p: os.path.isfile(p) and os.access(p, os.X_OK))
    name = browser.strip().lower()
    if name in _KNOWN:
        family, where = _KNOWN[name]
        candidates = where[_platform()]
        for candidate in candidates:
            path = os.path.expandvars(candidate)
            found = which(path) if os.sep not in path and "/" not in path else (path if exists(path) else None)
            if found:
                return Launcher([found], family, profile)
        raise ConfigError(f"browser {browser!r} is not installed here (looked for {', '.join(candidates)})",
                          hint="set browser to the browser program's full path")
    try:
        argv = shlex.split(browser, posix=os.name != "nt")
    except ValueError as e:
        raise ConfigError(f"browser {browser!r} cannot be split into a program and its arguments: {e}") from None
    found = argv and (which(argv[0]) or (argv[0] if exists(argv[0]) else None))
    if not found:
        raise ConfigError(f"browser {browser!r}: {argv[0] if argv else browser} is not found or not executable",
                          hint=f"use one of {', '.join(KNOWN_BROWSERS)} or the browser program's full path")
    family = "firefox" if "firefox" in os.path.basename(argv[0]).lower() else "chromium"
    return Launcher([found] + argv[1:], family, profile)


def _private_dir():
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR")  # per-user, 0700, in memory: the best place where it exists
    if not (base and os.path.isdir(base) and os.access(base, os.W_OK)):
        base = None
    return tempfile.mkdtemp(prefix="credproc-link-", dir=base)  # 0700, a fresh random name


def write_redirect_page(url):
    """(directory, file:// URL) of a new page, readable only by this user, that sends the browser
    straight on to url (which never appears anywhere but in the file)."""
    import html
    import json
    import pathlib

    directory = _private_dir()
    path = os.path.join(directory, "open.html")
    attr = html.escape(url, quote=True)
    script = json.dumps(url).replace("</", "<\\/")
    page = ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">"
            f"<meta http-equiv=\"refresh\" content=\"0;url={attr}\"><title>credproc</title></head>\n"
            f"<body><script>window.location.replace({script});</script>"
            f"<p><a href=\"{attr}\">Continue</a></p></body></html>\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    return directory, pathlib.Path(path).as_uri()


_REAPER = "import shutil, sys, time; time.sleep(float(sys.argv[2])); shutil.rmtree(sys.argv[1], ignore_errors=True)"


def _remove_later(directory, delay=None):
    """Remove directory after `delay` seconds (default PAGE_LIFETIME, or $CREDPROC_LINK_PAGE_LIFETIME
    for tests), from a detached process (credproc exits at once)."""
    import shutil
    import subprocess
    import sys

    if delay is None:
        try:
            delay = min(PAGE_LIFETIME, max(0.0, float(os.environ.get("CREDPROC_LINK_PAGE_LIFETIME", PAGE_LIFETIME))))
        except ValueError:
            delay = PAGE_LIFETIME

    kwargs = {"creationflags": 0x00000008 | 0x00000200} if os.name == "nt" else {"start_new_session": True}
    try:
        subprocess.Popen([sys.executable, "-c", _REAPER, directory, str(delay)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True, **kwargs)
    except OSError:  # cannot wait for the browser to read it: better a failed page than a left link
        import time

        time.sleep(3)
        shutil.rmtree(directory, ignore_errors=True)


def _detached(run):
    """run() with stdout and stderr on /dev/null: what it starts must not inherit our pipes (the
    credential_process pipe, a caller waiting for EOF)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        return run()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def can_open():
    """Where a graphical browser can be (or $BROWSER says which): Python's webbrowser would otherwise
    fall back to a text browser that takes over the terminal."""
    import sys

    return bool(os.environ.get("BROWSER") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or os.name == "nt" or sys.platform == "darwin")


def open_secret_url(url, launch=None):
    """Open a link that is a secret (it signs in whoever opens it) without it reaching any argv:
    the browser gets a private page that redirects to it. launch: a Launcher (a configured browser
    and profile), else the default browser ($BROWSER honoured). True when a browser was started;
    False (nothing started, the page removed) when none can be, so the caller prints the link."""
    import subprocess

    if launch is None and not can_open():
        return False
    directory, page = write_redirect_page(url)
    started = False
    try:
        if launch is not None:
            kwargs = {"creationflags": 0x00000008} if os.name == "nt" else {"start_new_session": True}
            argv = launch.command(page)
            log.debug("starting the browser %s (%s profile %s)", argv[0], launch.family, launch.profile or "-")

            def run():
                subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, close_fds=True, **kwargs)
                return True
        else:
            def run():
                import webbrowser

                return bool(webbrowser.open(page))
        try:
            started = _detached(run)
        except Exception as e:  # noqa: BLE001 - the link is printed instead
            log.debug("could not open a browser: %s", type(e).__name__)  # never its text: it may name the page
            started = False
    finally:
        if started:
            _remove_later(directory)
        else:
            import shutil

            shutil.rmtree(directory, ignore_errors=True)
    return started
