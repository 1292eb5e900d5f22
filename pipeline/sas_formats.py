"""SAS display formats that make a numeric variable a date or a datetime.

SAS stores dates as days and datetimes as seconds from 1960-01-01; only the variable's
display format (its XPORT format, its define.xml DisplayFormat) says which a number is,
and so whether it becomes a date or a datetime (docs/formats.md §2). Contracts generated
from define.xml and the XPORT reader both decide from this one list.
"""

from __future__ import annotations

__all__ = ["SAS_DATETIME_FORMATS", "SAS_DATE_FORMATS", "sas_temporal_kind"]

from typing import Literal

# Format names, matched as a prefix of the format ("DATE9.", "E8601DT19.", "yymmdd10").
# Datetimes are tried first: "DATETIME" and "DATEAMPM" also start with "DATE".
SAS_DATETIME_FORMATS = (
    "DATETIME", "DATEAMPM", "DTDATE", "E8601DT", "B8601DT", "IS8601DT", "E8601DZ", "MDYAMPM",
)
SAS_DATE_FORMATS = (
    "DATE", "YYMMDD", "MMDDYY", "DDMMYY", "E8601DA", "B8601DA", "IS8601DA", "YYMON", "MONYY",
    "WORDDATE", "WEEKDATE", "NLDATE", "JULIAN", "YYQ", "MMYY", "YYMM",
)


def sas_temporal_kind(sas_format: str | None) -> Literal["date", "datetime"] | None:
    """``"datetime"`` for a format of seconds, ``"date"`` for one of days, else None."""
    name = (sas_format or "").strip().upper()
    if name.startswith(SAS_DATETIME_FORMATS):
        return "datetime"
    if name.startswith(SAS_DATE_FORMATS):
        return "date"
    return None
