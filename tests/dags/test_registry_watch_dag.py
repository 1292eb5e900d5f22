"""The registry_watch DAG runs for real with dag.test() against a local registry server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_sandbox import Sandbox
from registry_server import FakeRegistry, registry_server

from pipeline.home import Home
from pipeline.preregistration import registry_entries

pytestmark = pytest.mark.usefixtures("execution_api")

CTGOV = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "ctgov"


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with registry_server() as fake:
        fake.records = {p.stem: json.loads(p.read_text()) for p in CTGOV.glob("NCT*.json")}
        yield fake


def test_registry_watch_logs_the_records_then_fails_clearly(sandbox: Sandbox,
                                                           registry: FakeRegistry) -> None:
    studies = [{"trial": "NCTDEMO", "study_id": "NCT02210780"},
               {"trial": "NCTDEMO", "study_id": "NCT05594173"}]
    sandbox.register({}, registry_watch={"base_url": registry.url, "retries": 0,
                                         "studies": studies})
    (run,) = sandbox.dag_test("registry_watch")
    assert run["state"] == "success", sandbox.outputs[-1][-3000:]
    home = Home.open(sandbox.tp_home)
    assert sorted(e.entry["study_id"] for e in registry_entries(home, "NCTDEMO")) == [
        "NCT02210780", "NCT05594173"]

    registry.fail_with = 503
    (run,) = sandbox.dag_test("registry_watch")
    assert run["state"] == "failed"
    assert "the registry answered HTTP 503" in sandbox.outputs[-1]
    (note,) = [n for n in sandbox.notifications() if n.get("job") == "registry_watch"]
    assert "HTTP 503" in json.dumps(note)
