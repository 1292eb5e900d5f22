"""Key files delivered to a real ingest DAG (dag.test()): copied and linked into the drop
folder, and a registry entry aimed at the home's keys. No task log, import error,
report or notification may carry the key material."""

from __future__ import annotations

import pytest
from airflow_sandbox import Sandbox, states

pytestmark = pytest.mark.usefixtures("execution_api")

DM = "ingest__CDISCPILOT01__dm"


def test_key_files_as_deliveries_leak_into_no_output(sandbox: Sandbox) -> None:
    keys = sandbox.tp_home / "keys"
    skey = (keys / "log.skey").read_text().strip()
    salt = (keys / "salt.key").read_text().strip()
    secrets = [skey, skey.split("+", 4)[4], salt]  # PRIVATE+KEY+name+keyid+base64key
    sandbox.register({"dm": {}, "ae": {"deliveries": f"{keys}/*"}})
    drop = sandbox.deliveries / "dm"
    (drop / "skey.csv").write_text(skey + "\n")
    (drop / "salt.csv").write_text(salt + "\n")
    (drop / "link.csv").symlink_to(keys / "log.skey")

    bag = sandbox.run("dagbag")
    assert DM in bag["dag_ids"] and "ingest__CDISCPILOT01__ae" not in bag["dag_ids"]
    errors = "\n".join(bag["import_errors"].values())
    assert "datasets[1] (CDISCPILOT01/ae) field 'deliveries'" in errors
    assert "inside the trialproof home" in errors

    (run,) = sandbox.dag_test(DM)
    assert run["state"] == "failed"
    by_label = {(t["task_id"], t["label"]): t["state"] for t in run["tasks"]}
    assert by_label[("deliver.validate", "skey.csv")] == "failed"
    assert by_label[("deliver.validate", "salt.csv")] == "failed"
    assert "link.csv" not in {t["label"] for t in run["tasks"]}  # a link is never listed
    assert "success" not in states(run, "deliver.commit")
    notes = sandbox.notifications()
    assert len(notes) == 2 and all("column(s) not in contract" in n["error"] for n in notes)

    airflow_homes = {sandbox.airflow_home, *([sandbox.server.airflow_home] if sandbox.server
                                             else [])}
    task_logs = [p.read_text(errors="replace") for home in airflow_homes
                 for p in home.rglob("*.log")]
    reports = [p.read_text() for p in sandbox.tp_home.rglob("report.*")]
    assert len(reports) >= 2  # at least the JSON report of each rejected delivery
    everything = "\n".join([*sandbox.outputs, errors, *task_logs, *reports,
                            (sandbox.tp_home / "notifications.log").read_text()])
    assert "link.csv" in everything and "symbolic link" in everything
    for secret in secrets:
        assert secret not in everything
