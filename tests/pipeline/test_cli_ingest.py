"""The ingest-side CLI on real CDISC pilot files: ingest, versions, prove, verify, diff,
contracts from-define, anchor and audit, with their exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from trialproof_cli import trialproof

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "trials.example.org/log"


def run(home: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``trialproof ARGS`` with ``home`` as $TRIALPROOF_HOME."""
    return trialproof(*args, cwd=cwd, env={"TRIALPROOF_HOME": str(home)})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    assert run(path, "init", "--origin", ORIGIN).returncode == 0
    return path


@pytest.mark.pilot_data
def test_ingest_prove_verify_diff_anchor_audit(home: Path, pilot_dir: Path,
                                               tmp_path: Path) -> None:
    pilot = pilot_dir
    ingest = run(home, "ingest", str(pilot / "sdtm_cdiscpilot01" / "dm.xpt"), "--trial",
                 "CDISCPILOT01", "--dataset", "dm", "--contract", "cdiscpilot01/sdtm/dm", "--json")
    assert ingest.returncode == 0, ingest.stderr
    result = json.loads(ingest.stdout)
    assert (result["status"], result["version"], result["log_index"]) == ("committed", 1, 0)
    assert Path(result["reports"]["html"]).is_file()

    again = run(home, "ingest", str(pilot / "sdtm_cdiscpilot01" / "dm.xpt"), "--trial",
                "CDISCPILOT01", "--dataset", "dm", "--contract", "cdiscpilot01/sdtm/dm")
    assert again.returncode == 0 and "unchanged" in again.stdout

    second = run(home, "ingest", str(pilot / "datasetjson_pilot5" / "dm.json"), "--trial",
                 "CDISCPILOT01", "--dataset", "dm", "--contract", "cdiscpilot01/sdtm/dm", "--json")
    # The same records as a new version: another root, as salts bind the version.
    assert json.loads(second.stdout)["root"] != result["root"]

    listing = json.loads(run(home, "versions", "--trial", "CDISCPILOT01", "--dataset", "dm",
                             "--json").stdout)
    assert [v["version"] for v in listing["versions"]] == [1, 2]

    assert run(home, "anchor").returncode == 0
    proof = tmp_path / "proof.json"
    tlog = tmp_path / "proof.tlog-proof"
    made = run(home, "prove", "--trial", "CDISCPILOT01", "--dataset", "dm", "--key",
               "STUDYID=CDISCPILOT01,USUBJID=01-701-1015", "--out", str(proof),
               "--tlog-proof", str(tlog))
    assert made.returncode == 0, made.stderr
    parsed = json.loads(proof.read_text())
    assert parsed["record"]["USUBJID"] == "01-701-1015"
    assert parsed["anchors"] and parsed["anchors"][0]["type"] == "trialproof/local-ledger/v1"
    assert tlog.read_text().startswith("c2sp.org/tlog-proof@v1\nindex 1\n")
    vkey = run(home, "vkey").stdout.strip()
    checked = run(home, "verify", str(proof), "--vkey", vkey)
    assert checked.returncode == 0, checked.stderr

    diff = json.loads(run(home, "diff", "--trial", "CDISCPILOT01", "--dataset", "dm", "--from",
                          "1", "--to", "2", "--json").stdout)
    assert (diff["added"], diff["removed"], diff["changed"]) == (0, 0, 0)

    audit = run(home, "audit", "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["ok"] is True


@pytest.mark.pilot_data
def test_bad_deliveries_exit_2_and_name_the_problem(home: Path, pilot_dir: Path,
                                                    tmp_path: Path) -> None:
    pilot = pilot_dir / "sdtm_cdiscpilot01"
    truncated = tmp_path / "dm.xpt"
    truncated.write_bytes((pilot / "dm.xpt").read_bytes()[:5000])
    result = run(home, "ingest", str(truncated), "--trial", "CDISCPILOT01", "--dataset", "dm",
                 "--contract", "cdiscpilot01/sdtm/dm")
    assert result.returncode == 2
    assert "dm.xpt" in result.stderr and "Traceback" not in result.stderr

    # ae data under the dm contract: unknown columns.
    wrong = run(home, "ingest", str(pilot / "ae.xpt"), "--trial", "CDISCPILOT01", "--dataset",
                "dm", "--contract", "cdiscpilot01/sdtm/dm")
    assert wrong.returncode == 2 and "AETERM" in wrong.stderr

    # A delivery that breaks its contract goes to quarantine.
    csv = tmp_path / "dm.csv"
    import pyarrow.csv as pacsv

    from pipeline.contract import load_contract
    from pipeline.readers import read_delivery

    contract = load_contract(REPO / "schemas/contracts/cdiscpilot01/sdtm/dm.json")
    table = read_delivery(pilot / "dm.xpt", contract).table
    data = table.to_pydict()
    data["SEX"][0] = "X"
    pacsv.write_csv(type(table).from_pydict(data, schema=table.schema), csv)
    failed = run(home, "ingest", str(csv), "--trial", "CDISCPILOT01", "--dataset", "dm",
                 "--contract", "cdiscpilot01/sdtm/dm")
    assert failed.returncode == 2
    assert "quarantine" in failed.stderr
    # The truncated file, the wrong dataset and the invalid one: each quarantined once.
    quarantined = sorted((home / "quarantine").iterdir())
    assert len(quarantined) == 3
    invalid = [q for q in quarantined if (q / "dm.csv").is_file()]
    assert len(invalid) == 1 and (invalid[0] / "report.html").is_file()
    report = json.loads((invalid[0] / "report.json").read_text())
    failing = [r for r in report["results"] if not r["success"]]
    assert any("SEX" in r["columns"] for r in failing)

    missing = run(home, "ingest", str(tmp_path / "nope.csv"), "--trial", "T", "--dataset", "dm",
                  "--contract", "cdiscpilot01/sdtm/dm")
    assert missing.returncode == 2 and "nope.csv" in missing.stderr


@pytest.mark.pilot_data
def test_contracts_from_define(tmp_path: Path, pilot_dir: Path) -> None:
    define = pilot_dir / "sdtm_cdiscpilot01" / "define.xml"
    result = run(tmp_path / "unused", "contracts", "from-define", str(define), "--out",
                 str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "dm.json").is_file()
    not_xml = tmp_path / "define.xml"
    not_xml.write_text("not xml")
    bad = run(tmp_path / "unused", "contracts", "from-define", str(not_xml), "--out",
              str(tmp_path / "out2"))
    assert bad.returncode == 2 and "define.xml" in bad.stderr
