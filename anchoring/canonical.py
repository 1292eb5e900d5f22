"""Canonical records (docs/formats.md §2-§3): RFC 8785 JSON, typed values, salts and leaf inputs.

Everything here uses only the standard library, so a verifier can
recompute a record's leaf with nothing else installed.
"""

from __future__ import annotations

__all__ = [
    "MAX_SAFE_INTEGER",
    "SALT_SCHEME",
    "SALT_SCHEMES",
    "SALT_SCHEME_V1",
    "SALT_SCHEME_V2",
    "canonical_json",
    "canonical_value",
    "derive_trial_salt_key",
    "format_number",
    "leaf_input",
    "member_order",
    "record_salt",
    "salt_message_head",
]

import datetime as _dt
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from anchoring.errors import CanonicalizationError

#: 2**53 - 1: the largest integer every JSON reader holds exactly (RFC 8785 §3.2.2.3).
MAX_SAFE_INTEGER = 2**53 - 1

SALT_SIZE = 32
_FIELD_TYPES = frozenset({"string", "integer", "number", "boolean", "date", "datetime"})


def format_number(value: float) -> str:
    """Serialize a finite double as ECMAScript Number::toString does (RFC 8785 §3.2.2.3).

    Python's ``repr`` yields the shortest digits that round-trip, the same
    digits ES6 picks; only the layout differs.
    """
    if not math.isfinite(value):
        raise CanonicalizationError(f"{value!r} has no JSON form (RFC 8785 §3.2.2.2)")
    if value == 0:
        return "0"  # -0 serializes as 0 too
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # n such that value = 0.d1d2...dk x 10**n
    n = (
        len(int_part) + int(exp or 0)
        if int_part != "0"
        else int(exp or 0) - (len(frac_part) - len(frac_part.lstrip("0")))
    )
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exponent = f"e{'+' if e >= 0 else '-'}{abs(e)}"
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + exponent
    return sign + text


def _integer_as_double(value: int) -> str:
    try:
        return format_number(float(value))
    except OverflowError:
        raise CanonicalizationError(
            "an integer beyond the range of an IEEE double has no JSON number form "
            "(RFC 8785 §3.2.2.3)"
        ) from None


#: RFC 8785 §3.2.2.2 strings: what ``json.dumps(s, ensure_ascii=False)`` writes (the same
#: function), without building an encoder per call.
_json_string: Callable[[str], str] = json.encoder.encode_basestring


def _serialize(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        # RFC 8785 §3.2.2.3: a JSON number is an IEEE double whatever its literal form, so
        # an integer is written as its double is. Ingestion keeps integers within ±(2**53-1)
        # (canonical_value), where both forms are the same digits.
        out.append(str(value) if abs(value) <= MAX_SAFE_INTEGER else _integer_as_double(value))
    elif isinstance(value, float):
        out.append(format_number(value))
    elif isinstance(value, str):
        out.append(_json_string(value))
    elif isinstance(value, Mapping):
        _serialize_object(value, out)
    elif isinstance(value, list | tuple):
        _serialize_array(value, out)
    else:
        raise CanonicalizationError(f"{type(value).__name__} has no JSON form")


def _serialize_object(value: Mapping[Any, Any], out: list[str]) -> None:
    """An object, members sorted by name (RFC 8785 §3.2.3)."""
    keys = list(value)
    for key in keys:
        if not isinstance(key, str):
            raise CanonicalizationError(f"object key {key!r} is not a string")
    keys.sort(key=member_order)
    out.append("{")
    for i, key in enumerate(keys):
        if i:
            out.append(",")
        out.append(_json_string(key))
        out.append(":")
        _serialize(value[key], out)
    out.append("}")


def _serialize_array(value: list[Any] | tuple[Any, ...], out: list[str]) -> None:
    """An array, elements in order (RFC 8785 §3.2.2)."""
    out.append("[")
    for i, item in enumerate(value):
        if i:
            out.append(",")
        _serialize(item, out)
    out.append("]")


def member_order(name: str) -> bytes:
    """The sort key of an object member's name: its UTF-16 code units (RFC 8785 §3.2.3).

    Big-endian UTF-16 bytes compare as the code units do, so a name outside the Basic
    Multilingual Plane (a surrogate pair, from 0xD800) sorts before one in U+E000-U+FFFF,
    unlike Python's code point order. A lone surrogate gets its own code unit here; the
    serialization then refuses it (RFC 8785 §3.2.2.2).
    """
    return name.encode("utf-16-be", "surrogatepass")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) serialization of a JSON value, as UTF-8 bytes."""
    out: list[str] = []
    _serialize(value, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (RFC 8785 §3.2.2.2)
        raise CanonicalizationError(f"string is not valid Unicode: {exc.reason}") from None


def canonical_value(value: Any, field_type: str) -> Any:
    """The canonical JSON value of ``value`` for a contract field type (docs/formats.md §2).

    Missing values and NaN become ``None``. Values must already have their
    type: text is not parsed into numbers here (readers do that, once).
    """
    if field_type not in _FIELD_TYPES:
        raise CanonicalizationError(f"unknown field type {field_type!r}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if _is_boolean(value) and field_type != "boolean":
        raise CanonicalizationError(f"boolean {value!r} is not a valid {field_type}")
    if isinstance(value, str | bytes) and field_type in ("integer", "number"):
        raise CanonicalizationError(f"text {value!r} is not a valid {field_type}")
    try:
        return _FIELD_CONVERTERS[field_type](value)
    except OverflowError:
        raise CanonicalizationError(
            f"{value!r} is outside ±(2**53-1) and cannot be represented exactly"
        ) from None
    except (TypeError, ValueError):
        raise CanonicalizationError(
            f"{type(value).__name__} value {value!r} is not a valid {field_type}"
        ) from None


# The field-type converters below raise TypeError or ValueError for a value that is not of
# their type, which canonical_value reports with the value and the type it was meant to be.


def _canonical_string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _canonical_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, float):
        if not value.is_integer():
            raise TypeError
        value = int(value)
    result = int(value)
    if abs(result) > MAX_SAFE_INTEGER:
        # Named by the integer a whole float became, as the caller cannot know it.
        raise CanonicalizationError(
            f"{value!r} is outside ±(2**53-1) and cannot be represented exactly"
        )
    return result


def _canonical_number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError
    result = float(value)
    if not math.isfinite(result):
        raise CanonicalizationError(f"{result} is not a finite number")
    return result


def _canonical_boolean(value: Any) -> bool:
    if not _is_boolean(value):
        raise TypeError
    return bool(value)


def _canonical_date(value: Any) -> str:
    if isinstance(value, _dt.datetime) or not isinstance(value, _dt.date):
        raise TypeError
    return value.isoformat()


def _canonical_datetime(value: Any) -> str:
    if not isinstance(value, _dt.datetime):
        raise TypeError
    return _rfc3339(value)


_FIELD_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _canonical_string,
    "integer": _canonical_integer,
    "number": _canonical_number,
    "boolean": _canonical_boolean,
    "date": _canonical_date,
    "datetime": _canonical_datetime,
}


def _is_boolean(value: Any) -> bool:
    # numpy.bool_ is not a bool subclass, but is a boolean all the same.
    kind = type(value)
    return isinstance(value, bool) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
    )


def _rfc3339(value: _dt.datetime) -> str:
    """RFC 3339: naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC).replace(tzinfo=None)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text + "Z"


def derive_trial_salt_key(master_key: bytes, trial: str) -> bytes:
    """The per-trial salt key: HMAC-SHA256(master, "trialproof/salt-key/v1" || 0x00 || trial).

    Disclosing one trial's key reveals nothing about another's.
    """
    return hmac.new(
        master_key, b"trialproof/salt-key/v1\x00" + trial.encode("utf-8"), hashlib.sha256
    ).digest()


#: Salt schemes (docs/formats.md §3), named by a version manifest's ``salt_scheme``.
#: v1, JCS([trial, dataset, key values...]), was used by versions whose manifest has no
#: ``salt_scheme``: a record kept its salt from one version to the next.
SALT_SCHEME_V1 = "trialproof/salt/v1"
#: v2, JCS([trial, dataset, version, key values...]): a salt disclosed with one version's
#: proof says nothing about the record's leaf in any other version.
SALT_SCHEME_V2 = "trialproof/salt/v2"
#: The scheme new versions are committed under.
SALT_SCHEME = SALT_SCHEME_V2
SALT_SCHEMES = (SALT_SCHEME_V1, SALT_SCHEME_V2)


def salt_message_head(scheme: str, trial: str, dataset: str, version: int) -> list[Any]:
    """What a salt message holds before the key values, under ``scheme`` (docs/formats.md §3)."""
    if scheme == SALT_SCHEME_V1:
        return [trial, dataset]
    if scheme == SALT_SCHEME_V2:
        return [trial, dataset, version]
    raise CanonicalizationError(f"unknown salt scheme {scheme!r}")


def record_salt(
    trial_salt_key: bytes,
    trial: str,
    dataset: str,
    key_values: Sequence[Any],
    *,
    version: int,
    scheme: str = SALT_SCHEME,
) -> bytes:
    """HMAC-SHA256(trial salt key, JCS([trial, dataset, version, key values...]))
    (docs/formats.md §3); under :data:`SALT_SCHEME_V1`, without the version."""
    message = canonical_json([*salt_message_head(scheme, trial, dataset, version), *key_values])
    return hmac.new(trial_salt_key, message, hashlib.sha256).digest()


def leaf_input(salt: bytes, canonical_record: bytes) -> bytes:
    """salt || canonical record bytes (docs/formats.md §3). Precondition: a 32-byte salt."""
    if len(salt) != SALT_SIZE:
        raise CanonicalizationError(f"a salt is {SALT_SIZE} bytes, got {len(salt)}")
    return salt + canonical_record
