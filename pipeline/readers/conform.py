"""The typing step shared by every format: the columns a reader found become an Arrow
table of exactly the contract's columns, in contract order, typed by the contract."""

from __future__ import annotations

__all__ = ["Delivery", "TypeIssue", "conform"]

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

from pipeline.contract import Contract, Field
from pipeline.errors import ReadError
from pipeline.quoting import quote_names
from pipeline.readers.convert import ARROW_TYPES, convert
from pipeline.readers.source import Source


class TypeIssue(NamedTuple):
    """A value that does not fit its column's contract type (it became null in the table)."""

    column: str
    row: int  # 0-based, in file order
    value: str  # the value as the file gave it


@dataclass(frozen=True)
class Delivery:
    """A delivery read and typed by its contract."""

    table: Any  # pyarrow.Table: exactly the contract's columns, in contract order
    missing_columns: tuple[str, ...]
    dropped_columns: tuple[str, ...]
    type_errors: list[TypeIssue]
    rows: int
    format: str



def conform(source: Source, contract: Contract, path: Path, fmt: str) -> Delivery:
    """Type ``source`` by ``contract``: a column the file lacks is all null, a value that
    does not fit its type is null and listed in ``type_errors``; ReadError for repeated
    column names, or columns the contract does not know unless it drops them."""
    unknown = _unknown_columns(source, contract, path)
    missing_values = frozenset(contract.missing_values)
    arrays: list[Any] = []
    issues: list[TypeIssue] = []
    missing: list[str] = []
    for f in contract.fields:
        if f.name not in source.columns:
            missing.append(f.name)
            arrays.append(pa.nulls(source.rows, ARROW_TYPES[f.type]))
            continue
        typed, column_issues = _type_column(source, f, missing_values)
        arrays.append(typed)
        issues.extend(column_issues)
    order = {name: i for i, name in enumerate(contract.field_names)}
    issues.sort(key=lambda issue: (issue.row, order[issue.column]))
    schema = pa.schema([pa.field(f.name, ARROW_TYPES[f.type]) for f in contract.fields])
    table = pa.Table.from_arrays(arrays, schema=schema)
    return Delivery(table, tuple(missing), tuple(unknown), issues, table.num_rows, fmt)


def _unknown_columns(source: Source, contract: Contract, path: Path) -> list[str]:
    duplicates = sorted({n for n in source.names if source.names.count(n) > 1})
    if duplicates:
        raise ReadError(f"{path}: duplicate column name(s) {quote_names(duplicates)}")
    known = set(contract.field_names)
    unknown = [n for n in source.names if n not in known]
    if unknown and contract.unknown_columns == "error":
        raise ReadError(f"{path}: column(s) not in contract {contract.name!r}: "
                        f"{quote_names(unknown)} (the contract's unknownColumns is \"error\")")
    return unknown


def _type_column(source: Source, f: Field,
                 missing_values: frozenset[str]) -> tuple[Any, list[TypeIssue]]:
    original = source.columns[f.name]
    sas_format = source.sas_formats.get(f.name, "") if source.sas_formats is not None else None
    typed, bad = convert(original, f, missing_values, sas_format)
    issues = [TypeIssue(f.name, row, _raw(original, row)) for row in bad]
    issues += [TypeIssue(f.name, row, raw) for row, raw in source.issues.get(f.name, ())]
    return typed, issues


def _raw(array: Any, row: int) -> str:
    value = array[row].as_py()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return repr(value)
    return str(value)
