"""Columns as a delivery file holds them, before the contract types them."""

from __future__ import annotations

__all__ = ["Source", "source_from_columns", "source_from_table"]

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]


@dataclass
class Source:
    """Columns as the file holds them, before the contract types them."""

    names: list[str]
    columns: dict[str, Any]  # name -> pa.Array
    rows: int
    # Values a reader already knows are unusable (nested JSON), per column: (row, raw text).
    issues: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # XPORT only: SAS format per column; numeric dates then count from 1960-01-01.
    sas_formats: dict[str, str] | None = None


def source_from_table(table: Any) -> Source:
    """The columns of an Arrow table (CSV, Parquet)."""
    # duplicate names collapse here; conform reports them from ``names``
    columns = {name: table.column(i) for i, name in enumerate(table.column_names)}
    return Source(list(table.column_names), columns, table.num_rows)


def _scalar_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)  # NaN is missing
    return str(value)


def _array_from_values(values: Sequence[Any]) -> tuple[Any, list[tuple[int, str]]]:
    """One JSON column as an Arrow array. Mixed value types (numbers and strings in one
    column) become text, which the contract then types like any other text."""
    issues = [(i, json.dumps(v)) for i, v in enumerate(values) if isinstance(v, dict | list)]
    if issues:
        values = [None if isinstance(v, dict | list) else v for v in values]
    try:
        return pa.array(values, from_pandas=True), issues
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([_scalar_text(v) for v in values], pa.string()), issues


def source_from_columns(names: list[str], columns: Sequence[Sequence[Any]], rows: int) -> Source:
    """Columns given as JSON values (Dataset-JSON, NDJSON)."""
    arrays: dict[str, Any] = {}
    issues: dict[str, list[tuple[int, str]]] = {}
    for name, values in zip(names, columns, strict=True):
        arrays[name], bad = _array_from_values(values)
        if bad:
            issues[name] = bad
    return Source(names, arrays, rows, issues)

