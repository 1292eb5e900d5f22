"""CDISC Dataset-JSON 1.1 deliveries: one JSON document with "columns" and "rows", or its
NDJSON form, whose first line is the metadata and each further line a row array."""

from __future__ import annotations

__all__ = ["read_dataset_json"]

import json
import re
from pathlib import Path
from typing import Any

from pipeline.contract import Contract
from pipeline.errors import ReadError
from pipeline.quoting import quote_name
from pipeline.readers.source import Source, source_from_columns
from pipeline.readers.text import (
    decode_utf8,
    first_line_json,
    json_error,
    json_lines,
    loads_line,
    loads_strict,
)


def read_dataset_json(path: Path, contract: Contract) -> tuple[Source, str]:
    """The document's rows, or the NDJSON form's lines, as columns."""
    suffix = path.suffix.lower()
    if suffix != ".json":
        # The NDJSON variant: line 1 is the metadata, so it has no "rows" (a one-line
        # document named .json without "rows" is a broken document instead).
        first = first_line_json(path)
        if isinstance(first, dict) and "rows" not in first:
            return _read_dataset_ndjson(path)
        if suffix in (".ndjson", ".jsonl") and not isinstance(first, dict):
            raise ReadError(f"{path}: line 1 is not the Dataset-JSON metadata object")
    text = decode_utf8(path)
    try:
        doc = loads_strict(path, text)
    except json.JSONDecodeError as exc:
        raise json_error(path, exc) from None
    names = _dataset_json_columns(path, doc)
    rows = doc.get("rows")
    if rows is None:
        raise ReadError(f'{path}: Dataset-JSON has no "rows"')
    if not isinstance(rows, list):
        raise ReadError(f'{path}: Dataset-JSON "rows" must be a list of row arrays')
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise ReadError(f"{path}: Dataset-JSON row {i} is not an array")
        if len(row) != len(names):
            raise ReadError(f"{path}: Dataset-JSON row {i} has {len(row)} value(s); "
                            f"there are {len(names)} columns")
    return _source(path, doc, names, rows)


def _dataset_json_columns(path: Path, doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        raise ReadError(f"{path}: not Dataset-JSON (the top level is not a JSON object)")
    version = doc.get("datasetJSONVersion")
    if version is None:
        raise ReadError(f"{path}: not Dataset-JSON 1.1 (no datasetJSONVersion)")
    if not isinstance(version, str) or not re.match(r"^1\.1(\.|$)", version):
        shown = quote_name(version)
        shown = f"'{shown}'" if shown == version else shown  # a plain version, as it was
        raise ReadError(f"{path}: unsupported Dataset-JSON version {shown} "
                        f"(this reader reads 1.1.x)")
    columns = doc.get("columns")
    if columns is None:
        raise ReadError(f'{path}: Dataset-JSON has no "columns"')
    if not isinstance(columns, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and c["name"] for c in columns):
        raise ReadError(f'{path}: Dataset-JSON "columns" must be a list of objects with a "name"')
    return [c["name"] for c in columns]


def _check_records(path: Path, doc: dict[str, Any], rows: int) -> None:
    records = doc.get("records")
    if records is not None and records != rows:
        said = records if isinstance(records, int) else quote_name(records)
        raise ReadError(f"{path}: Dataset-JSON says records={said} but holds {rows} rows "
                        f"(truncated or edited?)")


def _source(path: Path, meta: dict[str, Any], names: list[str],
            rows: list[list[Any]]) -> tuple[Source, str]:
    _check_records(path, meta, len(rows))
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return source_from_columns(names, columns, len(rows)), "dataset-json"


def _read_dataset_ndjson(path: Path) -> tuple[Source, str]:
    lines = json_lines(path)
    first_number, first_line = lines[0]
    meta = loads_strict(path, first_line, first_number)  # strictly this time: no repeated keys
    names = _dataset_json_columns(path, meta)
    rows: list[list[Any]] = []
    for number, line in lines[1:]:
        row = loads_line(path, line, number)
        if not isinstance(row, list):
            raise ReadError(f"{path}: line {number} is not a row array")
        if len(row) != len(names):
            raise ReadError(f"{path}: line {number} has {len(row)} value(s); there are "
                            f"{len(names)} columns")
        rows.append(row)
    return _source(path, meta, names, rows)
