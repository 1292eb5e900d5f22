"""Record proofs served fast: a version's files never change once committed, so each
worker keeps what it needs to prove records of recently used versions (the contract, the
tree, the Parquet row-group layout, the key columns, decoded row groups).

The proof itself is :func:`anchoring.record_proof.build_record_proof` over the same inputs as
:func:`pipeline.prove.prove_record`: the record's typed values, its salt, the dataset
tree, the manifest and the log, against the newest anchored checkpoint covering it.
"""

from __future__ import annotations

__all__ = [
    "VersionRows",
    "is_warm",
    "prove_from_cache",
]

import bisect
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

from anchoring._internal.tree import MerkleTree
from anchoring.record_proof import RecordProof, build_record_proof
from pipeline.contract import Contract
from pipeline.home import Home
from pipeline.store import SALT_COLUMN, VersionInfo

#: Decoded row groups kept per version (a row group holds up to 131,072 rows).
ROW_GROUPS_KEPT = 8


class VersionRows:
    """Random access to one committed version's records, salts and tree."""

    def __init__(self, info: VersionInfo) -> None:
        import pyarrow.parquet as pq

        from pipeline.prove import version_contract

        self.contract: Contract = version_contract(info)
        self.file = pq.ParquetFile(info.path / "records.parquet")
        self.tree = MerkleTree.open(info.path / "tree.bin")
        starts, at = [], 0
        for i in range(self.file.metadata.num_row_groups):
            starts.append(at)
            at += self.file.metadata.row_group(i).num_rows
        self.starts = starts
        self.rows = at
        self._groups: OrderedDict[int, Any] = OrderedDict()
        self._columns: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _group(self, number: int) -> Any:
        with self._lock:
            table = self._groups.get(number)
            if table is None:
                table = self.file.read_row_group(number)
                self._groups[number] = table
                if len(self._groups) > ROW_GROUPS_KEPT:
                    self._groups.popitem(last=False)
            else:
                self._groups.move_to_end(number)
            return table

    def _group_number(self, index: int) -> int:
        return bisect.bisect_right(self.starts, index) - 1

    def holds(self, index: int) -> bool:
        """Whether the row group of ``index`` is decoded already."""
        with self._lock:
            return self._group_number(index) in self._groups

    def record(self, index: int) -> tuple[dict[str, object], bytes]:
        from pipeline.records import record_values

        number = self._group_number(index)
        table = self._group(number)
        # One row's slice: record_values combines each column it reads, so keep that small.
        row = table.slice(index - self.starts[number], 1)
        return record_values(row, self.contract, 0), row.column(SALT_COLUMN)[0].as_py()

    def index_for(self, key: Mapping[str, str]) -> int:
        """The leaf index of the record with ``key``: the primary key's columns, and any
        other contract column the key names, are read once and kept."""
        import pyarrow as pa

        from pipeline.prove import find_record

        wanted = [c for c in key if c in self.contract.field_names]
        with self._lock:
            missing = [c for c in wanted if c not in self._columns]
            if missing:
                table = self.file.read(columns=missing)
                self._columns.update({c: table.column(c) for c in missing})
            columns = {c: self._columns[c] for c in wanted}
        return find_record(pa.table(columns), self.contract, key)


#: Versions kept per worker.
VERSIONS_KEPT = 16
_cache: OrderedDict[tuple[str, str], VersionRows] = OrderedDict()
_cache_lock = threading.Lock()


def _rows(info: VersionInfo) -> VersionRows:
    # Keyed by the root too: a version directory that was replaced is never served stale.
    key = (str(info.path), str(info.manifest["root"]))
    with _cache_lock:
        rows = _cache.get(key)
        if rows is not None:
            _cache.move_to_end(key)
            return rows
    rows = VersionRows(info)
    with _cache_lock:
        _cache[key] = rows
        if len(_cache) > VERSIONS_KEPT:
            _cache.popitem(last=False)
    return rows


class _LogProofs:
    """The log's inclusion proofs, remembered: a proof for (index, size) never changes, and
    every record of a version shares its manifest's proof."""

    KEPT = 4096
    _proofs: ClassVar[OrderedDict[tuple[str, int, int | None], list[bytes]]] = OrderedDict()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, home: Home) -> None:
        self.home = home

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        key = (self.home.log_url, index, size)
        with self._lock:
            found = self._proofs.get(key)
        if found is None:
            found = self.home.log().inclusion_proof(index, size)
            with self._lock:
                self._proofs[key] = found
                if len(self._proofs) > self.KEPT:
                    self._proofs.popitem(last=False)
        return list(found)


def is_warm(info: VersionInfo, index: int | None) -> bool:
    """Whether a proof of the record at ``index`` needs no file reads beyond a few stats:
    its version and row group are already held (so it can be built on the event loop)."""
    if index is None:
        return False
    with _cache_lock:
        rows = _cache.get((str(info.path), str(info.manifest["root"])))
    return rows is not None and rows.holds(index)


def prove_from_cache(home: Home, info: VersionInfo, *, index: int | None = None,
                     key: Mapping[str, str] | None = None) -> RecordProof:
    """A record proof (docs/formats.md §8) by leaf index or primary key."""
    from pipeline.prove import checkpoint_for
    from pipeline.server.catalog import anchored_sizes, anchoring

    rows = _rows(info)
    if key is not None:
        index = rows.index_for(key)
    assert index is not None
    record, salt = rows.record(index)
    checkpoint, anchors = checkpoint_for(home, info.log_index, sizes=anchored_sizes,
                                         read=anchoring)
    return build_record_proof(
        record=record, salt=salt, leaf_index=index, dataset_tree=rows.tree,
        dataset_size=rows.tree.size, manifest=info.manifest, log=_LogProofs(home),
        log_index=info.log_index, checkpoint=checkpoint, anchors=anchors,
    )
