"""anchoring.verify: a record proof verifies, and each kind of tampering names its step."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from trialproof_testkit import ORIGIN, BuiltDataset, build_dataset

from anchoring.bundle import parse_record_proof
from anchoring.errors import BundleFormatError, BundleVerificationError, VerificationStep
from anchoring.log import TransparencyLog
from anchoring.note import Signer
from anchoring.verify import verify_record_proof

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
    proof = dataclasses.replace(built.bundle(7), **changes)  # type: ignore[arg-type]
    with pytest.raises(BundleVerificationError) as info:
        verify_record_proof(proof, [built.signer.verifier])
    return info.value.step


def test_every_record_verifies(built: BuiltDataset) -> None:
    for i in range(built.tree.size):
        verify_record_proof(built.bundle(i), [built.signer.verifier])


def test_bundle_roundtrips_through_json_and_matches_the_published_schema(
    built: BuiltDataset,
) -> None:
    proof = built.bundle(3)
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
    record = dict(built.records[7], AGE=2**60)
    assert _step(built, record=record) is VerificationStep.RECORD_LEAF


def test_other_salt_fails_at_dataset_path(built: BuiltDataset) -> None:
    assert _step(built, salt=bytes(32)) is VerificationStep.DATASET_PATH


def test_moved_leaf_index_fails_at_dataset_path(built: BuiltDataset) -> None:
    assert _step(built, leaf_index=6) is VerificationStep.DATASET_PATH


def test_tampered_dataset_proof_fails_at_dataset_path(built: BuiltDataset) -> None:
    proof = built.bundle(7)
    hashes = list(proof.dataset_proof)
    hashes[1] = bytes([hashes[1][0] ^ 1]) + hashes[1][1:]
    assert _step(built, dataset_proof=tuple(hashes)) is VerificationStep.DATASET_PATH


def test_manifest_with_wrong_record_count_fails_at_manifest(built: BuiltDataset) -> None:
    assert _step(built, manifest=dict(built.manifest, records=99)) is VerificationStep.MANIFEST


def test_manifest_with_edited_field_fails_at_log_path(built: BuiltDataset) -> None:
    edited = dict(built.manifest, ingested_at="2027-01-01T00:00:00Z")
    assert _step(built, manifest=edited) is VerificationStep.LOG_PATH


def test_tampered_log_proof_fails_at_log_path(built: BuiltDataset) -> None:
    proof = built.bundle(7)
    hashes = [bytes(32), *proof.log_proof[1:]]
    assert _step(built, log_proof=tuple(hashes)) is VerificationStep.LOG_PATH


def test_log_size_other_than_checkpoint_fails_at_log_path(built: BuiltDataset) -> None:
    assert _step(built, log_size=2, log_proof=()) is VerificationStep.LOG_PATH


def test_checkpoint_from_another_key_fails_at_signature(built: BuiltDataset) -> None:
    forged = built.log.sign_checkpoint(built.signer)
    impostor = Signer.generate(ORIGIN)
    body = forged.partition("\n\n")[0] + "\n"
    from anchoring.note import sign_note

    assert _step(built, checkpoint=sign_note(body, [impostor])) is (
        VerificationStep.CHECKPOINT_SIGNATURE
    )


def test_unknown_anchor_fails_at_anchor(built: BuiltDataset) -> None:
    assert _step(built, anchors=({"type": "unknown/v1"},)) is VerificationStep.ANCHOR


def test_malformed_bundles_raise_format_errors(built: BuiltDataset) -> None:
    good = json.loads(built.bundle(0).to_json())
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
        b'{"type": "trialproof/record-proof/v1", "leaf_index": NaN}',
    ]
    for case in cases:
        with pytest.raises(BundleFormatError):
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
from anchoring.bundle import parse_record_proof
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
    "anchoring.bundle",
    "anchoring.verify",
    "anchoring.merkle",
    "anchoring.merkle.hasher",
    "anchoring.merkle.shape",
    "anchoring.merkle.verify",
    "anchoring.ledgers",
    "anchoring.ledgers.receipts",
]

_ONLY_LIGHT = _BLOCKER.split("from anchoring.bundle", maxsplit=1)[0] + """
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


def test_verifier_needs_only_stdlib_and_cryptography(built: BuiltDataset, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(built.bundle(5).to_json())
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKER, str(bundle), built.signer.verifier.vkey],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "verified"
