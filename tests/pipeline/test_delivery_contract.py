"""``trialproof ingest`` without ``--contract``: a later delivery reuses the contract of the
dataset's latest version; a first one uses its registry entry's; else the dataset's name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from trialproof_testkit import ORIGIN

from pipeline.cli import main
from pipeline.home import Home
from pipeline.store import Store


def dm_contract(extra_field: str) -> dict[str, Any]:
    return {"name": "dm", "fields": [{"name": "USUBJID", "type": "string"},
                                     {"name": "AGE", "type": "integer"},
                                     {"name": extra_field, "type": "string"}],
            "primaryKey": ["USUBJID"], "trialproof": {"unknownColumns": "drop"}}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two contracts called ``dm`` (the name alone is ambiguous), and a home."""
    for study, extra in (("study_a", "SEX"), ("study_b", "RACE")):
        folder = tmp_path / "contracts" / study
        folder.mkdir(parents=True)
        (folder / "dm.json").write_text(json.dumps(dm_contract(extra)))
    monkeypatch.setenv("TRIALPROOF_CONTRACTS", str(tmp_path / "contracts"))
    monkeypatch.setenv("TRIALPROOF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIALPROOF_REGISTRY", str(tmp_path / "no-registry.yaml"))
    monkeypatch.chdir(tmp_path)
    Home.init(tmp_path / "home", ORIGIN)
    return tmp_path


def delivery(site: Path, name: str, ages: list[int]) -> Path:
    path = site / name
    rows = [f"S{i},{age},F,WHITE" for i, age in enumerate(ages)]
    path.write_text("USUBJID,AGE,SEX,RACE\n" + "\n".join(rows) + "\n")
    return path


def ingest(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(["ingest", *args, "--trial", "T1", "--json"])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out if done.value.code == 0 else err


def committed_contract(site: Path, dataset: str) -> dict[str, Any]:
    home = Home.open(site / "home")
    contract: dict[str, Any] = Store(home.path, home.log()).versions("T1", dataset)[-1] \
        .manifest["contract"]
    return contract


def test_a_later_delivery_reuses_the_latest_versions_contract(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = ingest(capsys, str(delivery(site, "dm1.csv", [30, 40])), "--dataset", "dm")
    assert code == 2 and "contract name 'dm' is ambiguous" in err
    code, out = ingest(capsys, str(delivery(site, "dm1.csv", [30, 40])), "--dataset", "dm",
                       "--contract", "study_b/dm")
    assert code == 0, out
    first = committed_contract(site, "dm")

    code, out = ingest(capsys, str(delivery(site, "dm2.csv", [31, 41])), "--dataset", "dm")
    assert code == 0, out
    assert json.loads(out)["version"] == 2
    assert committed_contract(site, "dm") == first

    # The contract file changed since: the copy kept with the latest version still applies.
    (site / "contracts" / "study_b" / "dm.json").write_text(json.dumps(dm_contract("SEX")))
    code, out = ingest(capsys, str(delivery(site, "dm3.csv", [32, 42])), "--dataset", "dm")
    assert code == 0, out
    assert json.loads(out)["version"] == 3
    assert committed_contract(site, "dm") == first


def test_a_first_delivery_uses_its_registry_entry(
        site: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (site / "deliveries").mkdir()
    registry = site / "registry.yaml"
    registry.write_text(yaml.safe_dump({"contracts": ["contracts"], "datasets": [
        {"trial": "T1", "dataset": "dm", "contract": "study_a/dm",
         "deliveries": "deliveries/*.csv", "schedule": "manual", "owners": ["dm@example.org"]},
    ]}))
    monkeypatch.setenv("TRIALPROOF_REGISTRY", str(registry))
    code, out = ingest(capsys, str(delivery(site, "dm1.csv", [30, 40])), "--dataset", "dm")
    assert code == 0, out
    study_a = json.loads((site / "contracts" / "study_a" / "dm.json").read_text())
    assert committed_contract(site, "dm")["name"] == study_a["name"]
    home = Home.open(site / "home")
    kept = Store(home.path, home.log()).versions("T1", "dm")[-1].path / "contract.json"
    assert json.loads(kept.read_text())["fields"][2]["name"] == "SEX"


def test_without_history_or_registry_the_dataset_name_is_looked_up(
        site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "contracts" / "study_b" / "dm.json").unlink()
    code, out = ingest(capsys, str(delivery(site, "dm1.csv", [30, 40])), "--dataset", "dm")
    assert code == 0, out
    home = Home.open(site / "home")
    kept = Store(home.path, home.log()).versions("T1", "dm")[-1].path / "contract.json"
    assert json.loads(kept.read_text())["fields"][2]["name"] == "SEX"
