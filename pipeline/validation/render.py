"""The validation report for people: the HTML page (``templates/report.html``) and the
plain-text digest a task log shows."""

from __future__ import annotations

__all__ = [
    "REPORT_TEMPLATE",
    "failure_digest",
    "rejection_html",
]

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.validation.report import ValidationReport, json_safe

# --------------------------------------------------------------------------- text digest


def failure_digest(report_json: str, rows_per_check: int = 5) -> list[str]:
    """The report's failures as plain lines for a task log: each failed check with its
    first failing rows (key, 1-based row number, value); or, for a delivery that could not
    be read, the reader's problem."""
    data = json.loads(report_json)
    if "results" not in data:  # a rejection: the file could not be read
        return [f"could not be read: {data.get('error')}"]
    report = ValidationReport.from_json(report_json)
    lines = [report.summary()]
    for result in report.failures:
        columns = ", ".join(result["columns"]) or "table"
        count = result.get("unexpected_count")
        lines.append(f"  FAILED {result['check']} [{columns}]"
                     + (f": {count:,} row(s)" if count is not None else ""))
        for entry in result["failing_rows"][:rows_per_check]:
            key = ", ".join(f"{k}={_text(v)}" for k, v in entry["key"].items() if k != "row")
            where = f"row {_row_number(entry)}" + (f" ({key})" if key else "")
            lines.append(f"    {where}: {_short(entry['value'], 120)}")
    return lines


# --------------------------------------------------------------------------- HTML

#: The page template (Jinja2, autoescaped), in the ``pipeline`` package.
REPORT_TEMPLATE = "templates/report.html"
_ORIGINS = {"reader": "found by the reader", "suite": "contract's extra suite"}


def _text(value: Any) -> str:
    """A value as the page shows it: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(json_safe(value), ensure_ascii=False, sort_keys=True)


def _short(value: Any, limit: int = 240) -> str:
    text = _text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(**page: Any) -> str:
    """Fill the report template; Jinja2 (a dependency of GX) is imported on first use."""
    import jinja2

    source = (Path(__file__).parent.parent / REPORT_TEMPLATE).read_text(encoding="utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True)
    return environment.from_string(source).render(**page)


def _page_check(number: int, result: Mapping[str, Any]) -> dict[str, Any]:
    failing = result.get("failing_rows") or []
    key_columns: list[str] = []
    for entry in failing:
        if "row" not in entry["key"]:  # {"row": n} stands in for a missing primary key
            key_columns.extend(k for k in entry["key"] if k not in key_columns)
    return {
        "number": number,
        "check": result["check"],
        "origin": _ORIGINS.get(result.get("origin") or ""),
        "columns": ", ".join(result["columns"]) or "table",
        "expectation": result["expectation"],
        "kwargs": _short(result["kwargs"], 1000 if not result["success"] else 240),
        "count": result.get("unexpected_count"),
        "observed": None if result.get("observed_value") is None
        else _text(result["observed_value"]),
        "errors": list(result.get("errors") or []),
        "key_columns": key_columns,
        "failing": [{"key": [_text(entry["key"].get(k)) for k in key_columns],
                     "number": _row_number(entry), "value": _text(entry["value"])}
                    for entry in failing],
    }


def _row_number(entry: Mapping[str, Any]) -> Any:
    """The row as people count it: from 1, the first data row (``row`` is 0-based)."""
    return entry["row"] + 1 if isinstance(entry.get("row"), int) else ""


def _render_html(report: ValidationReport) -> str:
    checks = [_page_check(n, r) for n, r in enumerate(report.results, 1)]
    failed = [c for c, r in zip(checks, report.results, strict=True) if not r["success"]]
    passed = [c for c, r in zip(checks, report.results, strict=True) if r["success"]]
    verdict = "PASS" if report.success else "FAIL"
    return _render(verdict=verdict, badge=verdict.lower(), source=report.source_name,
                   sha256=None, contract=report.contract_name,
                   contract_sha256=report.contract_sha256, rows=report.rows, engine=report.engine,
                   problem=None, checks=checks, failed=failed, passed=passed)


def rejection_html(source_name: str, sha256: str, contract_name: str, problem: str) -> str:
    """The report page of a delivery that could not be read (truncated, empty, wrong
    format or header): the reader's one-line problem, never the file's content."""
    return _render(verdict="REJECTED", badge="rejected", source=source_name, sha256=sha256,
                   contract=contract_name, contract_sha256=None, rows=None, engine=None,
                   problem=problem, checks=[], failed=[], passed=[])
