"""What changed between two versions of a dataset, matched by primary key.

Records are matched by the contract's primary key. A matched record changed
exactly when its canonical bytes changed (compared by their SHA-256). Leaf
hashes cannot tell: a salt binds the version, so every leaf differs from one
version to the next (docs/formats.md §3). Only changed records are compared
column by column. Every entry carries its leaf index on each side, so both
sides can be proven with ``trialproof prove --index``.
"""

from __future__ import annotations

__all__ = ["DatasetDiff", "diff_versions"]

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract import Contract
from pipeline.errors import StoreError
from pipeline.prove import version_contract
from pipeline.records import record_digests
from pipeline.store import SALT_COLUMN, Store, VersionInfo
from pipeline.validation import json_safe

_ROW = "__row"
_DIGEST = "__digest"
_FROM = "__from:"
_TO = "__to:"


@dataclass(frozen=True)
class DatasetDiff:
    trial: str
    dataset: str
    from_version: int
    to_version: int
    key: tuple[str, ...]
    added: pl.DataFrame  # key columns + __row (index in the new version)
    removed: pl.DataFrame  # key columns + __row (index in the old version)
    changed: pl.DataFrame  # key columns + __row_old, __row_new, __columns (list of names),
    #                        and each compared column's values as __from:<name>, __to:<name>

    def summary(self) -> dict[str, int]:
        return {
            "added": self.added.height,
            "removed": self.removed.height,
            "changed": self.changed.height,
        }

    def entries(self, limit: int | None = None, values: int = 0) -> list[dict[str, Any]]:
        """Changes as JSON-ready dicts: removed, then changed, then added (each in key order).

        The first ``values`` changed records also carry ``values``: for each changed
        column, ``{"from": old value, "to": new value}``.
        """
        out: list[dict[str, Any]] = []
        with_values = 0

        def take(frame: pl.DataFrame, kind: str) -> None:
            nonlocal with_values
            for row in frame.iter_rows(named=True):
                if limit is not None and len(out) >= limit:
                    return
                entry: dict[str, Any] = {
                    "change": kind,
                    "key": {k: json_safe(row[k]) for k in self.key},
                }
                if kind == "changed":
                    entry["from_index"] = row[f"{_ROW}_old"]
                    entry["to_index"] = row[f"{_ROW}_new"]
                    entry["columns"] = row["__columns"]
                    if with_values < values:
                        entry["values"] = {
                            c: {"from": json_safe(row[_FROM + c]), "to": json_safe(row[_TO + c])}
                            for c in row["__columns"]
                        }
                        with_values += 1
                elif kind == "added":
                    entry["to_index"] = row[_ROW]
                else:
                    entry["from_index"] = row[_ROW]
                out.append(entry)

        take(self.removed, "removed")
        take(self.changed, "changed")
        take(self.added, "added")
        return out


def _frame(info: VersionInfo, contract: Contract) -> pl.DataFrame:
    """The version's records, with each one's canonical-bytes digest and leaf index."""
    table = pq.read_table(info.path / "records.parquet").drop_columns([SALT_COLUMN])
    digests = record_digests(table, contract)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(32), len(digests) // 32, [None, pa.py_buffer(digests)]
    )
    hashes = pl.Series(_DIGEST, fixed).cast(pl.Binary)
    return frame.with_columns(hashes, pl.int_range(0, frame.height, dtype=pl.Int64).alias(_ROW))


def diff_versions(
    store: Store, trial: str, dataset: str, from_version: int, to_version: int
) -> DatasetDiff:
    """Records added, removed and changed (with the changed columns) between two versions."""
    old_info = store.version(trial, dataset, from_version)
    new_info = store.version(trial, dataset, to_version)
    for info in (old_info, new_info):
        if not info.path.is_dir():
            raise StoreError(f"{trial}/{dataset} v{info.version}: files missing at {info.path}")
    old_contract, new_contract = version_contract(old_info), version_contract(new_info)
    key = old_contract.primary_key
    if key != new_contract.primary_key:
        raise StoreError(
            f"v{from_version} and v{to_version} have different primary keys "
            f"({list(key)} vs {list(new_contract.primary_key)}); cannot match records"
        )
    # The two sides canonicalize side by side (Arrow and DataFusion release the GIL).
    with ThreadPoolExecutor(max_workers=2) as pool:
        old_side = pool.submit(_frame, old_info, old_contract)
        new_side = pool.submit(_frame, new_info, new_contract)
        old, new = old_side.result(), new_side.result()
    match = list(key) if key else [_DIGEST]
    removed = old.join(new.select(match), on=match, how="anti", nulls_equal=True)
    added = new.join(old.select(match), on=match, how="anti", nulls_equal=True)
    both = old.join(new, on=match, how="inner", suffix="_new", nulls_equal=True)
    # Without a key, records match by their canonical bytes, so a match is never a change.
    changed = both.filter(pl.col(_DIGEST) != pl.col(f"{_DIGEST}_new")) if key else both.clear()
    columns = [
        c
        for c in dict.fromkeys([*old_contract.field_names, *new_contract.field_names])
        if c not in key
    ]
    differs, values = [], []
    for column in columns:
        left = pl.col(column) if column in old.columns else pl.lit(None)
        right_name = f"{column}_new" if column in old.columns else column
        right = pl.col(right_name) if right_name in changed.columns else pl.lit(None)
        differs.append(pl.when(left.ne_missing(right)).then(pl.lit(column)).otherwise(None))
        values += [left.alias(_FROM + column), right.alias(_TO + column)]
    changed = changed.select(
        *match,
        pl.col(_ROW).alias(f"{_ROW}_old"),
        pl.col(f"{_ROW}_new"),
        pl.concat_list(differs).list.drop_nulls().alias("__columns")
        if differs
        else pl.lit([], dtype=pl.List(pl.String)).alias("__columns"),
        *values,
    )
    return DatasetDiff(
        trial,
        dataset,
        old_info.version,
        new_info.version,
        tuple(key),
        added.select(*match, _ROW).sort(match),
        removed.select(*match, _ROW).sort(match),
        changed.sort(match),
    )
