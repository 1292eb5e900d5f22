"""The audit (docs/architecture.md): recompute everything from storage and check every link.

Per version: its files exist; ``manifest.json`` is the log's leaf input; the raw
delivery, contract and report hash to what the manifest says; the records are
readable, in leaf order, with the salts the trial key gives under the version's salt
scheme; their root is the manifest's root, and so is the stored tree's; versions
chain by ``previous``.

For the log: every entry's leaf hash is the hash of its input; every stored
checkpoint is signed by the log key and has the root recomputed from the
entries; consecutive checkpoints are consistent; the checkpoint remembered
from the last clean audit and every anchored checkpoint are still prefixes of
the log (a truncated and re-grown log is a fork); every receipt verifies.

Against the folders: every version folder on disk is in the log
(``unlogged-version``); every anchor folder has its checkpoint and receipts,
and every local-ledger entry has its anchor folder and receipt
(``anchor-missing``); the local ledger's entries are intact, chained, and the
ones the receipts recorded (``ledger-entry``). A log database that cannot be
read is itself a finding (``log-database``).

Each problem is a :class:`Finding` naming the check and where.
"""

from __future__ import annotations

__all__ = ["AuditReport", "Finding", "audit", "info_input"]

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from anchoring._internal.tree import MerkleTree
from anchoring.canonical import SALT_SCHEMES
from anchoring.checkpoint import Checkpoint, open_checkpoint
from anchoring.errors import AnchoringError, LogDatabaseError
from anchoring.manifest import manifest_salt_scheme
from anchoring.merkle.hasher import leaf_hash
from anchoring.merkle.verify import verify_consistency
from anchoring.note import parse_note
from pipeline.contract import Contract
from pipeline.errors import PipelineError
from pipeline.fsutil import sha256_file, write_text_durably
from pipeline.hashing import VectorizedHasher
from pipeline.home import AUDIT_CHECKPOINT, Home
from pipeline.records import leaf_chunks, sort_into_leaf_order, use_system_memory_pool
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
    html_sha256 = manifest["validation"].get("report_html_sha256")  # absent before it existed
    if html_sha256 is not None and _sha256(info.path / "report.html") != html_sha256:
        found.append(finding("report", "report.html does not hash to the manifest's report"))
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
    home: Home, info: VersionInfo, contract: Contract, table: pa.Table,
    finding: Callable[[str, str], Finding],
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
    salt_scheme = manifest_salt_scheme(manifest)
    if salt_scheme not in SALT_SCHEMES:
        found.append(finding("salts", f"unknown salt scheme {salt_scheme[:64]!r}"))
        return found
    records = table.drop_columns([SALT_COLUMN])
    stored_salts = table.column(SALT_COLUMN)
    salts_match, subtrees, row = True, [], 0
    for chunk in leaf_chunks(
        records, contract, info.trial, info.dataset, salt_key,
        version=info.version, salt_scheme=salt_scheme,
    ):
        stored = stored_salts.slice(row, chunk.records.num_rows).combine_chunks()
        salts_match = salts_match and stored.equals(chunk.salts)
        subtrees.append(chunk.levels)
        row += chunk.records.num_rows
    if not salts_match:
        found.append(finding("salts", "stored salts are not the ones the trial key gives"))
    root = MerkleTree.from_subtree_levels(subtrees, VectorizedHasher()).root().hex()
    if root != manifest["root"]:
        found.append(
            finding(
                "root",
                f"records hash to root {root[:16]}…, the manifest "
                f"committed {manifest['root'][:16]}… (records altered)",
            )
        )
    return found


def _audit_log(home: Home, report: AuditReport) -> MerkleTree:
    """The tree recomputed from the log's entries (up to the first one missing)."""
    log = home.log()
    size = log.size()
    report.log_size = size
    hashes = bytearray()
    for expected_index, entry in enumerate(log.scan()):
        if entry.index != expected_index:
            report.findings.append(Finding("log-entry", f"log entry {expected_index} is missing"))
            break
        recomputed = leaf_hash(entry.leaf_input)
        if recomputed != entry.leaf_hash:
            report.findings.append(
                Finding(
                    "log-entry",
                    f"log entry {entry.index} was rewritten: its leaf hash is not its input's",
                )
            )
        hashes += recomputed
    tree = MerkleTree.from_leaf_hashes(bytes(hashes), VectorizedHasher())
    if tree.size != size:
        report.findings.append(
            Finding("log-entry", f"the log says it has {size} entries but holds {tree.size}")
        )
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
        if checkpoint.size > tree.size or tree.root(checkpoint.size) != checkpoint.root:
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
    base = home.anchors_path
    for folder in sorted(base.iterdir()) if base.is_dir() else []:
        if folder.name.isdigit() and not (folder / "checkpoint.txt").is_file():
            report.findings.append(
                Finding("anchor-missing", f"anchors/{folder.name}/checkpoint.txt is missing")
            )
    local_receipts: dict[int, dict[str, Any]] = {}
    for size in anchored(home):
        try:
            note, receipts = receipts_for(home, size)
        except (OSError, ValueError) as exc:
            report.findings.append(
                Finding("receipt", f"size {size}: the anchor folder cannot be read: {exc}")
            )
            continue
        _check_prefix(tree, note, f"the checkpoint anchored at size {size}", report)
        if not receipts and not _awaited(home, size):
            report.findings.append(
                Finding("anchor-missing", f"anchors/{size:012d}/ holds no receipt")
            )
        if "local" in receipts:
            local_receipts[size] = receipts["local"]
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
    _audit_local_ledger(home, local_receipts, report)


def _awaited(home: Home, size: int) -> bool:
    """Whether some ledger's receipt for the anchoring is still pending."""
    from pipeline.anchor_ledgers import anchoring_folder, read_states

    states = read_states(anchoring_folder(home, size))
    return any(state.get("state") == "pending" for state in states.values())


def _audit_local_ledger(
    home: Home, local_receipts: dict[int, dict[str, Any]], report: AuditReport
) -> None:
    """The local ledger's table against the anchor folders' receipts, both ways."""
    from anchoring._internal.ledgers.local import LocalLedger
    from pipeline.anchor import anchored

    ledger = LocalLedger(home.log())
    for problem in ledger.chain_problems():
        report.findings.append(Finding("ledger-entry", problem))
    on_disk = set(anchored(home))
    in_ledger: set[int] = set()
    for entry in ledger.entries():
        size, index = entry.get("size"), entry.get("index")
        if not isinstance(size, int):
            continue  # unreadable: named by chain_problems
        in_ledger.add(size)
        receipt = local_receipts.get(size)
        folder = f"anchors/{size:012d}/"
        if receipt is None:
            missing = f"{folder}local.json" if size in on_disk else folder
            if (home.anchors_path / f".{size:012d}.tmp").is_dir():
                missing += " (an anchoring was interrupted: `trialproof anchor` finishes it)"
            report.findings.append(
                Finding(
                    "anchor-missing",
                    f"the local ledger anchored size {size} (entry {index}), "
                    f"but {missing} is missing",
                )
            )
        elif receipt.get("entry_hash") != entry.get("entry_hash"):
            report.findings.append(
                Finding(
                    "ledger-entry",
                    f"local ledger entry {index} (size {size}) is not the one {folder}local.json "
                    "recorded: the ledger row was edited",
                )
            )
    for size in sorted(set(local_receipts) - in_ledger):
        report.findings.append(
            Finding(
                "ledger-entry",
                f"the local ledger has no entry for size {size}, receipted in "
                f"anchors/{size:012d}/local.json: its row was deleted or edited",
            )
        )


def _audit_unlogged_versions(
    home: Home, store: Store, trial: str | None, report: AuditReport
) -> None:
    """Every version folder on disk must be a version the log knows."""
    logged: dict[tuple[str, str], set[int] | None] = {}
    for folder in sorted(home.path.glob("datasets/*/*/v*")):
        folder_trial, dataset = folder.parent.parent.name, folder.parent.name
        if not folder.is_dir() or (trial is not None and folder_trial != trial):
            continue
        if (folder_trial, dataset) not in logged:
            try:
                versions = store.versions(folder_trial, dataset)
            except AnchoringError:
                versions = None  # the log's entries are damaged: named already
            logged[(folder_trial, dataset)] = (
                None if versions is None else {v.version for v in versions}
            )
        known = logged[(folder_trial, dataset)]
        number = folder.name[1:]
        if known is None:
            continue
        if not number.isdigit() or int(number) not in known:
            report.findings.append(
                Finding(
                    "unlogged-version",
                    f"{folder.relative_to(home.path)} is on disk but the log has no such version",
                    folder_trial,
                    dataset,
                    int(number) if number.isdigit() else None,
                )
            )


def info_input(home: Home, info: VersionInfo) -> bytes:
    return home.log().entry(info.log_index).leaf_input


def audit(home: Home, trial: str | None = None, online: bool = False) -> AuditReport:
    """Check everything the home holds (or one trial's versions, plus the whole log); with
    ``online``, chain receipts are also checked on their chains.

    A log database that cannot be read ends the audit with a ``log-database`` finding.
    """
    use_system_memory_pool()
    report = AuditReport()
    try:
        _audit_home(home, trial, report, online)
    except LogDatabaseError as exc:
        report.findings.append(Finding("log-database", str(exc)))
    return report


def _audit_home(home: Home, trial: str | None, report: AuditReport, online: bool) -> None:
    tree = _audit_log(home, report)
    store = home.store()
    remembered = home.path / AUDIT_CHECKPOINT
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
    _audit_unlogged_versions(home, store, trial, report)
    latest = home.log().latest_checkpoint()
    if report.ok and latest is not None and trial is None and not home.read_only:
        remembered.parent.mkdir(parents=True, exist_ok=True)
        write_text_durably(remembered, latest)
