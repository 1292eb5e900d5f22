"""The ingest, anchor and audit DAGs run for real with dag.test() on the embedded default
(SQLite metadata, in process), on CDISC pilot data."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_sandbox import Sandbox, states

from pipeline.anchor import anchored, receipts_for
from pipeline.home import Home
from pipeline.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("execution_api")]

DM = "ingest__CDISCPILOT01__dm"
EX = "ingest__CDISCPILOT01__ex"


def bad_dm_csv(pilot_dir: Path, target: Path) -> Path:
    """The pilot's DM as CSV, with one reference start date that is not a date."""
    import pandas as pd

    frame = pd.read_sas(pilot_dir / "dm.xpt", format="xport", encoding="utf-8")
    frame.loc[0, "RFSTDTC"] = "yesterday"
    frame.to_csv(target, index=False)
    return target


def store(sandbox: Sandbox) -> Store:
    home = Home.open(sandbox.tp_home)
    return Store(home.path, home.log())


@pytest.mark.pilot_data
def test_good_and_bad_deliveries_then_a_redelivery(sandbox: Sandbox, pilot_dir: Path) -> None:
    sandbox.register({"dm": {}})
    sandbox.env["TRIALPROOF_REPORT_URL"] = "https://trials.example.org/"
    sandbox.deliver("dm", pilot_dir / "dm.xpt")
    bad_dm_csv(pilot_dir, sandbox.deliveries / "dm" / "dm-bad.csv")

    (run,) = sandbox.dag_test(DM)
    output = sandbox.outputs[-1]
    assert run["state"] == "failed"
    by_label = {(t["task_id"], t["label"]): t["state"] for t in run["tasks"]}
    assert by_label[("deliver.validate", "dm-bad.csv")] == "failed"
    assert by_label[("deliver.validate", "dm.xpt")] == "success"
    assert by_label[("deliver.commit", "dm.xpt")] == "success"
    assert sorted(states(run, "deliver.commit")) == ["success", "upstream_failed"]

    # the good delivery committed: one version, one log entry
    versions = store(sandbox).versions("CDISCPILOT01", "dm")
    assert [v.version for v in versions] == [1]
    assert versions[0].manifest["source"]["name"] == "dm.xpt"
    assert store(sandbox).log.size() == 1

    # the bad one is in quarantine with its report, named in the task log and the notification
    (quarantine,) = (sandbox.tp_home / "quarantine").iterdir()
    report = quarantine / "report.html"
    assert report.is_file() and (quarantine / "dm-bad.csv").is_file()
    # as a URL on Airflow's API server (the trialproof plugin), not a path on a worker's disk
    report_url = f"http://localhost:8080/trialproof/quarantine/{quarantine.name}/report.html"
    assert f"validation report: {report_url}" in output
    # the task log shows the failure with its row (1-based), key and value
    assert "  FAILED values match the pattern" in output and "[RFSTDTC]: 1 row(s)" in output
    assert "row 1 (STUDYID=CDISCPILOT01, USUBJID=01-701-1015): yesterday" in output
    # and the committed version's report as a URL of the trialproof API
    assert ("validation report: https://trials.example.org/api/v1/trials/CDISCPILOT01/"
            "datasets/dm/versions/1/report.html") in output
    (note,) = sandbox.notifications()
    assert note["report"] == str(report) and note["quarantine"] == str(quarantine)
    assert note["report_url"] == report_url
    assert note["task_id"] == "deliver.validate" and note["dag_id"] == DM
    assert note["owners"] == ["dm-owner@example.org"] and note["notify"] == ["qa@example.org"]
    assert note["trial"] == "CDISCPILOT01" and note["dataset"] == "dm"

    # the same bytes again under another name: no new version; the rejected file is not retried
    sandbox.deliver("dm", pilot_dir / "dm.xpt", name="dm-redelivered.xpt")
    (again,) = sandbox.dag_test(DM)
    assert again["state"] == "success"
    assert states(again, "find_new_deliveries") == ["success"]
    assert "success" not in states(again, "deliver.stage")
    assert [v.version for v in store(sandbox).versions("CDISCPILOT01", "dm")] == [1]
    assert store(sandbox).log.size() == 1
    assert len(sandbox.notifications()) == 1


@pytest.mark.pilot_data
def test_on_arrival_ingest_anchoring_and_audit(sandbox: Sandbox, pilot_dir: Path) -> None:
    sandbox.register({"ex": {"schedule": "on-arrival", "poke_interval": 5}})
    sandbox.deliver("ex", pilot_dir / "ex.xpt")
    home = Home.open(sandbox.tp_home)

    # anchor and audit on the empty log first, then the ingest: one Airflow process for
    # the whole sequence, since each start costs seconds
    empty_anchor, empty_audit, ingest, first, second, audit = sandbox.dag_test(
        "anchor", "audit", EX, "anchor", "anchor", "audit")
    output = sandbox.outputs[-1]
    assert empty_anchor["state"] == "success" and empty_audit["state"] == "success", output
    assert "nothing to anchor: the log (size 0)" in output
    assert ingest["state"] == "success", output[-3000:]
    assert states(ingest, "deliver.commit") == ["success"]
    assert [v.version for v in store(sandbox).versions("CDISCPILOT01", "ex")] == [1]

    # the first anchor run anchored size 1 with a receipt; the second found nothing new
    assert first["state"] == "success" and second["state"] == "success"
    assert anchored(home) == [1]
    note, receipts = receipts_for(home, 1)
    assert note.startswith(home.origin) and receipts
    assert "nothing to anchor: the log (size 1)" in output

    assert audit["state"] == "success"
    assert sandbox.notifications() == []

    # flip one byte of the committed records: the audit DAG fails and lists the finding
    records = store(sandbox).version("CDISCPILOT01", "ex").path / "records.parquet"
    data = bytearray(records.read_bytes())
    data[len(data) // 2] ^= 0x01
    records.write_bytes(bytes(data))
    (tampered,) = sandbox.dag_test("audit")
    output = sandbox.outputs[-1]
    assert tampered["state"] == "failed"
    assert states(tampered, "audit") == ["failed"]
    # a finding is not retried: auditing the same bytes again finds the same thing
    assert [t["try_number"] for t in tampered["tasks"]] == [1]
    assert "audit found" in output and "CDISCPILOT01/ex" in output
    (notification,) = sandbox.notifications()
    assert notification["job"] == "audit" and "audit found" in notification["error"]

    # a home that cannot be opened is infrastructure, not a finding: audit retries it twice,
    # then notifies the real error
    (sandbox.tp_home / "config.json").rename(sandbox.tp_home / "config.json.away")
    sandbox.env["RUNNER_RETRY_DELAY"] = "0"
    (broken,) = sandbox.dag_test("audit")
    assert broken["state"] == "failed"
    assert [(t["state"], t["try_number"]) for t in broken["tasks"]] == [("failed", 3)]
    retried = sandbox.notifications()[-1]
    assert retried["job"] == "audit" and retried["try_number"] == 3
    assert str(sandbox.tp_home) in retried["error"] and "unknown error" not in retried["error"]


