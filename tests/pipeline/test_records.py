"""pipeline.records: the vectorized canonical form equals the per-row definition, byte for byte."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchoring._internal.tree import MerkleTree
from anchoring.canonical import (
    SALT_SCHEME_V1,
    SALT_SCHEME_V2,
    canonical_json,
    canonical_value,
    leaf_input,
    record_salt,
)
from anchoring.errors import CanonicalizationError
from anchoring.merkle.hasher import leaf_hash
from pipeline.contract import parse_contract
from pipeline.records import (
    canonical_records,
    leaf_chunks,
    record_digests,
    salt_messages,
    sort_into_leaf_order,
)

ARROW_TYPES = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
}

VALUES = {
    "string": st.text(),
    "integer": st.integers(-(2**53 - 1), 2**53 - 1),
    "number": st.floats(allow_infinity=False),
    "boolean": st.booleans(),
    "date": st.dates(),
    "datetime": st.datetimes(),
}

_fields = st.lists(
    st.tuples(st.text(min_size=1, max_size=6), st.sampled_from(sorted(ARROW_TYPES))),
    min_size=1,
    max_size=6,
    unique_by=lambda f: f[0],
)


def _per_row(table: pa.Table, contract: Any, row: int) -> bytes:
    return canonical_json(
        {
            f.name: canonical_value(table.column(f.name)[row].as_py(), f.type)
            for f in contract.fields
        }
    )


@st.composite
def tables(draw: st.DrawFn) -> tuple[pa.Table, Any]:
    fields = draw(_fields)
    rows = draw(st.integers(0, 12))
    columns = {}
    for name, ftype in fields:
        values = draw(st.lists(st.none() | VALUES[ftype], min_size=rows, max_size=rows))
        columns[name] = pa.array(values, ARROW_TYPES[ftype])
    contract = parse_contract(
        {
            "name": "t",
            "fields": [{"name": n, "type": t} for n, t in fields],
            "primaryKey": [fields[0][0]],
        }
    )
    return pa.table(columns), contract


@settings(max_examples=300, deadline=None)
@given(tables())
def test_vectorized_records_equal_the_per_row_definition(case: tuple[pa.Table, Any]) -> None:
    table, contract = case
    got = canonical_records(table, contract).to_pylist()
    assert got == [_per_row(table, contract, i) for i in range(table.num_rows)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_infinity=False) | st.none(), max_size=30))
def test_numbers_follow_es6(values: list[float | None]) -> None:
    contract = parse_contract({"name": "n", "fields": [{"name": "x", "type": "number"}]})
    got = canonical_records(pa.table({"x": pa.array(values, pa.float64())}), contract).to_pylist()
    expected = [
        b'{"x":null}' if v is None or math.isnan(v) else canonical_json({"x": v}) for v in values
    ]
    assert got == expected


def test_named_number_cases() -> None:
    contract = parse_contract({"name": "n", "fields": [{"name": "x", "type": "number"}]})
    cases = [1e21, 1e20, 1e16, 1e-7, -0.0, 5e-324, 0.1, 1.7976931348623157e308, 100.0]
    got = canonical_records(pa.table({"x": pa.array(cases)}), contract).to_pylist()
    assert got == [
        b'{"x":1e+21}',
        b'{"x":100000000000000000000}',
        b'{"x":10000000000000000}',
        b'{"x":1e-7}',
        b'{"x":0}',
        b'{"x":5e-324}',
        b'{"x":0.1}',
        b'{"x":1.7976931348623157e+308}',
        b'{"x":100}',
    ]


def test_repetitive_columns_take_the_dictionary_path_and_still_agree() -> None:
    """Columns with few distinct values are rendered once per value; the bytes must not change."""
    contract = parse_contract({"name": "t", "fields": [
        {"name": "id", "type": "integer"}, {"name": "s", "type": "string"},
        {"name": "v", "type": "number"}, {"name": "d", "type": "date"},
        {"name": "t", "type": "datetime"}, {"name": "b", "type": "boolean"},
        {"name": "n", "type": "integer"}], "primaryKey": ["id"]})
    n = 6_000
    strings = ['a"b', "tab\tnew\nline", "é\u2028", "plain", None]
    numbers = [1e20, -0.0, 0.1, float("nan"), None, 1e21, 5e-324]
    table = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "s": pa.array([strings[i % len(strings)] for i in range(n)]),
        "v": pa.array([numbers[i % len(numbers)] for i in range(n)], pa.float64()),
        "d": pa.array([dt.date(2014, 1 + i % 12, 1) if i % 13 else None for i in range(n)]),
        "t": pa.array([dt.datetime(2020, 1, 1, 0, 0, i % 3, (i % 2) * 5) for i in range(n)],
                      pa.timestamp("us")),
        "b": pa.array([None if i % 7 == 0 else bool(i % 2) for i in range(n)]),
        "n": pa.array([i % 4 - 2 if i % 5 else None for i in range(n)], pa.int64()),
    })
    got = canonical_records(table, contract).to_pylist()
    assert got == [_per_row(table, contract, row) for row in range(n)]


@pytest.mark.parametrize("scheme", [SALT_SCHEME_V2, SALT_SCHEME_V1])
def test_salts_and_leaf_inputs_match_anchoring(scheme: str) -> None:
    contract = parse_contract(
        {
            "name": "dm",
            "fields": [
                {"name": "USUBJID", "type": "string"},
                {"name": "VISITNUM", "type": "number"},
                {"name": "AGE", "type": "integer"},
            ],
            "primaryKey": ["USUBJID", "VISITNUM"],
        }
    )
    table = pa.table(
        {"USUBJID": ["01-701-1015", "01-701-1023"], "VISITNUM": [1.0, 2.5], "AGE": [63, None]}
    )
    key = b"s" * 32
    (chunk,) = leaf_chunks(
        table, contract, "CDISCPILOT01", "dm", key, version=3, salt_scheme=scheme
    )
    assert chunk.records.equals(table)
    for row in range(2):
        values = [table.column("USUBJID")[row].as_py(), table.column("VISITNUM")[row].as_py()]
        salt = record_salt(key, "CDISCPILOT01", "dm", values, version=3, scheme=scheme)
        assert chunk.salts[row].as_py() == salt
        data = leaf_input(salt, _per_row(table, contract, row))
        assert chunk.leaf_hashes[32 * row : 32 * row + 32] == leaf_hash(data)
    message = salt_messages(table, contract, "T", "D", version=3, scheme=scheme)[0].as_py()
    assert message == {
        SALT_SCHEME_V2: b'["T","D",3,"01-701-1015",1]',
        SALT_SCHEME_V1: b'["T","D","01-701-1015",1]',
    }[scheme]


@pytest.mark.parametrize(
    ("chunk_rows", "scheme"),
    [
        (None, SALT_SCHEME_V2),
        (1024, SALT_SCHEME_V2),
        (4096, SALT_SCHEME_V2),
        (8192, SALT_SCHEME_V1),
        (16_384, SALT_SCHEME_V2),
        (16_384, SALT_SCHEME_V1),
    ],
)
def test_leaf_chunks_match_the_per_row_definition_however_cut(
    chunk_rows: int | None, scheme: str
) -> None:
    """Below and past the vectorized threshold, cut into chunks of any power-of-two size,
    under either salt scheme, every salt and leaf hash is the one the per-row definition
    (docs/formats.md §3-§4) gives, in order, and the chunks' subtree levels join into the
    whole tree."""
    contract = parse_contract(
        {
            "name": "lb",
            "fields": [
                {"name": "USUBJID", "type": "string"},
                {"name": "LBSEQ", "type": "integer"},
                {"name": "LBSTRESN", "type": "number"},
            ],
            "primaryKey": ["USUBJID", "LBSEQ"],
        }
    )
    n = 10_000
    table = pa.table(
        {
            "USUBJID": [f"01-701-{1000 + i // 50}" for i in range(n)],
            "LBSEQ": [i % 50 + 1 for i in range(n)],
            "LBSTRESN": [None if i % 7 == 0 else i / 8 for i in range(n)],
        }
    )
    key = b"k" * 32
    chunks = list(
        leaf_chunks(
            table, contract, "T", "lb", key, version=12, salt_scheme=scheme, chunk_rows=chunk_rows
        )
    )
    if chunk_rows is not None:
        assert len(chunks) == -(-n // chunk_rows)
    assert pa.concat_tables(c.records for c in chunks).equals(table)
    salts = pa.concat_arrays([c.salts for c in chunks]).to_pylist()
    leaf_hashes = b"".join(c.leaf_hashes for c in chunks)
    for row in (0, 1, 4095, 4096, 5000, n - 1):
        values = [table.column("USUBJID")[row].as_py(), table.column("LBSEQ")[row].as_py()]
        salt = record_salt(key, "T", "lb", values, version=12, scheme=scheme)
        assert salts[row] == salt
        data = leaf_input(salt, _per_row(table, contract, row))
        assert leaf_hashes[32 * row : 32 * row + 32] == leaf_hash(data)
    joined = MerkleTree.from_subtree_levels([c.levels for c in chunks])
    whole = MerkleTree.from_leaf_hashes(leaf_hashes)
    assert joined.size == n
    assert joined.root() == whole.root()
    for level in range(n.bit_length()):
        nodes = [(level, i) for i in range(n >> level)]
        assert joined.nodes(nodes) == whole.nodes(nodes)


def test_leaf_chunks_refuse_a_cut_that_is_not_a_power_of_two() -> None:
    contract = parse_contract({"name": "x", "fields": [{"name": "a", "type": "integer"}]})
    with pytest.raises(ValueError, match="power of two"):
        list(
            leaf_chunks(
                pa.table({"a": [1, 2, 3]}), contract, "T", "x", b"k" * 32, version=1, chunk_rows=3
            )
        )


def test_contract_without_key_salts_over_all_columns_and_orders_by_bytes() -> None:
    contract = parse_contract(
        {"name": "x", "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "integer"}]}
    )
    table = pa.table({"a": ["z", "a", "m"], "b": [1, 2, 3]})
    ordered = sort_into_leaf_order(table, contract)
    records = canonical_records(ordered, contract).to_pylist()
    assert records == sorted(records)
    assert salt_messages(table, contract, "T", "D", version=2)[0].as_py() == b'["T","D",2,"z",1]'


def test_leaf_order_is_by_typed_key_not_file_order() -> None:
    contract = parse_contract(
        {"name": "x", "fields": [{"name": "k", "type": "integer"}], "primaryKey": ["k"]}
    )
    ordered = sort_into_leaf_order(pa.table({"k": [10, 9, 100]}), contract)
    assert ordered.column("k").to_pylist() == [9, 10, 100]  # 9 < 10 < 100 as numbers


def test_out_of_range_values_are_refused() -> None:
    contract = parse_contract(
        {"name": "x", "fields": [{"name": "k", "type": "integer"}, {"name": "v", "type": "number"}]}
    )
    with pytest.raises(CanonicalizationError, match="2\\*\\*53"):
        canonical_records(pa.table({"k": [2**60], "v": [1.0]}), contract)
    with pytest.raises(CanonicalizationError, match="infinite"):
        canonical_records(pa.table({"k": [1], "v": [math.inf]}), contract)


@pytest.mark.parametrize("n", [5, 5000])
def test_salts_differ_per_version_and_only_by_the_version(n: int) -> None:
    """A record's v2-scheme salt in one version is not its salt in another (so a proof's
    salt opens no other version's leaf), on the plain and the vectorized path; the
    v1 scheme gives one salt for every version."""
    contract = parse_contract(
        {"name": "x", "fields": [{"name": "k", "type": "integer"}], "primaryKey": ["k"]}
    )
    table = pa.table({"k": list(range(n))})

    def salts(version: int, scheme: str = SALT_SCHEME_V2) -> list[bytes]:
        chunks = leaf_chunks(table, contract, "T", "x", b"k" * 32, version=version,
                             salt_scheme=scheme)
        return pa.concat_arrays([c.salts for c in chunks]).to_pylist()

    v1, v2 = salts(1), salts(2)
    assert not set(v1) & set(v2)
    assert salts(1, SALT_SCHEME_V1) == salts(2, SALT_SCHEME_V1)
    assert v2[n - 1] == record_salt(b"k" * 32, "T", "x", [n - 1], version=2)


def test_an_unknown_salt_scheme_is_refused() -> None:
    contract = parse_contract({"name": "x", "fields": [{"name": "a", "type": "integer"}]})
    with pytest.raises(CanonicalizationError, match="unknown salt scheme"):
        salt_messages(pa.table({"a": [1]}), contract, "T", "x", version=1, scheme="nope/v9")
    with pytest.raises(CanonicalizationError, match="unknown salt scheme"):
        record_salt(b"k" * 32, "T", "x", [1], version=1, scheme="nope/v9")


@pytest.mark.parametrize("n", [3, 3000])
def test_record_digests_are_sha256_of_the_canonical_bytes(n: int) -> None:
    contract = parse_contract(
        {"name": "x", "fields": [{"name": "a", "type": "string"}, {"name": "b", "type": "number"}]}
    )
    table = pa.table({"a": [f"v{i}" if i % 4 else None for i in range(n)],
                      "b": [i / 3 for i in range(n)]})
    digests = record_digests(table, contract)
    expected = b"".join(
        hashlib.sha256(_per_row(table, contract, row)).digest() for row in range(n)
    )
    assert digests == expected


def test_records_order_members_by_utf16_code_units_like_canonical_json() -> None:
    """A field name outside the BMP (a surrogate pair in UTF-16) sorts before U+E000-U+FFFF
    in the vectorized records too (RFC 8785 §3.2.3)."""
    names = ["\uffff", "\U0001f600", "\ue000", "a"]
    contract = parse_contract({"name": "t", "fields": [{"name": n, "type": "integer"}
                                                       for n in names], "primaryKey": ["a"]})
    table = pa.table({n: [i] for i, n in enumerate(names)})
    (record,) = canonical_records(table, contract).to_pylist()
    assert record == _per_row(table, contract, 0)
    assert record.decode() == '{"a":3,"\U0001f600":1,"\ue000":2,"\uffff":0}'
