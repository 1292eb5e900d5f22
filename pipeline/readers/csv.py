"""CSV deliveries: a header row, then one row per record, in UTF-8."""

from __future__ import annotations

__all__ = ["read_csv"]

from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.csv as pcsv  # type: ignore[import-untyped, unused-ignore]

from pipeline.contract import Contract
from pipeline.errors import ReadError
from pipeline.quoting import library_reason
from pipeline.readers.source import Source, source_from_table
from pipeline.readers.text import head, utf8_error


def read_csv(path: Path, contract: Contract) -> tuple[Source, str]:
    """The file's columns; those the contract names are read as text."""
    error = utf8_error(path, head(path, 1 << 16).rsplit(b"\n", 1)[0])
    if error is not None:
        raise error
    convert = pcsv.ConvertOptions(
        # Every contract column is read as text so that the contract, not inference, types it
        # (inference would turn "0012" into 12).
        column_types={f.name: pa.string() for f in contract.fields},
        strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[],
    )
    try:
        table = pcsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "UTF8" in message or "UTF-8" in message:
            raise utf8_error(path) or ReadError(f"{path}: {library_reason(exc)}") from None
        if "Expected" in message and "columns" in message:
            raise _ragged_csv(path, convert) from None
        if "Empty CSV file" in message:
            raise ReadError(f"{path}: no header row") from None
        raise ReadError(f"{path}: not a valid CSV file: {library_reason(exc)}") from None
    return source_from_table(table), "csv"


def _ragged_csv(path: Path, convert: Any) -> ReadError:
    """Find the row with the wrong number of fields (only single-threaded reads number rows)."""
    found: list[Any] = []

    def handler(row: Any) -> str:
        found.append(row)
        return "error"

    try:
        pcsv.read_csv(path, read_options=pcsv.ReadOptions(use_threads=False),
                      parse_options=pcsv.ParseOptions(invalid_row_handler=handler),
                      convert_options=convert)
    except pa.ArrowInvalid as exc:
        if found:
            row = found[0]
            where = f"line {row.number}" if row.number is not None else "a row"
            return ReadError(f"{path}: {where} has {row.actual_columns} field(s); the header has "
                             f"{row.expected_columns}")
        return ReadError(f"{path}: not a valid CSV file: {library_reason(exc)}")
    return ReadError(f"{path}: rows have different numbers of fields")

