"""Opening a URL in the user's browser for a sign-in."""

import os

from . import log


def open_url(url):
    """Open url in a graphical browser ($BROWSER honoured), never a text browser that would take over
    the terminal, and never letting the browser inherit stdout (the credential_process pipe).
    Failing to open one is not an error: the URL is on the terminal too."""
    # Without a display Python's webbrowser falls back to text browsers (lynx, w3m) that would
    # take over the terminal: open one only where a graphical browser can be, or $BROWSER says so.
    if not (os.environ.get("BROWSER") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            or os.name == "nt" or os.uname().sysname == "Darwin"):
        return
    # The browser (and webbrowser's launcher) must not inherit stdout, the credential_process
    # pipe: its chatter would corrupt the document and the SDK would wait for it to exit.
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        import webbrowser

        webbrowser.open(url)
    except Exception as e:  # noqa: BLE001 - the URL is on the terminal anyway
        log.debug("could not open a browser: %s", type(e).__name__)
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)
