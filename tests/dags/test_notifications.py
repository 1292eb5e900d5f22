"""Failure notifications always say what went wrong, even when the task raised nothing."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.registry import NOTIFICATIONS_FILE, failure_notifier


def notified(home: Path) -> dict[str, object]:
    (line,) = (home / NOTIFICATIONS_FILE).read_text().splitlines()
    note: dict[str, object] = json.loads(line)
    return note


def ti(state: str = "failed") -> SimpleNamespace:
    return SimpleNamespace(dag_id="audit", task_id="audit", map_index=-1, run_id="r1",
                           try_number=3, state=state)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIALPROOF_HOME", str(tmp_path))
    return tmp_path


def test_a_task_killed_without_an_exception_is_still_explained(home: Path) -> None:
    # what the DAG processor passes when a worker was lost: the task instance, no exception
    failure_notifier(job="audit", notify=["officer@example.org"])({"ti": ti()})
    note = notified(home)
    assert note["error"] != "unknown error"
    assert "ended failed on attempt 3 without an error of its own" in str(note["error"])
    assert note["notify"] == ["officer@example.org"]


def test_the_reason_airflow_gives_is_carried(home: Path) -> None:
    failure_notifier(job="anchor")({"ti": ti(), "reason": "task_failure\nmore"})
    assert notified(home)["error"] == "task_failure"


def test_the_exception_is_carried(home: Path) -> None:
    error = ConnectionError("[Errno 111] Connection refused")
    failure_notifier(job="anchor")({"ti": ti(), "exception": error})
    assert notified(home)["error"] == "[Errno 111] Connection refused"
