"""Pre-registration over HTTP: documents, registry history, the outcome check, entry proofs
that verify with the CLI, `verify-document --url`, and in the browser."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ORIGIN, start_server, stop_server

from pipeline.anchor import anchor
from pipeline.home import Home
from pipeline.preregistration import add_registry_record, register_document

TRIAL = "NCTDEMO"
CTGOV = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "ctgov"
PROTOCOL = b"%PDF-1.7 protocol v1.0 for NCTDEMO\n"


@pytest.fixture(scope="module")
def prereg_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    base = tmp_path_factory.mktemp("prereg")
    home = Home.init(base / "home", ORIGIN)
    protocol = base / "protocol.pdf"
    protocol.write_bytes(PROTOCOL)
    register_document(home, TRIAL, "protocol", "v1.0", protocol)
    record = json.loads((CTGOV / "NCT02210780.json").read_text())
    first = copy.deepcopy(record)
    first.pop("resultsSection")
    add_registry_record(home, TRIAL, first)
    anchor(home)
    add_registry_record(home, TRIAL, record)  # results posted later; outcomes unchanged
    anchor(home)
    return home


@pytest.fixture(scope="module")
def prereg_url(prereg_home: Home) -> Iterator[str]:
    process, url = start_server(prereg_home.path)
    yield url
    stop_server(process)


def test_documents_records_and_outcomes(prereg_url: str) -> None:
    trials = httpx.get(f"{prereg_url}/api/v1/trials").json()["trials"]
    assert {"trial": TRIAL, "datasets": []} in trials
    base = f"{prereg_url}/api/v1/trials/{TRIAL}"
    documents = httpx.get(f"{base}/documents").json()["documents"]
    assert [d["kind"] for d in documents] == ["protocol"]
    assert documents[0]["proven_time"]["ledger"] == "local"
    assert documents[0]["proven_time"]["independent"] is False
    records = httpx.get(f"{base}/registry-records").json()["records"]
    assert [r["log_index"] for r in records] == [1, 2]
    assert records[0]["proven_time"]["anchored_size"] == 2
    outcomes = httpx.get(f"{base}/outcomes").json()
    assert outcomes["ok"] is True
    assert {c["against"] for c in outcomes["studies"][0]["comparisons"]} == {
        "registration", "results"}


def test_unknown_things_are_404(prereg_url: str) -> None:
    assert httpx.get(f"{prereg_url}/api/v1/documents/{'0' * 64}/proof").status_code == 404
    assert httpx.get(f"{prereg_url}/api/v1/documents/nothex/proof").status_code == 400
    assert httpx.get(f"{prereg_url}/api/v1/trials/OTHER/outcomes").status_code == 404
    assert httpx.get(f"{prereg_url}/api/v1/entries/99/proof").status_code == 404
    assert httpx.get(f"{prereg_url}/api/v1/trials/..%2Fkeys/documents").status_code in (400, 404)


def test_verify_document_through_the_api(prereg_home: Home, prereg_url: str,
                                         tmp_path: Path) -> None:
    document = tmp_path / "protocol-in-hand.pdf"
    document.write_bytes(PROTOCOL)
    vkey = prereg_home.verifier.vkey
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "verify-document", str(document), "--vkey", vkey,
         "--url", prereg_url], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "protocol 'v1.0' of NCTDEMO" in done.stdout and "not independent" in done.stdout
    unknown = tmp_path / "other.pdf"
    unknown.write_bytes(b"never registered")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "verify-document", str(unknown), "--vkey", vkey,
         "--url", prereg_url], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "knows no document" in done.stderr


def test_entry_proofs_verify_with_the_cli_and_verifier_py(prereg_home: Home, prereg_url: str,
                                                          tmp_path: Path) -> None:
    sha = hashlib.sha256(PROTOCOL).hexdigest()
    proof = httpx.get(f"{prereg_url}/api/v1/documents/{sha}/proof").json()
    assert proof["type"] == "trialproof/entry-proof/v1"
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    verifier = tmp_path / "verifier.py"
    verifier.write_bytes(httpx.get(f"{prereg_url}/verifier.py").content)
    vkey = prereg_home.verifier.vkey
    for command in ([sys.executable, "-m", "pipeline", "verify"],
                    [sys.executable, "-I", str(verifier)]):
        done = subprocess.run([*command, str(path), "--vkey", vkey], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr
    proof["entry"]["label"] = "v2.0"
    path.write_text(json.dumps(proof))
    done = subprocess.run([sys.executable, "-I", str(verifier), str(path), "--vkey", vkey],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "log path" in done.stdout + done.stderr


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.needs("chromium")
def test_the_page_shows_the_timeline_and_verifies_an_entry_proof(prereg_url: str) -> None:
    from playwright.sync_api import sync_playwright

    sha = hashlib.sha256(PROTOCOL).hexdigest()
    proof: dict[str, Any] = httpx.get(f"{prereg_url}/api/v1/documents/{sha}/proof").json()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{prereg_url}/")
        # The trial's documents and registry history, in log order, and the outcome check.
        page.wait_for_selector(f"[data-trial={TRIAL}] .prereg-timeline li", timeout=20_000)
        items = page.locator(".prereg-timeline li")
        assert items.count() == 3
        assert "protocol" in items.nth(0).inner_text()
        assert "NCT02210780" in items.nth(2).inner_text()
        assert page.locator("[data-outcomes=ok]").count() == 1
        page.fill("#proof-input", json.dumps(proof))
        page.click("#verify-button")
        page.wait_for_selector('#result[data-result]', timeout=20_000)
        box = page.locator("#result")
        assert box.get_attribute("data-result") == "verified", box.inner_text()
        assert "protocol" in box.inner_text()
        proof["entry"]["sha256"] = "0" * 64
        page.fill("#proof-input", json.dumps(proof))
        page.click("#verify-button")
        page.wait_for_selector('#result[data-step="log path"]', timeout=20_000)
        browser.close()
