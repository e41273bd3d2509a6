"""Text that did not come from credproc itself (server answers, config values, claims) made safe
to print: control characters are shown escaped instead of being sent to the terminal, where an
escape sequence could retitle it, move the cursor or fake a prompt; long values are truncated."""

import re

# C0 (but tab and newline), DEL, C1, and the Unicode controls that reorder or hide text.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _escape(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text, limit=20000, line_limit=1000):
    """text with every control character escaped, each line cut at line_limit characters and the
    whole at limit (None: no limit), each cut marked with '…'."""
    text = _CONTROL.sub(_escape, str(text))
    if line_limit is not None:
        text = "\n".join(line if len(line) <= line_limit else line[:line_limit] + "…" for line in text.split("\n"))
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text


def short(text, limit=80):
    """One value echoed inside a message: at most `limit` characters."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def format_left(seconds):
    """Time left as people read it: "-", "42 s", "17 min", "3 h 5 min", "4 days"."""
    if seconds is None or seconds <= 0:
        return "-"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"
