"""Canonical records, salts and leaf inputs for a whole table at once (docs/formats.md §2-§4).

The result is byte-for-byte what :func:`anchoring.canonical.canonical_json` gives for
each row's ``{column: canonical_value}``; the per-row functions remain the
definition, and a property test holds the two together. Each column is turned
into JSON text with Arrow compute kernels; only values whose vectorized form
may differ from RFC 8785 (strings needing escapes, doubles Arrow prints with an
exponent ES6 would not use) go through the per-row code.
"""

from __future__ import annotations

__all__ = [
    "MAX_CHUNK_ROWS",
    "LeafChunk",
    "canonical_records",
    "leaf_chunks",
    "leaf_order",
    "record_digests",
    "record_values",
    "salt_messages",
    "sort_into_leaf_order",
    "use_system_memory_pool",
]

import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from anchoring._internal.tree import node_levels
from anchoring.canonical import (
    MAX_SAFE_INTEGER,
    SALT_SCHEME,
    canonical_json,
    format_number,
    member_order,
    salt_message_head,
)
from anchoring.errors import CanonicalizationError
from pipeline.contract import Contract
from pipeline.hashing import RowPieces, VectorizedHasher, salted_leaf_hashes_many, sha256_many


def use_system_memory_pool() -> None:
    """Make the system allocator Arrow's default pool, for the whole process.

    Arrow's default allocator (mimalloc) hands large freed blocks back to the kernel, so
    the many short-lived string arrays built here pay page faults again and again; with
    the system allocator canonicalizing a million records takes about half the time.
    Ingest calls this where it starts; importing this module changes nothing.
    """
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())

_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_DICTIONARY_MIN_ROWS = 1_000


def _patch(
    text: pa.Array, mask: pa.Array, values: pa.Array, render: Callable[[Any], str]
) -> pa.Array:
    """Replace ``text[i]`` by ``render(values[i])`` where ``mask[i]`` is true."""
    rows = pc.indices_nonzero(mask).to_pylist()
    if not rows:
        return text
    patched = text.to_pylist()
    for i in rows:
        patched[i] = render(values[i].as_py())
    return pa.array(patched, pa.string())


def _quoted(before: str, column: pa.Array, after: str = '"') -> pa.Array:
    return pc.binary_join_element_wise(before + '"', column, after, "")


def _string_json(column: pa.Array, before: str) -> pa.Array:
    column = column.cast(pa.string())
    text = _quoted(before, column)
    needs = pc.fill_null(pc.match_substring_regex(column, _NEEDS_ESCAPE), False)
    return _patch(text, needs, column, lambda v: before + json.dumps(v, ensure_ascii=False))


def _integer_json(column: pa.Array, name: str) -> pa.Array:
    column = column.cast(pa.int64())
    if len(column) and column.null_count < len(column):
        biggest = pc.max(pc.abs(column)).as_py()
        if biggest is not None and biggest > MAX_SAFE_INTEGER:
            raise CanonicalizationError(
                f"column {name!r} holds an integer beyond ±(2**53-1), "
                "which JSON cannot carry exactly"
            )
    return column.cast(pa.string())


def _number_json(column: pa.Array, name: str) -> pa.Array:
    column = column.cast(pa.float64())
    if pc.any(pc.is_inf(column)).as_py():
        raise CanonicalizationError(f"column {name!r} holds an infinite number")
    column = pc.if_else(pc.is_nan(column), pa.scalar(None, pa.float64()), column)
    text = column.cast(pa.string())
    text = pc.if_else(pc.equal(text, "-0"), "0", text)
    # Arrow switches to exponent notation at 1e16; ES6 (RFC 8785 §3.2.2.3) only at 1e21.
    wrong_exponent = pc.and_(pc.match_substring(text, "e+"), pc.less(pc.abs(column), 1e21))
    return _patch(text, pc.fill_null(wrong_exponent, False), column, format_number)


def _datetime_json(column: pa.Array, before: str) -> pa.Array:
    # RFC 3339 in UTC as anchoring.canonical writes it: seconds, then .ffffff only if non-zero.
    stamps = column
    if pa.types.is_timestamp(stamps.type) and stamps.type.tz is not None:
        stamps = stamps.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
    stamps = stamps.cast(pa.timestamp("us"))
    seconds = pc.strftime(
        pc.floor_temporal(stamps, unit="second").cast(pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S"
    )
    micros = pc.add(pc.multiply(pc.millisecond(stamps), 1000), pc.microsecond(stamps))
    fraction = pc.if_else(
        pc.equal(micros, 0),
        "",
        pc.binary_join_element_wise(".", pc.utf8_lpad(micros.cast(pa.string()), 6, "0"), ""),
    )
    return pc.binary_join_element_wise(before + '"', seconds, fraction, 'Z"', "")


def _value_json(column: pa.Array, field_type: str, name: str, before: str = "") -> pa.Array:
    """JSON text of each value, after the literal ``before``; null values give ``before`` + null.

    Clinical columns repeat a few values (test codes, units, visits), so when a
    column has few distinct values the text is made once per value and gathered.
    """
    if len(column) >= _DICTIONARY_MIN_ROWS and not pa.types.is_dictionary(column.type):
        encoded = pc.dictionary_encode(column)
        if len(encoded.dictionary) * 4 <= len(column):
            text = _direct_json(encoded.dictionary, field_type, name, before)
            return pc.fill_null(pc.take(text, encoded.indices), before + "null")
    return _direct_json(column, field_type, name, before)


def _direct_json(column: pa.Array, field_type: str, name: str, before: str = "") -> pa.Array:
    """JSON text of each value, after the literal ``before``; null values give ``before`` + null."""
    if field_type == "string":
        text = _string_json(column, before)
    elif field_type == "date":
        text = _quoted(before, column.cast(pa.date32()).cast(pa.string()))
    elif field_type == "datetime":
        text = _datetime_json(column, before)
    else:
        if field_type == "integer":
            bare = _integer_json(column, name)
        elif field_type == "number":
            bare = _number_json(column, name)
        elif field_type == "boolean":
            bare = pc.if_else(column.cast(pa.bool_()), "true", "false")
        else:
            raise CanonicalizationError(f"unknown field type {field_type!r}")
        text = pc.binary_join_element_wise(before, bare, "") if before else bare
    return pc.fill_null(text, before + "null")


def _column(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def _record_pieces(table: pa.Table, contract: Contract) -> RowPieces:
    fields = sorted(contract.fields, key=lambda f: member_order(f.name))
    pieces: list[pa.Array | bytes] = []
    for i, field in enumerate(fields):
        before = ("{" if i == 0 else ",") + json.dumps(field.name, ensure_ascii=False) + ":"
        pieces.append(_value_json(_column(table, field.name), field.type, field.name, before))
    return RowPieces((*pieces, b"}"))


def canonical_records(table: pa.Table, contract: Contract) -> pa.Array:
    """RFC 8785 bytes of each row's record over the contract's columns, as a binary array."""
    return _record_pieces(table, contract).joined()


def record_digests(table: pa.Table, contract: Contract) -> bytes:
    """SHA-256 of each row's canonical record bytes, concatenated (32 bytes per row).

    Unsalted, so equal across versions exactly when the canonical bytes are: for
    comparing versions, never for publishing (a digest of a low-entropy record can
    be guessed; that is what salts are for).
    """
    return sha256_many(b"", _record_pieces(table, contract))


def _salt_message_pieces(
    table: pa.Table, contract: Contract, trial: str, dataset: str, version: int, scheme: str
) -> RowPieces:
    names = contract.primary_key or contract.field_names
    # The head's JSON text without its closing bracket: the key values follow it.
    head = canonical_json(salt_message_head(scheme, trial, dataset, version))[:-1]
    values = [_value_json(_column(table, n), contract.field(n).type, n, ",") for n in names]
    return RowPieces((head, *values, b"]"))


def salt_messages(
    table: pa.Table,
    contract: Contract,
    trial: str,
    dataset: str,
    *,
    version: int,
    scheme: str = SALT_SCHEME,
) -> pa.Array:
    """JCS([trial, dataset, version, key values...]) per row (docs/formats.md §3), or the
    message of another ``scheme`` (see :func:`anchoring.canonical.salt_message_head`).

    A contract without a primary key uses all its columns, in contract order.
    """
    return _salt_message_pieces(table, contract, trial, dataset, version, scheme).joined()


def leaf_order(table: pa.Table, contract: Contract) -> pa.Array:
    """The row indices of ``table`` in leaf order: ascending by primary key as typed
    values (docs/formats.md §4); without a key, ascending by canonical bytes."""
    if contract.primary_key:
        keys = [(k, "ascending") for k in contract.primary_key]
        return pc.sort_indices(table.select(contract.primary_key), sort_keys=keys)
    return pc.sort_indices(canonical_records(table, contract))


def sort_into_leaf_order(table: pa.Table, contract: Contract) -> pa.Table:
    """The rows of ``table`` in leaf order (see :func:`leaf_order`)."""
    return table.take(leaf_order(table, contract))


@dataclass(frozen=True)
class LeafChunk:
    """A run of consecutive leaves, in leaf order."""

    records: pa.Table  # the typed records
    salts: pa.Array  # fixed_size_binary(32): HMAC salts (docs/formats.md §3)
    #: ``anchoring._internal.tree.node_levels`` of the run: level 0 holds the RFC 9162 §2.1.1 leaf
    #: hashes of salt || canonical record, 32 bytes each.
    levels: list[bytes]

    @property
    def leaf_hashes(self) -> bytes:
        return self.levels[0]


def _fixed(raw: bytes, width: int) -> pa.Array:
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(raw) // width, [None, pa.py_buffer(raw)]
    )


def _leaf_chunk(
    records: pa.Table,
    contract: Contract,
    trial: str,
    dataset: str,
    trial_salt_key: bytes,
    version: int,
    salt_scheme: str,
) -> LeafChunk:
    # One thread per chunk: chunks already run side by side (see leaf_chunks).
    # The salt messages and canonical records go to the hash in pieces, never joined.
    salts, leaf_hashes = salted_leaf_hashes_many(
        trial_salt_key,
        _salt_message_pieces(records, contract, trial, dataset, version, salt_scheme),
        _record_pieces(records, contract),
        threads=1,
    )
    levels = node_levels(leaf_hashes, VectorizedHasher(threads=1))
    return LeafChunk(records, _fixed(salts, 32), levels)


#: Rows per chunk at most (a power of two): bounds the memory a chunk's JSON and hashes take.
MAX_CHUNK_ROWS = 131_072
_MIN_CHUNK_ROWS = 8_192


def leaf_chunks(
    table: pa.Table,
    contract: Contract,
    trial: str,
    dataset: str,
    trial_salt_key: bytes,
    *,
    version: int,
    salt_scheme: str = SALT_SCHEME,
    order: pa.Array | None = None,
    chunk_rows: int | None = None,
) -> Iterator[LeafChunk]:
    """Salts and leaf hashes of the rows of ``table`` taken in ``order`` (row indices in
    leaf order, see :func:`leaf_order`; default: the table is already in leaf order),
    chunk by chunk, in order, for dataset version ``version`` under ``salt_scheme``.

    Chunks are computed on a thread pool (Arrow and DataFusion release the GIL),
    a few ahead of the consumer, so that the consumer's own work (writing the
    records) overlaps the hashing and memory stays bounded by a few chunks.
    Each chunk also hashes its own subtree levels; every chunk but the last
    holds the same power-of-two number of rows, so that
    ``MerkleTree.from_subtree_levels`` can join them. How the rows are cut into
    chunks does not change any salt or hash. Precondition: ``chunk_rows``, if
    given, is a power of two.
    """
    workers = os.cpu_count() or 1
    rows = table.num_rows
    wanted = max(_MIN_CHUNK_ROWS, -(-rows // (workers * 4)))
    step = chunk_rows or min(MAX_CHUNK_ROWS, 1 << (wanted - 1).bit_length())
    if step & (step - 1):
        raise ValueError(f"chunk_rows must be a power of two, not {step}")
    table = table.combine_chunks()

    def work(lo: int) -> LeafChunk:
        # Each chunk gathers its own rows, so that the reordering runs on the pool too.
        rows = table.slice(lo, step) if order is None else table.take(order.slice(lo, step))
        return _leaf_chunk(rows, contract, trial, dataset, trial_salt_key, version, salt_scheme)

    pending: deque[Future[LeafChunk]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for lo in range(0, rows, step):
                pending.append(pool.submit(work, lo))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # the consumer stopped or a chunk failed: drop what was not started
            for future in pending:
                future.cancel()


def record_values(table: pa.Table, contract: Contract, row: int) -> dict[str, object]:
    """One row as the typed canonical record object (for proofs)."""
    from anchoring.canonical import canonical_value

    return {
        f.name: canonical_value(_column(table, f.name)[row].as_py(), f.type)
        for f in contract.fields
    }
