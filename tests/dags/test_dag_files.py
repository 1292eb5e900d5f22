"""The DAG files as Airflow's DAG processor sees them: what loads, the import errors a bad
registry gives, parse time and imports, and ruff's Airflow rules."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from airflow_sandbox import BIN, DAGS, REPO, Sandbox

INGEST_DAGS = ["ingest__CDISCPILOT01__dm", "ingest__CDISCPILOT01__ex"]


@pytest.fixture
def bags(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """What the DAG processor loads under each of three registries, parsed in one Airflow
    process: a valid one, one with a bad entry, and one that is not YAML."""
    registries = {}
    for name, datasets in (("valid", {"dm": {}, "ex": {"schedule": "on-arrival"}}),
                           ("bad-entry", {"dm": {}, "ex": {},
                                          "ae": {"schedule": "every morning"}})):
        sandbox.registry = sandbox.root / f"{name}.yaml"
        registries[name] = str(sandbox.register(datasets))
    unreadable = sandbox.root / "unreadable.yaml"
    unreadable.write_text("datasets: [\n")
    registries["unreadable"] = str(unreadable)
    found = sandbox.run("dagbags", *registries.values())["bags"]
    return {name: found[path] for name, path in registries.items()}


def test_registries_as_the_dag_processor_sees_them(bags: dict[str, dict[str, Any]]) -> None:
    # a valid registry loads every DAG without import errors
    assert bags["valid"]["import_errors"] == {}
    assert bags["valid"]["dag_ids"] == sorted(["anchor", "audit", "registry_watch", *INGEST_DAGS])

    # a bad entry is one import error, and the good DAGs still load
    bag = bags["bad-entry"]
    assert bag["dag_ids"] == sorted(["anchor", "audit", "registry_watch", *INGEST_DAGS])
    (path, error), = bag["import_errors"].items()
    assert path.endswith("trialproof_registry_errors.py")
    assert "datasets[2] (CDISCPILOT01/ae) field 'schedule'" in error
    assert "'every morning' is not a valid 5-field cron expression" in error

    # an unreadable registry is an import error
    bag = bags["unreadable"]
    assert bag["dag_ids"] == ["anchor", "audit", "registry_watch"]
    (path, error), = bag["import_errors"].items()
    assert path.endswith("trialproof_registry_errors.py") and "not valid YAML" in error


def test_dag_files_parse_fast_without_heavy_imports(sandbox: Sandbox) -> None:
    # the example registry (three entries) is what `make airflow` parses
    sandbox.env["TRIALPROOF_REGISTRY"] = str(REPO / "registry" / "sponsors.yaml")
    files = sorted(str(p) for p in DAGS.glob("*.py"))
    assert len(files) >= 4
    parsed = sandbox.run("parse", *files)["files"]
    for file, info in parsed.items():
        assert info["seconds"] < 2.0, (file, info)
        assert info["heavy"] == [], (file, info)
        assert info["error"] is None, (file, info)


def test_ruff_airflow_rules_pass_on_dags() -> None:
    done = subprocess.run([str(BIN / "ruff"), "check", "--select", "AIR", str(DAGS)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr



def test_a_yaml_alias_bomb_is_an_import_error_not_a_hang(sandbox: Sandbox) -> None:
    rows = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for name, previous in zip("bcdefghij", "abcdefghi", strict=True):
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    sandbox.registry.write_text("\n".join([*rows, "datasets: *j", ""]))
    bag = sandbox.run("dagbag")
    assert bag["dag_ids"] == ["anchor", "audit", "registry_watch"]
    (path, error), = bag["import_errors"].items()
    assert path.endswith("trialproof_registry_errors.py")
    assert "anchors and aliases (& and *) are not allowed" in error


def test_a_failed_scenario_fails_alone_on_the_shared_airflow(sandbox: Sandbox) -> None:
    """The worker's Airflow process reports a failed scenario as failed, with its error,
    and runs the next one with that one's own environment."""
    failed = sandbox.run("test", "no_such_dag", check=False)
    assert failed == {"failed": True}
    assert "no DAG no_such_dag" in sandbox.outputs[-1]
    sandbox.register({"dm": {}})
    assert "ingest__CDISCPILOT01__dm" in sandbox.run("dagbag")["dag_ids"]
    empty = sandbox.root / "empty.yaml"
    empty.write_text("datasets: []\n")
    sandbox.env["TRIALPROOF_REGISTRY"] = str(empty)  # this request's environment only
    assert not [d for d in sandbox.run("dagbag")["dag_ids"] if d.startswith("ingest__")]
