"""``make demo`` on a temporary home: it finishes a second time, says that nothing is new
and verifies again; and the DAG runs it starts can always be stopped."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from airflow_sandbox import REPO, airflow_env, tail

from pipeline import demo


def run_demo(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "pipeline.demo"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=400, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, tail(output, 80)
    return output


@pytest.mark.slow
@pytest.mark.usefixtures("execution_api")
def test_the_demo_runs_twice(tmp_path: Path, migrated_db: Path) -> None:
    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir()
    shutil.copyfile(migrated_db, airflow_home / "airflow.db")  # the migration is done once
    # the example registry's dm (the demo proves one of its records) and its on-arrival ex
    example = yaml.safe_load((REPO / "registry" / "sponsors.yaml").read_text())
    example["datasets"] = [d for d in example["datasets"] if d["dataset"] in ("dm", "ex")]
    for entry in example["datasets"]:
        entry["deliveries"] = str(REPO / "registry" / entry["deliveries"])
    example["contracts"] = [str(REPO / "schemas" / "contracts")]
    registry = tmp_path / "sponsors.yaml"
    registry.write_text(yaml.safe_dump(example))
    env = airflow_env(airflow_home, f"sqlite:///{airflow_home / 'airflow.db'}",
                      TRIALPROOF_HOME=str(tmp_path / "home"), TRIALPROOF_REGISTRY=str(registry),
                      TRIALPROOF_DEMO_TIMEOUT="300")

    first = run_demo(env)
    assert "CDISCPILOT01/ex: v1 of 1" in first and "-- verified" in first
    assert "nothing new to ingest" not in first
    # The plans are registered and anchored before the data.
    assert "anchored the plans at log size 2, before any data" in first
    assert first.count("-- before the first data version") == 2

    # the on-arrival entry (ex) has nothing new now: its sensor looks once and gives up
    second = run_demo(env)
    assert "nothing new to ingest" in second
    assert "ingest__CDISCPILOT01__ex: success" in second
    assert "CDISCPILOT01/ex: v1 of 1" in second and "-- verified" in second


def test_dag_runs_that_ignore_sigterm_are_killed_on_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "KILL_GRACE", 1)
    stubborn = ("import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('  started', flush=True)\n"
                "time.sleep(120)\n")
    started = time.monotonic()
    returncode, lines, _ = demo.run_bounded([sys.executable, "-c", stubborn], {}, timeout=2)
    assert returncode is None and lines == ["  started"]
    assert time.monotonic() - started < 30
