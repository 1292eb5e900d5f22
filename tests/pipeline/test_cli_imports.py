"""The CLI imports only what a command needs: the module itself nothing heavy, ``vkey`` and
``verify`` neither the log database nor Arrow nor pandas; a proof reads one row group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trialproof_testkit import ORIGIN, build_dataset

from pipeline.home import Home
from pipeline.prove import _read_row

HEAVY = ("sqlalchemy", "pandas", "pyarrow", "numpy", "polars", "datafusion",
         "great_expectations", "rich", "yaml")

_RUN = """
import json, sys
from pipeline.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def loaded_by(args: list[str], home: Path | None = None) -> tuple[int, set[str]]:
    env_home = {"TRIALPROOF_HOME": str(home)} if home else {}
    done = subprocess.run([sys.executable, "-c", _RUN, json.dumps(args)], capture_output=True,
                          text=True, check=False, env={**os.environ, **env_home})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    return int(result["code"] or 0), set(result["modules"])


def test_the_cli_module_imports_nothing_heavy() -> None:
    code, modules = loaded_by(["--help"])
    assert code == 0
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_vkey_and_verify_load_no_database_arrow_or_pandas(tmp_path: Path) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    built = build_dataset(home.log(), home.signer, home.trial_salt_key("T1"), rows=3)
    proof = tmp_path / "proof.json"
    proof.write_text(built.record_proof(1).to_json())
    for args in (["vkey"], ["verify", str(proof), "--vkey", home.verifier.vkey]):
        code, modules = loaded_by(args, home.path)
        assert code == 0, args
        assert not modules & set(HEAVY), (args, sorted(modules & set(HEAVY)))


def test_versions_checkpoint_and_prove_load_only_what_they_need(tmp_path: Path) -> None:
    """The log reads its database without SQLAlchemy; a proof reads one row with Arrow but
    without NumPy or pandas."""
    from pipeline.contract import parse_contract
    from pipeline.ingest import ingest

    home = Home.init(tmp_path / "home", ORIGIN)
    delivery = tmp_path / "vs.csv"
    delivery.write_text("USUBJID,VSSEQ\n01-701-1001,1\n01-701-1001,2\n01-701-1002,1\n")
    contract = parse_contract({"name": "vs", "primaryKey": ["USUBJID", "VSSEQ"], "fields": [
        {"name": "USUBJID", "type": "string"}, {"name": "VSSEQ", "type": "integer"}]})
    ingest(home, delivery, "T1", "vs", contract)
    select = ["--trial", "T1", "--dataset", "vs"]
    for args in (["versions", *select], ["checkpoint"]):
        code, modules = loaded_by(args, home.path)
        assert code == 0, args
        assert not modules & set(HEAVY), (args, sorted(modules & set(HEAVY)))
    proof = tmp_path / "proof.json"
    code, modules = loaded_by(["prove", *select, "--index", "2", "--out", str(proof)], home.path)
    assert code == 0
    assert "pyarrow" in modules
    assert not modules & (set(HEAVY) - {"pyarrow"}), sorted(modules & set(HEAVY))
    assert json.loads(proof.read_text())["leaf_index"] == 2


@pytest.mark.parametrize("index", [0, 2, 3, 7, 9])
def test_a_row_is_read_from_its_row_group(tmp_path: Path, index: int) -> None:
    path = tmp_path / "records.parquet"
    pq.write_table(pa.table({"n": list(range(10))}), path, row_group_size=3)
    records = pq.ParquetFile(path)
    assert records.metadata.num_row_groups == 4
    assert _read_row(records, index).to_pylist() == [{"n": index}]


_WITHOUT_PSYCOPG2 = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "psycopg2":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from pipeline.cli import main
main(["checkpoint"])
"""


def test_a_postgresql_log_without_its_driver_names_the_postgres_extra(tmp_path: Path) -> None:
    Home.init(tmp_path / "home", ORIGIN)
    env = {**os.environ, "TRIALPROOF_HOME": str(tmp_path / "home"),
           "TRIALPROOF_LOG_URL": "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"}
    done = subprocess.run([sys.executable, "-c", _WITHOUT_PSYCOPG2], capture_output=True,
                          text=True, check=False, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "trialproof: this command needs packages that are not installed (psycopg2): "
        "pip install 'trialproof[postgres]'"]
