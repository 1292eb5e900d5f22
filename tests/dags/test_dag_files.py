"""The DAG files as Airflow's DAG processor sees them: what loads, the import errors a bad
registry gives, parse time and imports, and ruff's Airflow rules."""

from __future__ import annotations

import subprocess

from airflow_sandbox import BIN, DAGS, REPO, Sandbox

INGEST_DAGS = ["ingest__CDISCPILOT01__dm", "ingest__CDISCPILOT01__ex"]


def test_a_valid_registry_loads_every_dag_without_import_errors(sandbox: Sandbox) -> None:
    sandbox.register({"dm": {}, "ex": {"schedule": "on-arrival"}})
    bag = sandbox.run("dagbag")
    assert bag["import_errors"] == {}
    assert bag["dag_ids"] == sorted(["anchor", "audit", "registry_watch", *INGEST_DAGS])


def test_a_bad_entry_is_one_import_error_and_the_good_dags_still_load(sandbox: Sandbox) -> None:
    sandbox.register({"dm": {}, "ex": {}, "ae": {"schedule": "every morning"}})
    bag = sandbox.run("dagbag")
    assert bag["dag_ids"] == sorted(["anchor", "audit", "registry_watch", *INGEST_DAGS])
    (path, error), = bag["import_errors"].items()
    assert path.endswith("trialproof_registry_errors.py")
    assert "datasets[2] (CDISCPILOT01/ae) field 'schedule'" in error
    assert "'every morning' is not a valid 5-field cron expression" in error


def test_an_unreadable_registry_is_an_import_error(sandbox: Sandbox) -> None:
    sandbox.registry.write_text("datasets: [\n")
    bag = sandbox.run("dagbag")
    assert bag["dag_ids"] == ["anchor", "audit"]
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
    assert bag["dag_ids"] == ["anchor", "audit"]
    (path, error), = bag["import_errors"].items()
    assert path.endswith("trialproof_registry_errors.py")
    assert "anchors and aliases (& and *) are not allowed" in error
