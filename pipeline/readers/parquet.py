"""Parquet deliveries: columns typed by the file, then retyped by the contract."""

from __future__ import annotations

__all__ = ["read_parquet"]

from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from pipeline.contract import Contract
from pipeline.errors import ReadError
from pipeline.quoting import library_reason
from pipeline.readers.source import Source, source_from_table


def read_parquet(path: Path, contract: Contract) -> tuple[Source, str]:
    """The file's columns as Parquet types them."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReadError(f"{path}: corrupt or truncated Parquet file: "
                        f"{library_reason(exc)}") from None
    return source_from_table(table), "parquet"
