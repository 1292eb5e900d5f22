"""ISO 8601 text as SDTM and ADaM store it in --DTC, --TM and --DUR variables: the
patterns a contract built from define.xml checks, and how a report names them.

One home for these rules: :mod:`pipeline.define_xml` puts the patterns into contracts,
:mod:`pipeline.validation` names them in reports.
"""

from __future__ import annotations

__all__ = [
    "ISO8601_DATETIME_PATTERN",
    "ISO8601_DURATION_PATTERN",
    "ISO8601_TIME_PATTERN",
    "pattern_label",
]

# ISO 8601 dates and datetimes as SDTM stores them in --DTC text: complete or cut short
# after any component ("2014", "2014-01", "2014-01-02T11:45"), with an optional zone.
# Each component must exist: months 01-12, days within their month (February up to 29,
# whatever the year), hours 00-23, minutes 00-59, seconds 00-60 (a leap second).
_MONTH_DAY = (r"((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)"
              r"|02-(0[1-9]|1\d|2\d))")
_CLOCK = r"([01]\d|2[0-3])(:[0-5]\d(:([0-5]\d|60)(\.\d+)?)?)?"
_ZONE = r"(Z|[+-]([01]\d|2[0-3])(:[0-5]\d)?)?"
ISO8601_DATETIME_PATTERN = (rf"^\d{{4}}(-(0[1-9]|1[0-2])|-{_MONTH_DAY}(T{_CLOCK}{_ZONE})?)?$")
ISO8601_TIME_PATTERN = rf"^{_CLOCK}$"
ISO8601_DURATION_PATTERN = r"^-?P(\d+(\.\d+)?[YMWD])*(T(\d+(\.\d+)?[HMS])+)?$"

_LABELS = {
    ISO8601_DATETIME_PATTERN: "ISO 8601 date or datetime, on the calendar",
    ISO8601_TIME_PATTERN: "ISO 8601 time of day",
    ISO8601_DURATION_PATTERN: "ISO 8601 duration",
}


def pattern_label(pattern: str) -> str:
    """How a report names ``pattern``: its name when it is one of these, else itself."""
    return _LABELS.get(pattern, pattern)
