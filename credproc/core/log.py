"""Diagnostics on stderr. Off unless --debug (or CREDPROC_DEBUG=1). Callers never pass secrets."""

import os
import sys

enabled = bool(os.environ.get("CREDPROC_DEBUG"))


def debug(msg, *args):
    if enabled:
        from .text import clean

        sys.stderr.write("credproc: debug: " + clean(msg % args if args else msg) + "\n")
        sys.stderr.flush()


def warn(msg):
    from .text import clean

    sys.stderr.write(f"credproc: warning: {clean(msg)}\n")
    sys.stderr.flush()
