"""Airflow's LocalExecutor, with Great Expectations imported once per scheduler instead of
once per task.

Every ``validate`` task needs Great Expectations, whose import alone takes several
seconds. The LocalExecutor forks its worker processes from the scheduler, and each
worker forks a task runner per task. So this executor imports Great Expectations in the
scheduler before it forks the workers: each worker, and every task runner forked from
it, starts with the module loaded and shares its memory copy-on-write.

Select it with ``AIRFLOW__CORE__EXECUTOR=pipeline.airflow_executor.LocalExecutor``
(``make airflow`` does). Where workers are spawned rather than forked, it behaves exactly
as Airflow's LocalExecutor.
"""

from __future__ import annotations

__all__ = ["LocalExecutor"]

import logging
import time

from airflow.executors.local_executor import LocalExecutor as AirflowLocalExecutor

log = logging.getLogger(__name__)


class LocalExecutor(AirflowLocalExecutor):
    """:class:`airflow.executors.local_executor.LocalExecutor`, which first imports Great
    Expectations when its workers will be forked from this process."""

    def start(self) -> None:
        if self.is_mp_using_fork:
            from pipeline.validation import import_great_expectations

            started = time.perf_counter()
            import_great_expectations()
            log.info("Great Expectations imported once for every task (%.1fs)",
                     time.perf_counter() - started)
        super().start()
