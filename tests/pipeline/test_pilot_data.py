"""Real CDISC pilot data end to end: the same data in two formats gives one root."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchoring.verify import verify_record_proof
from pipeline.contract import load_contract
from pipeline.home import Home
from pipeline.ingest import ingest
from pipeline.prove import prove_record

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "schemas" / "contracts" / "cdiscpilot01" / "sdtm"


@pytest.mark.pilot_data
@pytest.mark.parametrize("dataset", ["dm", "ae", "ex"])
def test_xpt_and_dataset_json_give_the_same_root(
    pilot_dir: Path, tmp_path: Path, dataset: str
) -> None:
    pilot = pilot_dir
    home = Home.init(tmp_path / "home", "trials.example.org/log")
    contract = load_contract(CONTRACTS / f"{dataset}.json")
    from_xpt = ingest(
        home, pilot / "sdtm_cdiscpilot01" / f"{dataset}.xpt", "CDISCPILOT01", dataset, contract
    )
    from_json = ingest(
        home, pilot / "datasetjson_pilot5" / f"{dataset}.json", "CDISCPILOT01", dataset, contract
    )
    assert (from_xpt.version, from_json.version) == (1, 2)
    assert from_json.manifest["records"] == from_xpt.manifest["records"] > 0
    assert from_json.manifest["root"] == from_xpt.manifest["root"]
    for version in (1, 2):
        proof = prove_record(home, "CDISCPILOT01", dataset, version=version, index=0)
        verify_record_proof(proof, [home.verifier])
