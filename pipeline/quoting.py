"""Quoting what a delivery says in messages, reports and notifications.

A delivery is untrusted: it may be any file, even one holding a secret. Messages,
reports and notifications therefore never quote its content, except its column
names, and those only escaped, shortened and few: a column name is a line of the
file, and a file that is not a dataset (a key, a password file) has its secret
on its first line. A library's own error message may quote the file too, so only
its shape is kept.
"""

from __future__ import annotations

__all__ = ["NAMES_SHOWN", "NAME_WIDTH", "library_reason", "quote_name", "quote_names"]

import re
import unicodedata
from collections.abc import Iterable

#: At most this many characters of a column name are quoted.
NAME_WIDTH = 24
#: At most this many column names are quoted in one message; the rest are counted.
NAMES_SHOWN = 10
_REASON_WIDTH = 120
_PLAIN = re.compile(rf"[A-Za-z0-9_.-]{{1,{NAME_WIDTH}}}")
# Text a library quotes from its input: in quotes, or after "got N:" (pyarrow's CSV parser
# appends the offending row).
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_ROW_AFTER_COUNT = re.compile(r"(got \d+)\s*:.*$")


def _escape(text: str) -> str:
    """Control, format, separator and unassigned characters as ``\\uXXXX``."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in {"\\", "\""} or (category[0] in "CZ" and char != " "):
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def quote_name(name: object) -> str:
    """A column name as it is when it is a short plain name (letters, digits, ``_.-``);
    otherwise in double quotes, escaped, and cut to :data:`NAME_WIDTH` characters."""
    text = str(name)
    if _PLAIN.fullmatch(text):
        return text
    if len(text) > NAME_WIDTH:
        return f'"{_escape(text[:NAME_WIDTH])}…" ({len(text)} characters)'
    return f'"{_escape(text)}"'


def quote_names(names: Iterable[object], limit: int = NAMES_SHOWN) -> str:
    """Column names for a message: the first ``limit`` quoted, then "and N more"."""
    listed = list(names)
    shown = ", ".join(quote_name(n) for n in listed[:limit])
    if len(listed) > limit:
        shown += f" and {len(listed) - limit} more"
    return shown


def library_reason(exc: BaseException) -> str:
    """A library's error message without what it quotes from the input: one line, quoted
    text replaced by ``'…'``, a row after "got N:" removed, escaped and shortened."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    text = _ROW_AFTER_COUNT.sub(r"\1", text)
    text = _QUOTED.sub("'…'", text)
    text = _escape(text)
    if len(text) > _REASON_WIDTH:
        text = text[: _REASON_WIDTH - 1] + "…"
    return text or type(exc).__name__
