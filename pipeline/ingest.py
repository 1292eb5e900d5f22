"""Ingest a delivery (docs/architecture.md): stage -> read and validate -> commit.

Each step is a function an Airflow task can call on its own; between steps
only paths and hashes travel. :func:`ingest` runs all three in one process.

- **stage** keeps the raw bytes under their sha256 (idempotent).
- **validate** reads the staged bytes into an Arrow table typed by the
  contract and checks it with Great Expectations. A failing delivery goes to
  quarantine with its report and nothing else changes.
- **commit** writes the version's files into a staging directory, appends
  its manifest to the log in one transaction, then renames the directory
  into place. A delivery whose sha256 is the dataset's latest version makes
  no new version; the bytes of an earlier version make a new one (a rollback),
  whose manifest names that version in ``same_content_as``.

:func:`dry_run` reads and validates a delivery and writes its report, but stages,
quarantines and commits nothing. :func:`study_mismatch` and :func:`unregistered_trial`
are the checks ``trialproof ingest`` makes before it commits under ``--trial``.
"""

from __future__ import annotations

__all__ = [
    "DryRunResult",
    "IngestResult",
    "Progress",
    "StagedDelivery",
    "ValidatedDelivery",
    "commit",
    "dry_run",
    "ingest",
    "refuse_unsafe_delivery",
    "stage",
    "stage_download",
    "study_mismatch",
    "unregistered_trial",
    "validate",
]

import errno
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from anchoring._internal.log import LogEntry
from anchoring._internal.tree import MerkleTree
from anchoring.canonical import SALT_SCHEME, canonical_json
from anchoring.errors import DuplicateEntryError
from anchoring.manifest import MANIFEST_TYPE, manifest_leaf_input
from pipeline.contract import Contract
from pipeline.errors import ReadError, StoreError, ValidationFailed
from pipeline.fsutil import (
    copy_durably,
    fsync_dir,
    is_within,
    remove_stale_temp_files,
    sha256_file,
    symlinked_component,
    write_bytes_durably,
)
from pipeline.hashing import VectorizedHasher
from pipeline.home import Home, enclosing_home
from pipeline.records import LeafChunk, leaf_chunks, leaf_order, use_system_memory_pool
from pipeline.store import SALT_COLUMN, Store, VersionInfo, check_name, log_key, publish, step_done

#: Called with the name of each stage as it starts.
Progress = Callable[[str], None]


def _quiet(_stage: str) -> None:
    return None


@dataclass(frozen=True)
class StagedDelivery:
    """A delivery kept in ``raw/`` under its sha256."""

    path: Path
    sha256: str
    size: int
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "size": self.size, "name": self.name}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StagedDelivery:
        return cls(Path(data["path"]), data["sha256"], int(data["size"]), data["name"])


@dataclass(frozen=True)
class ValidatedDelivery:
    """A delivery that passed validation; its typed table and report wait in ``work/``."""

    staged: StagedDelivery
    trial: str
    dataset: str
    work_dir: Path
    report_sha256: str
    table: pa.Table | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "staged": self.staged.to_json(),
            "trial": self.trial,
            "dataset": self.dataset,
            "work_dir": str(self.work_dir),
            "report_sha256": self.report_sha256,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValidatedDelivery:
        return cls(
            StagedDelivery.from_json(data["staged"]),
            data["trial"],
            data["dataset"],
            Path(data["work_dir"]),
            data["report_sha256"],
        )


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did: ``committed`` a new version, or found it ``unchanged``."""

    status: str
    trial: str
    dataset: str
    version: int
    log_index: int
    manifest: dict[str, Any]
    version_dir: Path

    @classmethod
    def unchanged(cls, info: VersionInfo) -> IngestResult:
        """The delivery was already committed as ``info``: no new version."""
        return cls("unchanged", info.trial, info.dataset, info.version, info.log_index,
                   info.manifest, info.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "trial": self.trial,
            "dataset": self.dataset,
            "version": self.version,
            "log_index": self.log_index,
            "root": self.manifest["root"],
            "manifest": self.manifest,
            "reports": {
                "json": str(self.version_dir / "report.json"),
                "html": str(self.version_dir / "report.html"),
            },
            "version_dir": str(self.version_dir),
        }



def refuse_unsafe_delivery(home: Home, source: Path) -> None:
    """Refuse a delivery that is, or passes through, a symbolic link, or that lies in a
    trialproof home: such a path can make ingest read a key or another delivery."""
    absolute = Path(os.path.abspath(source))
    link = symlinked_component(absolute)
    if link is not None:
        what = "it" if link == absolute else str(link)
        raise ReadError(f"{source}: refused: {what} is a symbolic link; deliver the file itself")
    home_path = Path(os.path.abspath(home.path))
    inside = home_path if is_within(absolute, home_path) or is_within(
        absolute, home_path.resolve()) else enclosing_home(absolute.parent)
    if inside is not None:
        raise ReadError(f"{source}: refused: it lies inside the trialproof home {inside}; "
                        "deliveries come from outside the home")


def stage(home: Home, source: Path) -> StagedDelivery:
    """Copy ``source`` into ``raw/<sha256>`` durably; the same bytes again are a no-op.

    Symbolic links and paths inside a home are refused (:func:`refuse_unsafe_delivery`).
    """
    refuse_unsafe_delivery(home, source)
    return stage_download(home, source, source.name)


def stage_download(home: Home, path: Path, name: str) -> StagedDelivery:
    """Stage a file trialproof fetched itself (``path`` may lie in the home's incoming/)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ReadError(f"{path}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ReadError(f"{path}: refused: it is a symbolic link") from None
        raise ReadError(f"{path}: cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ReadError(f"{path}: not a regular file")
        digest = hashlib.sha256()
        size = 0
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        sha = digest.hexdigest()
        raw_dir = home.path / "raw"
        raw_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(raw_dir)
        target = raw_dir / sha
        if not target.exists():
            source.seek(0)
            _copy_to_raw(source, raw_dir, sha, name)
    return StagedDelivery(target, sha, size, name)


def _copy_to_raw(source: BinaryIO, raw_dir: Path, sha: str, name: str) -> None:
    """Copy into ``raw/<sha>`` durably (:func:`pipeline.fsutil.copy_durably`)."""
    try:
        copied = copy_durably(source, raw_dir / sha, sha)
    except OSError as exc:
        raise StoreError(f"{name}: cannot be staged in {raw_dir}: "
                         f"{exc.strerror or type(exc).__name__}") from None
    if not copied:
        raise ReadError(f"{name}: the file changed while it was being staged; "
                        "deliver it again")


def _work_dir(home: Home, trial: str, dataset: str, sha: str) -> Path:
    return home.path / "work" / trial / dataset / sha


def validate(
    home: Home,
    staged: StagedDelivery,
    trial: str,
    dataset: str,
    contract: Contract,
    progress: Progress = _quiet,
    keep_table: bool = False,
) -> ValidatedDelivery:
    """Read and validate a staged delivery.

    A delivery that cannot be read, or that breaks its contract, is quarantined
    with its report, and :class:`ValidationFailed` names the problem and the place.
    """
    from pipeline.readers import read_delivery
    from pipeline.validation import validate as run_suite

    use_system_memory_pool()
    check_name(trial, "trial")
    check_name(dataset, "dataset")
    progress("read")
    store = home.store()
    try:
        delivery = read_delivery(staged.path, contract, name=staged.name)
        if delivery.rows == 0 and not contract.allow_empty:
            raise ReadError(f"{staged.name}: no rows (a header only); the contract does not "
                            'allow empty deliveries ("trialproof": {"allowEmpty": true})')
    except ReadError as exc:
        # Rejected like an invalid delivery: into quarantine with a report, so that
        # nobody picks it up again.
        problem = str(exc)
        where = store.quarantine(trial, dataset, staged.sha256, staged.name,
                                 _rejection_reports(staged.name, staged.sha256, contract, problem))
        raise ValidationFailed(f"{problem}; quarantined in {where} "
                               f"(report: {where / 'report.html'})", str(where),
                               str(where / "report.html")) from None
    progress("validate")
    report = run_suite(
        delivery.table,
        contract,
        type_issues=delivery.type_errors,
        missing_columns=delivery.missing_columns,
        source_name=staged.name,
    )
    report_json = report.to_json().encode("utf-8")
    report_html = report.to_html().encode("utf-8")
    if not report.success:
        where = store.quarantine(
            trial,
            dataset,
            staged.sha256,
            staged.name,
            {"report.json": report_json, "report.html": report_html},
        )
        failed = sum(1 for r in report.results if not r["success"])
        raise ValidationFailed(
            f"{staged.name} failed {failed} check(s) of contract {contract.name}; "
            f"quarantined in {where} (report: {where / 'report.html'})",
            str(where),
            str(where / "report.html"),
        )
    work = _work_dir(home, trial, dataset, staged.sha256)
    work.mkdir(parents=True, exist_ok=True)
    write_bytes_durably(work / "report.json", report_json)
    write_bytes_durably(work / "report.html", report_html)
    if not keep_table:  # a commit in another process (an Airflow task) reads it from here
        tmp = work / f".typed.{os.getpid()}.parquet"
        pq.write_table(delivery.table, tmp)
        os.replace(tmp, work / "typed.parquet")
    return ValidatedDelivery(
        staged,
        trial,
        dataset,
        work,
        hashlib.sha256(report_json).hexdigest(),
        delivery.table if keep_table else None,
    )


def _rejection_reports(name: str, sha256: str, contract: Contract,
                       problem: str) -> dict[str, bytes]:
    """report.json and report.html of a delivery that could not be read."""
    from pipeline.validation import rejection_html

    rejection = {"success": False, "source": name, "sha256": sha256,
                 "contract": contract.name, "error": problem}
    return {"report.json": (json.dumps(rejection, indent=2) + "\n").encode(),
            "report.html": rejection_html(name, sha256, contract.name, problem).encode()}


#: The SDTM/ADaM variable that names the trial in every record.
STUDY_COLUMN = "STUDYID"


def study_mismatch(table: pa.Table, trial: str, source_name: str) -> str | None:
    """Why the data's own trial identifier (its STUDYID values) is not ``trial``, or None
    (also when the table has no STUDYID column)."""
    if STUDY_COLUMN not in table.column_names:
        return None
    import pyarrow.compute as pc

    found = sorted(str(v) for v in pc.unique(table.column(STUDY_COLUMN)).to_pylist()
                   if v is not None and str(v) != "")
    if not found or found == [trial]:
        return None
    shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    return f"{source_name}: its {STUDY_COLUMN} is {shown}, not --trial {trial}"


def unregistered_trial(trial: str, registry: Path | None = None) -> str | None:
    """Why ``trial`` is not in the sponsor registry, or None when it is, or when there is
    no registry file to look in."""
    from pipeline.registry import RegistryFileError, read_registry, resolve_registry

    path = resolve_registry(registry)
    if not path.is_file():
        return None
    try:
        known = read_registry(path)
    except RegistryFileError as exc:
        return f"trial {trial} cannot be looked up: {exc}"
    trials = {e.trial for e in known.entries} | {p.trial for p in known.problems if p.trial}
    if trial in trials:
        return None
    listed = ", ".join(sorted(trials)) or "none"
    return f"trial {trial} is not in the sponsor registry {path} (it lists: {listed})"


@dataclass(frozen=True)
class DryRunResult:
    """What a dry run found; its reports are in ``report_dir``."""

    valid: bool
    source: str
    sha256: str
    rows: int | None
    summary: str
    report_dir: Path
    study_problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": "dry-run", "valid": self.valid, "source": self.source,
                "sha256": self.sha256, "rows": self.rows, "summary": self.summary,
                "study_problem": self.study_problem,
                "reports": {"json": str(self.report_dir / "report.json"),
                            "html": str(self.report_dir / "report.html")}}


def dry_run(home: Home, source: Path, trial: str, dataset: str, contract: Contract,
            progress: Progress = _quiet) -> DryRunResult:
    """Read and validate ``source`` and write its report into
    ``<home>/dry-runs/<trial>/<dataset>/<sha256>/``; nothing is staged, quarantined or
    committed, and the log is not touched."""
    from pipeline.readers import read_delivery
    from pipeline.validation import validate as run_suite

    check_name(trial, "trial")
    check_name(dataset, "dataset")
    if not source.is_file():
        raise ReadError(f"{source}: no such file")
    progress("read")
    sha, _size = sha256_file(source)
    report_dir = home.path / "dry-runs" / trial / dataset / sha
    report_dir.mkdir(parents=True, exist_ok=True)
    try:
        delivery = read_delivery(source, contract, name=source.name)
    except ReadError as exc:
        problem = str(exc)
        for name, data in _rejection_reports(source.name, sha, contract, problem).items():
            write_bytes_durably(report_dir / name, data)
        return DryRunResult(False, source.name, sha, None, problem, report_dir)
    progress("validate")
    report = run_suite(delivery.table, contract, type_issues=delivery.type_errors,
                       missing_columns=delivery.missing_columns, source_name=source.name)
    write_bytes_durably(report_dir / "report.json", report.to_json().encode("utf-8"))
    write_bytes_durably(report_dir / "report.html", report.to_html().encode("utf-8"))
    return DryRunResult(report.success, source.name, sha, report.rows, report.summary(),
                        report_dir, study_mismatch(delivery.table, trial, source.name))


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _latest_if_same_source(
    store: Store, trial: str, dataset: str, sha256: str
) -> VersionInfo | None:
    """The dataset's latest version, if it committed a delivery with this sha256.

    Only the latest counts: the bytes of an earlier version delivered again are a
    rollback, and become a new version.
    """
    versions = store.versions(trial, dataset)
    if versions and versions[-1].manifest["source"]["sha256"] == sha256:
        return versions[-1]
    return None


class _VersionTaken(Exception):
    """Another commit took the version number this one salted its records for."""


def _next_version(previous: LogEntry | None) -> int:
    return 1 if previous is None else (previous.key_seq or 0) + 1


def commit(
    home: Home, validated: ValidatedDelivery, contract: Contract, progress: Progress = _quiet
) -> IngestResult:
    """Commit a validated delivery as the dataset's next version (idempotent by source sha256)."""
    use_system_memory_pool()
    store = home.store()
    store.recover()
    trial, dataset, staged = validated.trial, validated.dataset, validated.staged
    existing = _latest_if_same_source(store, trial, dataset, staged.sha256)
    if existing is not None:
        shutil.rmtree(validated.work_dir, ignore_errors=True)
        return IngestResult.unchanged(existing)
    # Salts bind the version (docs/formats.md §3), so the records are hashed for the
    # number this commit expects; if another commit takes it first, hash again.
    version = _next_version(store.log.latest_for_key(log_key(trial, dataset)))
    earlier = store.committed_source(trial, dataset, staged.sha256)
    same_content_as = None if earlier is None else earlier.version

    progress("canonicalize")
    table = validated.table
    if table is None:
        table = pq.read_table(validated.work_dir / "typed.parquet")
    order = leaf_order(table, contract)
    with store.staging_dir(trial, dataset) as staging:
        try:
            subtrees = _write_records(
                staging / "records.parquet",
                table.schema,
                contract,
                leaf_chunks(
                    table, contract, trial, dataset, home.trial_salt_key(trial),
                    version=version, salt_scheme=SALT_SCHEME, order=order,
                ),
            )
            step_done("records")
            progress("tree")
            tree = MerkleTree.from_subtree_levels(subtrees, VectorizedHasher())
            progress("store")
            result = _commit_in(
                staging, store, validated, contract, tree, version, same_content_as, progress
            )
        except _VersionTaken:
            shutil.rmtree(staging, ignore_errors=True)
            result = None
        except BaseException:
            if not (staging / "manifest.json").exists():
                shutil.rmtree(staging, ignore_errors=True)
            raise
    if result is None:
        return commit(home, validated, contract, progress)
    shutil.rmtree(validated.work_dir, ignore_errors=True)
    return result


def _write_records(
    path: Path, schema: pa.Schema, contract: Contract, chunks: Iterable[LeafChunk]
) -> list[list[bytes]]:
    """Write the typed records in leaf order with their salts (docs/architecture.md), one row
    group per chunk as the chunks are hashed; return each chunk's subtree levels.

    Row groups are key ranges, so min/max statistics are kept for the key columns,
    where they let a reader skip row groups; elsewhere they would only cost time.
    Salts are random: neither a dictionary nor compression can shrink them.
    """
    columns = schema.names
    schema = schema.append(pa.field(SALT_COLUMN, pa.binary(32)))
    subtrees = []
    with pq.ParquetWriter(
        path,
        schema,
        use_dictionary=columns,
        compression={**dict.fromkeys(columns, "snappy"), SALT_COLUMN: "none"},
        write_statistics=[k for k in contract.primary_key if k in columns],
    ) as writer:
        for chunk in chunks:
            writer.write_table(chunk.records.append_column(SALT_COLUMN, chunk.salts))
            subtrees.append(chunk.levels)
    _fsync_file(path)
    return subtrees


def _commit_in(
    staging: Path,
    store: Store,
    validated: ValidatedDelivery,
    contract: Contract,
    tree: MerkleTree,
    version: int,
    same_content_as: int | None,
    progress: Progress,
) -> IngestResult:
    trial, dataset, staged = validated.trial, validated.dataset, validated.staged
    tree.write(staging / "tree.bin")
    step_done("tree")
    write_bytes_durably(staging / "contract.json", canonical_json(dict(contract.descriptor)))
    for name in ("report.json", "report.html"):
        shutil.copyfile(validated.work_dir / name, staging / name)
        _fsync_file(staging / name)
    fsync_dir(staging)
    report_html_sha256 = sha256_file(staging / "report.html")[0]
    step_done("files")

    progress("log")
    manifest: dict[str, Any] = {}

    def build(previous: LogEntry | None) -> bytes:
        # Runs with the log's append lock held, so version numbers are race-free.
        if previous is not None and (
            json.loads(previous.leaf_input)["source"]["sha256"] == staged.sha256
        ):
            raise DuplicateEntryError(previous)  # a retry, or a race with the same delivery
        if _next_version(previous) != version:
            raise _VersionTaken
        manifest.update(
            {
                "type": MANIFEST_TYPE,
                "trial": trial,
                "dataset": dataset,
                "version": version,
                "contract": {"name": contract.name, "sha256": contract.sha256},
                "source": {"name": staged.name, "sha256": staged.sha256, "bytes": staged.size},
                "records": tree.size,
                "root": tree.root().hex(),
                "previous": None if previous is None else previous.leaf_hash.hex(),
                "validation": {
                    "success": True,
                    "report_sha256": validated.report_sha256,
                    "report_html_sha256": report_html_sha256,
                },
                "ingested_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "salt_scheme": SALT_SCHEME,
            }
        )
        if same_content_as is not None:
            manifest["same_content_as"] = same_content_as
        data = manifest_leaf_input(manifest)
        write_bytes_durably(staging / "manifest.json", data)
        step_done("manifest")
        return data

    try:
        entry = store.log.append_keyed(log_key(trial, dataset), build)
    except DuplicateEntryError as dup:
        shutil.rmtree(staging, ignore_errors=True)
        assert isinstance(dup.entry, LogEntry)
        info = store.version(trial, dataset, dup.entry.key_seq)
        return IngestResult.unchanged(info)
    step_done("append")
    target = store.version_dir(trial, dataset, manifest["version"])
    publish(staging, target)
    step_done("publish")
    return IngestResult(
        "committed", trial, dataset, manifest["version"], entry.index, manifest, target
    )


def ingest(
    home: Home,
    source: Path,
    trial: str,
    dataset: str,
    contract: Contract,
    progress: Progress = _quiet,
    *,
    on_study_mismatch: Callable[[str], None] | None = None,
) -> IngestResult:
    """Stage, validate and commit one delivery in this process.

    When the delivery's STUDYID is not ``trial``, ``on_study_mismatch`` is called with the
    problem before the commit: it may warn, or raise to commit nothing."""
    check_name(trial, "trial")
    check_name(dataset, "dataset")
    progress("stage")
    staged = stage(home, source)
    store = home.store()
    if not home.read_only:
        store.recover()  # a version this delivery stranded by a crash is not "unchanged" yet
    existing = _latest_if_same_source(store, trial, dataset, staged.sha256)
    if existing is not None:
        return IngestResult.unchanged(existing)
    validated = validate(home, staged, trial, dataset, contract, progress, keep_table=True)
    problem = None if validated.table is None else study_mismatch(validated.table, trial,
                                                                   source.name)
    if problem and on_study_mismatch is not None:
        try:
            on_study_mismatch(problem)
        except BaseException:
            shutil.rmtree(validated.work_dir, ignore_errors=True)
            raise
    return commit(home, validated, contract, progress)
