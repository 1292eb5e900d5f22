"""The Airflow plugin: validation reports served by Airflow's own API server, so that an
ingest task's log links to a page a person opens from the Airflow UI.

Mounted at ``/trialproof`` (an Airflow 3 plugin ``fastapi_apps`` entry):

- ``/trialproof/api/v1/...``: the public trialproof API over ``$TRIALPROOF_HOME``
  (:mod:`pipeline.server.app`), so a committed version's report is at
  ``/trialproof/api/v1/trials/<T>/datasets/<D>/versions/<V>/report.html``;
- ``/trialproof/quarantine/<folder>/report.html``: a rejected delivery's report. Airflow
  does not authenticate plugin apps, and a rejected delivery is not public, so this route
  asks for the Airflow user's token itself (the UI's session cookie, or a bearer token
  from ``POST /auth/token``).

The app is built at its first request, so importing this module (which every Airflow
process that loads plugins does) costs nothing.
"""

from __future__ import annotations

__all__ = ["REPORTS_PREFIX", "TrialproofPlugin", "committed_report_url",
           "quarantined_report_url"]

import os
from pathlib import Path
from typing import Any

from airflow.plugins_manager import AirflowPlugin

#: Where the plugin's app is mounted on Airflow's API server.
REPORTS_PREFIX = "/trialproof"
#: Airflow's API server address when ``[api] base_url`` is not set.
_DEFAULT_AIRFLOW_URL = "http://localhost:8080"


def _airflow_url() -> str:
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback=None) or _DEFAULT_AIRFLOW_URL).rstrip("/")


def committed_report_url(trial: str, dataset: str, version: int) -> str:
    """The committed version's HTML report: on the trialproof API at
    ``$TRIALPROOF_REPORT_URL`` when it is set, else on Airflow's API server (this plugin)."""
    base = os.environ.get("TRIALPROOF_REPORT_URL", "").rstrip("/")
    base = base or f"{_airflow_url()}{REPORTS_PREFIX}"
    return f"{base}/api/v1/trials/{trial}/datasets/{dataset}/versions/{version}/report.html"


def quarantined_report_url(report_path: str | Path) -> str:
    """The rejected delivery's HTML report (``quarantine/<folder>/report.html`` in the home)
    on Airflow's API server (this plugin)."""
    folder = Path(report_path).parent.name
    return f"{_airflow_url()}{REPORTS_PREFIX}/quarantine/{folder}/report.html"


def _build_app() -> Any:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI
    from fastapi.responses import FileResponse

    from pipeline.home import Home, resolve_home
    from pipeline.server.app import create_app

    home_path = resolve_home(None)
    outer = FastAPI(title="trialproof reports in Airflow", docs_url=None, redoc_url=None)

    @outer.get("/quarantine/{folder}/report.html", include_in_schema=False)
    # A default value, not Annotated: the names imported here do not resolve as strings.
    def quarantined(folder: str, user: Any = Depends(get_user)) -> FileResponse:  # noqa: B008
        return FileResponse(Home.open(home_path).store().quarantined_report(folder),
                            media_type="text/html")

    public = create_app(home_path)
    # Unknown names and missing files are answered as the public API answers them.
    for kind, handler in public.exception_handlers.items():
        outer.add_exception_handler(kind, handler)
    outer.mount("/", public)
    return outer


class _LazyApp:
    """An ASGI app that builds the real one at its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = _build_app()
        await self._app(scope, receive, send)


class TrialproofPlugin(AirflowPlugin):
    """Registered through the ``airflow.plugins`` entry point (pyproject.toml)."""

    name = "trialproof"
    fastapi_apps = [  # noqa: RUF012 (Airflow reads this class attribute)
        {"app": _LazyApp(), "url_prefix": REPORTS_PREFIX, "name": "trialproof reports"},
    ]
