"""A ClinicalTrials.gov API v2 stand-in on loopback for the registry-watch tests:
``GET /api/v2/studies/<id>`` answers the record it holds, or the status it is told."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeRegistry:
    """What the server answers: ``records`` by study ID, or ``fail_with`` for every request."""

    url: str = ""
    records: dict[str, Any] = field(default_factory=dict)
    fail_with: int | None = None


@contextmanager
def registry_server() -> Iterator[FakeRegistry]:
    state = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            study = self.path.rsplit("/", 1)[-1]
            if state.fail_with is not None:
                self.send_error(state.fail_with)
                return
            if not self.path.startswith("/api/v2/studies/") or study not in state.records:
                self.send_error(404)
                return
            body = json.dumps(state.records[study]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/v2"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
