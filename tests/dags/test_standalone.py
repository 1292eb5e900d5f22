"""``make airflow`` (scripts/airflow_standalone.sh) on a temporary home: the API server
answers before any worker starts, so the first runs are green; parallelism follows the
CPUs; and stopping the script stops every component."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from airflow_sandbox import REPO, Sandbox, tail

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("execution_api")]


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


def test_make_airflow_starts_green_and_stops_cleanly(sandbox: Sandbox) -> None:
    sandbox.register({})  # anchor and audit only; audit runs at once (catchup off)
    port = free_port()
    env = {k: v for k, v in sandbox.env.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_PORT=str(port), TRIALPROOF_ANCHOR_SCHEDULE="manual")
    env.pop("AIRFLOW__CORE__PARALLELISM", None)
    log = sandbox.root / "standalone.log"
    with open(log, "w") as out:
        script = subprocess.Popen(["bash", str(REPO / "scripts" / "airflow_standalone.sh")],
                                  env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    db = sandbox.airflow_home / "airflow.db"
    try:
        deadline = time.monotonic() + 400
        while "success" not in runs(db, "audit"):
            assert script.poll() is None, tail(log.read_text(), 80)
            assert time.monotonic() < deadline, tail(log.read_text(), 80)
            time.sleep(2)
        assert "failed" not in runs(db, "audit")
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
