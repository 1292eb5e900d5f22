"""anchoring.verify: a record proof verifies, and each kind of tampering names its step."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import rfc9162_reference as ref
from referencing import Registry, Resource
from trialproof_testkit import ORIGIN, BuiltDataset, build_dataset

from anchoring._internal.log import TransparencyLog
from anchoring.canonical import canonical_json
from anchoring.errors import ProofFormatError, ProofVerificationError, VerificationStep
from anchoring.merkle.hasher import leaf_hash
from anchoring.note import Signer
from anchoring.record_proof import parse_record_proof
from anchoring.verify import AnchorPolicy, verify_record_proof

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def built(tmp_path: Path) -> BuiltDataset:
    log = TransparencyLog(f"sqlite:///{tmp_path / 'log.db'}", ORIGIN)
    signer = Signer.generate(ORIGIN)
    build_dataset(log, signer, b"k" * 32, dataset="ae", rows=3)
    dataset = build_dataset(log, signer, b"k" * 32, rows=13)
    build_dataset(log, signer, b"k" * 32, dataset="ex", rows=5)
    return dataset


def _step(built: BuiltDataset, **changes: object) -> VerificationStep:
    proof = dataclasses.replace(built.record_proof(7), **changes)  # type: ignore[arg-type]
    with pytest.raises(ProofVerificationError) as info:
        verify_record_proof(proof, [built.signer.verifier])
    return info.value.step


def test_every_record_verifies(built: BuiltDataset) -> None:
    for i in range(built.tree.size):
        verify_record_proof(built.record_proof(i), [built.signer.verifier])


def test_record_proof_roundtrips_through_json_and_matches_the_published_schema(
    built: BuiltDataset,
) -> None:
    proof = built.record_proof(3)
    obj = json.loads(proof.to_json())
    schemas = REPO / "schemas" / "formats"
    manifest_schema = json.loads((schemas / "manifest.schema.json").read_text())
    registry = Registry().with_resource(
        manifest_schema["$id"], Resource.from_contents(manifest_schema)
    )
    schema = json.loads((schemas / "record-proof.schema.json").read_text())
    jsonschema.Draft202012Validator(schema, registry=registry).validate(obj)
    assert parse_record_proof(proof.to_json()) == proof


def test_edited_record_fails_at_dataset_path(built: BuiltDataset) -> None:
    record = dict(built.records[7], AGE=built.records[7]["AGE"] + 1)
    assert _step(built, record=record) is VerificationStep.DATASET_PATH


def test_uncanonicalizable_record_fails_at_record_leaf(built: BuiltDataset) -> None:
    record = dict(built.records[7], AGE=float("nan"))
    assert _step(built, record=record) is VerificationStep.RECORD_LEAF


def test_edited_record_names_record_and_salt_and_keeps_the_hashes(built: BuiltDataset) -> None:
    record = dict(built.records[7], SEX="X")
    proof = dataclasses.replace(built.record_proof(7), record=record)
    with pytest.raises(ProofVerificationError) as info:
        verify_record_proof(proof, [built.signer.verifier])
    assert info.value.reason == (
        "the record or its salt does not match the version's root (record leaf / dataset path)"
    )
    assert info.value.hashes["expected_root"] == built.manifest["root"]
    assert len(info.value.hashes["computed_root"]) == 64
    assert info.value.hashes["computed_root"] != built.manifest["root"]
    assert len(info.value.hashes["leaf_hash"]) == 64


def test_other_salt_fails_at_dataset_path(built: BuiltDataset) -> None:
    assert _step(built, salt=bytes(32)) is VerificationStep.DATASET_PATH


def test_moved_leaf_index_fails_at_dataset_path(built: BuiltDataset) -> None:
    assert _step(built, leaf_index=6) is VerificationStep.DATASET_PATH


def test_tampered_dataset_proof_fails_at_dataset_path(built: BuiltDataset) -> None:
    proof = built.record_proof(7)
    hashes = list(proof.dataset_proof)
    hashes[1] = bytes([hashes[1][0] ^ 1]) + hashes[1][1:]
    assert _step(built, dataset_proof=tuple(hashes)) is VerificationStep.DATASET_PATH


def test_manifest_with_wrong_record_count_fails_at_manifest(built: BuiltDataset) -> None:
    assert _step(built, manifest=dict(built.manifest, records=99)) is VerificationStep.MANIFEST


def test_manifest_with_edited_field_fails_at_log_path(built: BuiltDataset) -> None:
    edited = dict(built.manifest, ingested_at="2027-01-01T00:00:00Z")
    assert _step(built, manifest=edited) is VerificationStep.LOG_PATH


def test_tampered_log_proof_fails_at_log_path(built: BuiltDataset) -> None:
    proof = built.record_proof(7)
    hashes = [bytes(32), *proof.log_proof[1:]]
    assert _step(built, log_proof=tuple(hashes)) is VerificationStep.LOG_PATH


def test_log_size_other_than_checkpoint_fails_at_log_path(built: BuiltDataset) -> None:
    assert _step(built, log_size=2, log_proof=(bytes(32),)) is VerificationStep.LOG_PATH


def test_a_proof_of_the_wrong_shape_is_malformed_not_failed(built: BuiltDataset) -> None:
    """A proof whose length does not fit its (index, size) never verifies; it is malformed."""
    for changes in ({"log_size": 2, "log_proof": ()}, {"dataset_proof": ()}):
        proof = dataclasses.replace(built.record_proof(7), **changes)  # type: ignore[arg-type]
        with pytest.raises(ProofFormatError):
            verify_record_proof(proof, [built.signer.verifier])


def test_checkpoint_from_another_key_fails_at_signature(built: BuiltDataset) -> None:
    forged = built.log.sign_checkpoint(built.signer)
    impostor = Signer.generate(ORIGIN)
    body = forged.partition("\n\n")[0] + "\n"
    from anchoring.note import sign_note

    assert _step(built, checkpoint=sign_note(body, [impostor])) is (
        VerificationStep.CHECKPOINT_SIGNATURE
    )


def test_unknown_anchor_is_not_checked(built: BuiltDataset) -> None:
    """docs/formats.md §8 step 4: an unknown receipt type neither passes nor fails the proof."""
    proof = dataclasses.replace(built.record_proof(7), anchors=({"type": "unknown/v1", "x": 1},))
    result = verify_record_proof(proof, [built.signer.verifier])
    (receipt,) = result.log.receipts
    assert (receipt.type, receipt.checked, receipt.independent) == ("unknown/v1", False, False)
    assert not result.log.anchored
    with pytest.raises(ProofVerificationError) as info:
        verify_record_proof(proof, [built.signer.verifier], require_anchor=AnchorPolicy.ANY)
    assert info.value.step is VerificationStep.ANCHOR
    assert "not checked" in info.value.reason


def test_the_required_origin_must_be_the_checkpoints(built: BuiltDataset) -> None:
    proof = built.record_proof(7)
    result = verify_record_proof(proof, [built.signer.verifier], origin=ORIGIN)
    assert result.log.origin == ORIGIN
    with pytest.raises(ProofVerificationError) as info:
        verify_record_proof(proof, [built.signer.verifier], origin="other.example/log")
    assert info.value.step is VerificationStep.CHECKPOINT_SIGNATURE
    assert "origin" in info.value.reason


def test_the_result_says_what_was_verified(built: BuiltDataset) -> None:
    result = verify_record_proof(built.record_proof(7), [built.signer.verifier])
    assert (result.trial, result.dataset, result.version) == ("CDISCPILOT01", "dm", 1)
    assert (result.leaf_index, result.dataset_size) == (7, 13)
    assert result.canonical_record.encode() == canonical_json(built.records[7])
    assert result.leaf_hash == leaf_hash(built.salts[7] + canonical_json(built.records[7])).hex()
    assert result.log.log_index == built.log_index


def test_malformed_proofs_raise_format_errors(built: BuiltDataset) -> None:
    good = json.loads(built.record_proof(0).to_json())
    cases = [
        b"not json",
        b"[]",
        json.dumps({**good, "salt": "zz" * 32}).encode(),
        json.dumps({**good, "salt": "ab" * 31}).encode(),
        json.dumps({**good, "leaf_index": -1}).encode(),
        json.dumps({**good, "leaf_index": "1"}).encode(),
        json.dumps({**good, "dataset_proof": ["00" * 32] * 64}).encode(),
        json.dumps({**good, "checkpoint": "garbage"}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "manifest"}).encode(),
        json.dumps({**good, "anchors": [1]}).encode(),
        json.dumps({**good, "anchors": [{"no": "type"}]}).encode(),
        b'{"type": "trialproof/record-proof/v1", "leaf_index": NaN}',
        # structural faults: index >= size, size 0, numbers out of range, proof lengths
        json.dumps({**good, "leaf_index": good["dataset_size"]}).encode(),
        json.dumps({**good, "dataset_size": 0, "leaf_index": 0}).encode(),
        json.dumps({**good, "log_index": good["log_size"]}).encode(),
        json.dumps({**good, "leaf_index": 2**63}).encode(),
        json.dumps({**good, "leaf_index": 2.5}).encode(),
        json.dumps({**good, "dataset_proof": good["dataset_proof"][:-1]}).encode(),
        json.dumps({**good, "log_proof": [*good["log_proof"], "00" * 32]}).encode(),
        json.dumps(good).replace('"AGE": 60', '"AGE": 1e400').encode(),
        json.dumps(good).replace('"AGE": 60', '"AGE": 1' + "0" * 400).encode(),
        # a lone surrogate, as a value and as a key
        json.dumps({**good, "record": {**good["record"], "SEX": "\ud800"}}).encode(),
        json.dumps({**good, "record": {**good["record"], "\udc00": 1}}).encode(),
    ]
    for case in cases:
        with pytest.raises(ProofFormatError):
            parse_record_proof(case)


_BLOCKER = """
import importlib.abc, sys
BLOCKED = {"pandas", "pyarrow", "polars", "datafusion", "numpy", "airflow",
           "great_expectations", "sqlalchemy", "rfc8785", "pipeline", "duckdb", "web3"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Block())
if sys.argv[1] == "--main":  # python -m anchoring.verify, with the same blocker
    import runpy
    sys.argv = ["anchoring.verify", *sys.argv[2:]]
    runpy.run_module("anchoring.verify", run_name="__main__", alter_sys=True)
from anchoring.record_proof import parse_record_proof
from anchoring.note import Verifier
from anchoring.verify import verify_record_proof
proof = parse_record_proof(open(sys.argv[1], "rb").read())
verify_record_proof(proof, [Verifier.from_vkey(sys.argv[2])])
print("verified")
"""


#: anchoring's public, light surface: what a verifier imports. The producer side (the log
#: database, the tree builder, bulk hashing, ledger clients) is not in this list.
LIGHT_MODULES = [
    "anchoring",
    "anchoring.errors",
    "anchoring.canonical",
    "anchoring.note",
    "anchoring.checkpoint",
    "anchoring.manifest",
    "anchoring.record_proof",
    "anchoring.verify",
    "anchoring.merkle",
    "anchoring.merkle.hasher",
    "anchoring.merkle.shape",
    "anchoring.merkle.verify",
    "anchoring.ledgers",
    "anchoring.ledgers.receipts",
]

_ONLY_LIGHT = _BLOCKER.split("from anchoring.record_proof", maxsplit=1)[0] + """
import importlib
importlib.import_module(sys.argv[1])
allowed = set(sys.stdlib_module_names) | {"anchoring", "cryptography", "_cffi_backend",
                                          "_openssl",  # registered by cryptography's binding
                                          "__main__", "_distutils_hack"}  # site machinery
loaded = sorted({m.split(".")[0] for m in sys.modules if not m.startswith("__editable__")}
                - allowed)
print(" ".join(loaded))
"""


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_public_module_needs_only_stdlib_and_cryptography(module: str) -> None:
    """Each light module imports with the heavy packages blocked, and loads nothing beyond
    the standard library and ``cryptography``."""
    result = subprocess.run([sys.executable, "-c", _ONLY_LIGHT, module], capture_output=True,
                            text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} loads {result.stdout.strip()}"


#: What bulk hashing needs: the pipeline's, never anchoring's, not even on first use.
BULK_PACKAGES = frozenset({"pyarrow", "numpy", "datafusion", "pandas", "polars"})


def _bulk_imports(path: Path) -> list[str]:
    """The bulk packages ``path`` imports, in an import statement or through
    ``importlib.import_module`` / ``__import__``, at any depth, with the line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif (isinstance(node, ast.Call) and node.args
              and ast.unparse(node.func).split(".")[-1] in ("import_module", "__import__")):
            first = node.args[0]
            names = [str(first.value) if isinstance(first, ast.Constant) else "<computed>"]
        else:
            continue
        found += [f"{path.name}:{node.lineno} {name}" for name in names
                  if name.split(".")[0] in BULK_PACKAGES | {"<computed>"}]
    return found


def test_no_anchoring_module_imports_bulk_packages_even_lazily() -> None:
    """Every module under anchoring/, the producer side included, is free of pyarrow,
    numpy, DataFusion, pandas and polars, at the top and inside functions alike."""
    modules = sorted((REPO / "anchoring").rglob("*.py"))
    assert REPO / "anchoring" / "_internal" / "tree.py" in modules
    found = [hit for path in modules for hit in _bulk_imports(path)]
    assert found == []


def test_bulk_import_scan_sees_lazy_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import hashlib\ndef f():\n    import numpy\n    from pyarrow import compute\n"
                     "    kind = 'numpy' == type(0).__module__\n"
                     "    importlib.import_module(name)\n"
                     "    return importlib.import_module('datafusion')\n", encoding="utf-8")
    hits = _bulk_imports(probe)
    assert sorted(hit.rsplit(" ", 1)[1] for hit in hits) == [
        "<computed>", "datafusion", "numpy", "pyarrow"]


_BLOCKER_HEAD = _BLOCKER.split("from anchoring.record_proof", maxsplit=1)[0]
assert '"sqlalchemy", ' in _BLOCKER_HEAD
#: The producer side may use SQLAlchemy (the log database), nothing heavier.
_EVERY_MODULE = _BLOCKER_HEAD.replace('"sqlalchemy", ', "") + """
import importlib, pkgutil
import anchoring
for info in pkgutil.walk_packages(anchoring.__path__, "anchoring."):
    importlib.import_module(info.name)
from anchoring._internal.tree import MerkleTree
leaves = [i.to_bytes(4, "big") for i in range(5000)]
tree = MerkleTree.from_leaf_inputs(leaves)
assert MerkleTree.from_leaf_hashes(tree.leaf_hashes()).root() == tree.root()
print(tree.root().hex())
print(" ".join(sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)))
"""


def test_every_anchoring_module_and_the_tree_builder_work_without_bulk_packages() -> None:
    """All of anchoring, the log and the tree builder included, imports with the bulk and
    pipeline packages blocked (SQLAlchemy allowed), and builds a tree of thousands of
    leaves with its default hasher."""
    result = subprocess.run([sys.executable, "-c", _EVERY_MODULE, "-"], capture_output=True,
                            text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    root, loaded = result.stdout.splitlines()
    assert loaded == ""
    leaves = [i.to_bytes(4, "big") for i in range(5000)]
    assert root == ref.mth(leaves).hex()


def test_verifier_needs_only_stdlib_and_cryptography(built: BuiltDataset, tmp_path: Path) -> None:
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(built.record_proof(5).to_json())
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER, str(proof_file), built.signer.verifier.vkey],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "verified"


def test_the_verifier_program_needs_only_stdlib_and_cryptography(
    built: BuiltDataset, tmp_path: Path
) -> None:
    """`python -m anchoring.verify` with every heavy package blocked: 0, 1 and 2 as the CLI."""
    good = tmp_path / "good.json"
    good.write_text(built.record_proof(5).to_json())
    obj = json.loads(good.read_text())
    obj["record"]["AGE"] += 1
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(obj))
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"type": "trialproof/record-proof/v1", "type": "again"}')
    cases = [(good, [], 0, None), (good, ["--require-anchor"], 1, "anchor"),
             (tampered, [], 1, "dataset path"), (malformed, [], 2, None)]
    for path, extra, status, step in cases:
        result = subprocess.run(
            [sys.executable, "-c", _BLOCKER, "--main", str(path), "--vkey",
             built.signer.verifier.vkey, "--json", *extra],
            capture_output=True, text=True, cwd=REPO, check=False,
        )
        assert result.returncode == status, result.stderr
        assert "blocked" not in result.stderr
        if status < 2:
            payload = json.loads(result.stdout)
            assert payload["verified"] is (status == 0)
            assert payload.get("step") == step
