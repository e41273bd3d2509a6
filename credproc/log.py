"""Diagnostics on stderr. Off unless --debug (or CREDPROC_DEBUG=1). Callers never pass secrets."""

import os
import sys

enabled = bool(os.environ.get("CREDPROC_DEBUG"))


def debug(msg, *args):
    if enabled:
        sys.stderr.write("credproc: debug: " + (msg % args if args else msg) + "\n")
        sys.stderr.flush()


def warn(msg):
    sys.stderr.write(f"credproc: warning: {msg}\n")
    sys.stderr.flush()
