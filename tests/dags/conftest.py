"""Fixtures for the DAG tests: real Airflow, each scenario in its own clean process.

Airflow reads its configuration from the environment when it is imported, so
every scenario runs ``airflow_runner.py`` (or the ``airflow`` CLI) in a
subprocess with the environment set beforehand. ``airflow db migrate`` is slow,
so it runs once per session into a template SQLite file that each test copies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from airflow_sandbox import BIN, ORIGIN, RUNNER, Sandbox, airflow_env, tail


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scaleout: real Airflow processes (scheduler, dag-processor, api-server, two "
                   "Celery workers) on PostgreSQL and Redis")


@pytest.fixture
def pilot_dir(pilot_dir: Path) -> Path:
    """The pilot's SDTM folder (tests that use it are marked ``pilot_data``)."""
    return pilot_dir / "sdtm_cdiscpilot01"


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow metadata database (SQLite) after ``airflow db migrate``, made once."""
    home = tmp_path_factory.mktemp("airflow-template")
    db = home / "airflow.db"
    env = airflow_env(home, f"sqlite:///{db}")
    done = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed ({done.returncode}):\n"
                    f"{tail(done.stdout + done.stderr)}")
    return db


@pytest.fixture(scope="session")
def execution_api(migrated_db: Path) -> None:
    """Fail clearly when Airflow's execution API cannot load here: then no task can run,
    neither in dag.test() nor on a worker."""
    home = migrated_db.parent
    env = airflow_env(home, f"sqlite:///{migrated_db}")
    check = subprocess.run([sys.executable, str(RUNNER), "preflight"], env=env, cwd=home,
                           capture_output=True, text=True, timeout=120, check=False)
    if check.returncode != 0:
        pytest.fail("Airflow's execution API does not load in this environment, so no task can "
                    "run (FastAPI >= 0.156.1 breaks Airflow 3.2.x; Airflow >= 3.3.2 pins a "
                    f"FastAPI that works):\n{tail(check.stdout + check.stderr, 15)}")


@pytest.fixture
def sandbox(tmp_path: Path, migrated_db: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    from pipeline.home import Home

    monkeypatch.delenv("TRIALPROOF_LOG_URL", raising=False)  # the sandbox's log is in its home
    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir()
    db = airflow_home / "airflow.db"
    shutil.copyfile(migrated_db, db)
    wal = migrated_db.with_name(migrated_db.name + "-wal")
    if wal.exists():  # SQLite in WAL mode: the pages not yet checkpointed
        shutil.copyfile(wal, db.with_name(db.name + "-wal"))
    tp_home = tmp_path / "home"
    Home.init(tp_home, ORIGIN)
    registry = tmp_path / "registry.yaml"
    env = airflow_env(airflow_home, f"sqlite:///{db}", TRIALPROOF_HOME=str(tp_home),
                      TRIALPROOF_REGISTRY=str(registry))
    box = Sandbox(tmp_path, airflow_home, tp_home, registry, tmp_path / "deliveries", env)
    box.deliveries.mkdir()
    return box
