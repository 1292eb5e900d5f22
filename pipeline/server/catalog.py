"""What the public API shows about trials, datasets, versions and anchors, as JSON objects.

Everything here is read from the home. What never changes once written (committed
versions) is remembered per worker; the anchorings are re-read when their folders change.
"""

from __future__ import annotations

__all__ = ["Catalog", "anchored_sizes", "anchoring"]

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
#: Per worker: home -> (anchors folder mtime, anchored sizes); (home, size) -> (that
#: anchoring's folder and note mtimes, its note, its receipts by ledger). An anchoring
#: or a receipt update renames a file into these folders, which changes their mtime, so
#: a stale entry is never served.
_anchored: dict[str, tuple[int, list[int]]] = {}
_anchorings: dict[tuple[str, int], tuple[tuple[int, int], str, dict[str, dict[str, Any]]]] = {}


def anchored_sizes(home: Home) -> list[int]:
    """:func:`pipeline.anchor.anchored`, re-listed only when the anchors folder changed."""
    from pipeline.anchor import anchored

    try:
        stamp = home.anchors_path.stat().st_mtime_ns
    except FileNotFoundError:
        return []
    cached = _anchored.get(str(home.path))
    if cached is None or cached[0] != stamp:
        cached = _anchored[str(home.path)] = (stamp, anchored(home))
    return cached[1]


def anchoring(home: Home, size: int) -> tuple[str, dict[str, dict[str, Any]]]:
    """:func:`pipeline.anchor.receipts_for`, re-read only when its folder changed."""
    from pipeline.anchor import receipts_for

    folder = home.anchoring_folder(size)
    # The note's own mtime too: a witness's cosignature may be added to it in place.
    stamp = (folder.stat().st_mtime_ns, (folder / "checkpoint.txt").stat().st_mtime_ns)
    found = _anchorings.get((str(home.path), size))
    if found is None or found[0] != stamp:
        found = _anchorings[(str(home.path), size)] = (stamp, *receipts_for(home, size))
    return found[1], found[2]


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
        out = []
        for size in anchored_sizes(self.home):
            note, receipts = anchoring(self.home, size)
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
        """The newest anchored note."""
        sizes = anchored_sizes(self.home)
        return anchoring(self.home, sizes[-1])[0] if sizes else None

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
