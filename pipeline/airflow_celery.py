"""Airflow's Celery configuration, with Great Expectations imported once per Celery worker
instead of once per task.

A Celery worker forks its pool processes from its main process, and each pool process
forks a task runner per task. On the ``import_modules`` signal, which Celery sends in
the worker's main process before it starts the pool (Airflow preloads its own operator
modules the same way), this module imports Great Expectations, so every ``validate``
task starts with it loaded instead of paying its import of several seconds.

Select it with ``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=pipeline.airflow_celery.CELERY_CONFIG``
on the scheduler and the workers; the configuration itself is Airflow's default.
"""

from __future__ import annotations

__all__ = ["CELERY_CONFIG"]

import logging
import time
from typing import Any

from celery.signals import import_modules

log = logging.getLogger(__name__)

#: Airflow's default Celery configuration (given by ``__getattr__`` when read).
CELERY_CONFIG: dict[str, Any]


def __getattr__(name: str) -> Any:
    """``CELERY_CONFIG``: Airflow's default Celery configuration, unchanged. Read when Airflow
    asks for it, since building it logs warnings about Airflow's configuration."""
    if name == "CELERY_CONFIG":
        from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

        return DEFAULT_CELERY_CONFIG
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _import_great_expectations(*_args: object, **_kwargs: object) -> None:
    from pipeline.validation import import_great_expectations

    started = time.perf_counter()
    import_great_expectations()
    log.info("Great Expectations imported once for every task (%.1fs)",
             time.perf_counter() - started)


import_modules.connect(_import_great_expectations)
