"""The version store (docs/architecture.md): raw deliveries, quarantine and committed versions.

Layout under the home::

    raw/<sha256>                               delivered bytes, by content
    quarantine/<trial>-<dataset>-<sha256>/     a rejected delivery with its report
    datasets/<trial>/<dataset>/v<N>/           one committed version:
        records.parquet   typed records in leaf order, with their salts (_salt)
        tree.bin          every perfect-node level of the version's Merkle tree
        contract.json     the contract the version was committed under
        report.json, report.html   the validation report
        manifest.json     the manifest (RFC 8785 bytes; the log's leaf input)
    datasets/<trial>/<dataset>/.staging-<id>/  a version being written

The log is the source of truth for which versions exist. A version directory
appears by renaming a complete staging directory, after the log append has
committed; :meth:`Store.recover` finishes or removes what a crash left behind.
The steps of a commit are named in :data:`COMMIT_STEPS`: a crash after any of
them leaves either nothing (the append did not commit) or a version that
recovery rolls forward, and opening the home runs recovery.
"""

from __future__ import annotations

__all__ = [
    "COMMIT_STEPS",
    "KILL_AFTER_STEP_ENV",
    "SALT_COLUMN",
    "Store",
    "VersionInfo",
    "check_name",
    "log_key",
    "publish",
    "step_done",
]

import fcntl
import hashlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchoring._internal.log import LogEntry, TransparencyLog
from anchoring.merkle.hasher import leaf_hash
from pipeline.errors import StoreError
from pipeline.fsutil import fsync_dir, remove_stale_temp_files, write_bytes_durably
from pipeline.names import check_name

SALT_COLUMN = "_salt"
_LOCK = ".lock"
#: A ``.new-`` directory this old and unlocked was left by a crash (see Store.recover).
ABANDONED_AFTER_SECONDS = 60.0
# "<trial>-<dataset>" longer than this is cut in a quarantine folder name (255 bytes at most).
_QUARANTINE_LABEL_MAX = 96


#: The steps of a commit, in order: the version's records, its tree, its other files
#: (contract, reports) in the staging directory; its manifest, written inside the
#: log's append transaction; the append committed; the staging directory renamed
#: into place.
COMMIT_STEPS = ("records", "tree", "files", "manifest", "append", "publish")
#: Fault injection for crash tests: the step (of a commit, or of an anchoring) after
#: which the process SIGKILLs itself.
KILL_AFTER_STEP_ENV = "TRIALPROOF_KILL_AFTER_STEP"


def step_done(step: str) -> None:
    """Mark the end of a step that must survive a crash; SIGKILL this process there if
    :data:`KILL_AFTER_STEP_ENV` names it, so crash tests stop at each step deterministically."""
    if os.environ.get(KILL_AFTER_STEP_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def log_key(trial: str, dataset: str) -> str:
    return f"{trial}/{dataset}"


def publish(staging: Path, target: Path) -> None:
    """Rename a complete staging directory into place, durably."""
    (staging / _LOCK).unlink(missing_ok=True)
    os.replace(staging, target)
    fsync_dir(target.parent)


@dataclass(frozen=True)
class VersionInfo:
    trial: str
    dataset: str
    version: int
    log_index: int
    leaf_hash: bytes
    manifest: dict[str, Any]
    path: Path


class Store:
    """Files of a home, and the versions the log knows about."""

    def __init__(self, root: Path, log: TransparencyLog) -> None:
        self.root = root
        self.log = log

    # -- raw and quarantine --------------------------------------------------

    def raw_path(self, sha256: str) -> Path:
        return self.root / "raw" / sha256

    def quarantine_dir(self, trial: str, dataset: str, sha256: str) -> Path:
        """``quarantine/<trial>-<dataset>-<sha256>``: one folder per rejected delivery, however
        often it is delivered. Long names are cut and end in ``~`` and a hash of the whole
        name, so that the folder name stays within the file system's limit."""
        label = f"{trial}-{dataset}"
        if len(label) > _QUARANTINE_LABEL_MAX:
            digest = hashlib.sha256(label.encode()).hexdigest()[:12]
            label = f"{label[:_QUARANTINE_LABEL_MAX - 13]}~{digest}"
        return self.root / "quarantine" / f"{label}-{sha256}"

    def quarantined_report(self, folder: str) -> Path:
        """The HTML report of the rejected delivery in ``quarantine/<folder>``; a name that is
        not one existing quarantine folder is a :class:`StoreError`."""
        # One name in quarantine/, never a path: no separator, no "." or "..", no hidden
        # (temporary) folder.
        if Path(folder).name != folder or folder.startswith("."):
            raise StoreError(f"{folder[:40]!r} is not a quarantine folder name")
        report = self.root / "quarantine" / folder / "report.html"
        if not report.is_file():
            raise StoreError(f"no rejected delivery {folder!r} in quarantine")
        return report

    def quarantine(
        self, trial: str, dataset: str, sha256: str, source_name: str, files: dict[str, bytes]
    ) -> Path:
        """Put the raw delivery and its report into its quarantine folder, atomically. The
        same delivery rejected again replaces its folder (the newest report counts)."""
        target = self.quarantine_dir(trial, dataset, sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(target.parent)
        staging = target.with_name(f".{sha256}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            delivered = Path(source_name).name
            if delivered in files or delivered in ("", ".", ".."):
                delivered = f"delivery-{delivered.strip('.') or sha256[:12]}"
            shutil.copyfile(self.raw_path(sha256), staging / delivered)
            for name, data in files.items():
                write_bytes_durably(staging / name, data)
            if target.exists():
                old = target.with_name(f".{sha256}.old.{os.getpid()}.tmp")
                os.replace(target, old)
                os.replace(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_dir(target.parent)
        return target

    def remove_stale_temp_files(self) -> list[str]:
        """Remove what crashed writers left in ``raw/`` and ``quarantine/`` (see
        :func:`pipeline.fsutil.remove_stale_temp_files`); one line each."""
        return [f"removed stale {path.relative_to(self.root)}"
                for folder in (self.root / "raw", self.root / "quarantine")
                for path in remove_stale_temp_files(folder)]

    # -- versions ------------------------------------------------------------

    def dataset_dir(self, trial: str, dataset: str) -> Path:
        return self.root / "datasets" / trial / dataset

    def version_dir(self, trial: str, dataset: str, version: int) -> Path:
        return self.dataset_dir(trial, dataset) / f"v{version}"

    @contextmanager
    def staging_dir(self, trial: str, dataset: str) -> Iterator[Path]:
        """A fresh staging directory, locked against :meth:`recover` while its owner lives.

        The lock is an ``flock`` on ``.lock`` inside it: the kernel drops it
        when the owner exits, even by SIGKILL, so recovery can tell a live
        commit from a dead one.
        """
        parent = self.dataset_dir(trial, dataset)
        parent.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{os.urandom(6).hex()}"
        fresh = parent / f".new-{name}"
        fresh.mkdir()
        fd = os.open(fresh / _LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Only a locked directory is visible to recover() under the .staging- name.
            path = parent / f".staging-{name}"
            os.replace(fresh, path)
            yield path
        finally:
            os.close(fd)

    def _info(self, entry: LogEntry) -> VersionInfo:
        manifest: dict[str, Any] = json.loads(entry.leaf_input)
        return VersionInfo(
            manifest["trial"],
            manifest["dataset"],
            int(manifest["version"]),
            entry.index,
            entry.leaf_hash,
            manifest,
            self.version_dir(manifest["trial"], manifest["dataset"], int(manifest["version"])),
        )

    def versions(self, trial: str, dataset: str) -> list[VersionInfo]:
        """Committed versions, oldest first."""
        return [self._info(e) for e in self.log.entries_for_key(log_key(trial, dataset))]

    def version(self, trial: str, dataset: str, version: int | None = None) -> VersionInfo:
        versions = self.versions(trial, dataset)
        if not versions:
            raise StoreError(f"{trial}/{dataset} has no committed version")
        if version is None:
            return versions[-1]
        for info in versions:
            if info.version == version:
                return info
        raise StoreError(
            f"{trial}/{dataset} has no version {version} (latest is {versions[-1].version})"
        )

    def committed_source(self, trial: str, dataset: str, sha256: str) -> VersionInfo | None:
        """The version that already committed a delivery with this sha256, if any."""
        for info in self.versions(trial, dataset):
            if info.manifest.get("source", {}).get("sha256") == sha256:
                return info
        return None

    def datasets(self) -> list[tuple[str, str]]:
        """Every (trial, dataset) with at least one committed version."""
        pairs = (key.split("/", 1) for key in self.log.entry_keys() if "/" in key)
        return [(trial, dataset) for trial, dataset in pairs]

    # -- recovery ------------------------------------------------------------

    def recover(self) -> list[str]:
        """Finish or remove the staging directories a crash left behind.

        A staging directory whose manifest is in the log is renamed into
        place (the append committed, the rename did not happen); any other
        staging directory is removed (the append never committed).
        Returns what was done, one line each.
        """
        done: list[str] = self.remove_stale_temp_files()
        base = self.root / "datasets"
        if not base.is_dir():
            return done
        for staging in sorted(base.glob("*/*/.staging-*")):
            try:
                fd = os.open(staging / _LOCK, os.O_RDWR)
            except FileNotFoundError:  # published or removed meanwhile
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is still at work
                if staging.exists():
                    done.extend(self._recover_one(staging))
            finally:
                os.close(fd)
        for fresh in sorted(base.glob("*/*/.new-*")):
            if self._abandoned(fresh):
                shutil.rmtree(fresh, ignore_errors=True)
                done.append(f"removed abandoned {fresh.relative_to(self.root)}")
        return done

    @staticmethod
    def _abandoned(fresh: Path) -> bool:
        """Whether a ``.new-`` directory was left by a crash before it became a staging one.

        Its owner renames it within moments of creating it, so only an old one
        that nobody holds locked is taken as abandoned.
        """
        try:
            if time.time() - fresh.stat().st_mtime < ABANDONED_AFTER_SECONDS:
                return False
            fd = os.open(fresh / _LOCK, os.O_RDWR)
        except FileNotFoundError:  # renamed meanwhile, or crashed before creating its lock
            return fresh.exists()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return True

    def _recover_one(self, staging: Path) -> list[str]:
        entry = None
        manifest_file = staging / "manifest.json"
        if manifest_file.is_file():
            data = manifest_file.read_bytes()
            manifest = json.loads(data)
            key = log_key(manifest["trial"], manifest["dataset"])
            entry = next(
                (e for e in self.log.entries_for_key(key) if e.leaf_hash == leaf_hash(data)), None
            )
        if entry is None:
            shutil.rmtree(staging, ignore_errors=True)
            return [f"removed unfinished {staging.relative_to(self.root)}"]
        target = self._info(entry).path
        if target.exists():
            shutil.rmtree(staging, ignore_errors=True)
            return []
        publish(staging, target)
        return [f"completed {target.relative_to(self.root)}"]
