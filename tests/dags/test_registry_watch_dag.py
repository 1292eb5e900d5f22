"""The registry_watch DAG runs for real with dag.test() against a local registry server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from airflow_sandbox import Sandbox

from pipeline.home import Home
from pipeline.preregistration import registry_entries

pytestmark = pytest.mark.usefixtures("execution_api")

CTGOV = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "ctgov"


class _Registry(BaseHTTPRequestHandler):
    status: ClassVar[list[int]] = [200]

    def do_GET(self) -> None:
        nct = self.path.rsplit("/", 1)[-1]
        path = CTGOV / f"{nct}.json"
        if self.status[0] != 200 or not path.is_file():
            self.send_error(self.status[0] if self.status[0] != 200 else 404)
            return
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v2"
    server.shutdown()
    server.server_close()
    _Registry.status[0] = 200


def test_registry_watch_logs_the_records_then_fails_clearly(sandbox: Sandbox,
                                                           registry_url: str) -> None:
    studies = [{"trial": "NCTDEMO", "study_id": "NCT02210780"},
               {"trial": "NCTDEMO", "study_id": "NCT05594173"}]
    sandbox.register({}, registry_watch={"base_url": registry_url, "retries": 0,
                                         "studies": studies})
    (run,) = sandbox.dag_test("registry_watch")
    assert run["state"] == "success", sandbox.outputs[-1][-3000:]
    home = Home.open(sandbox.tp_home)
    assert sorted(e.entry["study_id"] for e in registry_entries(home, "NCTDEMO")) == [
        "NCT02210780", "NCT05594173"]

    _Registry.status[0] = 503
    (run,) = sandbox.dag_test("registry_watch")
    assert run["state"] == "failed"
    assert "the registry answered HTTP 503" in sandbox.outputs[-1]
    (note,) = [n for n in sandbox.notifications() if n.get("job") == "registry_watch"]
    assert "HTTP 503" in json.dumps(note)
