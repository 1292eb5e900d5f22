"""``trialproof ingest --dry-run`` commits nothing; ``--trial`` must match the data's STUDYID
and name a registered trial, unless ``--force``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from trialproof_cli import trialproof

from pipeline.home import Home

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "trials.example.org/log"
CONTRACT = ("--contract", "cdiscpilot01/sdtm/dm")


@pytest.fixture
def run() -> Any:
    """The CLI, from the repository root, whose registry lists CDISCPILOT01:
    (returncode, stdout, stderr)."""
    def call(home: Path, *args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        return trialproof(*args, cwd=REPO, env={"TRIALPROOF_REGISTRY": None,
                                                "TRIALPROOF_HOME": str(home), **(env or {})})

    return call


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Home.init(tmp_path / "home", ORIGIN)
    return tmp_path / "home"


@pytest.fixture
def pilot(pilot_dir: Path) -> Path:
    return pilot_dir / "sdtm_cdiscpilot01"


def untouched(home: Path) -> bool:
    """Nothing staged, quarantined or committed; the log is empty."""
    opened = Home.open(home)
    return (opened.log().size() == 0 and not (home / "raw").exists()
            and not (home / "quarantine").exists() and not (home / "datasets").exists())


@pytest.mark.pilot_data
def test_a_dry_run_validates_writes_the_report_and_commits_nothing(
        run: Any, home: Path, pilot: Path, tmp_path: Path) -> None:
    good = run(home, "ingest", str(pilot / "dm.xpt"), "--trial", "CDISCPILOT01", "--dataset",
               "dm", *CONTRACT, "--dry-run", "--json")
    assert good.returncode == 0, good.stderr
    result = json.loads(good.stdout)
    assert result["status"] == "dry-run" and result["valid"] is True and result["rows"] == 306
    assert "PASS" in Path(result["reports"]["html"]).read_text()
    assert untouched(home)

    truncated = tmp_path / "dm.xpt"
    truncated.write_bytes((pilot / "dm.xpt").read_bytes()[:5000])
    bad = run(home, "ingest", str(truncated), "--trial", "CDISCPILOT01", "--dataset", "dm",
              *CONTRACT, "--dry-run")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "NOT valid" in bad.stdout and "Traceback" not in bad.stderr
    line = bad.stderr.strip().splitlines()[-1]
    assert "dm.xpt is not valid" in line
    report = Path(line.rsplit("report: ", 1)[1].rstrip(")"))
    assert "could not be read" in report.read_text()
    assert untouched(home)


@pytest.mark.pilot_data
def test_studyid_and_registry_checks_exit_2_unless_forced(run: Any, home: Path, pilot: Path,
                                                          tmp_path: Path) -> None:
    # not in the registry (the repository's lists CDISCPILOT01 only)
    unknown = run(home, "ingest", str(pilot / "dm.xpt"), "--trial", "NOPE01", "--dataset",
                  "dm", *CONTRACT)
    assert unknown.returncode == 2
    assert "trial NOPE01 is not in the sponsor registry" in unknown.stderr
    assert untouched(home)

    # registered, but the data's STUDYID is CDISCPILOT01
    registry = tmp_path / "registry.yaml"
    (tmp_path / "incoming").mkdir()
    registry.write_text(yaml.safe_dump({
        "contracts": [str(REPO / "schemas" / "contracts")],
        "datasets": [{"trial": "OTHER02", "dataset": "dm", "contract": "cdiscpilot01/sdtm/dm",
                      "deliveries": str(tmp_path / "incoming"), "schedule": "manual",
                      "owners": ["dm@example.org"]}]}))
    env = {"TRIALPROOF_REGISTRY": str(registry)}
    mismatch = run(home, "ingest", str(pilot / "dm.xpt"), "--trial", "OTHER02", "--dataset",
                   "dm", *CONTRACT, env=env)
    assert mismatch.returncode == 2
    assert "dm.xpt: its STUDYID is CDISCPILOT01, not --trial OTHER02" in mismatch.stderr
    assert Home.open(home).log().size() == 0

    dry = run(home, "ingest", str(pilot / "dm.xpt"), "--trial", "OTHER02", "--dataset", "dm",
              *CONTRACT, "--dry-run", env=env)
    assert dry.returncode == 2 and "STUDYID is CDISCPILOT01" in dry.stderr

    forced = run(home, "ingest", str(pilot / "dm.xpt"), "--trial", "OTHER02", "--dataset", "dm",
                 *CONTRACT, "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert "warning: dm.xpt: its STUDYID is CDISCPILOT01" in forced.stderr
    assert "committed OTHER02/dm v1" in forced.stdout
