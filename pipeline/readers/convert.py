"""One column to its contract type, vectorized in Arrow (docs/formats.md §2).

Strings lose trailing spaces (XPORT pads them) and the contract's missing values become
null; numbers given as text may carry spaces, and "", "." and "NA" are missing in
non-string columns; an integral float is an integer; SAS numeric dates count days, and
datetimes seconds, from 1960-01-01. A value that does not fit becomes null and its row is
returned, for the validation step to report.
"""

from __future__ import annotations

__all__ = ["ARROW_TYPES", "convert"]

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

from pipeline.contract import Field
from pipeline.sas_formats import sas_temporal_kind

ARROW_TYPES: dict[str, Any] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
}

# Text that means "no value" in a non-string column, whatever the contract lists:
# SAS exports write "." and R exports (Dataset-JSON from the pilot 5 package) write "NA".
_NONSTRING_MISSING = frozenset({"", ".", "NA"})
_MAX_SAFE_INTEGER = 2**53 - 1
_SAS_EPOCH_DAYS = 3653  # 1960-01-01 to 1970-01-01
_SAS_EPOCH_SECONDS = _SAS_EPOCH_DAYS * 86400
# Years 1..9999: the canonical forms are "YYYY-MM-DD" and RFC 3339, four-digit years.
_MIN_DAY, _MAX_DAY = -719162, 2932896
_MIN_US, _MAX_US = _MIN_DAY * 86_400_000_000, (_MAX_DAY + 1) * 86_400_000_000 - 1

_INT_RE = r"^[+-]?[0-9]+$"
_DEC_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME_RE = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                r"(Z|[+-][0-9]{2}:?[0-9]{2})?$")
_ZONE_RE = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
_TRUE = ("true", "y", "1")
_FALSE = ("false", "n", "0")


_Result = tuple[Any, list[int]]


def _null(type_: Any) -> Any:
    return pa.scalar(None, type_)


def _indices(mask: Any) -> list[int]:
    """Rows where ``mask`` is true (null counts as false)."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return []
    return list(pc.indices_nonzero(mask).to_pylist())


def _cast_lenient(array: Any, target: Any) -> _Result:
    """Cast, with the values Arrow refuses set to null and their rows returned. Arrow fails
    a whole cast for one bad value, so the failing half is split until the values are found:
    a few vectorized casts per bad value instead of one Python call per row."""
    try:
        return pc.cast(array, target), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) <= 16:
        parts, bad = [], []
        for i in range(len(array)):
            try:
                parts.append(pc.cast(array.slice(i, 1), target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                parts.append(pa.nulls(1, target))
                bad.append(i)
        return pa.concat_arrays(parts), bad
    middle = len(array) // 2
    left, left_bad = _cast_lenient(array.slice(0, middle), target)
    right, right_bad = _cast_lenient(array.slice(middle), target)
    return pa.concat_arrays([left, right]), left_bad + [middle + i for i in right_bad]


def _in_set(array: Any, values: Sequence[Any]) -> Any:
    """``array`` is one of ``values``, never empty (null stays null). Equality tests beat is_in,
    which builds a hash table per chunk."""
    result = pc.equal(array, values[0])
    for value in values[1:]:
        result = pc.or_(result, pc.equal(array, value))
    return result


def _keep(array: Any, mask: Any) -> Any:
    """``array`` where ``mask`` is true, null elsewhere."""
    return pc.if_else(pc.fill_null(mask, False), array, _null(array.type))


def _merge(*parts: list[int]) -> list[int]:
    rows: set[int] = set()
    for part in parts:
        rows.update(part)
    return sorted(rows)


def _decode_dictionary(array: Any) -> Any:
    if pa.types.is_dictionary(array.type):
        return pc.cast(array, array.type.value_type)
    return array


def _is_text(t: Any) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t))


def _is_numeric(t: Any) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def convert(array: Any, f: Field, missing: frozenset[str], sas_format: str | None) -> _Result:
    """``array`` as ``f``'s type, and the rows whose values do not fit it (null in the
    result). ``missing`` are the contract's missing values; ``sas_format`` is the column's
    SAS format in an XPORT file, else None."""
    array = _decode_dictionary(array)
    t = array.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        array, bad = _cast_lenient(array, pa.string())  # text that is not UTF-8 is a type error
        converted, more = convert(array, f, missing, sas_format)
        return converted, _merge(bad, more)
    if pa.types.is_null(t):
        return pa.nulls(len(array), ARROW_TYPES[f.type]), []
    if _is_text(t):
        array = array.cast(pa.string())
    if f.type == "string":
        return _to_string(array, missing)
    if _is_text(t):
        text = _prepare_text(array, missing | _NONSTRING_MISSING)
        return _TEXT_CONVERTERS[f.type](text)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        array = array.cast(pa.float64())
        array = pc.if_else(pc.is_nan(array), _null(pa.float64()), array)  # NaN is missing
    return _typed_to(array, f.type, sas_format)


def _all_bad(array: Any, target: Any) -> _Result:
    return pa.nulls(len(array), target), _indices(pc.is_valid(array))


def _prepare_text(array: Any, missing: frozenset[str]) -> Any:
    text = pc.ascii_trim_whitespace(array)
    return pc.if_else(pc.fill_null(_in_set(text, sorted(missing)), False),
                      _null(pa.string()), text)


def _to_string(array: Any, missing: frozenset[str]) -> _Result:
    t = array.type
    if pa.types.is_string(t):
        text = pc.ascii_rtrim(array, characters=" ")  # XPORT pads; other formats may too
    elif pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_date(t):
        text = pc.cast(array, pa.string())
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        number = pc.cast(array, pa.float64())
        number = pc.if_else(pc.is_nan(number), _null(pa.float64()), number)
        integral = pc.and_(pc.equal(pc.floor(number), number),
                           pc.less_equal(pc.abs(number), float(_MAX_SAFE_INTEGER)))
        as_int = pc.cast(pc.cast(_keep(number, integral), pa.int64()), pa.string())
        # an integral float reads as the integer it is, as it would in CSV or JSON
        text = pc.coalesce(as_int, pc.cast(number, pa.string()))
    elif pa.types.is_timestamp(t):
        if t.tz is not None:
            array = pc.cast(array, pa.timestamp(t.unit))
        text = pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")
    else:
        return _all_bad(array, pa.string())
    if missing:
        text = pc.if_else(pc.fill_null(_in_set(text, sorted(missing)), False),
                          _null(pa.string()), text)
    return text, []


def _matches(text: Any, pattern: str) -> Any:
    return pc.fill_null(pc.match_substring_regex(text, pattern), False)


def _unmatched(text: Any, ok: Any) -> list[int]:
    return _indices(pc.and_(pc.is_valid(text), pc.invert(ok)))


def _float_to_int(number: Any) -> _Result:
    good = pc.and_(pc.and_(pc.is_finite(number), pc.equal(pc.floor(number), number)),
                   pc.less_equal(pc.abs(number), float(_MAX_SAFE_INTEGER)))
    good = pc.fill_null(good, False)
    return pc.cast(_keep(number, good), pa.int64()), _unmatched(number, good)


def _safe_integers(integers: Any) -> _Result:
    good = pc.fill_null(pc.less_equal(pc.abs_checked(integers), _MAX_SAFE_INTEGER), False)
    return _keep(integers, good), _unmatched(integers, good)


def _text_to_integer(text: Any) -> _Result:
    is_int = _matches(text, _INT_RE)
    not_int = _unmatched(text, is_int)
    plain = _keep(text, is_int)
    if pc.any(pc.starts_with(plain, "+")).as_py():
        plain = pc.replace_substring_regex(plain, pattern=r"^\+", replacement="")
    integers, bad_int = _cast_lenient(plain, pa.int64())  # beyond int64: a type error
    integers, bad_range = _safe_integers(integers)
    if not not_int:  # the usual case: plain integers only
        return integers, _merge(bad_int, bad_range)
    is_dec = pc.and_(_matches(text, _DEC_RE), pc.invert(is_int))
    floats, bad_float = _cast_lenient(_keep(text, is_dec), pa.float64())
    from_floats, bad_frac = _float_to_int(floats)
    result = pc.coalesce(integers, from_floats)
    return result, _merge(_unmatched(text, pc.or_(is_int, is_dec)), bad_int, bad_range,
                          bad_float, bad_frac)


def _text_to_number(text: Any) -> _Result:
    ok = _matches(text, _DEC_RE)
    unmatched = _unmatched(text, ok)
    if unmatched:
        is_nan = pc.fill_null(pc.equal(pc.ascii_lower(text), "nan"), False)
        text = pc.if_else(is_nan, _null(pa.string()), text)  # NaN is missing (docs/formats.md §2)
        unmatched = _unmatched(text, ok)
    number, bad_cast = _cast_lenient(_keep(text, ok), pa.float64())
    finite = pc.fill_null(pc.is_finite(number), False)
    return _keep(number, finite), _merge(unmatched, bad_cast, _unmatched(number, finite))


def _text_to_boolean(text: Any) -> _Result:
    lower = pc.ascii_lower(text)
    is_true = pc.fill_null(_in_set(lower, _TRUE), False)
    is_false = pc.fill_null(_in_set(lower, _FALSE), False)
    result = pc.if_else(is_true, True, pc.if_else(is_false, False, _null(pa.bool_())))
    return result, _unmatched(text, pc.or_(is_true, is_false))


def _date_range(days: Any) -> _Result:
    good = pc.fill_null(pc.and_(pc.greater_equal(days, _MIN_DAY),
                                pc.less_equal(days, _MAX_DAY)), False)
    in_range = pc.cast(_keep(days, good), pa.int32())
    return pc.cast(in_range, pa.date32()), _unmatched(days, good)


def _text_to_date(text: Any) -> _Result:
    ok = _matches(text, _DATE_RE)
    dates, bad_cast = _cast_lenient(_keep(text, ok), pa.date32())
    return dates, _merge(_unmatched(text, ok), bad_cast)


def _text_to_datetime(text: Any) -> _Result:
    ok = _matches(text, _DATETIME_RE)
    zoned = pc.and_(ok, _matches(text, _ZONE_RE))
    naive = pc.and_(ok, pc.invert(zoned))
    local, bad_local = _cast_lenient(_keep(text, naive), pa.timestamp("us"))
    utc, bad_utc = _cast_lenient(_keep(text, zoned), pa.timestamp("us", tz="UTC"))
    result = pc.coalesce(local, pc.cast(utc, pa.timestamp("us")))
    result, bad_range = _timestamp_range(result)
    return result, _merge(_unmatched(text, ok), bad_local, bad_utc, bad_range)


def _timestamp_range(stamps: Any) -> _Result:
    micros = pc.cast(stamps, pa.int64())
    good = pc.fill_null(pc.and_(pc.greater_equal(micros, _MIN_US),
                                pc.less_equal(micros, _MAX_US)), False)
    return _keep(stamps, good), _unmatched(stamps, good)


_TEXT_CONVERTERS: dict[str, Callable[[Any], _Result]] = {
    "integer": _text_to_integer,
    "number": _text_to_number,
    "boolean": _text_to_boolean,
    "date": _text_to_date,
    "datetime": _text_to_datetime,
}


def _typed_to(array: Any, target: str, sas_format: str | None) -> _Result:
    """Convert a typed (non-text) column: Parquet, XPORT numbers, JSON numbers/booleans."""
    t = array.type
    if target == "integer":
        if pa.types.is_integer(t):
            return _safe_integers(pc.cast(array, pa.int64()))
        if pa.types.is_floating(t):
            return _float_to_int(array)
        return _all_bad(array, pa.int64())
    if target == "number":
        if pa.types.is_integer(t):
            return pc.cast(array, pa.float64()), []
        if pa.types.is_floating(t):
            finite = pc.fill_null(pc.is_finite(array), False)
            return _keep(array, finite), _unmatched(array, finite)
        return _all_bad(array, pa.float64())
    if target == "boolean":
        if pa.types.is_boolean(t):
            return array, []
        if _is_numeric(t):
            number = pc.cast(array, pa.float64())
            ok = pc.fill_null(_in_set(number, (0.0, 1.0)), False)
            return pc.cast(_keep(number, ok), pa.bool_()), _unmatched(number, ok)
        return _all_bad(array, pa.bool_())
    if target == "date":
        return _typed_to_date(array, sas_format)
    return _typed_to_datetime(array, sas_format)


def _typed_to_date(array: Any, sas_format: str | None) -> _Result:
    t = array.type
    if pa.types.is_date(t):
        return pc.cast(array, pa.date32()), []
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            array = pc.cast(array, pa.timestamp(t.unit))
        midnight = pc.fill_null(pc.equal(pc.floor_temporal(array, unit="day"), array), False)
        dates = pc.cast(_keep(array, midnight), pa.date32())
        return dates, _unmatched(array, midnight)
    if sas_format is not None and _is_numeric(t):
        # SAS counts days from 1960-01-01 (seconds, for a DATETIME format)
        number = pc.cast(array, pa.float64())
        if sas_temporal_kind(sas_format) == "datetime":
            number = pc.divide(number, 86400.0)
        days, bad = _float_to_int(number)
        dates, bad_range = _date_range(pc.subtract(days, _SAS_EPOCH_DAYS))
        return dates, _merge(bad, bad_range)
    # A bare number in another format has no agreed epoch: not a date.
    return _all_bad(array, pa.date32())


def _typed_to_datetime(array: Any, sas_format: str | None) -> _Result:
    t = array.type
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            array = pc.cast(array, pa.timestamp(t.unit))  # the UTC wall time
        stamps, bad = _cast_lenient(array, pa.timestamp("us"))  # sub-microsecond: a type error
        stamps, bad_range = _timestamp_range(stamps)
        return stamps, _merge(bad, bad_range)
    if sas_format is not None and _is_numeric(t):
        # SAS counts seconds from 1960-01-01 (days, for a DATE format)
        number = pc.cast(array, pa.float64())
        scale = 86_400_000_000.0 if sas_temporal_kind(sas_format) == "date" else 1_000_000.0
        micros = pc.round(pc.multiply(number, scale))
        finite = pc.fill_null(pc.and_(pc.is_finite(micros),
                                      pc.less_equal(pc.abs(micros), 2.0**62)), False)
        as_int = pc.subtract(pc.cast(_keep(micros, finite), pa.int64()),
                             _SAS_EPOCH_SECONDS * 1_000_000)
        stamps, bad_range = _timestamp_range(pc.cast(as_int, pa.timestamp("us")))
        return stamps, _merge(_unmatched(number, finite), bad_range)
    # Dates (no time of day) and bare numbers are not datetimes.
    return _all_bad(array, pa.timestamp("us"))
