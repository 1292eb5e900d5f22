"""Ingest DAGs: one ``ingest__<trial>__<dataset>`` per valid entry of the sponsor registry.

    find_new_deliveries -> for each new file (mapped): stage -> validate -> commit

``find_new_deliveries`` lists the entry's delivery location and skips files already
committed or rejected before (see ``pipeline.registry.new_deliveries``; a rollback to
an earlier version's bytes is new). Each new file then runs
through its own mapped task group, so a bad delivery fails only its own
``validate`` (quarantined, with the report named in the task log and in the
failure notification) while the others commit. XCom carries paths and hashes.
An ``on-arrival`` entry runs continuously: ``find_new_deliveries`` is then a
sensor (reschedule mode) that waits for a new file.

Each task log leads a person to the report, as a URL they open from the Airflow UI:
``validate`` logs a rejected delivery's failures (each failed check with its first
failing rows) and its report's URL; ``commit`` logs the committed version's report URL.
Both are served by Airflow's own API server through the trialproof plugin
(:mod:`pipeline.airflow_plugin`), or, for committed versions, by the trialproof API at
``$TRIALPROOF_REPORT_URL`` when it is set.

The registry comes from ``$TRIALPROOF_REGISTRY`` and the home from
``$TRIALPROOF_HOME``. A wrong entry gets no DAG here; ``trialproof_registry_errors.py``
reports it as an import error. The work is done in :mod:`pipeline.registry`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, PokeReturnValue, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from pipeline.registry import (
    LOG_ASSET_URI,
    RegistryEntry,
    RegistryFileError,
    failure_notifier,
    read_registry,
)

log = logging.getLogger(__name__)

LOG_ASSET = Asset(name="trialproof-log", uri=LOG_ASSET_URI)
START = datetime(2024, 1, 1, tzinfo=UTC)
#: Mapped task instances are labelled with their delivery's file name in the UI.
LABEL = "{{ delivery_name }}"


def _label(name: str) -> None:
    get_current_context()["delivery_name"] = name  # type: ignore[literal-required]


def _home() -> Any:
    from pipeline.home import Home, resolve_home

    return Home.open(resolve_home(None))


def _log_rejection(report_path: str) -> None:
    """The rejected delivery's failures, in the task log that the Airflow UI shows."""
    from pipeline.report_links import quarantined_report_url
    from pipeline.validation import failure_digest

    report_json = Path(report_path).with_name("report.json")
    try:
        lines = failure_digest(report_json.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        lines = [f"the report {report_json} cannot be summarized: {exc}"]
    log.error("validation report: %s\n%s", quarantined_report_url(report_path),
              "\n".join(lines))


def build_ingest_dag(entry: RegistryEntry) -> Any:
    """The ingest DAG of one registry entry."""

    @dag(
        dag_id=entry.dag_id,
        schedule=entry.airflow_schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["trialproof", "ingest", entry.trial],
        description=entry.description or f"ingest {entry.trial}/{entry.dataset}",
        doc_md=(f"Ingest deliveries of **{entry.trial}/{entry.dataset}** from "
                f"`{entry.deliveries}` under contract `{entry.contract}` "
                f"(schedule `{entry.schedule}`; owners {', '.join(entry.owners)}; "
                f"failures notify {', '.join(entry.notify)})."),
        default_args={
            "owner": ", ".join(entry.owners),
            "retries": entry.retries,
            "retry_delay": timedelta(seconds=entry.retry_delay),
            "on_failure_callback": failure_notifier(entry),
        },
    )
    def ingest() -> None:
        @task.sensor(task_id="find_new_deliveries", mode="reschedule",
                     poke_interval=entry.poke_interval, timeout=entry.poke_timeout,
                     soft_fail=True)
        def wait_for_new_deliveries() -> PokeReturnValue:
            from pipeline.registry import new_deliveries

            found = new_deliveries(_home(), entry)
            return PokeReturnValue(is_done=bool(found), xcom_value=found)

        @task(task_id="find_new_deliveries")
        def find_new_deliveries() -> list[dict[str, Any]]:
            from pipeline.registry import new_deliveries

            return new_deliveries(_home(), entry)

        @task(map_index_template=LABEL)
        def stage(delivery: dict[str, Any]) -> dict[str, Any]:
            from pipeline.errors import ReadError
            from pipeline.registry import RegistryFileError, stage_delivery

            _label(delivery["name"])
            try:
                return stage_delivery(_home(), delivery)
            except (ReadError, RegistryFileError) as exc:  # a refused delivery stays refused
                raise AirflowFailException(str(exc)) from None

        @task(map_index_template=LABEL)
        def validate(staged: dict[str, Any]) -> dict[str, Any]:
            from pipeline.errors import ValidationFailed
            from pipeline.registry import validate_delivery

            _label(staged["name"])
            log.info("Great Expectations: %s", "loaded before the task (by the executor or worker)"
                     if "great_expectations" in sys.modules else "imported by this task")
            try:
                return validate_delivery(_home(), entry, staged)
            except ValidationFailed as exc:  # deterministic: retrying cannot help
                _log_rejection(exc.report_path)
                raise AirflowFailException(str(exc)) from exc

        @task(outlets=[LOG_ASSET], map_index_template=LABEL)
        def commit(validated: dict[str, Any]) -> dict[str, Any]:
            from pipeline.registry import commit_delivery
            from pipeline.report_links import committed_report_url

            _label(validated["staged"]["name"])
            summary = commit_delivery(_home(), entry, validated)
            report = committed_report_url(entry.trial, entry.dataset, summary["version"])
            log.info("validation report: %s", report)
            return {**summary, "report": report}

        @task_group
        def deliver(delivery: dict[str, Any]) -> None:
            commit(validate(stage(delivery)))

        finder = wait_for_new_deliveries if entry.on_arrival else find_new_deliveries
        deliver.expand(delivery=finder())

    return ingest()


try:
    _entries = read_registry().entries
except RegistryFileError:  # reported by trialproof_registry_errors.py
    _entries = ()

for _entry in _entries:
    globals()[_entry.dag_id] = build_ingest_dag(_entry)
