"""The OS keyring, through the `keyring` library: macOS Keychain, Windows Credential Locker,
Secret Service (GNOME Keyring, KeePassXC...) or KWallet on Linux.

Everything credproc keeps there is one item under the service name "credproc": one per
[idp.NAME] (its IAM user keys, as the JSON object {"AccessKeyId", "SecretAccessKey"}), plus
CACHE_KEY_ITEM for the key that wraps the cache key. Item names other than idp names start with
"@", which an idp name cannot (config.NAME_RE), so they never collide.

`keyring` is imported here, lazily, on first use: never on the cache-hit path. A backend that
would write the secret to a plain file (keyrings.alt's PlaintextKeyring) or that cannot store
anything (the "fail" and "null" backends) counts as no keyring: the point is to keep secrets out
of plain files.
"""

import os
import sys

from . import log
from .errors import KeyringUnavailable

SERVICE = "credproc"
CACHE_KEY_ITEM = "@cache-key-wrap"

# "fail" and "null" store nothing; keyrings.alt's file backends write a file under the home directory
_REFUSED_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")

_backend = None


def _why_none():
    """Best guess at why no keyring answers, for the message."""
    if os.name == "posix" and not sys.platform.startswith("darwin"):
        if not os.environ.get("DBUS_SESSION_BUS_ADDRESS") and not os.environ.get("XDG_RUNTIME_DIR"):
            return "no D-Bus session (an SSH login, CI or a service has none), so no Secret Service or KWallet"
        return "no Secret Service or KWallet answers on the D-Bus session bus"
    return "the keyring library found no usable backend"


def backend():
    """The keyring backend in use; raises KeyringUnavailable when there is none worth using."""
    global _backend
    if _backend is None:
        try:
            import keyring
        except ImportError:
            raise KeyringUnavailable("the Python package 'keyring' is not installed",
                                     hint="reinstall credproc (it depends on keyring)") from None
        kr = keyring.get_keyring()
        candidates = getattr(kr, "backends", None) or [kr]  # a ChainerBackend wraps several
        usable = [b for b in candidates if not type(b).__module__.startswith(_REFUSED_MODULES)]
        if not usable:
            raise KeyringUnavailable(f"no OS keyring is available here: {_why_none()}",
                                     hint="use credproc where your desktop keyring runs, or use keys_command "
                                          "(a password manager) or keys = \"profile\" for this idp")
        _backend = usable[0]
        log.debug("OS keyring: %s.%s", type(_backend).__module__, type(_backend).__name__)
    return _backend


def name():
    b = backend()
    return getattr(b, "name", type(b).__name__)


def _translate(e, what):
    """A keyring error as a KeyringUnavailable naming what we were doing; never the secret."""
    kind = type(e).__name__
    locked = "Lock" in kind or "lock" in str(e).lower() or "dismiss" in str(e).lower()
    if locked:
        return KeyringUnavailable(f"the OS keyring is locked and was not unlocked ({what})",
                                  hint="unlock it (log in to the desktop, or open your keyring app) and try again")
    if kind in ("NoKeyringError", "InitError"):
        return KeyringUnavailable(f"no OS keyring is available here: {_why_none()} ({what})")
    detail = str(e).splitlines()[0][:200] if str(e) else ""
    return KeyringUnavailable(f"the OS keyring failed while {what}: {kind}{': ' + detail if detail else ''}",
                              hint="check that your keyring service is running and unlocked")


def get(item, what):
    """The secret stored under (SERVICE, item), or None when there is none."""
    b = backend()
    try:
        return b.get_password(SERVICE, item)
    except Exception as e:  # noqa: BLE001 - every backend raises its own kinds
        raise _translate(e, what) from None


def put(item, secret, what):
    """Store, and make sure it is what reads back. A Secret Service can hold several items with the
    same service and username (one made with secret-tool, say, lacks the keyring library's
    "application" attribute, so set_password adds a second instead of replacing it), and a lookup
    then returns either: stale ones are deleted one at a time until ours is the one found. At every
    step some item remains, so an interruption never leaves none."""
    b = backend()
    try:
        b.set_password(SERVICE, item, secret)
        for _ in range(5):
            if b.get_password(SERVICE, item) == secret:
                return
            b.delete_password(SERVICE, item)  # the first match: a stale one, or ours (then stored again)
            b.set_password(SERVICE, item, secret)
    except Exception as e:  # noqa: BLE001
        raise _translate(e, what) from None


def delete(item, what):
    """Delete every item for `item`; True when there was one."""
    b = backend()
    found = False
    try:
        for _ in range(10):
            if b.get_password(SERVICE, item) is None:
                break
            b.delete_password(SERVICE, item)
            found = True
    except Exception as e:  # noqa: BLE001
        if type(e).__name__ != "PasswordDeleteError":
            raise _translate(e, what) from None
    return found


def reset():
    """Forget the backend chosen (tests that start and stop keyrings)."""
    global _backend
    _backend = None
