"""Failure notifications (docs/architecture.md): the ``on_failure_callback`` the DAGs attach,
and the JSON-lines file it appends to in the home.

Nothing here imports Airflow, and nothing heavy at module level (the DAG files import
:func:`failure_notifier` when they are parsed).
"""

from __future__ import annotations

__all__ = [
    "NOTIFICATIONS_FILE",
    "failure_notifier",
    "notify_failure",
]

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.registry.schema import RegistryEntry

logger = logging.getLogger("trialproof.registry")

#: The failure notifications, one JSON object a line, in the home.
NOTIFICATIONS_FILE = "notifications.log"


def _chain(exc: BaseException | None) -> Iterable[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def notify_failure(home_path: Path, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Log a failure notification and append it to ``<home>/notifications.log`` (JSON lines)."""
    line = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **payload}
    who = ", ".join(line.get("notify") or line.get("owners") or []) or "nobody registered"
    # The error names the report's file in the home; the URL is what a person opens.
    report = (f"; open the report: {line['report_url']}" if line.get("report_url")
              else f"; report: {line['report']}" if line.get("report") else "")
    logger.error("FAILED %s %s (notify %s): %s%s", line.get("dag_id"), line.get("task_id"), who,
              line.get("error"), report)
    from pipeline.home import file_mode

    home_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = (json.dumps(line, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(home_path / NOTIFICATIONS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                 file_mode(home_path))
    try:
        os.write(fd, data)  # one write with O_APPEND: concurrent workers do not interleave
        os.fsync(fd)
    finally:
        os.close(fd)
    return line


def failure_notifier(entry: RegistryEntry | None = None, *, job: str | None = None,
                     owners: Iterable[str] = (), notify: Iterable[str] = ()
                     ) -> Callable[[Mapping[str, Any]], None]:
    """An Airflow ``on_failure_callback``: names the failed task, the error, the quarantine
    report (for a rejected delivery) and whom to notify. Never raises."""
    def callback(context: Mapping[str, Any]) -> None:
        try:
            _notify_from_context(context, entry, job, tuple(owners), tuple(notify))
        except Exception:  # a broken notification must not hide the failure
            logger.exception("could not record the failure notification")

    return callback


#: A notification quotes at most this many characters of the error.
_ERROR_WIDTH = 500


def _shortened(line: str) -> str:
    """trialproof's own messages quote no file content (see :mod:`pipeline.quoting`); a
    long message is cut all the same."""
    return line if len(line) <= _ERROR_WIDTH else line[: _ERROR_WIDTH - 1] + "…"


def _failure_reason(context: Mapping[str, Any], ti: Any, error: object) -> str:
    """The error a failure notification carries: the task's exception, else the reason
    Airflow gave, else what is known when the task never raised (it was killed, lost its
    worker, or its worker could not reach the API server before it started)."""
    if error is not None:
        text = str(error).strip()
        return _shortened(text.splitlines()[0] if text else type(error).__name__)
    reason = context.get("reason")
    if isinstance(reason, str) and reason.strip():
        return _shortened(reason.strip().splitlines()[0])
    state = getattr(ti, "state", None) or "failed"
    attempt = getattr(ti, "try_number", None)
    return (f"the task ended {state}{f' on attempt {attempt}' if attempt else ''} without an "
            "error of its own: its worker was killed or lost, or could not reach Airflow's API "
            "server; the task's log in the Airflow UI has the details")


def _notify_from_context(context: Mapping[str, Any], entry: RegistryEntry | None,
                         job: str | None, owners: tuple[str, ...],
                         notify: tuple[str, ...]) -> None:
    from pipeline.errors import ValidationFailed
    from pipeline.home import resolve_home

    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    payload: dict[str, Any] = {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "run_id": getattr(ti, "run_id", None) or context.get("run_id"),
        "try_number": getattr(ti, "try_number", None),
        "error": _failure_reason(context, ti, error),
    }
    if entry is not None:
        payload.update(trial=entry.trial, dataset=entry.dataset, owners=list(entry.owners),
                       notify=list(entry.notify))
    else:
        payload.update(job=job, owners=list(owners), notify=list(notify or owners))
    for exc in _chain(error if isinstance(error, BaseException) else None):
        if isinstance(exc, ValidationFailed):
            from pipeline.report_links import quarantined_report_url

            payload.update(report=exc.report_path, quarantine=exc.quarantine_path,
                           report_url=quarantined_report_url(exc.report_path))
            break
    notify_failure(resolve_home(None), payload)
