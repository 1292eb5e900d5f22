"""Helpers for the DAG tests: a clean Airflow environment, and a sandbox with a trialproof
home, a sponsor registry and an Airflow home whose scenarios run in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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


@dataclass
class Sandbox:
    """A trialproof home, a sponsor registry and an Airflow home with its own database."""

    root: Path
    airflow_home: Path
    tp_home: Path
    registry: Path
    deliveries: Path
    env: dict[str, str]
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
        """Run airflow_runner.py with ``args``; its RESULT as a dict (output in .outputs)."""
        done = subprocess.run([sys.executable, str(RUNNER), *args], env=self.env,
                              cwd=self.root, capture_output=True, text=True, timeout=timeout,
                              check=False)
        output = done.stdout + done.stderr
        self.outputs.append(output)
        results = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode != 0 or not results:
            if check:
                pytest.fail(f"airflow_runner {' '.join(args)} exited {done.returncode}:\n"
                            f"{tail(output, 80)}")
            return {"returncode": done.returncode}
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
