"""The public API and the sponsor routes, through the ASGI app over a real home."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TRIAL, ServedHome, dm_csv
from fastapi.testclient import TestClient

from anchoring.checkpoint import open_checkpoint, parse_tlog_proof
from anchoring.merkle.verify import verify_consistency
from anchoring.note import Verifier
from anchoring.record_proof import parse_record_proof
from anchoring.verify import verify_record_proof
from pipeline.server import create_app
from pipeline.server.tokens import TokenStore

DM = f"/api/v1/trials/{TRIAL}/datasets/dm"


@pytest.fixture(scope="module")
def client(served: ServedHome) -> Iterator[TestClient]:
    with TestClient(create_app(served.path)) as c:
        yield c


def test_checkpoint_is_the_latest_anchored_one(client: TestClient, served: ServedHome) -> None:
    response = client.get("/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "max-age=10" in response.headers["cache-control"]
    checkpoint = open_checkpoint(response.text, [Verifier.from_vkey(served.vkey)])
    assert checkpoint.size == 3 == served.home.log().size()


def test_checkpoint_is_404_before_any_anchoring(tmp_path: Path) -> None:
    from pipeline.home import Home

    home = Home.init(tmp_path / "h", "example.org/log")
    with TestClient(create_app(home.path)) as c:
        response = c.get("/checkpoint")
    assert response.status_code == 404 and "anchored" in response.json()["error"]


def test_vkeys(client: TestClient, served: ServedHome) -> None:
    assert client.get("/api/v1/vkeys").json() == {
        "origin": "trials.example.org/log", "log": served.vkey, "witnesses": []}


def test_consistency_proof_verifies(client: TestClient) -> None:
    body = client.get("/api/v1/consistency", params={"from": 1, "to": 3}).json()
    verify_consistency(1, 3, bytes.fromhex(body["from_root"]), bytes.fromhex(body["to_root"]),
                       [bytes.fromhex(h) for h in body["proof"]])
    assert client.get("/api/v1/consistency", params={"from": 2, "to": 9}).status_code == 400
    assert client.get("/api/v1/consistency", params={"from": 3, "to": 2}).status_code == 400


def test_trials_datasets_versions(client: TestClient) -> None:
    assert client.get("/api/v1/trials").json() == {
        "trials": [{"trial": TRIAL, "datasets": ["dm", "ae"]}]}
    assert client.get(f"/api/v1/trials/{TRIAL}/datasets").json()["datasets"] == ["dm", "ae"]
    versions = client.get(f"{DM}/versions").json()["versions"]
    assert [(v["version"], v["records"], v["log_index"]) for v in versions] == [
        (1, 40, 0), (2, 41, 1)]
    detail = client.get(f"{DM}/versions/2").json()
    assert detail["manifest"]["root"] == detail["root"]
    assert detail["validation"]["success"] is True
    assert detail["anchored"] is True
    receipt = detail["anchors"][0]["receipts"][0]
    assert (receipt["type"], receipt["state"]) == ("trialproof/local-ledger/v1", "confirmed")


@pytest.mark.parametrize("path", [
    "/api/v1/trials/NOPE/datasets",
    "/api/v1/trials/NOPE/datasets/dm/versions",
    f"/api/v1/trials/{TRIAL}/datasets/nope/versions",
    f"{DM}/versions/7",
    f"{DM}/versions/7/report",
    f"{DM}/versions/7/records",
    f"{DM}/versions/1/proof?index=40",
    f"{DM}/versions/1/proof?key=USUBJID=S-9999",
    f"{DM}/diff?from=1&to=5",
    "/tile/0/001",
    "/tile/entries/000.p/4",
])
def test_unknown_things_are_404_with_a_json_error(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]


@pytest.mark.parametrize("path", [
    "/api/v1/trials/..%2F..%2Fkeys/datasets",
    "/api/v1/trials/%2E%2E/datasets/keys/versions",
    f"/api/v1/trials/{TRIAL}/datasets/..%2F..%2F..%2Fkeys/versions/1/report.html",
    f"/api/v1/trials/{TRIAL}/datasets/dm%00/versions",
    "/api/v1/trials/a%20b/datasets",
    "/tile/entries/../../keys/log.skey",
    "/tile/0/x../000",
    "/static/..%2Fpage.py",
    f"{DM}/versions/..%2F..%2F..%2Fkeys/report",
    f"{DM}/versions/1%2F..%2F..%2Fkeys/report.html",
    f"{DM}/versions/-1/proof?index=0",
])
def test_traversal_and_odd_names_never_reach_a_file(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404), response.text
    assert b"PRIVATE KEY" not in response.content and b"skey" not in response.content.lower()


def test_record_proof_by_index_and_by_key_verifies(client: TestClient,
                                                   served: ServedHome) -> None:
    by_index = client.get(f"{DM}/versions/2/proof", params={"index": 3}).json()
    by_key = client.get(f"{DM}/versions/2/proof", params={"key": "USUBJID=S-1003"}).json()
    assert by_index == by_key
    proof = parse_record_proof(json.dumps(by_index))
    verify_record_proof(proof, [Verifier.from_vkey(served.vkey)])
    assert proof.record["AGE"] == 99 and proof.anchors
    assert client.get(f"{DM}/versions/2/proof").status_code == 400
    assert client.get(f"{DM}/versions/2/proof?index=1&key=USUBJID=S-1001").status_code == 400
    # A key may name any of the contract's columns, as with `trialproof prove --key`.
    for other in ("AGE=99", "WEIGHT=60.75,SEX=F"):
        assert client.get(f"{DM}/versions/2/proof", params={"key": other}).json() == by_index
    ambiguous = client.get(f"{DM}/versions/2/proof", params={"key": "SEX=F"})
    assert ambiguous.status_code == 400 and "or a leaf index" in ambiguous.json()["error"]
    unknown = client.get(f"{DM}/versions/2/proof", params={"key": "NOPE=1"})
    assert unknown.status_code == 400 and "NOPE" in unknown.json()["error"]


def test_reports(client: TestClient) -> None:
    report = client.get(f"{DM}/versions/1/report").json()
    assert report["success"] is True
    html = client.get(f"{DM}/versions/1/report.html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text.lower()


def test_records_parquet_and_csv_in_leaf_order_with_salts(client: TestClient,
                                                          tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    raw = client.get(f"{DM}/versions/2/records", params={"format": "parquet"})
    assert raw.status_code == 200
    (tmp_path / "r.parquet").write_bytes(raw.content)
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column_names == ["USUBJID", "AGE", "WEIGHT", "RFSTDTC", "SEX", "_salt"]
    assert table.column("USUBJID").to_pylist() == sorted(table.column("USUBJID").to_pylist())
    csv = client.get(f"{DM}/versions/2/records", params={"format": "csv"})
    lines = csv.text.splitlines()
    assert lines[0] == '"USUBJID","AGE","WEIGHT","RFSTDTC","SEX","_salt"'
    assert len(lines) == 42
    first_salt = table.column("_salt")[0].as_py().hex()
    assert lines[1].endswith(f'"{first_salt}"')
    assert client.get(f"{DM}/versions/2/records", params={"format": "xml"}).status_code == 400


def test_bundle_carries_manifest_contract_and_a_tlog_proof(client: TestClient,
                                                           served: ServedHome) -> None:
    bundle = client.get(f"{DM}/versions/1/bundle").json()
    tlog = parse_tlog_proof(bundle["tlog_proof"])
    assert tlog.index == bundle["log_index"] == 0
    assert [h.hex() for h in tlog.proof] == bundle["log_proof"]
    assert bundle["contract"]["primaryKey"] == ["USUBJID"]
    assert bundle["manifest"]["version"] == 1


def test_diff(client: TestClient) -> None:
    body = client.get(f"{DM}/diff", params={"from": 1, "to": 2}).json()
    assert (body["added"], body["removed"], body["changed"]) == (1, 0, 1)
    changed = next(c for c in body["changes"] if c["change"] == "changed")
    assert changed["key"] == {"USUBJID": "S-1003"} and changed["columns"] == ["AGE"]


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    proof = "/api/v1/trials/{trial}/datasets/{dataset}/versions/{v}/proof"
    for path in ("/checkpoint", "/api/v1/vkeys", proof, "/api/v1/anchor", "/verifier.py",
                 "/api/v1/trials/{trial}/datasets/{dataset}/deliveries"):
        assert path in spec["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200
    # Offline, /docs must load: every script and style it names is served by the app itself.
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_verifier_py_runs_alone_on_a_served_proof(client: TestClient, served: ServedHome,
                                                  tmp_path: Path) -> None:
    script = tmp_path / "verifier.py"
    script.write_bytes(client.get("/verifier.py").content)
    proof = client.get(f"{DM}/versions/1/proof", params={"index": 5}).json()
    (tmp_path / "good.json").write_text(json.dumps(proof))
    proof["record"]["AGE"] += 1
    (tmp_path / "bad.json").write_text(json.dumps(proof))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-I", *args], capture_output=True, text=True,
                              cwd=tmp_path, check=False)

    good = run(str(script), "good.json", "--vkey", served.vkey)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("verified: record 5 of TRIAL01/dm v1")
    bad = run(str(script), "bad.json", "--vkey", served.vkey)
    assert bad.returncode == 1 and "step 'dataset path'" in bad.stderr
    malformed = run(str(script), "verifier.py", "--vkey", served.vkey)
    assert malformed.returncode == 2
    # The embedded modules are what runs, and nothing beyond the verifier surface loads.
    probe = run("-c", "import runpy, sys\n"
                      f"sys.argv = [{str(script)!r}, 'good.json', '--vkey', {served.vkey!r}]\n"
                      "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
                      "except SystemExit:\n    pass\n"
                      "print(type(sys.modules['anchoring.verify'].__loader__).__name__)\n"
                      "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                      "('pipeline', 'sqlalchemy', 'pandas', 'pyarrow', 'datafusion')))")
    assert probe.stdout.splitlines()[-2:] == ["_Embedded", "[]"], probe.stderr


def _sponsor_client(home_path: Path, tmp_path: Path, *, limit: int = 1 << 20) -> TestClient:
    deliveries = tmp_path / "incoming" / "dm"
    deliveries.mkdir(parents=True)
    registry = tmp_path / "registry.yaml"
    registry.write_text(
        "version: 1\ncontracts: [.]\ndatasets:\n"
        f"  - trial: {TRIAL}\n    dataset: dm\n    contract: dm\n"
        f"    deliveries: {deliveries}/*.csv\n    owners: [a@example.org]\n    schedule: manual\n")
    (tmp_path / "dm.json").write_text((home_path.parent / "dm.json").read_text())
    return TestClient(create_app(home_path, max_upload_bytes=limit, registry=registry))


def test_sponsor_routes_need_a_token_for_the_trial(own_home: ServedHome,
                                                   tmp_path: Path) -> None:
    store = TokenStore(own_home.path)
    token = store.create("uploader", TRIAL)
    other = store.create("other", "TRIAL02")
    client = _sponsor_client(own_home.path, tmp_path)
    url = f"{DM}/deliveries"
    files = {"file": ("dm3.csv", dm_csv(42).encode(), "text/csv")}
    assert client.post(url, files=files).status_code == 401
    assert client.post(url, files=files,
                       headers={"Authorization": "Bearer tpt_wrong"}).status_code == 401
    forbidden = client.post(url, files=files, headers={"Authorization": f"Bearer {other}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]
    assert client.post("/api/v1/anchor").status_code == 401

    ok = client.post(url, files=files, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 201, ok.text
    body = ok.json()
    delivered = tmp_path / "incoming" / "dm" / "dm3.csv"
    assert delivered.read_bytes() == dm_csv(42).encode()
    assert (own_home.path / "raw" / body["sha256"]).read_bytes() == dm_csv(42).encode()
    assert token not in (own_home.path / "tokens.json").read_text()
    assert store.find(token) is not None and store.find(token + "x") is None

    store.revoke("uploader")
    assert client.post(url, files=files,
                       headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_uploads_are_capped_and_checked(own_home: ServedHome, tmp_path: Path) -> None:
    token = TokenStore(own_home.path).create("uploader", TRIAL)
    client = _sponsor_client(own_home.path, tmp_path, limit=100)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{DM}/deliveries"
    big = client.post(url, files={"file": ("big.csv", b"x" * 101, "text/csv")}, headers=auth)
    assert big.status_code == 413
    huge = client.post(url, files={"file": ("huge.csv", b"x" * (100 << 10), "text/csv")},
                       headers=auth)
    assert huge.status_code == 413 and "larger than 100 bytes" in huge.json()["error"]
    # Refused from its Content-Length, before the body is read: even before the token check.
    early = client.post(url, files={"file": ("huge.csv", b"x" * (100 << 10), "text/csv")})
    assert early.status_code == 413
    assert not list((tmp_path / "incoming" / "dm").iterdir())
    # Refused uploads leave nothing behind in their spool (outside the home).
    assert not list(Path(tempfile.gettempdir()).glob("trialproof-upload-*"))
    wrong_kind = client.post(url, files={"file": ("dm.xpt", b"abc", "x")}, headers=auth)
    assert wrong_kind.status_code == 400
    sneaky = client.post(url, files={"file": ("../../keys/x.csv", b"abc", "x")}, headers=auth)
    assert sneaky.status_code == 201 and (tmp_path / "incoming" / "dm" / "x.csv").is_file()
    clash = client.post(url, files={"file": ("x.csv", b"abd", "x")}, headers=auth)
    assert clash.status_code == 409
    unknown = client.post(f"/api/v1/trials/{TRIAL}/datasets/lb/deliveries",
                          files={"file": ("x.csv", b"abc", "x")}, headers=auth)
    assert unknown.status_code == 404


def test_anchor_route_anchors_when_the_log_grew(own_home: ServedHome, tmp_path: Path) -> None:
    token = TokenStore(own_home.path).create("uploader", TRIAL)
    client = _sponsor_client(own_home.path, tmp_path)
    auth = {"Authorization": f"Bearer {token}"}
    proof_url = f"{DM}/versions/1/proof?index=0"
    assert client.get(proof_url).json()["log_size"] == 3
    assert client.post("/api/v1/anchor", headers=auth).json() == {"anchored": False}
    own_home.home.log().append(b'{"type":"trialproof/document/v1"}')
    anchored = client.post("/api/v1/anchor", headers=auth).json()
    assert anchored["anchored"] is True and anchored["size"] == 4
    assert client.get("/checkpoint").text.startswith("trials.example.org/log\n4\n")
    # A proof served before the anchoring is not served again: the new checkpoint covers it.
    fresh = client.get(proof_url).json()
    assert fresh["log_size"] == 4 and fresh["checkpoint"] == client.get("/checkpoint").text


def test_served_proofs_equal_the_cli_proofs_across_row_groups(tmp_path: Path) -> None:
    """Row groups hold up to 8,192-131,072 rows: proofs on each side of a boundary."""
    import pyarrow.parquet as pq
    from conftest import build_home

    from pipeline.prove import prove_record

    served = build_home(tmp_path, rows=20_000)
    records = served.path / "datasets" / TRIAL / "dm" / "v1" / "records.parquet"
    assert pq.ParquetFile(records).metadata.num_row_groups > 1
    with TestClient(create_app(served.path)) as client:
        for index in (0, 8191, 8192, 16384, 19999):
            body = client.get(f"{DM}/versions/1/proof", params={"index": index}).json()
            expected = prove_record(served.home, TRIAL, "dm", version=1, index=index)
            assert body == expected.to_json_object(), index
        by_key = client.get(f"{DM}/versions/1/proof", params={"key": "USUBJID=S-9999"}).json()
    assert by_key["record"]["USUBJID"] == "S-9999"
    verify_record_proof(parse_record_proof(json.dumps(by_key)),
                        [Verifier.from_vkey(served.vkey)])


def test_checkpoint_shows_cosignatures_added_to_the_anchored_note(own_home: ServedHome) -> None:
    from anchoring.note import COSIGNATURE_V1, Signer, parse_note
    from pipeline.anchor import anchored

    with TestClient(create_app(own_home.path)) as client:
        before = client.get("/checkpoint").text
        witness = Signer.generate("witness.example.org", COSIGNATURE_V1)
        note_file = (own_home.path / "anchors" / f"{anchored(own_home.home)[-1]:012d}"
                     / "checkpoint.txt")
        note_file.write_text(before + witness.signature_line(parse_note(before).text))
        after = client.get("/checkpoint").text
    assert after.startswith(before) and "\u2014 witness.example.org " in after
