"""Helpers for the DAG tests: a clean Airflow environment, and a sandbox with a trialproof
home, a sponsor registry and an Airflow home whose scenarios run in subprocesses."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
CONTRACTS = REPO / "schemas" / "contracts"
BIN = Path(sys.executable).parent
RUNNER = Path(__file__).with_name("airflow_runner.py")
ORIGIN = "trials.example.org/log"


def airflow_env(airflow_home: Path, sql_alchemy_conn: str, **extra: str) -> dict[str, str]:
    """A clean environment for an Airflow process: nothing inherited from AIRFLOW__* or
    TRIALPROOF_* variables of the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "TRIALPROOF_", "PYTEST_"))}
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def post_json(url: str, body: object, token: str | None = None) -> Any:
    """POST ``body`` as JSON (with a bearer token when given); the JSON answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def airflow_token(api_url: str, password: str) -> str:
    """A bearer token for Airflow's REST API as the README gets one: ``POST /auth/token``
    as the simple auth manager's ``admin``."""
    answer = post_json(f"{api_url}/auth/token", {"username": "admin", "password": password})
    return str(answer["access_token"])


#: Commands that need a process of their own: ``parse`` reports which heavy modules the
#: DAG files import, so nothing may have imported them before.
FRESH_PROCESS_ONLY = ("parse",)


class AirflowServer:
    """``airflow_runner.py serve``: one Airflow process that runs the scenarios of a test
    worker in turn, so that Airflow, its in-process execution API and Great Expectations
    start once rather than once per scenario. Each request carries its environment (the
    scenario's trialproof home and registry); Airflow's own settings, and so its metadata
    database in ``airflow_home``, are the server's. It starts on first use, and again
    after a request timed out or the process died."""

    def __init__(self, airflow_home: Path, env: dict[str, str]) -> None:
        self.airflow_home = airflow_home
        self.env = env
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def request(self, args: list[str], env: Mapping[str, str], timeout: float
                ) -> tuple[bool, str]:
        """Run ``args`` with ``env``; (whether it ended with a RESULT, its output)."""
        process = self._running()
        request_id = uuid.uuid4().hex
        assert process.stdin is not None
        process.stdin.write(json.dumps({"id": request_id, "args": args, "env": dict(env)})
                            + "\n")
        process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                return False, "\n".join([*output, f"(no answer within {timeout:.0f} s)"])
            if line is None:
                self.stop()
                return False, "\n".join([*output, "(the Airflow server exited)"])
            if line == f"END {request_id}":
                return bool(output) and output[-1].startswith("RESULT "), "\n".join(output)
            output.append(line)

    def _running(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._lines = queue.Queue()
        self._process = subprocess.Popen(
            [sys.executable, str(RUNNER), "serve"], env=self.env, cwd=self.airflow_home,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        threading.Thread(target=self._read, args=(self._process, self._lines),
                         daemon=True).start()
        return self._process

    @staticmethod
    def _read(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Sandbox:
    """A trialproof home, a sponsor registry and an Airflow home with its own database."""

    root: Path
    airflow_home: Path
    tp_home: Path
    registry: Path
    deliveries: Path
    env: dict[str, str]
    server: AirflowServer | None = None
    outputs: list[str] = field(default_factory=list)

    def deliver(self, dataset: str, source: Path, name: str | None = None) -> Path:
        folder = self.deliveries / dataset
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (name or source.name)
        shutil.copyfile(source, target)
        return target

    def register(self, datasets: Mapping[str, Mapping[str, Any]], trial: str = "CDISCPILOT01",
                 **top: Any) -> Path:
        """Write the registry: one entry per dataset (extra fields per entry allowed)."""
        entries = []
        for dataset, fields in datasets.items():
            (self.deliveries / dataset).mkdir(parents=True, exist_ok=True)
            entries.append({"trial": trial, "dataset": dataset,
                            "contract": f"cdiscpilot01/sdtm/{dataset}",
                            "deliveries": f"deliveries/{dataset}/*", **fields})
        document = {"contracts": [str(CONTRACTS)],
                    "defaults": {"owners": ["dm-owner@example.org"],
                                 "notify": ["qa@example.org"], "schedule": "@daily",
                                 "retries": 0},
                    **top, "datasets": entries}
        self.registry.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return self.registry

    def run(self, *args: str, timeout: float = 240, check: bool = True) -> dict[str, Any]:
        """Run airflow_runner.py with ``args`` (on the worker's Airflow server, or in a
        process of its own); its RESULT as a dict (output in .outputs)."""
        if self.server is not None and args[0] not in FRESH_PROCESS_ONLY:
            ok, output = self.server.request(list(args), self.env, timeout)
        else:
            done = subprocess.run([sys.executable, str(RUNNER), *args], env=self.env,
                                  cwd=self.root, capture_output=True, text=True,
                                  timeout=timeout, check=False)
            ok, output = done.returncode == 0, done.stdout + done.stderr
        self.outputs.append(output)
        results = [ln for ln in output.splitlines() if ln.startswith("RESULT ")]
        if not ok or not results:
            if check:
                pytest.fail(f"airflow_runner {' '.join(args)} failed:\n{tail(output, 80)}")
            return {"failed": True}
        result: dict[str, Any] = json.loads(results[-1][len("RESULT "):])
        return result

    def dag_test(self, *dag_ids: str, timeout: float = 240) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.run("test", *dag_ids, timeout=timeout)["runs"]
        return runs

    def notifications(self) -> list[dict[str, Any]]:
        path = self.tp_home / "notifications.log"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]


def states(run: Mapping[str, Any], task_id: str) -> list[str]:
    """The states of a task's instances in a run, by map index."""
    return [t["state"] for t in run["tasks"] if t["task_id"] == task_id]
