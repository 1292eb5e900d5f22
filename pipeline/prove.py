"""Record proofs from the store (docs/formats.md §8): find a record, prove it at a checkpoint."""

from __future__ import annotations

__all__ = ["checkpoint_for", "find_record", "prove_record", "version_contract"]

import json
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from anchoring._internal.tree import MerkleTree
from anchoring.checkpoint import Checkpoint
from anchoring.note import parse_note
from anchoring.record_proof import RecordProof, build_record_proof
from pipeline.contract import Contract, parse_contract
from pipeline.errors import StoreError, UsageError
from pipeline.home import Home
from pipeline.records import record_values
from pipeline.store import SALT_COLUMN, VersionInfo


def version_contract(info: VersionInfo) -> Contract:
    """The contract a version was committed under (kept beside it)."""
    return parse_contract(
        json.loads((info.path / "contract.json").read_bytes()), str(info.path / "contract.json")
    )


def _typed_key(contract: Contract, column: str, text: str) -> Any:
    field = contract.field(column)
    try:
        if field.type == "integer":
            return int(text)
        if field.type == "number":
            return float(text)
    except ValueError:
        raise UsageError(f"key {column}={text!r}: not a {field.type}") from None
    return text


def find_record(table: pa.Table, contract: Contract, key: Mapping[str, str]) -> int:
    """The leaf index of the row whose key columns equal ``key`` (values given as text)."""
    unknown = [c for c in key if c not in contract.field_names]
    if unknown:
        raise UsageError(f"the key names unknown column(s) {unknown}")
    mask = None
    for column, text in key.items():
        value = _typed_key(contract, column, text)
        col = table.column(column)
        if contract.field(column).type in ("date", "datetime"):
            col = col.cast(pa.string())
        test = pc.equal(col, value)
        mask = test if mask is None else pc.and_(mask, test)
    rows = pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist() if mask is not None else []
    if not rows:
        raise StoreError(f"no record with {', '.join(f'{k}={v}' for k, v in key.items())}")
    if len(rows) > 1:
        raise UsageError(
            f"{len(rows)} records match; give every primary-key column "
            f"({', '.join(contract.primary_key)}) or a leaf index"
        )
    return int(rows[0])


def prove_record(
    home: Home,
    trial: str,
    dataset: str,
    *,
    version: int | None = None,
    key: Mapping[str, str] | None = None,
    index: int | None = None,
) -> RecordProof:
    """A record proof against the latest checkpoint, signing one if the log has grown past it."""
    store = home.store()
    info = store.version(trial, dataset, version)
    if not info.path.is_dir():
        raise StoreError(
            f"{trial}/{dataset} v{info.version} is in the log but its files are "
            f"missing from {info.path}; run `trialproof audit`"
        )
    contract = version_contract(info)
    records = pq.ParquetFile(info.path / "records.parquet")
    if key:
        known = [column for column in key if column in contract.field_names]
        index = find_record(records.read(columns=known), contract, key)
    rows = records.metadata.num_rows
    if index is None or not 0 <= index < rows:
        raise UsageError(f"--index must be between 0 and {rows - 1}")
    row = _read_row(records, index)
    salt = row.column(SALT_COLUMN)[0].as_py()
    tree = MerkleTree.open(info.path / "tree.bin")
    log = store.log
    checkpoint, anchors = checkpoint_for(home, info.log_index)
    return build_record_proof(
        record=record_values(row, contract, 0),
        salt=salt,
        leaf_index=index,
        dataset_tree=tree,
        dataset_size=tree.size,
        manifest=info.manifest,
        log=log,
        log_index=info.log_index,
        checkpoint=checkpoint,
        anchors=anchors,
    )


def _read_row(records: pq.ParquetFile, index: int) -> pa.Table:
    """Row ``index`` of a records file, reading only the row group that holds it."""
    first = 0
    for group in range(records.metadata.num_row_groups):
        count = records.metadata.row_group(group).num_rows
        if index < first + count:
            return records.read_row_group(group).slice(index - first, 1)
        first += count
    raise IndexError(index)


#: Where the anchorings are read from: the sizes anchored, and one anchoring's note and
#: receipts (the server passes its cached readers, :mod:`pipeline.server.catalog`).
AnchoredSizes = Callable[[Home], list[int]]
ReadAnchoring = Callable[[Home, int], tuple[str, dict[str, dict[str, Any]]]]


def checkpoint_for(home: Home, log_index: int, *, sizes: AnchoredSizes | None = None,
                   read: ReadAnchoring | None = None) -> tuple[str, tuple[dict[str, Any], ...]]:
    """The newest anchored checkpoint that covers the entry, with its receipts; else the
    latest checkpoint (signed now if the log has grown past it), without receipts."""
    from pipeline.anchor import anchored, receipts_for

    covering = [size for size in (sizes or anchored)(home) if size > log_index]
    if covering:
        note, receipts = (read or receipts_for)(home, covering[-1])
        return note, tuple(receipts.values())
    log = home.log()
    latest = log.latest_checkpoint()
    if latest is None or Checkpoint.from_body(parse_note(latest).text).size <= log_index:
        latest = log.sign_checkpoint(home.signer)
    return latest, ()
