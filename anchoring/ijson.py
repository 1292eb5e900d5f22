"""I-JSON (RFC 7493), the JSON that RFC 8785 canonicalizes: a strict reader for proofs.

Standard library only, like the rest of the verifier.
"""

from __future__ import annotations

__all__ = ["MAX_JSON_DEPTH", "check_json_value", "load_i_json"]

import json
import math
import re
from typing import Any

from anchoring.canonical import MAX_SAFE_INTEGER
from anchoring.errors import MalformedError

#: How deep JSON values read by :func:`load_i_json` may nest by default.
MAX_JSON_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def load_i_json(data: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse I-JSON (RFC 7493), the input RFC 8785 canonicalizes, refusing what it forbids.

    Raises :class:`MalformedError` on text that is not JSON, duplicate object
    member names (§2.3), strings with lone surrogates (§2.1), numbers beyond
    the range of an IEEE double (§2.2), and values nested deeper than
    ``max_depth``. Every number is read as the double it stands for, so a
    number with an integral value becomes an ``int`` whatever its literal form
    (``2.0``, ``2e0``): as in JSON Schema, it counts as an integer, and its
    RFC 8785 form does not change.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_float=_double,
            parse_int=_integer,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise MalformedError(f"JSON nests deeper than {max_depth} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedError(f"not valid JSON: {exc}") from None
    except ValueError as exc:  # raised by the hooks below, naming what I-JSON forbids
        raise MalformedError(str(exc)) from None
    # Walk the value only when the text could hold what the walk looks for: more
    # brackets than the depth limit, or a surrogate (escaped, or raw in a str).
    surrogates = _SURROGATE_ESCAPE.search(text) is not None or (
        isinstance(data, str) and not _is_unicode(text)
    )
    if surrogates or text.count("[") + text.count("{") >= max_depth:
        check_json_value(value, max_depth, surrogates)
    return value


def check_json_value(value: Any, max_depth: int = MAX_JSON_DEPTH, surrogates: bool = True) -> None:
    """Raise :class:`MalformedError` if ``value`` nests deeper than ``max_depth`` or, when
    ``surrogates``, holds a string with a lone surrogate (RFC 7493 §2.1)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                raise MalformedError(f"JSON nests deeper than {max_depth} levels")
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if surrogates and isinstance(key, str):
                    _check_unicode(key)
                stack.append((child, depth + 1))
        elif surrogates and isinstance(item, str):
            _check_unicode(item)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedError("a JSON string holds a lone surrogate (RFC 7493 §2.1)") from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            shown = key if len(key) <= 40 else key[:40] + "…"
            raise ValueError(f"duplicate key {json.dumps(shown)} (RFC 7493 §2.3)")
        obj[key] = value
    return obj


def _double(literal: str) -> int | float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal[:40]} is beyond the range of an IEEE double")
    return int(value) if value.is_integer() else value


def _integer(literal: str) -> int:
    value = int(literal)
    if abs(value) > MAX_SAFE_INTEGER:
        _double(literal)  # range check only: the integer serializes as its double
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
