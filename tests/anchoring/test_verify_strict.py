"""A strict, interoperable verifier: malformed proofs are told apart from failed ones, a proof
survives re-serialization by any JSON library, and receipts say what they prove."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from trialproof_testkit import ORIGIN, BuiltDataset, build_dataset

from anchoring._internal.ledgers.local import LocalLedger
from anchoring._internal.log import TransparencyLog
from anchoring._internal.tree import MerkleTree
from anchoring.canonical import canonical_json, leaf_input
from anchoring.errors import (
    ProofFormatError,
    ProofVerificationError,
    ReceiptFormatError,
    VerificationStep,
)
from anchoring.ledgers.receipts import (
    LOCAL_RECEIPT_TYPE,
    OFFLINE_CHECKS,
    ReceiptKind,
    check_local_receipt_format,
    is_rfc3339,
    local_entry_hash,
)
from anchoring.manifest import MANIFEST_TYPE, manifest_leaf_input
from anchoring.note import Signer
from anchoring.record_proof import (
    MAX_PROOF_BYTES,
    EntryProof,
    RecordProof,
    build_entry_proof,
    build_record_proof,
    parse_entry_proof,
    parse_proof,
    parse_record_proof,
    read_proof_file,
)
from anchoring.verify import (
    AnchorPolicy,
    VerifiedEntry,
    verify_entry_proof,
    verify_proof,
    verify_record_proof,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def log(tmp_path: Path) -> TransparencyLog:
    return TransparencyLog(f"sqlite:///{tmp_path / 'log.db'}", ORIGIN)


@pytest.fixture
def built(log: TransparencyLog) -> BuiltDataset:
    signer = Signer.generate(ORIGIN)
    build_dataset(log, signer, b"k" * 32, dataset="ae", rows=3)
    return build_dataset(log, signer, b"k" * 32, rows=6)


def _verify_text(text: str | bytes, built: BuiltDataset) -> Any:
    return verify_proof(parse_proof(text), [built.signer.verifier])


# -- duplicate keys ----------------------------------------------------------------------------


def _with_duplicate(text: str, anchor: str, duplicate: str) -> str:
    """Insert ``duplicate`` (a `"key": value` member) right after the first ``anchor``."""
    at = text.index("{", text.index(anchor) + len(anchor))
    return text[: at + 1] + duplicate + "," + text[at + 1 :]


def test_a_fake_record_placed_before_the_real_one_is_malformed(built: BuiltDataset) -> None:
    """With last-wins parsing this verified, while a first-wins reader saw the fake."""
    real = built.record_proof(2).to_json()
    fake = json.dumps(dict(built.records[2], AGE=99))
    forged = '{"record": ' + fake + "," + real.lstrip()[1:]
    assert json.loads(forged)["record"] == built.records[2]  # the last one wins in json.loads
    with pytest.raises(ProofFormatError, match="duplicate key"):
        parse_proof(forged)


@pytest.mark.parametrize(
    ("anchor", "duplicate"),
    [
        ('"record": ', '"AGE": 1'),
        ('"manifest": ', '"root": "' + "0" * 64 + '"'),
        ('"contract": ', '"name": "other"'),
        ('"anchors": [', '"type": "x"'),
    ],
)
def test_duplicate_keys_at_any_depth_are_malformed(
    built: BuiltDataset, log: TransparencyLog, anchor: str, duplicate: str
) -> None:
    proof = built.record_proof(2)
    receipt = LocalLedger(log).submit(proof.checkpoint)
    text = dataclasses.replace(proof, anchors=(receipt,)).to_json()
    _verify_text(text, built)
    with pytest.raises(ProofFormatError, match="duplicate key"):
        parse_proof(_with_duplicate(text, anchor, duplicate))


# -- size and nesting --------------------------------------------------------------------------


def test_the_size_cap_applies_before_reading(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ProofFormatError, match="larger than"):
        read_proof_file("/dev/zero")
    assert time.monotonic() - started < 10
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_PROOF_BYTES + 1))
    with pytest.raises(ProofFormatError, match="larger than"):
        read_proof_file(big)


def test_a_receipt_nested_985_deep_is_malformed(built: BuiltDataset) -> None:
    obj = json.loads(built.record_proof(0).to_json())
    obj["anchors"] = [{"type": LOCAL_RECEIPT_TYPE, "x": "DEEP"}]
    text = json.dumps(obj).replace('"DEEP"', "[" * 985 + "]" * 985)
    with pytest.raises(ProofFormatError, match="nests deeper"):
        parse_proof(text)
    deep: list[Any] = []
    for _ in range(985):
        deep = [deep]
    obj["anchors"] = [{"type": LOCAL_RECEIPT_TYPE, "x": deep}]
    with pytest.raises(ProofFormatError, match="nests deeper"):
        parse_proof(obj)  # a parsed object is held to the same limit


# -- numbers -----------------------------------------------------------------------------------


def _dataset_with_records(
    log: TransparencyLog, signer: Signer, records: list[dict[str, Any]]
) -> tuple[list[bytes], MerkleTree, dict[str, Any], int]:
    salts = [hashlib.sha256(str(i).encode()).digest() for i in range(len(records))]
    tree = MerkleTree.from_leaf_inputs(
        [leaf_input(s, canonical_json(r)) for s, r in zip(salts, records, strict=True)]
    )
    manifest: dict[str, Any] = {
        "type": MANIFEST_TYPE, "trial": "T1", "dataset": "lb", "version": 1,
        "contract": {"name": "lb", "sha256": "a" * 64},
        "source": {"name": "lb.csv", "sha256": "b" * 64, "bytes": 10},
        "records": len(records), "root": tree.root().hex(), "previous": None,
        "validation": {"success": True, "report_sha256": "c" * 64},
        "ingested_at": "2026-11-29T12:00:00Z",
    }
    entry = log.append(manifest_leaf_input(manifest))
    return salts, tree, manifest, entry.index


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("1.2345678901234568e+20", "123456789012345680000"),  # a JavaScript re-serialization
        ("9007199254740992.0", "9007199254740992"),
        ("1e+21", "1000000000000000000000"),
        ("2.0", "2"),
    ],
)
def test_a_re_serialized_proof_still_verifies(
    log: TransparencyLog, ours: str, theirs: str
) -> None:
    signer = Signer.generate(ORIGIN)
    records = [{"ID": i, "VALUE": float(ours), "N": 2**53 + 2 * i} for i in range(3)]
    salts, tree, manifest, index = _dataset_with_records(log, signer, records)
    proof = build_record_proof(
        record=records[1], salt=salts[1], leaf_index=1, dataset_tree=tree, dataset_size=3,
        manifest=manifest, log=log, log_index=index, checkpoint=log.sign_checkpoint(signer),
    )
    text = proof.to_json()
    assert f'"VALUE": {float(ours)!r}' in text
    for literal in (theirs, ours):
        variant = text.replace(f'"VALUE": {float(ours)!r}', f'"VALUE": {literal}')
        result = verify_proof(parse_proof(variant), [signer.verifier])
        assert result.leaf_hash == tree.leaf_hash(1).hex()


def test_an_integral_double_counts_as_an_integer(built: BuiltDataset) -> None:
    """JSON Schema: 2.0 is an integer. 2.5 is not, and is malformed."""
    obj = json.loads(built.record_proof(2).to_json())
    text = json.dumps({**obj, "leaf_index": 2.0, "dataset_size": 6.0})
    assert '"leaf_index": 2.0' in text
    assert parse_record_proof(text) == built.record_proof(2)
    _verify_text(text, built)
    with pytest.raises(ProofFormatError):
        parse_record_proof(json.dumps({**obj, "leaf_index": 2.5}))


# -- receipts ----------------------------------------------------------------------------------


def _local_receipt(built: BuiltDataset, log: TransparencyLog) -> tuple[RecordProof, dict[str, Any]]:
    proof = built.record_proof(2)
    return proof, LocalLedger(log).submit(proof.checkpoint)


def _resealed(receipt: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A receipt edited and given a matching entry hash: forged, but self-consistent."""
    forged = {k: v for k, v in {**receipt, **changes}.items() if k != "entry_hash"}
    return {**forged, "entry_hash": local_entry_hash(forged)}


def test_a_local_receipt_is_checked_but_self_asserted(
    built: BuiltDataset, log: TransparencyLog
) -> None:
    proof, receipt = _local_receipt(built, log)
    with_receipt = dataclasses.replace(proof, anchors=(receipt,))
    result = verify_record_proof(with_receipt, [built.signer.verifier])
    (checked,) = result.log.receipts
    assert checked.checked and not checked.independent
    assert checked.proves == "self-asserted (local ledger, not independent)"
    assert result.log.anchored and not result.log.independently_anchored
    verify_record_proof(with_receipt, [built.signer.verifier], require_anchor=AnchorPolicy.ANY)
    with pytest.raises(ProofVerificationError) as info:
        verify_record_proof(
            with_receipt, [built.signer.verifier], require_anchor=AnchorPolicy.INDEPENDENT
        )
    assert info.value.step is VerificationStep.ANCHOR


def test_a_forged_receipt_naming_bitcoin_is_no_independent_anchor(
    built: BuiltDataset, log: TransparencyLog
) -> None:
    proof, receipt = _local_receipt(built, log)
    forged = _resealed(receipt, ledger="bitcoin-mainnet")
    result = verify_record_proof(dataclasses.replace(proof, anchors=(forged,)),
                                 [built.signer.verifier])
    (checked,) = result.log.receipts
    assert not checked.independent and not result.log.independently_anchored
    assert "bitcoin" not in checked.proves and "not independent" in checked.proves
    with pytest.raises(ProofVerificationError):
        verify_record_proof(dataclasses.replace(proof, anchors=(forged,)),
                            [built.signer.verifier], require_anchor=AnchorPolicy.INDEPENDENT)


def test_without_receipts_require_anchor_fails(built: BuiltDataset) -> None:
    proof = built.record_proof(2)
    assert verify_record_proof(proof, [built.signer.verifier]).log.receipts == ()
    for policy in AnchorPolicy:
        with pytest.raises(ProofVerificationError) as info:
            verify_record_proof(proof, [built.signer.verifier], require_anchor=policy)
        assert info.value.step is VerificationStep.ANCHOR


def test_the_registry_says_which_receipt_types_are_independent(
    built: BuiltDataset, log: TransparencyLog
) -> None:
    """A ledger registers its receipts with one entry; independence comes from the entry."""
    assert OFFLINE_CHECKS[LOCAL_RECEIPT_TYPE].independent is False
    proof, receipt = _local_receipt(built, log)
    seen: list[int] = []
    witness = ReceiptKind(
        check=lambda r, checkpoint, note: seen.append(checkpoint.size),
        independent=True,
        proves="cosigned by a test witness",
    )
    kinds = {**OFFLINE_CHECKS, "test/witness/v1": witness}
    anchors = (receipt, {"type": "test/witness/v1"})
    result = verify_record_proof(dataclasses.replace(proof, anchors=anchors),
                                 [built.signer.verifier], kinds,
                                 require_anchor=AnchorPolicy.INDEPENDENT)
    assert seen == [proof.log_size]
    assert [r.independent for r in result.log.receipts] == [False, True]
    assert result.log.independently_anchored


@pytest.mark.parametrize(
    "changes",
    [
        {"anchored_at": "yesterday"},
        {"anchored_at": "2026-13-01T00:00:00Z"},
        {"anchored_at": "2026-11-30 10:00:00"},
        {"size": "3"},
        {"size": -1},
        {"size": 1.5},
        {"index": True},
        {"root": "AB" * 32},
        {"previous": "nope"},
        {"consistency_proof": "00"},
    ],
)
def test_receipt_fields_are_checked_for_form(
    built: BuiltDataset, log: TransparencyLog, changes: dict[str, Any]
) -> None:
    """A self-consistent receipt with a malformed field makes the proof malformed."""
    proof, receipt = _local_receipt(built, log)
    forged = _resealed(receipt, **changes)
    with pytest.raises(ReceiptFormatError):
        check_local_receipt_format(forged)
    with pytest.raises(ProofFormatError, match=r"anchors\[0\]"):
        verify_record_proof(dataclasses.replace(proof, anchors=(forged,)),
                            [built.signer.verifier])


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-11-30T10:00:00Z", True),
        ("2026-11-30t10:00:00.123456+05:30", True),
        ("2016-12-31T23:59:60Z", True),  # a leap second
        ("2026-02-29T10:00:00Z", False),
        ("2026-11-30T24:00:00Z", False),
        ("2026-11-30T10:00:00", False),
        ("2026-11-30", False),
        (1764496800, False),
    ],
)
def test_rfc3339_times(text: Any, ok: bool) -> None:
    assert is_rfc3339(text) is ok


# -- entry proofs ------------------------------------------------------------------------------


def _document_entry_proof(log: TransparencyLog, signer: Signer) -> EntryProof:
    document = {
        "type": "trialproof/document/v1", "trial": "T1", "kind": "protocol", "label": "v2",
        "name": "protocol.pdf", "sha256": "d" * 64, "bytes": 1234,
        "registered_at": "2026-11-29T12:00:00Z",
    }
    index = log.append(canonical_json(document)).index
    log.append(b'{"type":"later"}')
    return build_entry_proof(entry=document, log=log, log_index=index,
                             checkpoint=log.sign_checkpoint(signer))


def test_an_entry_proof_verifies_and_names_its_entry(
    built: BuiltDataset, log: TransparencyLog
) -> None:
    proof = _document_entry_proof(log, built.signer)
    parsed = parse_proof(proof.to_json())
    assert parsed == proof == parse_entry_proof(proof.to_json())
    result = verify_proof(parsed, [built.signer.verifier], origin=ORIGIN)
    assert isinstance(result, VerifiedEntry)
    assert result.entry_type == "trialproof/document/v1"
    assert result.canonical_entry.encode() == canonical_json(proof.entry)
    assert (result.log.log_index, result.log.log_size) == (proof.log_index, proof.log_size)


def test_an_entry_proof_follows_steps_2_to_4(built: BuiltDataset, log: TransparencyLog) -> None:
    proof = _document_entry_proof(log, built.signer)
    trusted = [built.signer.verifier]
    edited = dataclasses.replace(proof, entry={**proof.entry, "sha256": "e" * 64})
    with pytest.raises(ProofVerificationError) as info:
        verify_entry_proof(edited, trusted)
    assert info.value.step is VerificationStep.LOG_PATH
    with pytest.raises(ProofVerificationError) as info:
        verify_entry_proof(proof, [Signer.generate(ORIGIN).verifier])
    assert info.value.step is VerificationStep.CHECKPOINT_SIGNATURE
    receipt = LocalLedger(log).submit(proof.checkpoint)
    anchored = dataclasses.replace(proof, anchors=(receipt, {"type": "unknown/v1"}))
    result = verify_entry_proof(anchored, trusted, require_anchor=AnchorPolicy.ANY)
    assert [r.checked for r in result.log.receipts] == [True, False]
    broken = dataclasses.replace(proof, anchors=(dict(receipt, entry_hash="0" * 64),))
    with pytest.raises(ProofVerificationError) as info:
        verify_entry_proof(broken, trusted)
    assert info.value.step is VerificationStep.ANCHOR


def test_malformed_entry_proofs(built: BuiltDataset, log: TransparencyLog) -> None:
    good = json.loads(_document_entry_proof(log, built.signer).to_json())
    for case in (
        {**good, "entry": {"no": "type"}},
        {**good, "entry": []},
        {**good, "log_index": good["log_size"]},
        {**good, "log_proof": []},
        {k: v for k, v in good.items() if k != "anchors"},
        {**good, "type": "trialproof/other-proof/v1"},
    ):
        with pytest.raises(ProofFormatError):
            parse_proof(json.dumps(case))


def test_entry_proofs_match_their_published_schema(
    built: BuiltDataset, log: TransparencyLog
) -> None:
    schema = json.loads((REPO / "schemas/formats/entry-proof.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, registry=Registry().with_resource(
        schema["$id"], Resource.from_contents(schema)))
    obj = json.loads(_document_entry_proof(log, built.signer).to_json())
    validator.validate(obj)
    assert not validator.is_valid({**obj, "entry": {"no": "type"}})
    assert not validator.is_valid({**obj, "log_size": 0})


def test_a_manifest_entry_proof_verifies_like_the_record_proofs_log_part(
    built: BuiltDataset,
) -> None:
    record = built.record_proof(1)
    entry = build_entry_proof(entry=built.manifest, log=built.log, log_index=built.log_index,
                              checkpoint=record.checkpoint)
    assert (entry.log_proof, entry.log_size) == (record.log_proof, record.log_size)
    result = verify_entry_proof(entry, [built.signer.verifier])
    assert result.log == verify_record_proof(record, [built.signer.verifier]).log
