"""Validate a delivery against its contract with Great Expectations (docs/architecture.md).

- :mod:`pipeline.validation.suite`: the GX suite of a contract (:func:`compile_suite`).
- :mod:`pipeline.validation.run`: running it on an Arrow table (:func:`validate`).
- :mod:`pipeline.validation.report`: what it found (:class:`ValidationReport`, ``report.json``).
- :mod:`pipeline.validation.render`: the report for people (the HTML page, the task-log digest).

Every name is importable from here. Great Expectations is imported on first use, never at
module import, so that the CLI and Airflow DAG parsing stay fast.
"""

from __future__ import annotations

__all__ = [
    "FAILING_ROWS_CAP",
    "REPORT_TEMPLATE",
    "REPORT_TYPE",
    "TypeIssueLike",
    "ValidationReport",
    "compile_suite",
    "failure_digest",
    "import_great_expectations",
    "json_safe",
    "rejection_html",
    "validate",
]

from pipeline.validation.render import REPORT_TEMPLATE, failure_digest, rejection_html
from pipeline.validation.report import FAILING_ROWS_CAP, REPORT_TYPE, ValidationReport, json_safe
from pipeline.validation.run import TypeIssueLike, validate
from pipeline.validation.suite import compile_suite, import_great_expectations
