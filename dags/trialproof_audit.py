"""The audit DAG: re-verify everything the home holds, and fail with the reasons.

Daily by default; the registry's ``audit: {schedule: ...}`` or
``$TRIALPROOF_AUDIT_SCHEDULE`` changes it, and ``audit: {notify: [...]}`` says whom
the failure notification names. The work is done by :func:`pipeline.audit.audit`.

A failed check (a finding: tampering or corruption) fails the task at once, without
retries: auditing the same bytes again finds the same thing. Anything else (the home
cannot be opened, a disk or database error, a worker lost) is infrastructure and is
retried twice, a minute apart, before the failure is notified.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

from pipeline.registry import PeriodicJob, RegistryFileError, failure_notifier, read_registry

logger = logging.getLogger(__name__)

try:
    _job = read_registry().audit
except RegistryFileError:  # reported by trialproof_registry_errors.py
    _job = PeriodicJob("@daily")


@dag(
    dag_id="audit",
    schedule=_job.airflow_schedule,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["trialproof", "audit"],
    description="recompute every root from storage and check the log, checkpoints and anchors",
    default_args={
        "owner": "trialproof",
        "retries": 2,  # infrastructure only: a finding raises AirflowFailException
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": failure_notifier(job="audit", notify=_job.notify),
    },
)
def audit() -> None:
    @task(task_id="audit")
    def audit_home() -> dict[str, Any]:
        from pipeline.audit import audit as run_audit
        from pipeline.home import Home, resolve_home

        report = run_audit(Home.open(resolve_home(None)))
        summary = report.to_json()
        if not report.ok:
            lines = "\n".join(f"  - {finding}" for finding in report.findings)
            raise AirflowFailException(
                f"audit found {len(report.findings)} problem(s):\n{lines}")
        logger.info("audit clean: %s versions, log size %s, %s checkpoints, %s receipts",
                 summary.get("versions_checked"), summary.get("log_size"),
                 summary.get("checkpoints_checked"), summary.get("receipts_checked"))
        return summary

    audit_home()


audit()
