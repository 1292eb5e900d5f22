"""Where a person opens a validation report: URLs on Airflow's API server, where the
trialproof plugin (:mod:`pipeline.airflow_plugin`) serves them, or on the trialproof API.

Used by the ingest DAG's task logs and by failure notifications. Imports no Airflow.
"""

from __future__ import annotations

__all__ = ["REPORTS_PREFIX", "committed_report_url", "quarantined_report_url"]

import os
import sys
from pathlib import Path

#: Where the plugin's app is mounted on Airflow's API server.
REPORTS_PREFIX = "/trialproof"
#: Airflow's API server address when ``[api] base_url`` is not set.
_DEFAULT_AIRFLOW_URL = "http://localhost:8080"


def _airflow_url() -> str:
    """Airflow's ``[api] base_url``: from Airflow's configuration where Airflow is loaded
    (a task), else from its environment variable; importing Airflow here would reconfigure
    the process's logging."""
    configuration = sys.modules.get("airflow.configuration")
    url = (configuration.conf.get("api", "base_url", fallback=None) if configuration
           else os.environ.get("AIRFLOW__API__BASE_URL"))
    return str(url or _DEFAULT_AIRFLOW_URL).rstrip("/")


def committed_report_url(trial: str, dataset: str, version: int) -> str:
    """The committed version's HTML report: on the trialproof API at
    ``$TRIALPROOF_REPORT_URL`` when it is set, else on Airflow's API server (the plugin)."""
    base = os.environ.get("TRIALPROOF_REPORT_URL", "").rstrip("/")
    base = base or f"{_airflow_url()}{REPORTS_PREFIX}"
    return f"{base}/api/v1/trials/{trial}/datasets/{dataset}/versions/{version}/report.html"


def quarantined_report_url(report_path: str | Path) -> str:
    """The rejected delivery's HTML report (``quarantine/<folder>/report.html`` in the home)
    on Airflow's API server (the plugin)."""
    folder = Path(report_path).parent.name
    return f"{_airflow_url()}{REPORTS_PREFIX}/quarantine/{folder}/report.html"
