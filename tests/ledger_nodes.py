"""Real ledger services on loopback for tests: trialproof witnesses, anvil, an openssl TSA."""

from __future__ import annotations

import json
from pathlib import Path

from trialproof_cli import trialproof

from pipeline.demo_services import (
    ANVIL,
    ANVIL_KEY,
    OpensslTsa,
    anvil_process,
    free_port,
    make_tsa_ca,
    witness_process,
)
from pipeline.home import Home

__all__ = [
    "ANVIL",
    "ANVIL_KEY",
    "OpensslTsa",
    "anvil_process",
    "free_port",
    "ingest_sample",
    "make_tsa_ca",
    "trialproof",
    "witness_process",
]


def ingest_sample(home: Home, folder: Path, dataset: str = "lb", rows: int = 20,
                  seed: int = 1) -> None:
    """Commit one small CSV delivery through the real ingest (so the audit sees it)."""
    from test_ingest import CONTRACT, lb_table, write_csv

    from pipeline.contract import load_contract
    from pipeline.ingest import ingest

    folder.mkdir(parents=True, exist_ok=True)
    contract_path = folder / "lb.json"
    contract_path.write_text(json.dumps(CONTRACT))
    delivery = write_csv(lb_table(rows, seed), folder / f"{dataset}-{seed}.csv")
    ingest(home, delivery, "T1", dataset, load_contract(contract_path))


def check_schema(receipt: dict[str, object], schema_name: str) -> None:
    """Validate a receipt against its JSON Schema in schemas/formats/."""
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "formats"
                         / schema_name).read_text())
    jsonschema.Draft202012Validator(schema).validate(receipt)
