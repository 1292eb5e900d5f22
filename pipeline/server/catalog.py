"""What the public API shows about trials, datasets, versions and anchors, as JSON objects.

Everything here is read from the home; nothing is cached between requests.
"""

from __future__ import annotations

__all__ = ["Catalog"]

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchoring.checkpoint import Checkpoint
from anchoring.note import parse_note
from pipeline.errors import StoreError
from pipeline.home import Home
from pipeline.store import Store, VersionInfo, check_name

#: Committed versions remembered per worker, by (home, trial, dataset, version).
VERSIONS_KEPT = 4096
_committed: dict[tuple[str, str, str, int], VersionInfo] = {}
#: anchors folder -> (its mtime, the newest note's file and mtime, the note), per worker.
_latest_note: dict[str, tuple[int, Path, int, str]] = {}


def _checkpoint_summary(note: str) -> dict[str, Any]:
    body = Checkpoint.from_body(parse_note(note).text)
    return {"size": body.size, "root": body.root.hex()}


def _receipt_state(receipt: dict[str, Any]) -> str:
    state = receipt.get("state") or receipt.get("status")
    return str(state) if isinstance(state, str) else "confirmed"


@dataclass
class Catalog:
    home: Home

    @property
    def store(self) -> Store:
        return self.home.store()

    # -- anchors -------------------------------------------------------------------

    def anchors(self) -> list[dict[str, Any]]:
        """Every anchoring, oldest first: size, root, receipts (type, state and details)."""
        from pipeline.anchor import anchored, receipts_for

        out = []
        for size in anchored(self.home):
            note, receipts = receipts_for(self.home, size)
            signatures = [s.name for s in parse_note(note).signatures]
            out.append(
                {
                    **_checkpoint_summary(note),
                    "signatures": signatures,
                    "receipts": [
                        {"ledger": name, "type": r.get("type"), "state": _receipt_state(r),
                         "receipt": r}
                        for name, r in receipts.items()
                    ],
                }
            )
        return out

    def latest_anchored_checkpoint(self) -> str | None:
        """The newest anchored note. Re-read only when the anchors folder (a new anchoring
        renames a folder into it) or that note's file (cosignatures added) changed."""
        from pipeline.anchor import anchored

        folder = self.home.anchors_path
        try:
            folder_mtime = folder.stat().st_mtime_ns
            cached = _latest_note.get(str(folder))
            if cached is not None:
                mtime, path, path_mtime, note = cached
                if mtime == folder_mtime and path.stat().st_mtime_ns == path_mtime:
                    return note
        except FileNotFoundError:
            pass
        sizes = anchored(self.home)
        if not sizes:
            return None
        path = folder / f"{sizes[-1]:012d}" / "checkpoint.txt"
        stamp = (folder.stat().st_mtime_ns, path, path.stat().st_mtime_ns)
        note = path.read_text(encoding="utf-8")
        _latest_note[str(folder)] = (*stamp, note)
        return note

    # -- trials, datasets, versions ------------------------------------------------

    def datasets(self) -> dict[str, list[str]]:
        trials: dict[str, list[str]] = {}
        for trial, dataset in self.store.datasets():
            trials.setdefault(trial, []).append(dataset)
        return trials

    def trial_datasets(self, trial: str) -> list[str]:
        check_name(trial, "trial")
        datasets = self.datasets().get(trial)
        if datasets is None:
            raise StoreError(f"no trial {trial!r}")
        return datasets

    def versions(self, trial: str, dataset: str) -> list[VersionInfo]:
        check_name(trial, "trial")
        check_name(dataset, "dataset")
        infos = self.store.versions(trial, dataset)
        if not infos:
            raise StoreError(f"no dataset {trial}/{dataset}")
        return infos

    def version(self, trial: str, dataset: str, version: int) -> VersionInfo:
        """A committed version; remembered, since the append-only log never changes it."""
        key = (str(self.home.path), trial, dataset, version)
        info = _committed.get(key)
        if info is None:
            check_name(trial, "trial")
            check_name(dataset, "dataset")
            info = self.store.version(trial, dataset, version)
            if len(_committed) >= VERSIONS_KEPT:
                _committed.clear()
            _committed[key] = info
        return info

    def version_summary(self, info: VersionInfo) -> dict[str, Any]:
        anchors = [a for a in self.anchors() if a["size"] > info.log_index]
        return {
            "trial": info.trial,
            "dataset": info.dataset,
            "version": info.version,
            "records": info.manifest["records"],
            "log_index": info.log_index,
            "leaf_hash": info.leaf_hash.hex(),
            "root": info.manifest["root"],
            "ingested_at": info.manifest.get("ingested_at"),
            "validation": info.manifest.get("validation"),
            "anchored": bool(anchors),
            "anchors": anchors,
        }

    def version_detail(self, info: VersionInfo) -> dict[str, Any]:
        return {**self.version_summary(info), "manifest": info.manifest}

    def version_file(self, info: VersionInfo, name: str) -> Path:
        path = info.path / name
        if not path.is_file():
            raise StoreError(f"{info.trial}/{info.dataset} v{info.version} has no {name}")
        return path

    def report(self, info: VersionInfo) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.version_file(info, "report.json").read_bytes())
        return report
