"""Periodic anchoring (docs/architecture.md): sign a checkpoint, prove it extends the last
anchored one, submit it to the configured ledgers, keep the receipts.

Receipts are kept under ``<home>/anchors/<size>/``: ``checkpoint.txt`` (the signed
note), ``consistency.json`` (the RFC 9162 proof from the previous anchored size)
and one ``<ledger>.json`` receipt per ledger.

The folder is prepared as ``anchors/.<size>.tmp`` with the checkpoint and the
proof before any ledger sees the checkpoint, and renamed once every receipt is
in. An anchoring killed midway leaves that folder; the next run finishes it
first, and ledgers return the receipt they already gave (the local ledger
anchors each size once), so no size is anchored twice.
"""

from __future__ import annotations

__all__ = ["ANCHOR_STEPS", "AnchorResult", "anchor", "anchored", "ledgers_for", "receipts_for"]

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchoring.checkpoint import Checkpoint, open_checkpoint
from anchoring.ledgers import Ledger
from anchoring.merkle.verify import verify_consistency
from anchoring.note import parse_note
from pipeline.fsutil import fsync_dir, write_text_durably
from pipeline.home import Home
from pipeline.store import step_done

#: The steps of an anchoring: its folder prepared (checkpoint and proof), its receipts in.
ANCHOR_STEPS = ("anchor-prepared", "anchor-submitted")


@dataclass(frozen=True)
class AnchorResult:
    size: int
    root: str
    previous_size: int | None
    checkpoint: str
    receipts: dict[str, dict[str, Any]]
    ledgers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root,
            "previous_size": self.previous_size,
            "checkpoint": self.checkpoint,
            "receipts": self.receipts,
            "ledgers": self.ledgers,
        }


def ledgers_for(home: Home) -> list[Ledger]:
    """The receipt ledgers named in the home's config (``"ledgers"``; default: the local
    ledger), as clients that can verify their receipts against the ledger itself."""
    from pipeline.ledger_config import build_ledger, ledger_specs

    return [build_ledger(home, spec) for spec in ledger_specs(home) if spec["type"] == "local"]


def anchored(home: Home) -> list[int]:
    """Sizes anchored so far, ascending."""
    base = home.anchors_path
    if not base.is_dir():
        return []
    return sorted(
        int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / "checkpoint.txt").is_file()
    )


def receipts_for(home: Home, size: int) -> tuple[str, dict[str, dict[str, Any]]]:
    """The anchored checkpoint of ``size`` and its receipts by ledger name."""
    folder = home.anchoring_folder(size)
    note = (folder / "checkpoint.txt").read_text(encoding="utf-8")
    receipts = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(folder.glob("*.json"))
        if p.name != "consistency.json"
    }
    return note, receipts


def _pending(home: Home) -> list[Path]:
    """Folders of anchorings that did not finish, by ascending size."""
    base = home.anchors_path
    if not base.is_dir():
        return []
    return sorted(
        p for p in base.iterdir()
        if p.name.startswith(".") and p.name.endswith(".tmp") and p.name[1:-4].isdigit()
    )


def _finish(home: Home, tmp: Path, specs: Sequence[dict[str, Any]]) -> AnchorResult:
    """Submit a prepared folder's checkpoint to each ledger, keep the receipts and states
    (and the cosigned note), rename the folder into place."""
    from pipeline.anchor_ledgers import submit_all, write_run

    note = (tmp / "checkpoint.txt").read_text(encoding="utf-8")
    checkpoint = open_checkpoint(note, [home.verifier], origin=home.origin)
    previous = json.loads((tmp / "consistency.json").read_text(encoding="utf-8"))["from_size"]
    run = submit_all(home, specs, note, checkpoint.size)
    write_run(tmp, run)
    step_done("anchor-submitted")
    folder = home.anchoring_folder(checkpoint.size)
    tmp.replace(folder)
    fsync_dir(folder.parent)
    return AnchorResult(checkpoint.size, checkpoint.root.hex(), previous, run.note, run.receipts,
                        run.states)


def _resume(home: Home, specs: Sequence[dict[str, Any]]) -> AnchorResult | None:
    """Finish the anchorings a crash interrupted; drop folders no ledger has seen yet."""
    result = None
    for tmp in _pending(home):
        done = (home.anchoring_folder(int(tmp.name[1:-4])) / "checkpoint.txt").is_file()
        if not done and (tmp / "checkpoint.txt").is_file() and (tmp / "consistency.json").is_file():
            result = _finish(home, tmp, specs)
        else:  # killed while preparing (no ledger has seen it), or already finished
            shutil.rmtree(tmp)
    return result


def anchor(home: Home, ledger_names: Sequence[str] | None = None) -> AnchorResult | None:
    """Anchor the current checkpoint to the configured ledgers (or the named ones), after
    finishing any anchoring a crash interrupted and retrying what is pending.

    Returns the newest size anchored by this call; None when the log has not grown
    since the last anchor and nothing was left to finish.
    """
    from pipeline.anchor_ledgers import follow_up
    from pipeline.ledger_config import select_specs

    specs = select_specs(home, ledger_names)
    result = _resume(home, specs)
    log = home.log()
    size = log.size()
    history = anchored(home)
    previous = history[-1] if history else None
    if size in (0, previous):
        follow_up(home, specs, include_missing=True, retry_failed=bool(ledger_names))
        return result
    follow_up(home, specs, include_missing=False, retry_failed=bool(ledger_names))
    note = log.sign_checkpoint(home.signer)
    checkpoint = open_checkpoint(note, [home.verifier], origin=home.origin)
    proof: list[bytes] = []
    if previous is not None:
        old_note, _ = receipts_for(home, previous)
        old = Checkpoint.from_body(parse_note(old_note).text)
        proof = log.consistency_proof(old.size, checkpoint.size)
        # Never anchor a checkpoint that does not extend what was anchored before.
        verify_consistency(old.size, checkpoint.size, old.root, checkpoint.root, proof)
    tmp = home.anchors_path / f".{checkpoint.size:012d}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    write_text_durably(tmp / "checkpoint.txt", note)
    write_text_durably(
        tmp / "consistency.json",
        json.dumps(
            {"from_size": previous, "to_size": checkpoint.size, "proof": [h.hex() for h in proof]},
            indent=2,
        )
        + "\n",
    )
    fsync_dir(tmp)
    step_done("anchor-prepared")
    return _finish(home, tmp, specs)
