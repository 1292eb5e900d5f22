"""``make airflow`` (scripts/airflow_standalone.sh) on a temporary home: the API server
answers before any worker starts, so the first runs are green; parallelism follows the
CPUs; and stopping the script stops every component."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from airflow_sandbox import REPO, Sandbox, airflow_token, tail

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("execution_api")]

EX_DAG = "ingest__CDISCPILOT01__ex"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def runs(db: Path, dag_id: str) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        return [r[0] for r in conn.execute("select state from dag_run where dag_id = ?",
                                           (dag_id,))]


def one_good_one_rejected(home_path: Path, tmp_path: Path) -> Path:
    """Commit a small dataset version and reject a delivery; the rejected report's path."""
    from pipeline.contract import load_contract
    from pipeline.errors import ValidationFailed
    from pipeline.home import Home
    from pipeline.ingest import ingest

    contract = tmp_path / "vs.json"
    contract.write_text(json.dumps({
        "name": "vs", "primaryKey": ["USUBJID"],
        "fields": [{"name": "USUBJID", "type": "string"}, {"name": "AGE", "type": "integer"}]}))
    good, bad = tmp_path / "vs.csv", tmp_path / "vs-bad.csv"
    good.write_text("USUBJID,AGE\nS-1,40\nS-2,41\n")
    bad.write_text("USUBJID,AGE\nS-1,40\nS-2,forty-one\n")
    home = Home.open(home_path)
    ingest(home, good, "T1", "vs", load_contract(contract))
    with pytest.raises(ValidationFailed) as rejected:
        ingest(home, bad, "T1", "vs", load_contract(contract))
    return Path(rejected.value.report_path)


def fetch(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def check_report_links(port: int, rejected_report: Path, password: str) -> None:
    """The report URLs the ingest tasks log open from Airflow's own API server."""
    base = f"http://localhost:{port}/trialproof"
    status, page = fetch(f"{base}/api/v1/trials/T1/datasets/vs/versions/1/report.html")
    assert status == 200 and "<html" in page.lower()
    quarantined = f"{base}/quarantine/{rejected_report.parent.name}/report.html"
    assert fetch(quarantined)[0] == 401  # a rejected delivery is not public
    token = airflow_token(f"http://localhost:{port}", password)
    status, page = fetch(quarantined, token)
    assert status == 200 and page == rejected_report.read_text(encoding="utf-8")
    for wrong in ("..%2F..%2Fconfig.json", "nope-" + "0" * 64):
        assert fetch(f"{base}/quarantine/{wrong}/report.html", token)[0] in (400, 404)


def test_make_airflow_starts_green_and_stops_cleanly(sandbox: Sandbox) -> None:
    # The daily EX ingest and audit run at once (catchup off); anchoring is manual.
    sandbox.register({"ex": {}})
    sandbox.deliver("ex", REPO / "examples" / "deliveries" / "CDISCPILOT01" / "ex" / "ex.xpt")
    rejected_report = one_good_one_rejected(sandbox.tp_home, sandbox.root)
    port = free_port()
    env = {k: v for k, v in sandbox.env.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_PORT=str(port), TRIALPROOF_ANCHOR_SCHEDULE="manual",
               AIRFLOW_ADMIN_PASSWORD="standalone-test-password")
    env.pop("AIRFLOW__CORE__PARALLELISM", None)
    log = sandbox.root / "standalone.log"
    with open(log, "w") as out:
        script = subprocess.Popen(["bash", str(REPO / "scripts" / "airflow_standalone.sh")],
                                  env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    db = sandbox.airflow_home / "airflow.db"
    try:
        deadline = time.monotonic() + 400
        while "success" not in runs(db, "audit") or not runs(db, EX_DAG) or any(
                state in ("queued", "running") for state in runs(db, EX_DAG)):
            assert script.poll() is None, tail(log.read_text(), 80)
            assert time.monotonic() < deadline, tail(log.read_text(), 80)
            time.sleep(0.5)
        assert "failed" not in runs(db, "audit")
        assert runs(db, EX_DAG) == ["success"], tail(log.read_text(), 80)
        # The executor imported Great Expectations before it forked its workers.
        (validate_log,) = (sandbox.airflow_home / "logs").glob(
            f"dag_id={EX_DAG}/*/task_id=deliver.validate/*/attempt=1.log")
        assert "loaded before the task (by the executor or worker)" in validate_log.read_text()
        check_report_links(port, rejected_report, env["AIRFLOW_ADMIN_PASSWORD"])
    finally:
        script.send_signal(signal.SIGTERM)
        try:
            script.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGKILL)
            raise
    output = log.read_text()
    lines = [ln for ln in output.splitlines() if ln.startswith("standalone")]
    expected = min(32, max(4, 2 * (os.cpu_count() or 1)))
    assert any(f"LocalExecutor parallelism {expected} (" in ln for ln in lines), lines
    answered = next(i for i, ln in enumerate(output.splitlines()) if "API server answers" in ln)
    first_worker = [i for i, ln in enumerate(output.splitlines())
                    if ln.startswith(("scheduler", "dag-processor", "triggerer"))]
    assert first_worker and min(first_worker) > answered
    assert "Connection refused" not in output and "ConnectError" not in output
    assert not answers(port)  # the API server went with the script
