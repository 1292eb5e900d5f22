"""Pre-registration end to end through the CLI: documents, registry records, the
registry watch against a local server, entry proofs and the outcome check."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from registry_server import FakeRegistry, registry_server
from trialproof_testkit import ORIGIN

from pipeline.cli import main
from pipeline.home import Home
from pipeline.preregistration import document_entries, proven_time, registry_entries
from pipeline.registry_watch import (
    RegistryFetchError,
    WatchedStudy,
    WatchSettings,
    watch_registry,
)

CTGOV = Path(__file__).parent / "data" / "ctgov"
TRIAL = "NCTDEMO"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.init(tmp_path / "home", ORIGIN)


def study(nct: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((CTGOV / f"{nct}.json").read_text(encoding="utf-8"))
    return record


def write(path: Path, record: dict[str, Any]) -> Path:
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


# -- documents ------------------------------------------------------------------


def test_register_list_and_reregister(home: Home, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    protocol = tmp_path / "protocol-v1.pdf"
    protocol.write_bytes(b"%PDF-1.7 protocol v1\n")
    code, out, err = cli(capsys, "register", "--home", str(home.path), "--trial", TRIAL,
                         "--kind", "protocol", "--label", "v1.0", str(protocol), "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["type"] == "trialproof/document/v1" and first["bytes"] == 21
    assert (home.path / "documents" / first["sha256"]).read_bytes() == protocol.read_bytes()
    # The same bytes again: the entry already in the log, nothing appended.
    size = home.log().size()
    code, out, _ = cli(capsys, "register", "--home", str(home.path), "--trial", TRIAL,
                       "--kind", "protocol", "--label", "v1.0", str(protocol), "--json")
    assert code == 0 and json.loads(out)["log_index"] == first["log_index"]
    assert home.log().size() == size
    code, out, _ = cli(capsys, "documents", "--home", str(home.path), "--trial", TRIAL, "--json")
    listed = json.loads(out)
    assert [d["sha256"] for d in listed] == [first["sha256"]]
    assert listed[0]["proven_time"] is None  # not anchored yet


@pytest.mark.parametrize("args, message", [
    (("--kind", "poem", "--label", "x"), "--kind must be one of"),
    (("--kind", "sap", "--label", "   "), "--label"),
])
def test_register_refuses_bad_input(home: Home, tmp_path: Path, args: tuple[str, ...],
                                    message: str, capsys: pytest.CaptureFixture[str]) -> None:
    document = tmp_path / "sap.txt"
    document.write_text("plan")
    code, _, err = cli(capsys, "register", "--home", str(home.path), "--trial", TRIAL, *args,
                       str(document))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert home.log().size() == 0


def test_register_refuses_a_missing_file(home: Home, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "register", "--home", str(home.path), "--trial", TRIAL,
                       "--kind", "sap", "--label", "v1", str(tmp_path / "nope.pdf"))
    assert code == 2 and "no such file" in err


def test_documents_show_the_earliest_anchoring(home: Home, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.anchor import anchor

    sap = tmp_path / "sap.docx"
    sap.write_bytes(b"statistical analysis plan")
    cli(capsys, "register", "--home", str(home.path), "--trial", TRIAL, "--kind", "sap",
        "--label", "v1", str(sap))
    first = anchor(home)
    assert first is not None
    later = tmp_path / "csr.pdf"
    later.write_bytes(b"clinical study report")
    cli(capsys, "register", "--home", str(home.path), "--trial", TRIAL, "--kind", "csr",
        "--label", "final", str(later))
    anchor(home)
    documents = document_entries(home, TRIAL)
    times = [proven_time(home, d.log_index) for d in documents]
    assert times[0] is not None and times[0].anchored_size == first.size
    assert times[0].independent is False and times[0].ledger == "local"
    assert times[1] is not None and times[1].anchored_size > first.size
    code, out, _ = cli(capsys, "documents", "--home", str(home.path), "--trial", TRIAL)
    assert code == 0 and "not independent" in out


def test_document_proof_verifies_offline(home: Home, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.anchor import anchor

    protocol = tmp_path / "protocol.pdf"
    protocol.write_bytes(b"%PDF protocol")
    _, out, _ = cli(capsys, "register", "--home", str(home.path), "--trial", TRIAL, "--kind",
                    "protocol", "--label", "v1", str(protocol), "--json")
    sha = json.loads(out)["sha256"]
    anchor(home)
    proof = tmp_path / "protocol.proof.json"
    code, _, err = cli(capsys, "prove-document", "--home", str(home.path), "--trial", TRIAL,
                       "--sha256", sha, "--out", str(proof))
    assert code == 0, err
    assert json.loads(proof.read_text())["type"] == "trialproof/entry-proof/v1"
    vkey = home.verifier.vkey
    code, out, err = cli(capsys, "verify", str(proof), "--vkey", vkey)
    assert code == 0, err
    code, out, err = cli(capsys, "verify-document", str(protocol), "--vkey", vkey,
                         "--proof", str(proof), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["entry"]["sha256"] == sha
    assert result["first_anchored"]["independent"] is False
    # Another document against the same proof: not verified.
    other = tmp_path / "other.pdf"
    other.write_bytes(b"%PDF protocol, edited")
    code, _, err = cli(capsys, "verify-document", str(other), "--vkey", vkey, "--proof", str(proof))
    assert code == 1 and "another document" in err


# -- registry records -------------------------------------------------------------


def test_registry_record_history(home: Home, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    record = study("NCT02210780")
    path = write(tmp_path / "r1.json", record)
    code, out, err = cli(capsys, "registry-record", "add", "--home", str(home.path), "--trial",
                         TRIAL, str(path), "--json")
    assert code == 0, err
    logged = json.loads(out)
    assert logged["changed"] and logged["study_id"] == "NCT02210780"
    assert logged["last_update"] == "2020-05-07"
    # Key order and white space are not changes: JCS bytes are compared.
    reordered = tmp_path / "r1-pretty.json"
    reordered.write_text(json.dumps(dict(reversed(list(record.items()))), indent=4))
    code, out, _ = cli(capsys, "registry-record", "add", "--home", str(home.path), "--trial",
                       TRIAL, str(reordered), "--json")
    assert code == 0 and json.loads(out) == {"changed": False}
    edited = copy.deepcopy(record)
    edited["protocolSection"]["outcomesModule"]["primaryOutcomes"][0]["timeFrame"] = "Week 24"
    code, out, _ = cli(capsys, "registry-record", "add", "--home", str(home.path), "--trial",
                       TRIAL, str(write(tmp_path / "r2.json", edited)), "--json")
    assert code == 0 and json.loads(out)["changed"]
    entries = registry_entries(home, TRIAL)
    assert len(entries) == 2
    assert entries[1].record(home) == edited


def test_registry_record_refuses_what_is_not_a_study(home: Home, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": "world"}')
    code, _, err = cli(capsys, "registry-record", "add", "--home", str(home.path), "--trial",
                       TRIAL, str(bad))
    assert code == 2 and "protocolSection" in err


# -- outcome check ----------------------------------------------------------------


def add(capsys: pytest.CaptureFixture[str], home: Home, path: Path) -> None:
    code, _, err = cli(capsys, "registry-record", "add", "--home", str(home.path), "--trial",
                       TRIAL, str(path))
    assert code == 0, err


@pytest.mark.parametrize("nct", ["NCT00763412", "NCT02210780", "NCT05594173"])
def test_outcome_check_passes_on_the_real_records(home: Home, tmp_path: Path, nct: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    add(capsys, home, write(tmp_path / "r.json", study(nct)))
    html = tmp_path / "report.html"
    code, out, err = cli(capsys, "outcomes", "check", "--home", str(home.path), "--trial", TRIAL,
                         "--json", "--html", str(html))
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and report["discrepancies"] == 0
    (comparison,) = report["studies"][0]["comparisons"]
    assert comparison["against"] == "results"
    assert "No outcome was switched" in html.read_text()


def test_outcome_check_finds_each_switch(home: Home, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.anchor import anchor

    first = study("NCT00763412")
    first.pop("resultsSection")
    add(capsys, home, write(tmp_path / "r1.json", first))
    anchor(home)
    second = copy.deepcopy(first)
    module = second["protocolSection"]["outcomesModule"]
    del module["primaryOutcomes"][2]                                # CRP removed
    module["primaryOutcomes"].append(module["secondaryOutcomes"].pop(0))  # promoted
    module["primaryOutcomes"][0]["timeFrame"] = "3 years"           # time frame changed
    add(capsys, home, write(tmp_path / "r2.json", second))
    html = tmp_path / "report.html"
    code, out, _ = cli(capsys, "outcomes", "check", "--home", str(home.path), "--trial", TRIAL,
                       "--json", "--html", str(html))
    assert code == 1
    report = json.loads(out)
    (comparison,) = report["studies"][0]["comparisons"]
    found = {(f["status"], (f["before"] or f["after"])["measure"]) for f in comparison["findings"]
             if f["status"] != "unchanged"}
    assert found == {("removed", "CRP"), ("moved", "Glucose Tolerance"), ("changed", "BMI")}
    baseline, other = comparison["baseline"], comparison["other"]
    assert baseline["proven_time"]["ledger"] == "local"
    assert other["proven_time"] is None  # logged after the last anchoring
    assert all(f["log_entries"] == [baseline["log_index"], other["log_index"]]
               for f in comparison["findings"])
    page = html.read_text()
    assert "3 discrepancies" in page and "removed" in page and "CRP" in page
    code, out, _ = cli(capsys, "outcomes", "check", "--home", str(home.path), "--trial", TRIAL)
    assert code == 1 and "3 outcome discrepancies found" in out


def test_outcome_check_without_records_is_a_usage_error(
        home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "outcomes", "check", "--home", str(home.path), "--trial", TRIAL)
    assert code == 2 and "no registry records" in err


# -- registry watch against a local server ------------------------------------------


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with registry_server() as fake:
        yield fake


def test_registry_watch_logs_only_changes(home: Home, registry: FakeRegistry) -> None:
    registry.records = {n: study(n) for n in ("NCT02210780", "NCT05594173")}
    settings = WatchSettings(base_url=registry.url, studies=(WatchedStudy(TRIAL, "NCT02210780"),
                                                    WatchedStudy(TRIAL, "NCT05594173")))
    results = watch_registry(home, settings)
    assert [r["changed"] for r in results] == [True, True]
    assert [r["changed"] for r in watch_registry(home, settings)] == [False, False]
    edited = copy.deepcopy(registry.records["NCT05594173"])
    edited["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2024-01-02"
    registry.records["NCT05594173"] = edited
    assert [r["changed"] for r in watch_registry(home, settings)] == [False, True]
    history = [e for e in registry_entries(home, TRIAL) if e.entry["study_id"] == "NCT05594173"]
    assert [e.entry["last_update"] for e in history] == ["2022-11-21", "2024-01-02"]


def test_registry_watch_fails_clearly_when_the_registry_errs(
        home: Home, registry: FakeRegistry) -> None:
    registry.fail_with = 503
    settings = WatchSettings(base_url=registry.url, studies=(WatchedStudy(TRIAL, "NCT02210780"),))
    with pytest.raises(RegistryFetchError, match="NCT02210780: the registry answered HTTP 503"):
        watch_registry(home, settings)
    assert home.log().size() == 0


def test_registry_watch_settings_are_checked(tmp_path: Path) -> None:
    from pipeline.registry import read_registry

    registry = tmp_path / "sponsors.yaml"
    registry.write_text(
        "registry_watch:\n"
        "  base_url: http://169.254.169.254/latest\n"
        "  studies:\n"
        "    - {trial: T1, study_id: NCT00000001}\n"
        "    - {trial: T1, study_id: '../../etc'}\n"
    )
    checked = read_registry(registry)
    fields = {p.field for p in checked.problems}
    assert "registry_watch.base_url" in fields
    assert "registry_watch.studies[1].study_id" in fields
    assert [s.study_id for s in checked.watch.studies] == ["NCT00000001"]
