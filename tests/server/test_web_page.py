"""The web page in headless Chromium (Debian's chromium, driven by Playwright): browsing,
and record verification in the browser against the vkey pinned in the page's source.

Screenshots go to ``$TRIALPROOF_TEST_ARTIFACTS`` (default: a pytest temporary folder).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TRIAL, ServedHome

from anchoring.checkpoint import Checkpoint
from anchoring.note import Signer, parse_note

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("TRIALPROOF_TEST_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, server_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    opened.requests_seen = []
    opened.on("request", lambda request: opened.requests_seen.append(request.url))
    yield opened
    context.close()


def _proof(server_url: str, index: int = 3) -> dict[str, Any]:
    url = f"{server_url}/api/v1/trials/{TRIAL}/datasets/dm/versions/2/proof?index={index}"
    with urllib.request.urlopen(url, timeout=30) as response:
        proof: dict[str, Any] = json.loads(response.read())
    return proof


def _result(page: Any) -> tuple[str, str, str]:
    box = page.locator("#result")
    # The page's CSP forbids eval, so wait on a selector rather than a JS predicate.
    page.wait_for_selector('#result[data-result="verified"], #result[data-result="failed"]',
                           timeout=20_000)
    return box.get_attribute("data-result"), box.get_attribute("data-step"), box.inner_text()


def _verify_pasted(page: Any, server_url: str, proof: dict[str, Any]) -> tuple[str, str, str]:
    page.goto(f"{server_url}/")
    page.fill("#proof-input", json.dumps(proof))
    page.click("#verify-button")
    return _result(page)


@pytest.mark.needs("chromium")
def test_a_valid_proof_shows_as_verified(page: Any, server_url: str, served: ServedHome,
                                         artifacts: Path) -> None:
    page.goto(f"{server_url}/verify?trial={TRIAL}&dataset=dm&version=2&index=3")
    result, step, text = _result(page)
    page.screenshot(path=str(artifacts / "verified.png"), full_page=True)
    assert (result, step) == ("verified", ""), text
    assert "record 3 of TRIAL01/dm v2" in text
    # The key the page trusts is in its source, as served.
    assert json.loads(page.locator("#pinned-vkeys").text_content()) == [served.vkey]
    page.wait_for_selector("#catalog tr[data-version='2']")
    page.wait_for_selector("#timeline svg path.growth")
    assert page.locator("#timeline svg line.anchoring").count() == 1
    assert all(url.startswith(server_url + "/") for url in page.requests_seen), \
        page.requests_seen


@pytest.mark.needs("chromium")
def test_a_pasted_proof_verifies(page: Any, server_url: str) -> None:
    result, step, text = _verify_pasted(page, server_url, _proof(server_url, 10))
    assert (result, step) == ("verified", ""), text


@pytest.mark.needs("chromium")
def test_one_record_value_changed_fails_at_the_record_leaf(page: Any, server_url: str,
                                                           artifacts: Path) -> None:
    proof = _proof(server_url)
    proof["record"]["AGE"] += 1
    result, step, text = _verify_pasted(page, server_url, proof)
    page.screenshot(path=str(artifacts / "record-changed.png"), full_page=True)
    assert (result, step) == ("failed", "record leaf"), text


@pytest.mark.needs("chromium")
def test_an_unknown_signing_key_fails_at_the_checkpoint_signature(
        page: Any, server_url: str, artifacts: Path) -> None:
    proof = _proof(server_url)
    body = Checkpoint.from_body(parse_note(proof["checkpoint"]).text)
    impostor = Signer.generate("trials.example.org/log")
    proof["checkpoint"] = body.sign([impostor])
    result, step, text = _verify_pasted(page, server_url, proof)
    page.screenshot(path=str(artifacts / "unknown-key.png"), full_page=True)
    assert (result, step) == ("failed", "checkpoint signature"), text


@pytest.mark.needs("chromium")
def test_a_proof_file_can_be_uploaded(page: Any, server_url: str, tmp_path: Path) -> None:
    proof = _proof(server_url, 0)
    first = proof["log_proof"][0]  # one hash changed: the path no longer meets the root
    proof["log_proof"][0] = ("0" if first[0] != "0" else "1") + first[1:]
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    page.goto(f"{server_url}/")
    page.set_input_files("#proof-file", str(path))
    result, step, _text = _result(page)
    assert (result, step) == ("failed", "log path")


@pytest.mark.needs("chromium")
def test_verify_link_for_a_missing_record(page: Any, server_url: str) -> None:
    page.goto(f"{server_url}/verify?trial={TRIAL}&dataset=dm&version=2&index=999")
    result, step, _text = _result(page)
    assert (result, step) == ("failed", "fetch")
