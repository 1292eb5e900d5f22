"""Which format a delivery is in (a name given, else the file's extension, else its first
bytes), and the reader for it."""

from __future__ import annotations

__all__ = ["FORMATS", "read_delivery"]

from collections.abc import Callable
from pathlib import Path

from pipeline.contract import Contract
from pipeline.errors import ReadError
from pipeline.quoting import library_reason
from pipeline.readers.conform import Delivery, conform
from pipeline.readers.csv import read_csv
from pipeline.readers.dataset_json import read_dataset_json
from pipeline.readers.ndjson import read_ndjson
from pipeline.readers.parquet import read_parquet
from pipeline.readers.source import Source
from pipeline.readers.text import first_line_json, head
from pipeline.readers.xpt import XPT_LIBRARY_HEADERS, read_xpt

FORMATS = ("csv", "parquet", "xpt", "dataset-json", "ndjson")

_ALIASES = {
    "pq": "parquet", "xport": "xpt", "sas": "xpt", "json": "dataset-json",
    "datasetjson": "dataset-json", "dataset_json": "dataset-json", "jsonl": "ndjson",
}
_EXTENSIONS = {
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xpt": "xpt",
    ".json": "dataset-json", ".ndjson": "ndjson", ".jsonl": "ndjson",
}
_READERS: dict[str, Callable[[Path, Contract], tuple[Source, str]]] = {
    "csv": read_csv,
    "parquet": read_parquet,
    "xpt": read_xpt,
    "dataset-json": read_dataset_json,
    "ndjson": read_ndjson,
}


def read_delivery(
    path: Path | str, contract: Contract, fmt: str | None = None, name: str | None = None
) -> Delivery:
    """Read ``path`` (format from ``fmt``, else its extension, else its content) under
    ``contract``. Raises :class:`ReadError` for a file that cannot be read.

    ``name`` is the delivery's own file name when ``path`` is a copy of it (the staged
    bytes in ``raw/``): its extension chooses the format, and errors name it.
    """
    path = Path(path)
    if name is None:
        return _read(path, contract, fmt, path)
    try:
        return _read(path, contract, fmt, Path(name))
    except ReadError as exc:
        raise ReadError(str(exc).replace(str(path), name)) from None


def _read(path: Path, contract: Contract, fmt: str | None, named: Path) -> Delivery:
    _check_readable(path)
    kind = _format(path, fmt, named)
    try:
        _check_magic(path, kind)
        source, actual = _READERS[kind](path, contract)
        return conform(source, contract, path, actual)
    except (ReadError, MemoryError):
        raise
    except Exception as exc:  # a library's own error: name the file, never a bare traceback
        # from None: the library's own message may quote the file, and tracebacks are logged
        raise ReadError(f"{path}: cannot be read as {kind}: {library_reason(exc)}") from None


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise ReadError(f"{path}: no such file")
    if not path.is_file():
        raise ReadError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReadError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise ReadError(f"{path}: the file is empty (0 bytes)")


def _format(path: Path, fmt: str | None, named: Path) -> str:
    """``fmt`` (a format or an alias), else the extension of ``named``, else the content."""
    if fmt is not None:
        kind = _ALIASES.get(fmt.lower(), fmt.lower())
        if kind not in FORMATS:
            raise ReadError(f"{path}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return kind
    return _EXTENSIONS.get(named.suffix.lower()) or _sniff(path)


def _binary_kind(start: bytes) -> str | None:
    """Name a binary container from its first bytes, or None for text."""
    if start.startswith(b"PAR1"):
        return "Parquet"
    if start.startswith(XPT_LIBRARY_HEADERS):
        return "SAS XPORT"
    if start.startswith(b"PK\x03\x04"):
        return "ZIP (or XLSX)"
    if start.startswith(b"\x1f\x8b"):
        return "gzip"
    if start.startswith(b"\xd0\xcf\x11\xe0"):
        return "OLE2 (XLS)"
    if start.startswith(b"SQLite format 3\x00"):
        return "SQLite"
    if start.startswith(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"):
        return "binary"
    return None


def _sniff(path: Path) -> str:
    """The format of a file without a telling extension (a staged ``raw/<sha256>``)."""
    start = head(path)
    kind = _binary_kind(start)
    if kind == "Parquet":
        return "parquet"
    if kind == "SAS XPORT":
        return "xpt"
    if start.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        # An object per line is NDJSON, unless the object is Dataset-JSON's metadata
        # line; a document over several lines is Dataset-JSON.
        first = first_line_json(path)
        if isinstance(first, dict) and "datasetJSONVersion" not in first:
            return "ndjson"
        return "dataset-json"
    return "csv"


def _check_magic(path: Path, kind: str) -> None:
    """Refuse a file whose first bytes say it is another format than ``kind``."""
    start = head(path, 80)
    found = _binary_kind(start)
    if kind == "parquet":
        if not start.startswith(b"PAR1"):
            raise ReadError(f"{path}: not a Parquet file (no PAR1 magic bytes at the start"
                            f"{'; it is a ' + found + ' file' if found else ''})")
        with open(path, "rb") as f:
            f.seek(-4, 2)
            if f.read(4) != b"PAR1":
                raise ReadError(f"{path}: truncated Parquet file (no PAR1 footer at the end)")
    elif kind == "xpt":
        if not start.startswith(XPT_LIBRARY_HEADERS):
            what = f"it is a {found} file" if found else "it looks like text"
            raise ReadError(f"{path}: not a SAS XPORT file (no XPORT library header; {what})")
    elif found is not None:
        raise ReadError(f"{path}: is a {found} file, not {kind}")

