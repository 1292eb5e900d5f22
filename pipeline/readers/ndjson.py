"""NDJSON deliveries: one JSON object per line, its keys the column names."""

from __future__ import annotations

__all__ = ["read_ndjson"]

from pathlib import Path
from typing import Any

from pipeline.contract import Contract
from pipeline.errors import ReadError
from pipeline.readers.dataset_json import read_dataset_json
from pipeline.readers.source import Source, source_from_columns
from pipeline.readers.text import first_line_json, json_lines, loads_line


def read_ndjson(path: Path, contract: Contract) -> tuple[Source, str]:
    """The objects' keys, in order of first use, as columns; a Dataset-JSON NDJSON file
    (its first line the metadata) as Dataset-JSON."""
    first = first_line_json(path)
    if isinstance(first, dict) and "datasetJSONVersion" in first:
        return read_dataset_json(path, contract)
    records: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for number, line in json_lines(path):
        obj = loads_line(path, line, number)
        if not isinstance(obj, dict):
            raise ReadError(f"{path}: line {number} is not a JSON object")
        names.update(dict.fromkeys(obj))
        records.append(obj)
    columns = [[r.get(n) for r in records] for n in names]
    return source_from_columns(list(names), columns, len(records)), "ndjson"

