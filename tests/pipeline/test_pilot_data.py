"""Real CDISC pilot data end to end: the same data in two formats gives the same records
(the same canonical bytes, hence the same root for the same version number)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from anchoring.verify import verify_record_proof
from pipeline.contract import load_contract
from pipeline.diff import diff_versions
from pipeline.home import Home
from pipeline.ingest import ingest
from pipeline.prove import prove_record
from pipeline.records import canonical_records
from pipeline.store import Store

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "schemas" / "contracts" / "cdiscpilot01" / "sdtm"


@pytest.mark.pilot_data
@pytest.mark.parametrize("dataset", ["dm", "ae", "ex"])
def test_xpt_and_dataset_json_give_the_same_records(
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
    # Salts bind the version, so the roots differ; the canonical records do not.
    assert from_json.manifest["root"] != from_xpt.manifest["root"]
    stored = [pq.read_table(r.version_dir / "records.parquet") for r in (from_xpt, from_json)]
    assert canonical_records(stored[0], contract) == canonical_records(stored[1], contract)
    diff = diff_versions(Store(home.path, home.log()), "CDISCPILOT01", dataset, 1, 2)
    assert diff.summary() == {"added": 0, "removed": 0, "changed": 0}
    for version in (1, 2):
        proof = prove_record(home, "CDISCPILOT01", dataset, version=version, index=0)
        verify_record_proof(proof, [home.verifier])
