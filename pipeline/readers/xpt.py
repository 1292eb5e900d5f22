"""SAS XPORT (.xpt) deliveries, read with pyreadstat: one dataset per file, numbers as
doubles, and each column's SAS format, which says whether a number is a date or a
datetime (pipeline.sas_formats)."""

from __future__ import annotations

__all__ = ["XPT_LIBRARY_HEADERS", "read_xpt"]

import mmap
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

from pipeline.contract import Contract
from pipeline.errors import ReadError
from pipeline.quoting import library_reason
from pipeline.readers.source import Source

# The 80-byte header records of XPORT version 5 and version 8 libraries.
XPT_LIBRARY_HEADERS = (b"HEADER RECORD*******LIBRARY HEADER RECORD",
                       b"HEADER RECORD*******LIBV8   HEADER RECORD")
_MEMBER_HEADERS = (b"HEADER RECORD*******MEMBER  HEADER RECORD",
                   b"HEADER RECORD*******MEMBV8  HEADER RECORD")
_OBS_HEADERS = (b"HEADER RECORD*******OBS     HEADER RECORD",
                b"HEADER RECORD*******OBSV8   HEADER RECORD")


def read_xpt(path: Path, contract: Contract) -> tuple[Source, str]:
    """The one dataset of the file: text as strings, numbers as doubles (NaN: missing)."""
    import pyreadstat

    _check_xpt_members(path)
    try:
        try:
            data, meta = pyreadstat.read_xport(str(path), output_format="dict",
                                               disable_datetime_conversion=True)
        except UnicodeDecodeError:
            # XPORT records no encoding. Text that is not UTF-8 is read as Windows-1252,
            # the SAS WLATIN1 default (the pilot's ts.xpt has a 0x92 apostrophe).
            data, meta = pyreadstat.read_xport(str(path), output_format="dict",
                                               disable_datetime_conversion=True,
                                               encoding="WINDOWS-1252")
    except Exception as exc:  # pyreadstat's errors carry no file name
        raise ReadError(f"{path}: corrupt or not a SAS XPORT file: "
                        f"{library_reason(exc)}") from None
    names = list(meta.column_names)
    rows = int(meta.number_rows or 0) if names else 0
    widths = meta.variable_storage_width or {}
    _check_xpt_structure(path, rows, sum(int(widths.get(n, 0)) for n in names))
    kinds = meta.readstat_variable_types or {}
    columns: dict[str, Any] = {}
    for name in names:
        values = data[name]
        if kinds.get(name) == "string":
            columns[name] = pa.array(values, pa.string(), from_pandas=True)
        else:
            columns[name] = pa.array(values, pa.float64(), from_pandas=True)  # NaN: SAS missing
        rows = len(columns[name])
    formats = {n: str(f or "") for n, f in (meta.original_variable_types or {}).items()}
    return Source(names, columns, rows, sas_formats=formats), "xpt"


def _check_xpt_structure(path: Path, rows: int, row_length: int) -> None:
    """XPORT has no row count, and pyreadstat silently returns the rows before a cut: so a
    truncated file is found from its layout (80-byte records; blank padding after the last
    row)."""
    size = path.stat().st_size
    if size % 80:
        raise ReadError(f"{path}: truncated SAS XPORT file ({size} bytes is not a whole number "
                        f"of 80-byte records)")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        obs = max(mm.find(marker) for marker in _OBS_HEADERS)
        if obs < 0:
            raise ReadError(f"{path}: corrupt SAS XPORT file (no OBS header record)")
        if row_length <= 0:
            return
        tail = mm[obs + 80 + rows * row_length:]
        if len(tail) >= 80 or tail.strip(b" "):
            raise ReadError(f"{path}: truncated SAS XPORT file (it ends inside row {rows + 1}; "
                            f"{rows} complete rows)")


def _check_xpt_members(path: Path) -> None:
    """pyreadstat reads the first dataset of a library only: refuse to hide the others."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        members = sum(_count(mm, marker) for marker in _MEMBER_HEADERS)
    if members > 1:
        raise ReadError(f"{path}: holds {members} datasets; a delivery must hold exactly one")


def _count(mm: mmap.mmap, marker: bytes) -> int:
    count, at = 0, mm.find(marker)
    while at >= 0:
        count += 1
        at = mm.find(marker, at + 1)
    return count

