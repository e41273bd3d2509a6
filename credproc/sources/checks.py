"""Validation pieces shared by config.py and the identity source modules (no import of either).

`Checker` collects every problem at once, each as `section.key: what is wrong`; the small
functions below build the `check=` callables it takes (each returns None or the problem).
"""

import json
import os
import re

# SDKs discard credentials with 15 minutes or less left, so a session must last longer than that
# to be usable at all; 20 minutes leaves a useful window.
MIN_DURATION = 20 * 60
MAX_DURATION = 43200
CHAINED_MAX_DURATION = 3600  # STS caps role chaining at one hour

MISSING = object()

ACCOUNT_ID_RE = re.compile(r"^\d{12}\Z")
PERMISSION_SET_RE = re.compile(r"^[\w+=,.@-]{1,64}\Z")  # an Identity Center permission set's name


class Checker:
    """Collects every problem, each as `section.key: what is wrong`."""

    def __init__(self):
        self.problems = []

    def add(self, where, what):
        from ..core.text import short

        # a value or key name is echoed in part: a 50 MB value must not come back whole
        self.problems.append(f"{short(where, 160)}: {short(what, 400)}")

    def table(self, parent, key, where):
        value = parent.get(key, {})
        if not isinstance(value, dict):
            self.add(where, "must be a table")
            return {}
        return value

    def get(self, table, key, where, kind, default=None, required=False, choices=None, check=None, hint=""):
        value = table.get(key, MISSING)
        if value is MISSING:
            if required:
                self.add(f"{where}.{key}", f"is required{hint}")
            return default
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            names = {str: "a string", int: "an integer", list: "a list", dict: "a table", bool: "true or false"}
            self.add(f"{where}.{key}", f"must be {names.get(kind, kind.__name__)}, not {json.dumps(value, default=str)}")
            return default
        if choices and value not in choices:
            self.add(f"{where}.{key}", f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
            return default
        if check:
            problem = check(value)
            if problem:
                self.add(f"{where}.{key}", problem)
                return default
        return value

    def unknown(self, table, allowed, where):
        for key in table:
            if key not in allowed:
                self.add(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(allowed))})")


def in_range(lo, hi, unit="seconds"):
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi} {unit}, not {v}"


def matches(regex, what):
    return lambda v: None if regex.match(v) else f"{v!r} is not {what}"


def secure_url(v):
    from ..core.errors import ConfigError
    from ..core.urls import check_url  # not ..core.http: the HTTP client is ~40 ms of imports

    try:
        check_url(v, "")
    except ConfigError:
        return f"{v!r} must be an https:// URL (plain http only to a loopback address)"
    return None


def readable_file(v):
    return None if os.path.isfile(os.path.expanduser(v)) else f"{v!r} is not a readable file"


def str_list(v):
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


def all_of(*checks):
    """One check= callable running several in turn; the first problem wins."""
    def check(v):
        for one in checks:
            problem = one(v)
            if problem:
                return problem
        return None
    return check
