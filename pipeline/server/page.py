"""The web page at ``/`` and ``/verify``: static HTML and JavaScript, no build step.

The log's vkey is written into the page's source when it is served, so the
browser verifies records against that pinned key and trusts nothing else the
server sends.
"""

from __future__ import annotations

__all__ = ["page_routes"]

import html
import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

_STATIC = Path(__file__).with_name("static")
_SCRIPTS = {"app.mjs", "verify.mjs"}


def _render(request: Request) -> str:
    from pipeline.server.app import home_of

    home = home_of(request)
    template = (_STATIC / "index.html").read_text(encoding="utf-8")
    vkeys = json.dumps([home.verifier.vkey]).replace("<", "\\u003c")
    return (template.replace("{{VKEYS_JSON}}", vkeys)
            .replace("{{VKEY}}", html.escape(home.verifier.vkey, quote=True))
            .replace("{{ORIGIN}}", html.escape(home.origin, quote=True)))


def page_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        return HTMLResponse(_render(request))

    @app.get("/verify", response_class=HTMLResponse, include_in_schema=False)
    def verify_page(request: Request) -> HTMLResponse:
        return HTMLResponse(_render(request))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _SCRIPTS:
            return Response(status_code=404)
        return Response((_STATIC / name).read_bytes(), media_type="text/javascript",
                        headers={"Cache-Control": "no-cache"})
