"""Scale-out: real Airflow processes ingest five datasets at once.

``airflow scheduler``, ``airflow dag-processor``, ``airflow api-server`` and two
``airflow celery worker`` processes (concurrency 2 each), with Airflow's metadata
database on PostgreSQL, Celery on Redis (its own database number, flushed after)
with results in PostgreSQL, and the trialproof log on PostgreSQL too
(``TRIALPROOF_LOG_URL``). Three datasets are scheduled every minute and two are
``on-arrival``; the scheduler runs them on its own (no trigger). Then each cron DAG
and the anchor DAG are triggered once more through the REST API while everything runs.
The Celery workers import Great Expectations once each (``pipeline.airflow_celery``).

Checked: every delivery is committed exactly once (one version per dataset, log
size 5, re-runs change nothing), every checkpoint signed along the way is
consistent with the next, the anchor DAG anchored the final size, and a record
proof of each dataset verifies offline. Every process is stopped at the end
(process groups, then any straggler carrying this run's token), the databases
dropped and the Redis database flushed; on failure the tail of each process's
log is shown.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from airflow_sandbox import BIN, CONTRACTS, DAGS, ORIGIN, airflow_token, post_json, tail
from trialproof_services import service_unreachable

if TYPE_CHECKING:
    from pipeline.home import Home
    from pipeline.store import Store

pytestmark = [pytest.mark.scaleout, pytest.mark.postgres,
              pytest.mark.usefixtures("execution_api")]

PG = os.environ.get("TRIALPROOF_TEST_PG_ADMIN_URL",
                    "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 5
TRIAL = "CDISCPILOT01"
CRON = ("dm", "ae", "ex")
ARRIVAL = ("ds", "ts")
DATASETS = CRON + ARRIVAL
DEADLINE = 360.0  # seconds for the whole test, startup to teardown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def databases(count: int) -> Iterator[list[str]]:
    """``count`` fresh PostgreSQL databases (URLs without driver prefix), dropped after."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    admin_url = make_url(PG)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool,
                          connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        service_unreachable(f"PostgreSQL is unreachable at {admin_url.render_as_string()}: "
                    f"{str(exc).splitlines()[0]}")
    names = [f"tp_af_{secrets.token_hex(5)}" for _ in range(count)]
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield [admin_url.set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def redis_db() -> Iterator[str]:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unreachable(f"Redis is unreachable at {REDIS_HOST}:{REDIS_PORT}: {exc}")
    client.flushdb()
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    finally:
        client.flushdb()
        client.close()


@dataclass
class Processes:
    """Airflow processes, each in its own process group, logging to a file."""

    folder: Path
    env: dict[str, str]
    token: str
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> None:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115  closed in stop()
        self.running[name] = subprocess.Popen(
            [str(BIN / "airflow"), *args], env=self.env, cwd=self.folder, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.running.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"airflow processes exited early: {dead}")

    def logs(self, lines: int = 40) -> str:
        parts = []
        for name in self.running:
            path = self.folder / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"----- {name} (last {lines} lines) -----\n{tail(text, lines)}")
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in self.running.values():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        ends = time.monotonic() + 20
        for proc in self.running.values():
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, ends - time.monotonic()))
        for proc in self.running.values():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._kill_stragglers()

    def _kill_stragglers(self) -> None:
        """Kill any process still carrying this run's token (a task that left its group)."""
        marker = f"TP_SCALEOUT_TOKEN={self.token}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue


def wait_for(what: str, check: Any, deadline: float, procs: Processes,
             interval: float = 0.5) -> Any:
    while True:
        value = check()
        if value:
            return value
        procs.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def _runs(engine: Any) -> list[tuple[str, str, str]]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(text(
            "SELECT dag_id, run_type, state FROM dag_run ORDER BY id"))]


@pytest.mark.pilot_data
def test_scale_out_celery_postgres_redis(tmp_path: Path, pilot_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    if importlib.util.find_spec("asyncpg") is None:
        pytest.fail("asyncpg is not installed: Airflow on PostgreSQL needs it for its async "
                    "engine (install apache-airflow[postgres], or add asyncpg to the lock)")
    started = time.monotonic()
    deadline = started + DEADLINE - 40  # leave time to stop and clean up
    with databases(2) as (meta_url, log_url), redis_db() as broker:
        _run(tmp_path, pilot_dir, monkeypatch, meta_url, log_url, broker, deadline, started)


def _run(tmp_path: Path, pilot_dir: Path, monkeypatch: pytest.MonkeyPatch, meta_url: str,
         log_url: str, broker: str, deadline: float, started: float) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from pipeline.home import Home
    from pipeline.store import Store

    # -- the trialproof side: a home whose log is on PostgreSQL, a registry, deliveries
    monkeypatch.setenv("TRIALPROOF_LOG_URL", log_url)
    home = Home.init(tmp_path / "home", ORIGIN)
    registry = _registry(tmp_path, pilot_dir)

    # -- the Airflow side
    port = free_port()
    token = secrets.token_hex(8)
    airflow_home = tmp_path / "airflow"
    airflow_home.mkdir()
    env = _airflow_env(airflow_home, port, meta_url, log_url, broker, home.path, registry,
                       token)
    timings: dict[str, float] = {}
    migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, cwd=airflow_home,
                             capture_output=True, text=True, timeout=240, check=False)
    assert migrate.returncode == 0, tail(migrate.stdout + migrate.stderr)
    timings["db migrate"] = time.monotonic() - started

    procs = Processes(airflow_home, env, token)
    meta = create_engine(meta_url, poolclass=NullPool)
    try:
        _start_airflow(procs, port, deadline)
        timings["processes up"] = time.monotonic() - started

        # Let the scheduler ingest; sign a checkpoint whenever the log has grown.
        store = Store(home.path, home.log())
        notes: dict[int, str] = {}

        def all_committed() -> bool:
            size = home.log().size()
            if size and size not in notes:
                notes[size] = home.log().sign_checkpoint(home.signer)
            return all(store.versions(TRIAL, ds) for ds in DATASETS)

        wait_for("every dataset to be committed", all_committed, deadline, procs)
        timings["all committed"] = time.monotonic() - started

        # Run each cron DAG once more and anchor, while the on-arrival DAGs keep polling.
        _rerun_cron_and_anchor(meta, env, airflow_home, deadline, procs)
        timings["re-runs and anchor done"] = time.monotonic() - started
        failed = [r for r in _runs(meta) if r[2] == "failed"]
        assert not failed, f"failed DAG runs: {failed}"
    except BaseException as exc:
        logs = procs.logs()
        procs.stop()
        meta.dispose()
        raise AssertionError(f"{exc}\n\n{logs}") from exc
    worker_logs = {n: (airflow_home / f"worker{n}.log").read_text(errors="replace")
                   for n in (1, 2)}
    procs.stop()
    meta.dispose()
    timings["stopped"] = time.monotonic() - started

    _check_log_and_proofs(home, store, pilot_dir, notes)

    # every validate task started with Great Expectations loaded by its Celery worker
    validate_logs = sorted((airflow_home / "logs").glob(
        "dag_id=ingest__*/**/task_id=deliver.validate/**/attempt=*.log"))
    assert len(validate_logs) >= len(DATASETS)
    for path in validate_logs:
        assert "loaded before the task (by the executor or worker)" in path.read_text(), path

    received = {n: text.count("received") for n, text in worker_logs.items()}
    print(f"scale-out timings (s since start): {({k: round(v) for k, v in timings.items()})}; "
          f"tasks received per worker: {received}; checkpoints: {sorted(notes)}")
    assert sum(received.values()) > 0


def _start_airflow(procs: Processes, port: int, deadline: float) -> None:
    """Start the api-server, scheduler, dag-processor and two Celery workers; wait for health."""
    procs.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
    procs.start("scheduler", "scheduler")
    procs.start("dag-processor", "dag-processor")
    for n in (1, 2):
        procs.start(f"worker{n}", "celery", "worker", "--celery-hostname", f"w{n}@%h",
                    "--concurrency", "2", "--skip-serve-logs", "--without-mingle")

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    wait_for("the api-server", healthy, deadline, procs)


def _rerun_cron_and_anchor(meta: Any, env: dict[str, str], airflow_home: Path, deadline: float,
                           procs: Processes) -> None:
    """Trigger each cron DAG and the anchor DAG once more through Airflow's REST API (the
    README's recipe: a token from ``POST /auth/token``, then ``POST .../dagRuns``); wait for
    those runs to succeed."""
    manual_before = sum(1 for _, kind, _ in _runs(meta) if kind == "manual")
    api = env["AIRFLOW__API__BASE_URL"]
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    password = json.loads(passwords.read_text())["admin"]
    token = airflow_token(api, password)
    for dag_id in [*(f"ingest__{TRIAL}__{ds}" for ds in CRON), "anchor"]:
        run = post_json(f"{api}/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None}, token)
        assert run["dag_id"] == dag_id and run["run_type"] == "manual", run

    def manual_runs_done() -> bool:
        manual = [r for r in _runs(meta) if r[1] == "manual"]
        assert not [r for r in manual if r[2] == "failed"], manual
        return len(manual) >= manual_before + 4 and all(r[2] == "success" for r in manual)

    wait_for("the triggered runs", manual_runs_done, deadline, procs)


def _registry(tmp_path: Path, pilot_dir: Path) -> Path:
    """A registry of the pilot datasets, each with its delivery folder holding its XPT."""
    entries = []
    for ds in DATASETS:
        folder = tmp_path / "deliveries" / ds
        folder.mkdir(parents=True)
        (folder / f"{ds}.xpt").write_bytes((pilot_dir / f"{ds}.xpt").read_bytes())
        schedule = {"schedule": "* * * * *"} if ds in CRON else {
            "schedule": "on-arrival", "poke_interval": 20, "poke_timeout": 120}
        entries.append({"trial": TRIAL, "dataset": ds, "contract": f"cdiscpilot01/sdtm/{ds}",
                        "deliveries": str(folder), **schedule})
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump({
        "contracts": [str(CONTRACTS)],
        "defaults": {"owners": ["ops@example.org"], "retries": 2, "retry_delay": 5},
        "datasets": entries}))
    return registry


def _airflow_env(airflow_home: Path, port: int, meta_url: str, log_url: str, broker: str,
                 home_path: Path, registry: Path, token: str) -> dict[str, str]:
    """The environment of every Airflow process: Celery on Redis, metadata on PostgreSQL."""
    env: dict[str, str] = {k: v for k, v in os.environ.items()
                           if not k.startswith(("AIRFLOW", "TRIALPROOF_", "PYTEST_"))}
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # each worker imports Great Expectations once, before its pool starts
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "pipeline.airflow_celery.CELERY_CONFIG",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "TRIALPROOF_HOME": str(home_path),
        "TRIALPROOF_REGISTRY": str(registry),
        "TRIALPROOF_LOG_URL": log_url,
        "TP_SCALEOUT_TOKEN": token,
    })
    return env


def _check_log_and_proofs(home: Home, store: Store, pilot_dir: Path,
                          notes: dict[int, str]) -> None:
    """Exactly once, consistent checkpoints up to the anchored size, proofs that verify."""
    from anchoring.checkpoint import open_checkpoint
    from anchoring.merkle.verify import verify_consistency
    from anchoring.verify import verify_record_proof
    from pipeline.anchor import anchored
    from pipeline.fsutil import sha256_file
    from pipeline.prove import prove_record

    # -- exactly once: one version per dataset, from its delivery, and nothing else in the log
    log = home.log()
    assert log.size() == len(DATASETS)
    for ds in DATASETS:
        (info,) = store.versions(TRIAL, ds)
        assert info.version == 1
        assert info.manifest["source"]["sha256"] == sha256_file(pilot_dir / f"{ds}.xpt")[0]

    # -- checkpoints: each signed, each consistent with the next, ending at the anchored size
    notes[log.size()] = log.sign_checkpoint(home.signer)
    checkpoints = [open_checkpoint(notes[size], [home.verifier], origin=home.origin)
                   for size in sorted(notes)]
    for old, new in itertools.pairwise(checkpoints):
        verify_consistency(old.size, new.size, old.root, new.root,
                           log.consistency_proof(old.size, new.size))
    assert checkpoints[-1].size == len(DATASETS) and len(checkpoints) >= 2
    assert anchored(home) == [len(DATASETS)]

    # -- a record proof from each dataset verifies offline with the log's key
    for ds in DATASETS:
        proof = prove_record(home, TRIAL, ds, index=0)
        verify_record_proof(proof, [home.verifier])
