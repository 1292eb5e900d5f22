"""The registry-watch DAG: fetch each watched study from its trial registry and log the
records that changed, so the history of a registration is anchored as it happens.

Daily by default; the registry's ``registry_watch: {schedule, base_url, studies}``
(or ``$TRIALPROOF_REGISTRY_WATCH_SCHEDULE`` / ``$TRIALPROOF_REGISTRY_URL``) configures
it. The work is done by :func:`pipeline.registry_watch.watch_registry`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from pipeline.registry import RegistryFileError, failure_notifier, read_registry
from pipeline.registry_watch import WatchSettings

logger = logging.getLogger(__name__)

try:
    _watch = read_registry().watch
except RegistryFileError:  # reported by trialproof_registry_errors.py
    _watch = WatchSettings()


@dag(
    dag_id="registry_watch",
    schedule=None if _watch.schedule == "manual" else _watch.schedule,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["trialproof", "registry"],
    description="log every change of the watched registry records (ClinicalTrials.gov API v2)",
    default_args={
        "owner": "trialproof",
        "retries": _watch.retries,
        "retry_delay": timedelta(minutes=10),
        "retry_exponential_backoff": True,
        "on_failure_callback": failure_notifier(job="registry_watch", notify=_watch.notify),
    },
)
def registry_watch() -> None:
    @task(task_id="fetch_and_log")
    def fetch_and_log() -> list[dict[str, Any]]:
        from pipeline.home import Home, resolve_home
        from pipeline.registry import read_registry
        from pipeline.registry_watch import watch_registry

        settings = read_registry().watch
        results = watch_registry(Home.open(resolve_home(None)), settings)
        for result in results:
            logger.info("%s %s: %s", result["trial"], result["study_id"],
                     f"logged as entry {result['log_index']}" if result["changed"]
                     else "unchanged")
        return results

    fetch_and_log()


registry_watch()
