"""Rules with one home, checked where their users could once disagree: the name rule,
the contract search folders, a home's store and the durable write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from trialproof_testkit import ORIGIN

from pipeline.cli import _contract_search
from pipeline.contract import CONTRACTS_ENV, contract_search_folders, load_contract
from pipeline.errors import StoreError
from pipeline.home import Home
from pipeline.registry import RegistryProblem, load_registry, read_registry
from pipeline.registry_watch import parse_watch
from pipeline.store import check_name

REPO = Path(__file__).resolve().parents[2]
CONTRACT = '{"name": "lb", "fields": [{"name": "K", "type": "integer"}], "primaryKey": "K"}'


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("CDISCPILOT01", True),
        ("a" * 128, True),
        ("NCT" + "0" * 97, True),  # longer than any registry's IDs, still a plain name
        ("a" * 129, False),
        ("-lb", False),
        ("lb/../x", False),
        ("lb\n", False),
        ("", False),
    ],
)
def test_store_registry_and_registry_watch_agree_on_names(tmp_path: Path, name: str,
                                                          plain: bool) -> None:
    try:
        check_name(name, "trial")
        stored = True
    except StoreError:
        stored = False
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "lb.json").write_text(CONTRACT)
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump({"contracts": ["contracts"], "datasets": [
        {"trial": name, "dataset": "lb", "contract": "lb", "deliveries": "in/*.csv",
         "schedule": "@daily", "owners": ["dm@example.org"]}]}))
    _, problems = load_registry(registry)
    registered = not [p for p in problems if p.field == "trial"]
    watch_problems: list[RegistryProblem] = []
    parse_watch({"studies": [{"trial": "T1", "study_id": name}]}, watch_problems)
    assert (stored, registered, not watch_problems) == (plain, plain, plain)


def test_a_contract_folder_reached_two_ways_is_searched_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$TRIALPROOF_CONTRACTS naming ./schemas/contracts does not make every name in it
    ambiguous, for the CLI as for the registry."""
    folder = tmp_path.resolve() / "schemas" / "contracts"
    folder.mkdir(parents=True)
    (folder / "lb.json").write_text(CONTRACT)
    other = tmp_path.resolve() / "more"
    other.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CONTRACTS_ENV, os.pathsep.join(["more", "schemas/contracts", "gone"]))
    home = Home.init(tmp_path / "home", ORIGIN)
    search = _contract_search(home)
    assert search == (other, folder)
    assert load_contract("lb", search).path == folder / "lb.json"
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump({"datasets": []}))
    assert read_registry(registry).contract_dirs == (other, folder)
    assert contract_search_folders() == (other, folder)
    (home.path / "contracts").mkdir()
    assert _contract_search(home) == (other, folder, home.path / "contracts")


def test_a_homes_store_is_over_its_log(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    store = home.store()
    assert store.root == home.path and store.log is home.log()


def test_a_document_copy_that_fails_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Registering a document writes it with the one durable-write helper: a full disk
    leaves neither a partial document nor its temporary file."""
    Home.init(tmp_path / "home", ORIGIN)
    document = tmp_path / "protocol.pdf"
    document.write_bytes(b"%PDF" + b"x" * 50_000)
    script = textwrap.dedent(f"""
        import resource, signal
        from pathlib import Path
        from pipeline.home import Home
        from pipeline.preregistration import register_document
        home = Home.open(Path({str(tmp_path / "home")!r}))
        home.log().size()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        try:
            register_document(home, "T1", "protocol", "v1", Path({str(document)!r}))
        except OSError as exc:
            print(exc.strerror)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, check=True, timeout=120)
    assert "File too large" in done.stdout, done.stderr
    assert list((tmp_path / "home" / "documents").iterdir()) == []


@pytest.mark.parametrize("value, whole", [("AB", True), ("XAB", False), ("ABY", False),
                                          ("AB\n", False)])
def test_validation_and_define_xml_agree_on_patterns(tmp_path: Path, value: str,
                                                     whole: bool) -> None:
    """A Table Schema pattern matches the whole value, in the GX suite and in the
    define.xml checks alike."""
    from pipeline.contract import parse_contract
    from pipeline.define_xml import data_violations
    from pipeline.readers import read_delivery
    from pipeline.validation import validate

    contract = parse_contract({"name": "p", "fields": [
        {"name": "K", "type": "integer"},
        {"name": "CODE", "type": "string", "constraints": {"pattern": "AB"}}],
        "primaryKey": ["K"]}, "p.json")
    source = tmp_path / "p.ndjson"
    source.write_text(json.dumps({"K": 1, "CODE": value}) + "\n")
    delivery = read_delivery(source, contract)
    report = validate(delivery.table, contract, source_name=source.name)
    assert report.success is whole
    assert ("pattern" not in data_violations(contract, delivery).get("CODE", {})) is whole
