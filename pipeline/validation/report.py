"""The validation report (docs/architecture.md): what validation found, and its JSON
form (``report.json``).

The report identifies failing rows by primary key (or by 0-based row index when the
contract has none), at most :data:`FAILING_ROWS_CAP` per check; people see them numbered
from 1. Its JSON form is deterministic: the same table, contract and reader findings give
the same bytes.
"""

from __future__ import annotations

__all__ = [
    "FAILING_ROWS_CAP",
    "REPORT_TYPE",
    "ValidationReport",
    "json_safe",
]

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: At most this many failing rows are listed per check.
FAILING_ROWS_CAP = 20
#: The ``type`` of a report's JSON form.
REPORT_TYPE = "trialproof/validation-report/v1"


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class ValidationReport:
    """What validation found. ``results`` holds one JSON-safe dict per check, in a fixed order:
    per contract field, its checks (exists, type, reader type issues, required, enum, pattern,
    range, length), then primary-key uniqueness (and, only when it fails, uniqueness after
    Unicode NFC normalization), then the extra suite's expectations.

    Each result: ``expectation`` (GX type), ``check`` (plain words), ``origin`` ("contract",
    "suite" or "reader"), ``columns``, ``kwargs``, ``success``, ``unexpected_count``,
    ``unexpected_percent``, ``observed_value``, ``errors`` (GX exception messages) and
    ``failing_rows``: up to 20 of ``{"key": {pk column: value} or {"row": n}, "row": n,
    "value": offending value}`` (``row`` is 0-based; the HTML page and the task-log digest
    number rows from 1, the first data row of the delivery).
    """

    success: bool
    source_name: str
    contract_name: str
    contract_sha256: str
    rows: int
    results: list[dict[str, Any]]
    engine: str = ""

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["success"]]

    def summary(self) -> str:
        """One line: PASS/FAIL and the failed checks."""
        if self.success:
            return f"PASS: {len(self.results)} checks on {self.rows} rows of {self.source_name}"
        failed = [f"{r['check']} [{', '.join(r['columns']) or 'table'}]" for r in self.failures]
        return (f"FAIL: {len(failed)} of {len(self.results)} checks failed on {self.rows} rows "
                f"of {self.source_name}: {'; '.join(failed)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": REPORT_TYPE,
            "success": self.success,
            "source": {"name": self.source_name},
            "contract": {"name": self.contract_name, "sha256": self.contract_sha256},
            "rows": self.rows,
            "engine": self.engine,
            "statistics": {
                "checks": len(self.results),
                "passed": sum(1 for r in self.results if r["success"]),
                "failed": len(self.failures),
            },
            "results": self.results,
        }

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys, no timestamps or run ids): hash it as it is."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ValidationReport:
        data = json.loads(text)
        return cls(
            success=bool(data["success"]),
            source_name=data["source"]["name"],
            contract_name=data["contract"]["name"],
            contract_sha256=data["contract"]["sha256"],
            rows=int(data["rows"]),
            results=list(data["results"]),
            engine=str(data.get("engine", "")),
        )

    def to_html(self) -> str:
        """A self-contained page for a data manager (``templates/report.html``): the summary
        and the failed checks with their rows first, the passing checks folded after."""
        from pipeline.validation.render import _render_html

        return _render_html(self)



def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: ISO 8601 dates, no NaN, numpy scalars unwrapped."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((json_safe(v) for v in value), key=repr)
    return _json_scalar(value)


def _json_scalar(value: Any) -> Any:
    """A value that holds no others, as :func:`json_safe` gives it."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else str(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)
