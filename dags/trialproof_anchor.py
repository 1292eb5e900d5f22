"""The anchor DAG: sign a checkpoint of the log and anchor it to the configured ledgers.

Hourly by default. The registry's ``anchor: {schedule: ...}`` or
``$TRIALPROOF_ANCHOR_SCHEDULE`` changes it; ``anchor: {on_log_update: true}`` also
runs it whenever an ingest commits (the log asset). When the log has not grown
since the last anchored checkpoint the task succeeds and does nothing.
The work is done by :func:`pipeline.anchor.anchor`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from pipeline.registry import (
    LOG_ASSET_URI,
    PeriodicJob,
    RegistryFileError,
    failure_notifier,
    read_registry,
)

logger = logging.getLogger(__name__)

try:
    _job = read_registry().anchor
except RegistryFileError:  # reported by trialproof_registry_errors.py
    _job = PeriodicJob("@hourly")

_schedule: Any = _job.airflow_schedule
if _job.on_log_update and _schedule is not None:
    _schedule = AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(_schedule, timezone="UTC"),
        assets=[Asset(name="trialproof-log", uri=LOG_ASSET_URI)],
    )


@dag(
    dag_id="anchor",
    schedule=_schedule,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["trialproof", "anchor"],
    description="anchor the transparency log's signed checkpoint to the ledgers",
    default_args={
        "owner": "trialproof",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": failure_notifier(job="anchor", notify=_job.notify),
    },
)
def anchor() -> None:
    @task(task_id="anchor")
    def anchor_log() -> dict[str, Any]:
        from pipeline.anchor import anchor as run_anchor
        from pipeline.anchor_ledgers import anchorings
        from pipeline.home import Home, resolve_home

        home = Home.open(resolve_home(None))
        result = run_anchor(home)  # also retries what earlier runs left pending
        if result is None:
            size = home.log().size()
            logger.info("nothing to anchor: the log (size %d) has not grown since the last "
                     "anchored checkpoint", size)
            history = anchorings(home)
            ledgers = history[-1]["ledgers"] if history else {}
            for name, state in ledgers.items():
                logger.info("  last anchoring, ledger %s: %s %s", name, state["state"],
                         state.get("reason") or "")
            return {"anchored": False, "size": size,
                    "ledgers": {name: state["state"] for name, state in ledgers.items()}}
        logger.info("anchored log size %d (root %s, previous anchored size %s): %s",
                 result.size, result.root, result.previous_size,
                 ", ".join(f"{name} {state['state']}" for name, state in result.ledgers.items()))
        return {"anchored": True, **result.to_json()}

    anchor_log()


anchor()
