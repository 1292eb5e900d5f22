"""Versions and their history: salts bound to the version (and versions salted before
that), rollbacks, diffs with values, and listing what a home holds."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import pipeline.ingest
from anchoring._internal.tree import MerkleTree
from anchoring.canonical import (
    SALT_SCHEME_V1,
    SALT_SCHEME_V2,
    canonical_json,
    leaf_input,
    record_salt,
)
from anchoring.manifest import check_manifest, manifest_salt_scheme
from anchoring.merkle.hasher import leaf_hash
from anchoring.verify import verify_record_proof
from pipeline.audit import audit
from pipeline.cli import main
from pipeline.contract import Contract, parse_contract
from pipeline.diff import diff_versions
from pipeline.home import Home
from pipeline.ingest import commit, ingest, stage, validate
from pipeline.prove import prove_record
from pipeline.store import SALT_COLUMN, Store

ORIGIN = "trials.example.org/log"
CONTRACT = parse_contract(
    {
        "name": "vs",
        "fields": [
            {"name": "USUBJID", "type": "string", "constraints": {"required": True}},
            {"name": "VSSEQ", "type": "integer", "constraints": {"required": True}},
            {"name": "VSTESTCD", "type": "string"},
            {"name": "VSSTRESN", "type": "number"},
        ],
        "primaryKey": ["USUBJID", "VSSEQ"],
    }
)


def vs_rows(n: int = 6) -> dict[str, list[Any]]:
    return {
        "USUBJID": [f"01-701-{1000 + i // 2}" for i in range(n)],
        "VSSEQ": [i % 2 + 1 for i in range(n)],
        "VSTESTCD": ["SYSBP" if i % 2 else "DIABP" for i in range(n)],
        "VSSTRESN": [70.0 + i for i in range(n)],
    }


def write(rows: dict[str, list[Any]], path: Path) -> Path:
    pacsv.write_csv(pa.table(rows), path)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.init(tmp_path / "home", ORIGIN)


def store_of(home: Home) -> Store:
    return Store(home.path, home.log())


def cli(capsys: pytest.CaptureFixture[str], home: Home, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--home", str(home.path)])
    out, err = capsys.readouterr()
    return int(stopped.value.code or 0), out, err


# -- salts bind the version (docs/formats.md §3) ---------------------------------------------------


def test_a_proofs_salt_opens_no_other_version_of_the_record(home: Home, tmp_path: Path) -> None:
    """Record A is the same in v1 and v2. The salt a v1 proof discloses is not A's v2 salt,
    and salt || A does not give A's v2 leaf, which B's v2 proof carries as a sibling: a
    holder of the v1 proof cannot test guesses of A's v2 values against it."""
    rows = vs_rows()
    ingest(home, write(rows, tmp_path / "v1.csv"), "T1", "vs", CONTRACT)
    rows["VSSTRESN"][5] = 99.0  # B changes; A (row 0) does not
    second = ingest(home, write(rows, tmp_path / "v2.csv"), "T1", "vs", CONTRACT)
    assert second.manifest["salt_scheme"] == SALT_SCHEME_V2
    check_manifest(second.manifest)

    key = {"USUBJID": "01-701-1000", "VSSEQ": "1"}
    old = prove_record(home, "T1", "vs", version=1, key=key)
    new = prove_record(home, "T1", "vs", version=2, key=key)
    for proof in (old, new):
        verify_record_proof(proof, [home.verifier])
    assert old.record == new.record
    assert old.salt != new.salt
    v2_leaves = MerkleTree.open(second.version_dir / "tree.bin").leaf_hashes()
    guessed = leaf_hash(leaf_input(old.salt, canonical_json(old.record)))
    assert guessed not in {v2_leaves[i : i + 32] for i in range(0, len(v2_leaves), 32)}
    salt_key = home.trial_salt_key("T1")
    assert new.salt == record_salt(salt_key, "T1", "vs", ["01-701-1000", 1], version=2)
    assert old.salt == record_salt(salt_key, "T1", "vs", ["01-701-1000", 1], version=1)

    # Diffs compare canonical bytes: only B changed, though every leaf did.
    diff = diff_versions(store_of(home), "T1", "vs", 1, 2)
    assert diff.summary() == {"added": 0, "removed": 0, "changed": 1}
    (entry,) = diff.entries()
    assert entry["key"] == {"USUBJID": "01-701-1002", "VSSEQ": 2}


def _commit_as_before_salt_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next commits write what the code did before salt schemes existed: salts
    from JCS([trial, dataset, key values...]) and no ``salt_scheme`` in the manifest."""
    monkeypatch.setattr(pipeline.ingest, "SALT_SCHEME", SALT_SCHEME_V1)
    real: Callable[[Any], bytes] = pipeline.ingest.manifest_leaf_input

    def without_scheme(manifest: dict[str, Any]) -> bytes:
        return real({k: v for k, v in manifest.items() if k != "salt_scheme"})

    monkeypatch.setattr(pipeline.ingest, "manifest_leaf_input", without_scheme)


def test_versions_salted_before_the_version_was_bound_stay_usable(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version committed under the old scheme (no ``salt_scheme``) is still proven,
    verified, diffed and audited clean next to versions under the new one."""
    rows = vs_rows()
    with monkeypatch.context() as patch:
        _commit_as_before_salt_schemes(patch)
        old = ingest(home, write(rows, tmp_path / "v1.csv"), "T1", "vs", CONTRACT)
    stored = json.loads((old.version_dir / "manifest.json").read_bytes())
    assert "salt_scheme" not in stored
    assert manifest_salt_scheme(stored) == SALT_SCHEME_V1
    salt_key = home.trial_salt_key("T1")
    salts = pq.read_table(old.version_dir / "records.parquet").column(SALT_COLUMN).to_pylist()
    assert salts[0] == record_salt(
        salt_key, "T1", "vs", ["01-701-1000", 1], version=1, scheme=SALT_SCHEME_V1
    )
    assert salts[0] != record_salt(salt_key, "T1", "vs", ["01-701-1000", 1], version=1)

    rows["VSSTRESN"][2] = 12.5
    new = ingest(home, write(rows, tmp_path / "v2.csv"), "T1", "vs", CONTRACT)
    assert new.manifest["salt_scheme"] == SALT_SCHEME_V2

    report = audit(home)
    assert report.ok, report.findings
    assert report.versions_checked == 2
    for version in (1, 2):
        verify_record_proof(prove_record(home, "T1", "vs", version=version, index=2),
                            [home.verifier])
    diff = diff_versions(store_of(home), "T1", "vs", 1, 2)
    assert diff.summary() == {"added": 0, "removed": 0, "changed": 1}
    assert diff.entries(values=1)[0]["values"] == {"VSSTRESN": {"from": 72.0, "to": 12.5}}

    # The audit recomputes old-scheme salts under their own scheme: a swapped salt is found.
    table = pq.read_table(old.version_dir / "records.parquet")
    forged = [*salts[:1], bytes(32), *salts[2:]]
    forged[1] = salts[1][::-1]
    pq.write_table(table.set_column(table.schema.get_field_index(SALT_COLUMN), SALT_COLUMN,
                                    pa.array(forged, pa.binary(32))),
                   old.version_dir / "records.parquet")
    checks = {f.check for f in audit(home).findings if f.version == 1}
    assert "salts" in checks


def test_the_audit_names_a_salt_scheme_it_does_not_know(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real: Callable[[Any], bytes] = pipeline.ingest.manifest_leaf_input
    monkeypatch.setattr(pipeline.ingest, "manifest_leaf_input",
                        lambda m: real({**m, "salt_scheme": "trialproof/salt/v9"}))
    ingest(home, write(vs_rows(), tmp_path / "v1.csv"), "T1", "vs", CONTRACT)
    (finding,) = audit(home).findings
    assert (finding.check, finding.version) == ("salts", 1)
    assert "unknown salt scheme 'trialproof/salt/v9'" in finding.detail


# -- rollbacks ------------------------------------------------------------------------------------


def test_a_rollback_is_a_new_version_naming_the_earlier_one(home: Home, tmp_path: Path) -> None:
    """The bytes of an earlier version delivered again make a new version whose manifest
    names that version; only the latest version's bytes make no new version."""
    rows = vs_rows()
    a = write(rows, tmp_path / "a.csv")
    rows["VSSTRESN"][0] = 50.0
    b = write(rows, tmp_path / "b.csv")

    assert ingest(home, a, "T1", "vs", CONTRACT).version == 1
    assert ingest(home, b, "T1", "vs", CONTRACT).version == 2
    rollback = ingest(home, a, "T1", "vs", CONTRACT)
    assert (rollback.status, rollback.version) == ("committed", 3)
    assert rollback.manifest["same_content_as"] == 1
    check_manifest(rollback.manifest)
    again = ingest(home, a, "T1", "vs", CONTRACT)
    assert (again.status, again.version) == ("unchanged", 3)

    # The staged path (as Airflow runs it) deduplicates against the latest version too.
    def commit_path(source: Path) -> pipeline.ingest.IngestResult:
        staged = stage(home, source)
        return commit(home, validate(home, staged, "T1", "vs", CONTRACT), CONTRACT)

    forward = commit_path(b)
    assert (forward.status, forward.version, forward.manifest["same_content_as"]) == (
        "committed", 4, 2)
    assert commit_path(b).status == "unchanged"
    assert "same_content_as" not in store_of(home).version("T1", "vs", 2).manifest

    assert home.log().size() == 4
    diff = diff_versions(store_of(home), "T1", "vs", 1, 3)
    assert diff.summary() == {"added": 0, "removed": 0, "changed": 0}
    assert audit(home).ok


def test_rollback_through_the_cli_says_so(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = tmp_path / "vs.json"
    contract.write_text(json.dumps(dict(CONTRACT.descriptor)))
    rows = vs_rows()
    a = write(rows, tmp_path / "a.csv")
    rows["VSSEQ"][0] = 7
    b = write(rows, tmp_path / "b.csv")
    for source in (a, b):
        code, _, err = cli(capsys, home, "ingest", str(source), "--trial", "T1", "--dataset",
                           "vs", "--contract", str(contract))
        assert code == 0, err
    code, out, err = cli(capsys, home, "ingest", str(a), "--trial", "T1", "--dataset", "vs",
                         "--contract", str(contract))
    assert code == 0, err
    assert "committed T1/vs v3" in out and "same bytes as v1" in out
    code, out, _ = cli(capsys, home, "versions", "--trial", "T1", "--dataset", "vs", "--json")
    assert [v["same_content_as"] for v in json.loads(out)["versions"]] == [None, None, 1]
    code, out, _ = cli(capsys, home, "versions", "--trial", "T1", "--dataset", "vs")
    assert out.splitlines()[2].endswith("(same bytes as v1)")


# -- diff --values ---------------------------------------------------------------------------------


def _three_changes(home: Home, tmp_path: Path) -> None:
    rows = vs_rows()
    ingest(home, write(rows, tmp_path / "v1.csv"), "T1", "vs", CONTRACT)
    rows["VSSTRESN"][1] = 12.25
    rows["VSTESTCD"][3] = 'PULSE "bpm"'
    rows["VSSTRESN"][3] = None
    rows["VSTESTCD"][4] = "TEMP"
    ingest(home, write(rows, tmp_path / "v2.csv"), "T1", "vs", CONTRACT)


def test_diff_values_show_old_and_new_for_changed_columns(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _three_changes(home, tmp_path)
    args = ("diff", "--trial", "T1", "--dataset", "vs", "--from", "1", "--to", "2")

    code, out, _ = cli(capsys, home, *args)
    assert code == 0 and "VSSTRESN:" not in out  # without --values, names only

    code, out, _ = cli(capsys, home, *args, "--values")
    assert code == 0
    assert "VSSTRESN: 71.0 -> 12.25" in out
    assert 'VSTESTCD: "SYSBP" -> "PULSE \\"bpm\\""' in out
    assert "VSSTRESN: 73.0 -> null" in out
    assert 'VSTESTCD: "DIABP" -> "TEMP"' in out
    assert "values shown for" not in out

    code, out, _ = cli(capsys, home, *args, "--values", "--json")
    payload = json.loads(out)
    assert payload["values_capped"] is False
    changes = {e["key"]["USUBJID"] + "/" + str(e["key"]["VSSEQ"]): e for e in payload["changes"]}
    assert changes["01-701-1000/2"]["values"] == {"VSSTRESN": {"from": 71.0, "to": 12.25}}
    assert changes["01-701-1001/2"]["values"] == {
        "VSTESTCD": {"from": "SYSBP", "to": 'PULSE "bpm"'},
        "VSSTRESN": {"from": 73.0, "to": None},
    }


def test_diff_values_are_capped_and_say_so(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _three_changes(home, tmp_path)
    args = ("diff", "--trial", "T1", "--dataset", "vs", "--from", "1", "--to", "2", "--values",
            "--values-limit", "1")
    code, out, _ = cli(capsys, home, *args)
    assert code == 0
    assert out.count(" -> ") == 2 and "VSSTRESN: 71.0 -> 12.25" in out  # the header and one
    assert "values shown for the first 1 of 3 changed records listed (use --values-limit)" in out

    code, out, _ = cli(capsys, home, *args, "--json")
    payload = json.loads(out)
    assert (payload["values_limit"], payload["values_capped"]) == (1, True)
    assert [("values" in e) for e in payload["changes"]] == [True, False, False]

    code, _, err = cli(capsys, home, *args[:-1], "-1")
    assert code == 2 and "--values-limit" in err


# -- trials and datasets ---------------------------------------------------------------------------


def test_trials_and_datasets_list_what_the_home_holds(
    home: Home, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, home, "trials")
    assert (code, out.strip()) == (0, "the home holds no trial yet")
    code, out, _ = cli(capsys, home, "trials", "--json")
    assert json.loads(out) == {"trials": []}

    rows = vs_rows()
    ingest(home, write(rows, tmp_path / "a.csv"), "T2", "vs", CONTRACT)
    ingest(home, write(rows, tmp_path / "a.csv"), "T1", "vs", CONTRACT)
    ingest(home, write(vs_rows(8), tmp_path / "b.csv"), "T1", "vs", CONTRACT)
    ingest(home, write(rows, tmp_path / "c.csv"), "T1", "ae", _renamed(CONTRACT, "ae"))

    code, out, _ = cli(capsys, home, "trials", "--json")
    listed = json.loads(out)["trials"]
    assert [(t["trial"], t["datasets"], t["versions"]) for t in listed] == [
        ("T1", 2, 3), ("T2", 1, 1)]
    code, out, _ = cli(capsys, home, "trials")
    assert out.splitlines()[0].startswith("T1  2 datasets  3 versions  last ingested 20")

    code, out, _ = cli(capsys, home, "datasets", "--trial", "T1", "--json")
    payload = json.loads(out)
    assert payload["trial"] == "T1"
    latest = store_of(home).version("T1", "vs")
    assert [(d["dataset"], d["versions"], d["latest_version"], d["records"]) for d in
            payload["datasets"]] == [("ae", 1, 1, 6), ("vs", 2, 2, 8)]
    assert payload["datasets"][1]["root"] == latest.manifest["root"]
    assert payload["datasets"][1]["log_index"] == latest.log_index
    code, out, _ = cli(capsys, home, "datasets", "--trial", "T1")
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [["ae", "v1"], ["vs", "v2"]]

    code, out, err = cli(capsys, home, "datasets", "--trial", "T9")
    assert code == 2 and out == ""
    assert err.strip() == ("trialproof: --trial 'T9': the home holds no such trial "
                           "(trials: T1, T2)")


def _renamed(contract: Contract, name: str) -> Contract:
    return parse_contract({**dict(contract.descriptor), "name": name})


def test_a_commit_overtaken_by_another_hashes_again_for_the_next_version(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Salts bind the version, so a commit salts its records for the version it expects.
    When another commit takes that number first (here: while the records are hashed),
    this one is salted again for the next number, never appended with stale salts."""
    rows = vs_rows()
    mine = write(rows, tmp_path / "mine.csv")
    rows["VSSTRESN"][0] = 1.5
    theirs = write(rows, tmp_path / "theirs.csv")
    real = pipeline.ingest.leaf_chunks
    hashed_for: list[int] = []

    def overtaken(*args: Any, **kwargs: Any) -> Any:
        hashed_for.append(kwargs["version"])
        if len(hashed_for) == 1:  # the other delivery commits while this one hashes
            assert ingest(home, theirs, "T1", "vs", CONTRACT).version == 1
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.ingest, "leaf_chunks", overtaken)
    result = ingest(home, mine, "T1", "vs", CONTRACT)
    assert hashed_for == [1, 1, 2]  # mine for v1, theirs for v1, mine again for v2
    assert (result.status, result.version) == ("committed", 2)
    assert result.manifest["previous"] == home.log().entry(0).leaf_hash.hex()
    salt = pq.read_table(result.version_dir / "records.parquet").column(SALT_COLUMN)[0].as_py()
    assert salt == record_salt(home.trial_salt_key("T1"), "T1", "vs", ["01-701-1000", 1], version=2)
    assert not list((home.path / "datasets" / "T1" / "vs").glob(".staging-*"))
    assert audit(home).ok


def test_the_ingest_dags_pick_up_a_rollback_but_not_files_already_committed(
    home: Home, tmp_path: Path
) -> None:
    """What the ingest DAGs list as new: the latest version's bytes under any name are
    not, nor an earlier version's bytes in a file older than the latest version (still
    lying in the folder); the same bytes written after it (a rollback) are."""
    from pipeline.registry import load_registry, new_deliveries

    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "vs.json").write_text(json.dumps(dict(CONTRACT.descriptor)))
    folder = tmp_path / "deliveries"
    folder.mkdir()
    registry = tmp_path / "registry.yaml"
    registry.write_text(json.dumps({"contracts": ["contracts"], "datasets": [
        {"trial": "T1", "dataset": "vs", "contract": "vs", "deliveries": "deliveries/*.csv",
         "schedule": "@daily", "owners": ["owner@example.org"]}]}))
    (entry,), problems = load_registry(registry)
    assert not problems

    def listed() -> list[str]:
        return [d["name"] for d in new_deliveries(home, entry)]

    def written(path: Path, seconds_from_now: float) -> Path:
        os.utime(path, (time.time() + seconds_from_now,) * 2)
        return path

    rows = vs_rows()
    a = written(write(rows, folder / "a.csv"), -3600)
    ingest(home, a, "T1", "vs", CONTRACT)
    rows["VSSEQ"][0] = 9
    b = written(write(rows, folder / "b.csv"), -3600)
    ingest(home, b, "T1", "vs", CONTRACT)
    (folder / "b-again.csv").write_bytes(b.read_bytes())
    assert listed() == []  # a.csv is v1 still lying there; b-again.csv has the latest's bytes

    (folder / "a-rollback.csv").write_bytes(a.read_bytes())
    written(folder / "a-rollback.csv", 5)
    assert listed() == ["a-rollback.csv"]
    (folder / "a-rollback.csv").unlink()
    b.write_bytes(a.read_bytes())  # b.csv written back to v1's bytes
    written(b, 5)
    assert listed() == ["b.csv"]
    assert ingest(home, b, "T1", "vs", CONTRACT).manifest["same_content_as"] == 1
    written(folder / "b-again.csv", -60)
    assert listed() == []  # b-again.csv holds v2's bytes, but is older than v3
