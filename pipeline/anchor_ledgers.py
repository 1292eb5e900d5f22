"""Submitting an anchoring to each configured ledger, and following up what is pending.

Each anchoring (``<home>/anchors/<size>/``) keeps, per ledger, a state file
``state/<ledger>.json``: ``pending``, ``confirmed`` or ``failed`` with the
reason, the first and last attempts, and what a follow-up needs (such as a
transaction hash). A confirmed receipt is written beside the checkpoint as
``<ledger>.json``, so record proofs carry it; a witness's cosignature is added
to ``checkpoint.txt`` itself (C2SP tlog-cosignature). A ledger that is down
never loses a checkpoint: the next anchoring run tries it again.
"""

from __future__ import annotations

__all__ = [
    "LedgerRun",
    "anchoring_folder",
    "anchorings",
    "attempt",
    "follow_up",
    "pending_since",
    "read_states",
    "submit_all",
    "write_run",
]

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anchoring._internal.ledgers.submission import LedgerRefused, LedgerUnavailable, Submission
from anchoring.errors import AnchoringError
from pipeline.errors import PipelineError
from pipeline.fsutil import write_text_durably
from pipeline.home import Home
from pipeline.ledger_config import build_ledger, ledger_specs

STATE_DIR = "state"
_STATE_KEYS = ("ledger", "type", "state", "reason", "first_attempt", "last_attempt",
                     "attempts", "data")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LedgerRun:
    """The outcome of submitting one checkpoint to several ledgers."""

    note: str
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)


def anchoring_folder(home: Home, size: int) -> Path:
    return home.anchoring_folder(size)


def read_states(folder: Path) -> dict[str, dict[str, Any]]:
    base = folder / STATE_DIR
    if not base.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(base.glob("*.json"))}


def _witness_known_size(home: Home, name: str, below: int) -> int:
    """The largest anchored size below ``below`` that this witness cosigned (0 if none)."""
    from pipeline.anchor import anchored

    for size in reversed(anchored(home)):
        state = read_states(anchoring_folder(home, size)).get(name, {})
        if size < below and state.get("state") == "confirmed":
            return size
    return 0


def attempt(
    home: Home, spec: dict[str, Any], note: str, size: int, previous: dict[str, Any] | None
) -> tuple[dict[str, Any], Submission | None]:
    """Submit (or follow up) ``note`` on one ledger; never raises for a ledger's fault."""
    now = _now()
    state: dict[str, Any] = {
        "ledger": spec["name"],
        "type": spec["type"],
        "state": "pending",
        "reason": None,
        "first_attempt": (previous or {}).get("first_attempt", now),
        "last_attempt": now,
        "attempts": int((previous or {}).get("attempts", 0)) + 1,
        "data": dict((previous or {}).get("data") or {}),
    }
    submission: Submission | None = None
    try:
        ledger = build_ledger(home, spec)
        kind = spec["type"]
        if kind == "local":
            receipt = ledger.submit(note)
            ledger.verify(receipt, note)
            submission = Submission("confirmed", receipt=receipt)
        elif kind == "witness":
            known = _witness_known_size(home, spec["name"], size)
            submission = ledger.submit(note, known)
        elif kind == "ethereum" and state["data"].get("tx_hash"):
            submission = ledger.follow_up(note, state["data"])
        else:
            submission = ledger.submit(note)
    except LedgerUnavailable as exc:
        state["reason"] = str(exc)
    except (LedgerRefused, AnchoringError, PipelineError) as exc:
        state["state"], state["reason"] = "failed", str(exc)
    except Exception as exc:
        # Any other fault of one ledger's client (an RPC error of a kind not seen before,
        # say) must not cost the other ledgers their receipts: keep it pending, say why.
        first_line = (str(exc).splitlines() or [""])[0][:300]
        state["reason"] = f"{type(exc).__name__}: {first_line}"
    if submission is not None:
        state["state"] = submission.state
        state["reason"] = submission.reason
        state["data"].update(submission.data)
    return {k: state[k] for k in _STATE_KEYS}, submission


def submit_all(home: Home, specs: Sequence[dict[str, Any]], note: str, size: int) -> LedgerRun:
    """Submit a new anchoring's checkpoint to each ledger in turn."""
    run = LedgerRun(note)
    for spec in specs:
        _apply(run, spec["name"], *attempt(home, spec, run.note, size, None))
    return run


def _apply(run: LedgerRun, name: str, state: dict[str, Any], sub: Submission | None) -> None:
    run.states[name] = state
    if sub is not None and sub.state == "confirmed":
        if sub.receipt is not None:
            run.receipts[name] = sub.receipt
        if sub.note is not None:
            run.note = _merge_cosignatures(run.note, sub.note)


def _merge_cosignatures(note: str, cosigned: str) -> str:
    """``note`` with every signature line of ``cosigned`` it lacks (same note text)."""
    from anchoring.note import Note, parse_note

    mine, theirs = parse_note(note), parse_note(cosigned)
    if mine.text != theirs.text:
        return note
    extra = [s for s in theirs.signatures if s not in mine.signatures]
    return Note(mine.text, (*mine.signatures, *extra)).serialize()


def write_run(folder: Path, run: LedgerRun) -> None:
    """Write the receipts, states and (cosigned) note of a run into ``folder``."""
    write_text_durably(folder / "checkpoint.txt", run.note)
    for name, receipt in run.receipts.items():
        write_text_durably(folder / f"{name}.json", json.dumps(receipt, indent=2) + "\n")
    (folder / STATE_DIR).mkdir(exist_ok=True)
    for name, state in run.states.items():
        write_text_durably(folder / STATE_DIR / f"{name}.json", json.dumps(state, indent=2) + "\n")


def follow_up(home: Home, specs: Sequence[dict[str, Any]], *, include_missing: bool,
              retry_failed: bool = False) -> list[dict[str, Any]]:
    """Retry each pending ledger of every anchoring, oldest first (a witness must see
    sizes in order). With ``include_missing``, also submit the newest anchoring to
    selected ledgers it was never sent to (a ledger added since)."""
    from pipeline.anchor import anchored

    sizes = anchored(home)
    changed: list[dict[str, Any]] = []
    for size in sizes:
        folder = anchoring_folder(home, size)
        states = read_states(folder)
        unsettled = {"pending", "failed"} if retry_failed else {"pending"}
        if size != sizes[-1] and not any(s.get("state") in unsettled for s in states.values()):
            continue  # settled: nothing to ask any ledger
        note = (folder / "checkpoint.txt").read_text(encoding="utf-8")
        todo: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for spec in specs:
            previous = states.get(spec["name"])
            missing = previous is None and not (folder / f"{spec['name']}.json").is_file()
            if previous is not None and (previous["state"] == "pending"
                                         or (retry_failed and previous["state"] == "failed")):
                todo.append((spec, previous))
            elif missing and include_missing and size == sizes[-1]:
                todo.append((spec, None))
            elif (previous is not None and previous["state"] == "confirmed"
                  and spec["type"] == "ethereum" and size == sizes[-1]):
                renewed = _recheck_chain(home, spec, folder, note, previous)
                if renewed is not None:
                    changed.append({"size": size, **renewed})
        if not todo:
            continue
        run = LedgerRun(note)
        for spec, previous in todo:
            _apply(run, spec["name"], *attempt(home, spec, run.note, size, previous))
        write_run(folder, run)
        changed.extend({"size": size, **state} for state in run.states.values())
    return changed


def _recheck_chain(home: Home, spec: dict[str, Any], folder: Path, note: str,
                   previous: dict[str, Any]) -> dict[str, Any] | None:
    """Look again at the newest anchoring's confirmed chain receipt: a reorganization may
    have dropped or moved its transaction since. Returns the new state if it changed."""
    name = spec["name"]
    receipt_path = folder / f"{name}.json"
    stored = (json.loads(receipt_path.read_text(encoding="utf-8"))
              if receipt_path.is_file() else None)
    try:
        fresh = build_ledger(home, spec).follow_up(note, dict(previous.get("data") or {}))
    except (AnchoringError, PipelineError):
        return None  # the chain cannot be asked now: the receipt stands until it can
    if fresh.state == "confirmed" and fresh.receipt == stored:
        return None
    state = {**previous, "state": fresh.state, "last_attempt": _now(),
             "attempts": int(previous.get("attempts", 0)) + 1,
             "reason": fresh.reason or "the chain reorganized: the receipt was renewed",
             "data": {**(previous.get("data") or {}), **fresh.data}}
    if fresh.state == "confirmed" and fresh.receipt is not None:
        write_text_durably(receipt_path, json.dumps(fresh.receipt, indent=2) + "\n")
    else:
        receipt_path.unlink(missing_ok=True)
    write_text_durably(folder / STATE_DIR / f"{name}.json", json.dumps(state, indent=2) + "\n")
    return state


def anchorings(home: Home) -> list[dict[str, Any]]:
    """Every anchoring with each ledger's state, oldest first."""
    from anchoring.checkpoint import Checkpoint
    from anchoring.ledgers.tsa import proven_time
    from anchoring.note import parse_note
    from pipeline.anchor import anchored, receipts_for

    configured = {s["name"]: s["type"] for s in ledger_specs(home)}
    rows = []
    for size in anchored(home):
        note, receipts = receipts_for(home, size)
        states = read_states(anchoring_folder(home, size))
        ledgers: dict[str, dict[str, Any]] = {}
        for name in sorted(set(states) | set(receipts)):
            state = states.get(name) or {
                "ledger": name, "type": configured.get(name, "local"), "state": "confirmed",
                "reason": None,
            }
            ledgers[name] = {k: state.get(k) for k in
                             ("type", "state", "reason", "first_attempt", "last_attempt",
                              "attempts")}
        parsed = parse_note(note)
        times = sorted(t for t in map(proven_time, receipts.values()) if t)
        rows.append({
            "size": size,
            "root": Checkpoint.from_body(parsed.text).root.hex(),
            "signatures": len(parsed.signatures),
            "proven_time": times[0] if times else None,
            "ledgers": ledgers,
        })
    return rows


def pending_since(state: dict[str, Any]) -> datetime | None:
    """When a pending ledger was first tried, or None when it is not pending."""
    if state.get("state") != "pending" or not state.get("first_attempt"):
        return None
    return datetime.strptime(state["first_attempt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
