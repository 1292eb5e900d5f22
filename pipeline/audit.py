"""The audit (DESIGN Flow: audit): recompute everything from storage and check every link.

Per version: its files exist; ``manifest.json`` is the log's leaf input; the raw
delivery, contract and report hash to what the manifest says; the records are
readable, in leaf order, with the salts the trial key gives; their root is the
manifest's root, and so is the stored tree's; versions chain by ``previous``.

For the log: every entry's leaf hash is the hash of its input; every stored
checkpoint is signed by the log key and has the root recomputed from the
entries; consecutive checkpoints are consistent; the checkpoint remembered
from the last clean audit and every anchored checkpoint are still prefixes of
the log (a truncated and re-grown log is a fork); every receipt verifies.

Each problem is a :class:`Finding` naming the check and where.
"""

from __future__ import annotations

__all__ = ["AuditReport", "Finding", "audit"]

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from anchoring.checkpoint import Checkpoint, open_checkpoint
from anchoring.errors import AnchoringError
from anchoring.merkle.hasher import leaf_hash
from anchoring.merkle.tree import MerkleTree
from anchoring.merkle.verify import verify_consistency
from anchoring.note import parse_note
from pipeline.contract import Contract
from pipeline.errors import PipelineError
from pipeline.fsutil import sha256_file, write_text_durably
from pipeline.home import Home
from pipeline.records import leaf_chunks, sort_into_leaf_order
from pipeline.store import SALT_COLUMN, Store, VersionInfo


@dataclass(frozen=True)
class Finding:
    check: str
    detail: str
    trial: str | None = None
    dataset: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.trial:
            where = f"{self.trial}/{self.dataset}" + (f" v{self.version}" if self.version else "")
            where += ": "
        return f"[{self.check}] {where}{self.detail}"


@dataclass
class AuditReport:
    findings: list[Finding] = field(default_factory=list)
    versions_checked: int = 0
    log_size: int = 0
    checkpoints_checked: int = 0
    receipts_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "versions_checked": self.versions_checked,
            "log_size": self.log_size,
            "checkpoints_checked": self.checkpoints_checked,
            "receipts_checked": self.receipts_checked,
            "findings": [asdict(f) for f in self.findings],
        }


def _sha256(path: Path) -> str | None:
    return sha256_file(path)[0] if path.is_file() else None


def _audit_version(home: Home, info: VersionInfo, entry_input: bytes) -> list[Finding]:
    def finding(check: str, detail: str) -> Finding:
        return Finding(check, detail, info.trial, info.dataset, info.version)

    manifest = info.manifest
    if not info.path.is_dir():
        return [finding("version-files", f"the version directory {info.path} is missing")]
    found: list[Finding] = []
    stored_manifest = info.path / "manifest.json"
    if not stored_manifest.is_file() or stored_manifest.read_bytes() != entry_input:
        found.append(finding("manifest", "manifest.json differs from the manifest in the log"))
    raw = home.path / "raw" / manifest["source"]["sha256"]
    raw_sha = _sha256(raw)
    if raw_sha is None:
        found.append(finding("raw", f"the raw delivery {raw.name} is missing"))
    elif raw_sha != manifest["source"]["sha256"]:
        found.append(finding("raw", f"the raw delivery hashes to {raw_sha}, not the manifest's"))
    if _sha256(info.path / "contract.json") != manifest["contract"]["sha256"]:
        found.append(finding("contract", "contract.json does not hash to the manifest's contract"))
    if _sha256(info.path / "report.json") != manifest["validation"]["report_sha256"]:
        found.append(finding("report", "report.json does not hash to the manifest's report"))
    try:
        from pipeline.prove import version_contract

        contract = version_contract(info)
        table = pq.read_table(info.path / "records.parquet")
    except (OSError, ValueError, pa.ArrowException, PipelineError) as exc:
        found.append(finding("records", f"records cannot be read: {str(exc).splitlines()[0]}"))
        return found
    found.extend(_audit_records(home, info, contract, table, finding))
    try:
        tree_root = MerkleTree.open(info.path / "tree.bin").root().hex()
    except (OSError, ValueError, AnchoringError) as exc:
        found.append(finding("tree", f"tree.bin cannot be read: {exc}"))
    else:
        if tree_root != manifest["root"]:
            found.append(finding("tree", "tree.bin's root is not the manifest's root"))
    return found


def _audit_records(
    home: Home, info: VersionInfo, contract: Contract, table: pa.Table, finding: Any
) -> list[Finding]:
    found: list[Finding] = []
    manifest = info.manifest
    if table.num_rows != manifest["records"]:
        found.append(
            finding(
                "records",
                f"{table.num_rows} records stored, the manifest committed {manifest['records']}",
            )
        )
    if SALT_COLUMN not in table.column_names or not set(contract.field_names) <= set(
        table.column_names
    ):
        found.append(finding("records", "records.parquet lacks columns of its contract"))
        return found
    ordered = sort_into_leaf_order(table, contract)
    if not ordered.equals(table):
        found.append(finding("leaf-order", "records are not in leaf order (rows were reordered)"))
    salt_key = home.trial_salt_key(info.trial)
    records = table.drop_columns([SALT_COLUMN])
    stored_salts = table.column(SALT_COLUMN)
    salts_match, subtrees, row = True, [], 0
    for chunk in leaf_chunks(records, contract, info.trial, info.dataset, salt_key):
        stored = stored_salts.slice(row, chunk.records.num_rows).combine_chunks()
        salts_match = salts_match and stored.equals(chunk.salts)
        subtrees.append(chunk.levels)
        row += chunk.records.num_rows
    if not salts_match:
        found.append(finding("salts", "stored salts are not the ones the trial key gives"))
    root = MerkleTree.from_subtree_levels(subtrees).root().hex()
    if root != manifest["root"]:
        found.append(
            finding(
                "root",
                f"records hash to root {root[:16]}…, the manifest "
                f"committed {manifest['root'][:16]}… (records altered)",
            )
        )
    return found


def _audit_log(home: Home, report: AuditReport) -> MerkleTree | None:
    log = home.log()
    size = log.size()
    report.log_size = size
    hashes = bytearray()
    for expected_index, entry in enumerate(log.scan()):
        if entry.index != expected_index:
            report.findings.append(Finding("log-entry", f"log entry {expected_index} is missing"))
            break
        if leaf_hash(entry.leaf_input) != entry.leaf_hash:
            report.findings.append(
                Finding(
                    "log-entry",
                    f"log entry {entry.index} was rewritten: its leaf hash is not its input's",
                )
            )
        hashes += leaf_hash(entry.leaf_input)
    if len(hashes) // 32 != size:
        report.findings.append(
            Finding(
                "log-entry", f"the log says it has {size} entries but holds {len(hashes) // 32}"
            )
        )
    tree = MerkleTree.from_leaf_hashes(bytes(hashes))
    if size and log.root() != tree.root():
        report.findings.append(
            Finding("log-tree", "the log's stored tree nodes do not match its entries")
        )
    previous: Checkpoint | None = None
    for cp_size, note in log.checkpoints():
        report.checkpoints_checked += 1
        try:
            checkpoint = open_checkpoint(note, [home.verifier], origin=home.origin)
        except AnchoringError as exc:
            report.findings.append(
                Finding("checkpoint-signature", f"checkpoint at size {cp_size}: {exc}")
            )
            continue
        if checkpoint.size > size or tree.root(checkpoint.size) != checkpoint.root:
            report.findings.append(
                Finding(
                    "checkpoint-root",
                    f"checkpoint at size {cp_size} does not match the log's entries",
                )
            )
            continue
        if previous is not None:
            try:
                verify_consistency(
                    previous.size,
                    checkpoint.size,
                    previous.root,
                    checkpoint.root,
                    log.consistency_proof(previous.size, checkpoint.size),
                )
            except AnchoringError as exc:
                report.findings.append(
                    Finding(
                        "checkpoint-consistency",
                        f"sizes {previous.size} -> {checkpoint.size}: {exc}",
                    )
                )
        previous = checkpoint
    return tree


def _check_prefix(tree: MerkleTree, note: str, what: str, report: AuditReport) -> None:
    checkpoint = Checkpoint.from_body(parse_note(note).text)
    if checkpoint.size > tree.size:
        report.findings.append(
            Finding(
                "fork",
                f"{what} has size {checkpoint.size}, but the log "
                f"now has only {tree.size} entries (truncated)",
            )
        )
    elif tree.root(checkpoint.size) != checkpoint.root:
        report.findings.append(
            Finding(
                "fork",
                f"{what} committed root "
                f"{checkpoint.root.hex()[:16]}… at size "
                f"{checkpoint.size}; the log now has another "
                "history (rewritten or re-grown)",
            )
        )


def _audit_anchors(home: Home, tree: MerkleTree, report: AuditReport, online: bool) -> None:
    from pipeline.anchor import anchored, ledgers_for, receipts_for
    from pipeline.audit_ledgers import check_external_anchors

    ledgers = {ledger.name: ledger for ledger in ledgers_for(home)}
    for size in anchored(home):
        note, receipts = receipts_for(home, size)
        _check_prefix(tree, note, f"the checkpoint anchored at size {size}", report)
        problems = check_external_anchors(home, size, note, receipts, online)
        report.findings.extend(Finding(check, detail) for check, detail in problems)
        for name, receipt in receipts.items():
            report.receipts_checked += 1
            if receipt.get("type") != "trialproof/local-ledger/v1":
                continue  # checked by check_external_anchors
            ledger = ledgers.get(name)
            if ledger is None:
                report.findings.append(
                    Finding(
                        "receipt",
                        f"size {size}: no ledger {name!r} is configured to check its receipt",
                    )
                )
                continue
            try:
                ledger.verify(receipt, note)
            except AnchoringError as exc:
                report.findings.append(Finding("receipt", f"size {size}, {name}: {exc}"))


def info_input(home: Home, info: VersionInfo) -> bytes:
    return home.log().entry(info.log_index).leaf_input


def audit(home: Home, trial: str | None = None, online: bool = False) -> AuditReport:
    """Check everything the home holds (or one trial's versions, plus the whole log); with
    ``online``, chain receipts are also checked on their chains."""
    report = AuditReport()
    tree = _audit_log(home, report)
    store = Store(home.path, home.log())
    remembered = home.path / "audit" / "last-clean-checkpoint.txt"
    if tree is not None:
        if remembered.is_file():
            _check_prefix(
                tree,
                remembered.read_text(encoding="utf-8"),
                "the checkpoint of the last clean audit",
                report,
            )
        _audit_anchors(home, tree, report, online)
    for dataset_trial, dataset in store.datasets():
        if trial is not None and dataset_trial != trial:
            continue
        previous_hash: str | None = None
        try:
            versions = store.versions(dataset_trial, dataset)
        except AnchoringError as exc:
            report.findings.append(
                Finding("log-entry", f"versions cannot be listed: {exc}", dataset_trial, dataset)
            )
            continue
        for number, info in enumerate(versions, start=1):
            report.versions_checked += 1
            report.findings.extend(_audit_version(home, info, info_input(home, info)))
            if info.version != number or info.manifest.get("previous") != previous_hash:
                report.findings.append(
                    Finding(
                        "version-chain",
                        "version number or previous hash does not follow the version before",
                        info.trial,
                        info.dataset,
                        info.version,
                    )
                )
            previous_hash = info.leaf_hash.hex()
    latest = home.log().latest_checkpoint()
    if report.ok and latest is not None and trial is None:
        remembered.parent.mkdir(parents=True, exist_ok=True)
        write_text_durably(remembered, latest)
    return report
