"""Periodic anchoring (DESIGN Flow: anchor): sign a checkpoint, prove it extends the last
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchoring.checkpoint import Checkpoint, open_checkpoint
from anchoring.ledgers import Ledger
from anchoring.merkle.verify import verify_consistency
from anchoring.note import parse_note
from pipeline.errors import UsageError
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

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root,
            "previous_size": self.previous_size,
            "checkpoint": self.checkpoint,
            "receipts": self.receipts,
        }


def ledgers_for(home: Home) -> list[Ledger]:
    """The ledgers named in the home's config (``"ledgers"``; default: the local ledger)."""
    from anchoring._internal.ledgers.local import LocalLedger

    ledgers: list[Ledger] = []
    for spec in home.config.get("ledgers", [{"type": "local"}]):
        kind = spec.get("type") if isinstance(spec, dict) else spec
        if kind == "local":
            ledgers.append(LocalLedger(home.log()))
        else:
            raise UsageError(f"{home.path / 'config.json'}: unknown ledger type {kind!r}")
    return ledgers


def _anchor_root(home: Home) -> Path:
    return home.path / "anchors"


def anchored(home: Home) -> list[int]:
    """Sizes anchored so far, ascending."""
    base = _anchor_root(home)
    if not base.is_dir():
        return []
    return sorted(
        int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / "checkpoint.txt").is_file()
    )


def receipts_for(home: Home, size: int) -> tuple[str, dict[str, dict[str, Any]]]:
    """The anchored checkpoint of ``size`` and its receipts by ledger name."""
    folder = _anchor_root(home) / f"{size:012d}"
    note = (folder / "checkpoint.txt").read_text(encoding="utf-8")
    receipts = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(folder.glob("*.json"))
        if p.name != "consistency.json"
    }
    return note, receipts


def _pending(home: Home) -> list[Path]:
    """Folders of anchorings that did not finish, by ascending size."""
    base = _anchor_root(home)
    if not base.is_dir():
        return []
    return sorted(
        p for p in base.iterdir()
        if p.name.startswith(".") and p.name.endswith(".tmp") and p.name[1:-4].isdigit()
    )


def _finish(home: Home, tmp: Path) -> AnchorResult:
    """Submit a prepared folder's checkpoint to every ledger, keep the receipts, rename it."""
    note = (tmp / "checkpoint.txt").read_text(encoding="utf-8")
    checkpoint = open_checkpoint(note, [home.verifier], origin=home.origin)
    previous = json.loads((tmp / "consistency.json").read_text(encoding="utf-8"))["from_size"]
    receipts = {}
    for ledger in ledgers_for(home):
        receipt = ledger.submit(note)
        ledger.verify(receipt, note)
        receipts[ledger.name] = receipt
    for name, receipt in receipts.items():
        write_text_durably(tmp / f"{name}.json", json.dumps(receipt, indent=2) + "\n")
    step_done("anchor-submitted")
    folder = _anchor_root(home) / f"{checkpoint.size:012d}"
    tmp.replace(folder)
    fsync_dir(folder.parent)
    return AnchorResult(checkpoint.size, checkpoint.root.hex(), previous, note, receipts)


def anchor(home: Home) -> AnchorResult | None:
    """Anchor the current checkpoint, after finishing any anchoring a crash interrupted.

    Returns the newest size anchored by this call; None when the log has not grown
    since the last anchor and nothing was left to finish.
    """
    result = None
    for tmp in _pending(home):
        done = (_anchor_root(home) / tmp.name[1:-4] / "checkpoint.txt").is_file()
        if not done and (tmp / "checkpoint.txt").is_file() and (tmp / "consistency.json").is_file():
            result = _finish(home, tmp)
        else:  # killed while preparing (no ledger has seen it), or already finished
            shutil.rmtree(tmp)
    log = home.log()
    size = log.size()
    history = anchored(home)
    previous = history[-1] if history else None
    if size in (0, previous):
        return result
    note = log.sign_checkpoint(home.signer)
    checkpoint = open_checkpoint(note, [home.verifier], origin=home.origin)
    proof: list[bytes] = []
    if previous is not None:
        old_note, _ = receipts_for(home, previous)
        old = Checkpoint.from_body(parse_note(old_note).text)
        proof = log.consistency_proof(old.size, checkpoint.size)
        # Never anchor a checkpoint that does not extend what was anchored before.
        verify_consistency(old.size, checkpoint.size, old.root, checkpoint.root, proof)
    tmp = _anchor_root(home) / f".{checkpoint.size:012d}.tmp"
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
    return _finish(home, tmp)
