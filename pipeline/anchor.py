"""Periodic anchoring (DESIGN Flow: anchor): sign a checkpoint, prove it extends the last
anchored one, submit it to the configured ledgers, keep the receipts.

Receipts are kept under ``<home>/anchors/<size>/``: ``checkpoint.txt`` (the signed
note), ``consistency.json`` (the RFC 9162 proof from the previous anchored size)
and one ``<ledger>.json`` receipt per ledger.
"""

from __future__ import annotations

__all__ = ["AnchorResult", "anchor", "anchored", "ledgers_for", "receipts_for"]

import json
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


def anchor(home: Home, ledger_names: Sequence[str] | None = None) -> AnchorResult | None:
    """Anchor the current checkpoint to the configured ledgers (or the named ones), after
    retrying what is pending; None when the log has not grown since the last anchor."""
    from pipeline.anchor_ledgers import follow_up, submit_all, write_run
    from pipeline.ledger_config import select_specs

    specs = select_specs(home, ledger_names)
    log = home.log()
    size = log.size()
    history = anchored(home)
    previous = history[-1] if history else None
    if size in (0, previous):
        follow_up(home, specs, include_missing=True, retry_failed=bool(ledger_names))
        return None
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
    run = submit_all(home, specs, note, checkpoint.size)
    folder = _anchor_root(home) / f"{checkpoint.size:012d}"
    tmp = folder.with_name(f".{folder.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    write_text_durably(
        tmp / "consistency.json",
        json.dumps(
            {"from_size": previous, "to_size": checkpoint.size, "proof": [h.hex() for h in proof]},
            indent=2,
        )
        + "\n",
    )
    write_run(tmp, run)
    tmp.replace(folder)
    fsync_dir(folder.parent)
    return AnchorResult(checkpoint.size, checkpoint.root.hex(), previous, run.note, run.receipts,
                        run.states)
