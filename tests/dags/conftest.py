"""Fixtures for the DAG tests: real Airflow, in processes of its own.

Airflow reads its configuration from the environment when it is imported, so it runs
in subprocesses with the environment set beforehand: the scenarios of a test worker on
one ``airflow_runner.py serve`` process (Airflow starts once per worker, each scenario
with its own trialproof home and registry), and ``make airflow``, the demo and the
scale-out test as the processes a user would start. ``airflow db migrate`` is slow, so
it runs once per test session into a template SQLite file that each Airflow home copies.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_sandbox import BIN, ORIGIN, AirflowServer, Sandbox, airflow_env, tail


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
    """An Airflow metadata database (SQLite) after ``airflow db migrate``, made once per
    test session: the first pytest-xdist worker to get here migrates, the others wait."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    home = shared / "airflow-template"
    db = home / "airflow.db"
    with open(shared / "airflow-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / "migrated").exists():
            return db
        home.mkdir(exist_ok=True)
        env = airflow_env(home, f"sqlite:///{db}")
        done = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, cwd=home,
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            pytest.fail(f"airflow db migrate failed ({done.returncode}):\n"
                        f"{tail(done.stdout + done.stderr)}")
        (home / "migrated").touch()
    return db


def copy_database(template: Path, airflow_home: Path) -> Path:
    db = airflow_home / "airflow.db"
    shutil.copyfile(template, db)
    wal = template.with_name(template.name + "-wal")
    if wal.exists():  # SQLite in WAL mode: the pages not yet checkpointed
        shutil.copyfile(wal, db.with_name(db.name + "-wal"))
    return db


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory: pytest.TempPathFactory,
                   migrated_db: Path) -> Iterator[AirflowServer]:
    """This worker's Airflow: one process that runs every scenario in turn."""
    airflow_home = tmp_path_factory.mktemp("airflow-server")
    db = copy_database(migrated_db, airflow_home)
    server = AirflowServer(airflow_home, airflow_env(airflow_home, f"sqlite:///{db}"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def execution_api(airflow_server: AirflowServer) -> None:
    """Fail clearly when Airflow's execution API cannot load here: then no task can run,
    neither in dag.test() nor on a worker."""
    ok, output = airflow_server.request(["preflight"], airflow_server.env, timeout=120)
    if not ok:
        pytest.fail("Airflow's execution API does not load in this environment, so no task can "
                    "run (FastAPI >= 0.156.1 breaks Airflow 3.2.x; Airflow >= 3.3.2 pins a "
                    f"FastAPI that works):\n{tail(output, 15)}")


@pytest.fixture
def sandbox(tmp_path: Path, migrated_db: Path, airflow_server: AirflowServer,
            monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A scenario's trialproof home and registry, run on this worker's Airflow server; and
    an Airflow home of its own (a copy of the migrated database) for tests that start
    Airflow's processes themselves."""
    from pipeline.home import Home

    monkeypatch.delenv("TRIALPROOF_LOG_URL", raising=False)  # the sandbox's log is in its home
    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir()
    db = copy_database(migrated_db, airflow_home)
    tp_home = tmp_path / "home"
    Home.init(tp_home, ORIGIN)
    registry = tmp_path / "registry.yaml"
    env = airflow_env(airflow_home, f"sqlite:///{db}", TRIALPROOF_HOME=str(tp_home),
                      TRIALPROOF_REGISTRY=str(registry))
    box = Sandbox(tmp_path, airflow_home, tp_home, registry, tmp_path / "deliveries", env,
                  server=airflow_server)
    box.deliveries.mkdir()
    return box
