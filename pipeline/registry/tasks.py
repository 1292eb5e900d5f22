"""What the ingest DAG's tasks call, so that each task is a few lines (docs/architecture.md):
list the new deliveries of a registry entry, then stage, validate and commit one.

XCom carries only paths and hashes. Nothing here imports Airflow, and everything heavy
is imported inside the function that needs it (the DAG files are parsed often).
"""

from __future__ import annotations

__all__ = [
    "MAX_PER_RUN",
    "commit_delivery",
    "list_deliveries",
    "new_deliveries",
    "stage_delivery",
    "validate_delivery",
]

import glob
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.registry.schema import DeliveryPolicy, RegistryEntry, RegistryFileError, is_remote

if TYPE_CHECKING:
    from pipeline.home import Home

logger = logging.getLogger("trialproof.registry")

#: New deliveries taken by one run; Airflow maps each, and caps a mapping at 1024 by default.
MAX_PER_RUN = 200
# Files a sponsor's upload tool may leave while it writes; never ingested.
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")


def _is_candidate(name: str) -> bool:
    return not name.startswith(".") and not name.lower().endswith(_PARTIAL_SUFFIXES)


def list_deliveries(entry: RegistryEntry, home: Home | None = None) -> list[str]:
    """Every delivery file at the entry's location (local paths or URLs), sorted.

    The location is checked again against the home's :class:`DeliveryPolicy` (the
    registry may have been checked under another configuration), and local files that
    are symbolic links or lie in a trialproof home are left out, with a warning.
    """
    policy = DeliveryPolicy.for_home(home.path if home is not None else None)
    if entry.remote:
        import fsspec  # type: ignore[import-untyped]

        _allowed(policy.check_remote, entry)
        fs, pattern = fsspec.core.url_to_fs(entry.deliveries)
        found = []
        for path in fs.glob(pattern):
            if _is_candidate(path.rsplit("/", 1)[-1]) and fs.isfile(path):
                found.append(fs.unstrip_protocol(path))
        return sorted(found)
    _allowed(policy.check_local, entry)
    return sorted(p for p in glob.glob(entry.deliveries, recursive=True)
                  if _is_candidate(os.path.basename(p)) and _safe_local(p, home))


def _allowed(check: Callable[[str], None], entry: RegistryEntry) -> None:
    try:
        check(entry.deliveries)
    except ValueError as exc:
        raise RegistryFileError(f"datasets[{entry.index}] ({entry.trial}/{entry.dataset}) "
                                f"field 'deliveries': {exc}") from None


def _safe_local(path: str, home: Home | None) -> bool:
    """A regular file, reached through no symbolic link and outside any home."""
    from pipeline.errors import ReadError

    if home is not None:
        from pipeline.ingest import refuse_unsafe_delivery

        try:
            refuse_unsafe_delivery(home, Path(path))
        except ReadError as exc:
            logger.warning("skip %s", exc)
            return False
    elif os.path.islink(path):
        logger.warning("skip %s: refused: it is a symbolic link", path)
        return False
    return os.path.isfile(path)


def _hash_remote(url: str) -> tuple[str, int]:
    import fsspec

    digest = hashlib.sha256()
    size = 0
    with fsspec.open(url, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _written_at(path: Path) -> str:
    """When a file was last written, as a manifest's ``ingested_at`` is (RFC 3339, UTC,
    seconds), so that the two compare as text."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_deliveries(home: Home, entry: RegistryEntry,
                   limit: int = MAX_PER_RUN) -> list[dict[str, Any]]:
    """The deliveries not yet seen for this dataset, as ``{path, name, sha256, size}``,
    at most ``limit`` of them (in name order; the rest wait for the next run).

    Skipped, with a log line each: a file with the bytes of the dataset's latest
    version, or of an earlier version unless the file was written after the latest
    version was committed (that is a rollback, and new; a remote file has no such
    time here, so it is skipped); one already rejected into quarantine (deliver a
    corrected file, or remove its quarantine folder to try it again); and a
    second file with the same bytes as another in this batch.
    """
    from pipeline.fsutil import sha256_file

    store = home.store()
    versions = store.versions(entry.trial, entry.dataset)
    committed = {info.manifest.get("source", {}).get("sha256"): info.version
                 for info in versions}
    latest_at = versions[-1].manifest["ingested_at"] if versions else ""
    fresh: list[dict[str, Any]] = []
    batch: set[str] = set()
    for location in list_deliveries(entry, home):
        sha, size = _hash_remote(location) if entry.remote else sha256_file(Path(location))
        name = location.rsplit("/", 1)[-1]
        quarantined = store.quarantine_dir(entry.trial, entry.dataset, sha)
        if sha in committed and (committed[sha] == versions[-1].version or entry.remote
                                 or _written_at(Path(location)) <= latest_at):
            logger.info("skip %s: already committed as %s/%s v%s", name, entry.trial,
                     entry.dataset, committed[sha])
        elif quarantined.is_dir():
            logger.info("skip %s: rejected earlier, see %s", name, quarantined)
        elif sha in batch:
            logger.info("skip %s: same bytes as another file in this batch", name)
        elif len(fresh) >= limit:
            logger.info("%s waits for the next run (at most %d deliveries a run)", name, limit)
        else:
            batch.add(sha)
            fresh.append({"path": location, "name": name, "sha256": sha, "size": size})
    logger.info("%s/%s: %d new deliveries", entry.trial, entry.dataset, len(fresh))
    return fresh


def stage_delivery(home: Home, delivery: Mapping[str, Any]) -> dict[str, Any]:
    """Stage one listed delivery (downloading it first when it is remote); StagedDelivery JSON."""
    from pipeline.ingest import stage, stage_download

    location = str(delivery["path"])
    if not is_remote(location):
        staged = stage(home, Path(location))
    else:
        import fsspec

        try:
            DeliveryPolicy.for_home(home.path).check_remote(location)
        except ValueError as exc:
            raise RegistryFileError(str(exc)) from None
        incoming = home.path / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="download-", dir=incoming))
        try:
            local = tmp / str(delivery.get("name") or location.rsplit("/", 1)[-1])
            with fsspec.open(location, "rb") as src, open(local, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            staged = stage_download(home, local, local.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if delivery.get("sha256") and staged.sha256 != delivery["sha256"]:
        logger.warning("%s changed since it was listed (sha256 %s, now %s); staging what is there",
                    location, delivery["sha256"], staged.sha256)
    logger.info("staged %s as %s (%d bytes)", staged.name, staged.path, staged.size)
    return staged.to_json()


def validate_delivery(home: Home, entry: RegistryEntry,
                      staged_json: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a staged delivery against the entry's contract; ValidatedDelivery JSON.

    Raises :class:`pipeline.errors.ValidationFailed` (already quarantined, with the report path).
    """
    from pipeline.contract import load_contract
    from pipeline.ingest import StagedDelivery, validate

    staged = StagedDelivery.from_json(dict(staged_json))
    contract = load_contract(entry.contract_path)
    validated = validate(home, staged, entry.trial, entry.dataset, contract)
    logger.info("%s is valid under contract %s", staged.name, contract.name)
    return validated.to_json()


def commit_delivery(home: Home, entry: RegistryEntry,
                    validated_json: Mapping[str, Any]) -> dict[str, Any]:
    """Commit a validated delivery (idempotent by source sha256); a short summary for XCom."""
    from pipeline.contract import load_contract
    from pipeline.ingest import ValidatedDelivery, commit

    validated = ValidatedDelivery.from_json(dict(validated_json))
    result = commit(home, validated, load_contract(entry.contract_path))
    summary = result.to_json()
    summary.pop("manifest", None)
    summary["source"] = result.manifest["source"]
    summary["records"] = result.manifest["records"]
    if result.status == "committed":
        logger.info("committed %s/%s v%d: %d records, root %s, log entry %d", result.trial,
                 result.dataset, result.version, result.manifest["records"],
                 result.manifest["root"], result.log_index)
    else:
        logger.info("unchanged: %s is already %s/%s v%d", validated.staged.name, result.trial,
                 result.dataset, result.version)
    return summary
