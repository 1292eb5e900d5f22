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

__all__ = ["TrialproofPlugin"]

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from pipeline.report_links import REPORTS_PREFIX


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
