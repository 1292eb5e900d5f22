"""Canonical records (docs/formats.md §2-§3): JCS against the rfc8785 package, typed values, salts.

rfc8785 (Trail of Bits) is an independent RFC 8785 implementation; where the
two disagree on a JSON value, ours is wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from anchoring.canonical import (
    MAX_SAFE_INTEGER,
    SALT_SCHEME_V1,
    SALT_SCHEME_V2,
    canonical_json,
    canonical_value,
    derive_trial_salt_key,
    format_number,
    leaf_input,
    member_order,
    record_salt,
)
from anchoring.errors import AnchoringError, CanonicalizationError, MalformedError
from anchoring.ijson import load_i_json

# -- numbers -------------------------------------------------------------------------------

NAMED_FLOATS = {
    "1e21": 1e21,  # the first power of ten ES6 writes with an exponent
    "1e20": 1e20,  # ...and the last it writes in full
    "1e-7": 1e-7,  # the first negative exponent ES6 writes with an exponent
    "1e-6": 1e-6,
    "-0.0": -0.0,  # serializes as 0
    "5e-324": 5e-324,  # smallest subnormal
    "0.1": 0.1,
    "max": 1.7976931348623157e308,
    "2**53": float(2**53),
    "-1.5": -1.5,
    "333333333.3333333": 333333333.3333333,
    "9.999999999999999e22": 9.999999999999999e22,
}


@pytest.mark.parametrize("value", NAMED_FLOATS.values(), ids=NAMED_FLOATS.keys())
def test_format_number_named_cases(value: float) -> None:
    """The RFC 8785 boundary cases serialize exactly as the rfc8785 package does."""
    assert format_number(value) == rfc8785.dumps(value).decode()


def test_format_number_known_strings() -> None:
    """A few results pinned to the strings RFC 8785 Appendix B / ES6 give."""
    assert format_number(1e21) == "1e+21"
    assert format_number(1e-7) == "1e-7"
    assert format_number(-0.0) == "0"
    assert format_number(5e-324) == "5e-324"
    assert format_number(1e20) == "100000000000000000000"
    assert format_number(1e-6) == "0.000001"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_number_matches_rfc8785(value: float) -> None:
    """Every finite double serializes like rfc8785 (the ES6 Number::toString layout)."""
    assert format_number(value) == rfc8785.dumps(value).decode()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_raise(value: float) -> None:
    """NaN and infinities have no JSON form, alone or nested."""
    with pytest.raises(CanonicalizationError):
        format_number(value)
    with pytest.raises(CanonicalizationError):
        canonical_json(value)
    with pytest.raises(CanonicalizationError):
        canonical_json({"a": [1, value]})


def test_integer_range_is_ingestions_rule() -> None:
    """Integers within ±(2**53-1) are exact and written in full. Beyond, canonical_json writes
    an integer as RFC 8785 writes its IEEE double (a proof carries no column types), while
    canonical_value, which ingestion uses, refuses it."""
    assert canonical_json(MAX_SAFE_INTEGER) == str(2**53 - 1).encode()
    assert canonical_json(-MAX_SAFE_INTEGER) == str(-(2**53 - 1)).encode()
    for big in (2**53, -(2**53), 10**30, 123456789012345680000, 2**60):
        assert canonical_json(big) == format_number(float(big)).encode()
        assert canonical_json([{"n": big}]) == rfc8785.dumps([{"n": float(big)}])
        with pytest.raises(CanonicalizationError):
            canonical_value(big, "integer")
    with pytest.raises(CanonicalizationError):
        canonical_json(10**400)  # beyond any double


@pytest.mark.parametrize(
    ("literals", "jcs"),
    [
        (["123456789012345680000", "1.2345678901234568e+20", "1.2345678901234568E20"],
         b"123456789012345680000"),
        (["9007199254740992.0", "9007199254740992", "9.007199254740992e15"],
         b"9007199254740992"),
        (["1e21", "1000000000000000000000", "1.0e21"], b"1e+21"),
        (["2.0", "2", "2e0", "20e-1"], b"2"),
        (["-0.0", "0", "-0"], b"0"),
        (["0.1", "1e-1"], b"0.1"),
    ],
)
def test_every_literal_of_one_number_canonicalizes_alike(literals: list[str], jcs: bytes) -> None:
    """RFC 8785 §3.2.2.3: a number is its IEEE double, whatever its literal form."""
    for literal in literals:
        assert canonical_json(load_i_json(literal)) == jcs, literal
        assert canonical_json(load_i_json(f'{{"v": [{literal}]}}')) == b'{"v":[' + jcs + b"]}"


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ('{"a": 1, "a": 2}', "duplicate"),
        ('{"x": {"a": 1, "b": {"c": 1, "c": 1}}}', "duplicate"),
        ('[{"a": [1, {"k": 1, "k": 2}]}]', "duplicate"),
        ('"\\ud800"', "surrogate"),
        ('{"\\udc00x": 1}', "surrogate"),
        ("1e400", "range"),
        ("-1e400", "range"),
        ("1" + "0" * 400, "range"),
        ("NaN", "JSON"),
        ("Infinity", "JSON"),
        ("[" * 65 + "]" * 65, "nests"),
        ("[" * 985 + "]" * 985, "nests"),
        ("[" * 100_000 + "]" * 100_000, "nests"),
        ("{not json", "JSON"),
        (b"\xff\xfe", "JSON"),
    ],
)
def test_load_i_json_refuses_what_rfc7493_forbids(text: str | bytes, what: str) -> None:
    with pytest.raises(MalformedError, match=what):
        load_i_json(text)


def test_load_i_json_nesting_limit_is_a_parameter() -> None:
    assert load_i_json("[" * 64 + "]" * 64) is not None
    with pytest.raises(MalformedError):
        load_i_json("[[[]]]", max_depth=2)


def test_booleans_are_not_numbers() -> None:
    """bool is an int subclass in Python, but JSON true/false, never 1/0."""
    assert canonical_json([True, False, 1, 0]) == b"[true,false,1,0]"


# -- strings and objects ---------------------------------------------------------------------

EXTRA_CHARS = '\x00\x01\x08\t\n\x0c\r\x1f\x7f"\\/\u2028\u2029\ud7ff\ue000\uffff\U0001f600\U0010ffff'
json_text = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(EXTRA_CHARS)))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(json_text, children, max_size=6)
    ),
    max_leaves=40,
)


@given(json_values)
def test_canonical_json_matches_rfc8785(value: Any) -> None:
    """Any JSON value (non-BMP and control characters included) gives rfc8785's bytes."""
    assert canonical_json(value) == rfc8785.dumps(value)


def test_string_escapes() -> None:
    """RFC 8785 §3.2.2.2: short escapes, \\u00xx in lowercase for other controls, the rest raw."""
    assert canonical_json('\b\t\n\f\r\x00\x1f"\\/\u2028é\U0001f600') == (
        '"\\b\\t\\n\\f\\r\\u0000\\u001f\\"\\\\/\u2028é\U0001f600"'.encode()
    )


def test_keys_sort_by_utf16_code_units() -> None:
    """U+1F600 (surrogates D83D DE00) sorts before U+E000 in UTF-16, after it by code point."""
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3, "": 4, "aa": 5, "B": 6}
    assert canonical_json(value) == '{"":4,"B":6,"a":3,"aa":5,"\U0001f600":2,"\ue000":1}'.encode()
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", {"\ud83d": 1}, ["ok", "\udc00"]])
def test_lone_surrogates_raise(value: Any) -> None:
    """A lone surrogate is not Unicode text and has no UTF-8 form, as a value or as a key."""
    with pytest.raises(CanonicalizationError):
        canonical_json(value)


@pytest.mark.parametrize(
    "value", [{1: "a"}, {None: 1}, b"bytes", {1, 2}, object(), dt.date(2024, 1, 1)]
)
def test_non_json_values_raise(value: Any) -> None:
    """Non-string keys and non-JSON types are refused, never stringified silently."""
    with pytest.raises(CanonicalizationError):
        canonical_json(value)


# -- typed values (docs/formats.md §2) ------------------------------------------------------------

UTC_PLUS_2 = dt.timezone(dt.timedelta(hours=2))

GOOD_VALUES: list[tuple[Any, str, Any]] = [
    ("text", "string", "text"),
    ("", "string", ""),
    (42, "integer", 42),
    (-MAX_SAFE_INTEGER, "integer", -MAX_SAFE_INTEGER),
    (3.0, "integer", 3),  # an integer-valued float (pandas int column with NaN) is an int
    (-0.0, "integer", 0),
    (2.5, "number", 2.5),
    (7, "number", 7.0),
    (True, "boolean", True),
    (False, "boolean", False),
    (dt.date(2024, 2, 29), "date", "2024-02-29"),
    (dt.date(5, 1, 9), "date", "0005-01-09"),
    (dt.datetime(2024, 1, 2, 3, 4, 5), "datetime", "2024-01-02T03:04:05Z"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 120), "datetime", "2024-01-02T03:04:05.000120Z"),
    (dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC_PLUS_2), "datetime", "2024-01-01T23:04:05Z"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "datetime", "2024-01-02T03:04:05Z"),
]


@pytest.mark.parametrize(("value", "field_type", "expected"), GOOD_VALUES)
def test_canonical_value_mapping(value: Any, field_type: str, expected: Any) -> None:
    """Each contract type maps to its canonical JSON value, with the exact Python type."""
    result = canonical_value(value, field_type)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "field_type", ["string", "integer", "number", "boolean", "date", "datetime"]
)
def test_missing_and_nan_become_null(field_type: str) -> None:
    """Missing values and NaN are null for every type."""
    assert canonical_value(None, field_type) is None
    assert canonical_value(math.nan, field_type) is None
    assert canonical_value(float("nan"), field_type) is None


BAD_VALUES: list[tuple[Any, str]] = [
    (True, "integer"),  # bool is not an integer...
    (False, "number"),  # ...nor a number
    (2.5, "integer"),
    (math.inf, "integer"),
    (math.inf, "number"),
    (-math.inf, "number"),
    (2**53, "integer"),
    (float(2**53), "integer"),
    (-(2**53), "integer"),
    (1, "string"),
    (b"text", "string"),
    (1, "boolean"),
    ("true", "boolean"),
    ("x", "number"),
    ("2024-01-02", "date"),
    (dt.datetime(2024, 1, 2), "date"),  # a datetime is a date subclass, but not a date value
    (dt.date(2024, 1, 2), "datetime"),
    ("value", "uuid"),  # unknown type
]


@pytest.mark.parametrize(("value", "field_type"), BAD_VALUES)
def test_canonical_value_rejects(value: Any, field_type: str) -> None:
    """Values outside their contract type raise CanonicalizationError (a ValueError too)."""
    with pytest.raises(CanonicalizationError):
        canonical_value(value, field_type)
    assert issubclass(CanonicalizationError, AnchoringError)


def test_canonical_record_bytes() -> None:
    """A typed record serializes to the JCS bytes of its canonical values."""
    record = {
        "USUBJID": canonical_value("S-001", "string"),
        "AGE": canonical_value(64.0, "integer"),
        "WEIGHT": canonical_value(71.25, "number"),
        "RFSTDTC": canonical_value(dt.date(2024, 3, 1), "date"),
        "SAFFL": canonical_value(True, "boolean"),
        "DTHDTC": canonical_value(math.nan, "date"),
    }
    expected = (
        b'{"AGE":64,"DTHDTC":null,"RFSTDTC":"2024-03-01","SAFFL":true,'
        b'"USUBJID":"S-001","WEIGHT":71.25}'
    )
    assert canonical_json(record) == expected == rfc8785.dumps(record)


# -- salts and leaf inputs (docs/formats.md §3) ---------------------------------------------------

KEY = hashlib.sha256(b"test trial salt key").digest()


def test_record_salt_is_the_specified_hmac() -> None:
    """salt = HMAC-SHA256(key, JCS([trial, dataset, version, key values...])), computed
    independently; the v1 scheme, for versions committed before, leaves the version out."""
    message = rfc8785.dumps(["TRIAL-1", "dm", 4, "S-001", 3])
    expected = hmac.new(KEY, message, "sha256").digest()
    assert record_salt(KEY, "TRIAL-1", "dm", ["S-001", 3], version=4) == expected
    assert record_salt(KEY, "TRIAL-1", "dm", ["S-001", 3], version=4, scheme=SALT_SCHEME_V2) == (
        expected
    )
    v1_message = rfc8785.dumps(["TRIAL-1", "dm", "S-001", 3])
    assert record_salt(KEY, "TRIAL-1", "dm", ["S-001", 3], version=4, scheme=SALT_SCHEME_V1) == (
        hmac.new(KEY, v1_message, "sha256").digest()
    )


def test_record_salt_binds_the_version() -> None:
    """A record's salt in one version is not its salt in another (docs/formats.md §3), and
    the version cannot be confused with a key value."""
    salts = {record_salt(KEY, "T1", "dm", ["S-001"], version=v) for v in range(1, 50)}
    assert len(salts) == 49
    assert record_salt(KEY, "T1", "dm", [2], version=1) != record_salt(
        KEY, "T1", "dm", [1], version=2
    )
    assert record_salt(KEY, "T1", "dm", ["S-001"], version=1, scheme=SALT_SCHEME_V1) == (
        record_salt(KEY, "T1", "dm", ["S-001"], version=2, scheme=SALT_SCHEME_V1)
    )
    with pytest.raises(CanonicalizationError, match="unknown salt scheme"):
        record_salt(KEY, "T1", "dm", ["S-001"], version=1, scheme="trialproof/salt/v0")


def test_record_salt_is_deterministic_and_separates_inputs() -> None:
    """Same inputs, same 32-byte salt (idempotent re-ingest); any change gives another salt,
    including shifts that a plain concatenation would confuse."""
    base = record_salt(KEY, "T1", "dm", ["S-001"], version=1)
    assert len(base) == 32
    assert base == record_salt(KEY, "T1", "dm", ["S-001"], version=1)
    others = [
        record_salt(KEY, "T2", "dm", ["S-001"], version=1),
        record_salt(KEY, "T1", "ae", ["S-001"], version=1),
        record_salt(KEY, "T1", "dm", ["S-002"], version=1),
        record_salt(KEY, "T1", "dm", ["S-001", 1], version=1),
        record_salt(KEY, "T1d", "m", ["S-001"], version=1),
        record_salt(KEY, "T1", "dmS-001", [], version=1),
        record_salt(hashlib.sha256(b"another key").digest(), "T1", "dm", ["S-001"], version=1),
    ]
    assert len({base, *others}) == len(others) + 1


def test_derive_trial_salt_key() -> None:
    """Per-trial keys are deterministic, differ between trials and from the master key."""
    master = b"\x01" * 32
    k1 = derive_trial_salt_key(master, "T1")
    assert k1 == derive_trial_salt_key(master, "T1")
    assert len(k1) == 32
    assert k1 not in (derive_trial_salt_key(master, "T2"), master)
    assert k1 == hmac.new(master, b"trialproof/salt-key/v1\x00T1", "sha256").digest()


def test_leaf_input_requires_a_32_byte_salt() -> None:
    """leaf_input = salt || canonical bytes, and only with a 32-byte salt."""
    salt = record_salt(KEY, "T1", "dm", ["S-001"], version=1)
    body = canonical_json({"a": 1})
    assert leaf_input(salt, body) == salt + body
    for bad in (b"", b"\x00" * 31, b"\x00" * 33, salt + salt):
        with pytest.raises(CanonicalizationError):
            leaf_input(bad, body)


# -- known bugs (see the test report); strict, so a fix shows up as XPASS -> failure -------------


@pytest.mark.parametrize("field_type", ["integer", "number"])
def test_numpy_bool_is_not_a_number(field_type: str) -> None:
    """docs/formats.md §2: bool is not an integer. pandas/pyarrow booleans arrive as numpy.bool_,
    which is not a Python bool subclass, so the `isinstance(value, bool)` guard misses it."""
    np = pytest.importorskip("numpy")
    with pytest.raises(CanonicalizationError):
        canonical_value(np.True_, field_type)


def test_members_sort_by_utf16_code_units_not_code_points() -> None:
    """U+1F600 is the surrogate pair D83D DE00 in UTF-16, so it sorts before U+FFFF
    (RFC 8785 §3.2.3), although its code point is larger."""
    assert sorted(["\uffff", "\U0001f600", "a"], key=member_order) == ["a", "\U0001f600", "\uffff"]
    value = {"\uffff": 1, "\U0001f600": 2, "\ue000": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).decode() == '{"\U0001f600":2,"\ue000":3,"\uffff":1}'
