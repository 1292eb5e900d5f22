"""The rule for trial, dataset and study names.

They become directory names, DAG ids and URL path segments, so they stay plain:
1-128 ASCII letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit.
The registry imports it when DAG files are parsed, so it imports nothing heavy.
"""

from __future__ import annotations

__all__ = ["NAME_RULE", "check_name", "is_plain_name"]

import re
from typing import TypeGuard

from pipeline.errors import StoreError

#: What a plain name is, as error messages say it.
NAME_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def is_plain_name(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string that follows :data:`NAME_RULE`."""
    return isinstance(value, str) and _PLAIN_NAME.fullmatch(value) is not None


def check_name(value: str, what: str) -> str:
    """Return ``value``, or raise :class:`StoreError` naming ``what`` unless it is plain."""
    if not is_plain_name(value):
        raise StoreError(f"{what} {value!r} must be {NAME_RULE}")
    return value
