"""The local anchor ledger: append-only and hash-chained, in the log's own database.

Each entry is a receipt (``trialproof/local-ledger/v1``) whose ``entry_hash``
covers its fields, including ``previous``, the entry hash before it. Rewriting
any entry breaks every later link. This ledger lives with the log, so it
demonstrates the anchoring flow but is not an independent anchor: use an
Ethereum ledger or witnesses for that.

A size is anchored at most once: submitting a checkpoint the ledger already
holds returns the receipt it gave before, so an anchoring that was killed and
run again leaves one entry per size.
"""

from __future__ import annotations

__all__ = ["LocalLedger"]

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from anchoring._internal.log import TransparencyLog
from anchoring._internal.log.database import LogConnection
from anchoring.checkpoint import Checkpoint
from anchoring.errors import AnchoringError, VerificationError
from anchoring.ledgers.receipts import LOCAL_RECEIPT_TYPE, check_local_receipt, local_entry_hash
from anchoring.note import parse_note

#: The ledger's table, in the log's database.
LEDGER_TABLE = "anchor_local_ledger"
_CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (idx INTEGER NOT NULL, "
    "entry_hash VARCHAR(64) NOT NULL, receipt TEXT NOT NULL, PRIMARY KEY (idx), "
    "UNIQUE (entry_hash))"
)


def _entry_hash(entry: Mapping[str, Any]) -> str | None:
    """The entry hash a stored entry should carry; None if it cannot be computed."""
    try:
        return local_entry_hash(entry)
    except AnchoringError:  # a value RFC 8785 cannot represent: edited by hand
        return None


class LocalLedger:
    """The embedded ledger beside a :class:`TransparencyLog`."""

    name = "local"

    def __init__(self, log: TransparencyLog) -> None:
        self.log = log
        if not log.read_only:
            with log.serialized() as (conn, _size):
                conn.execute(_CREATE_TABLE)

    @property
    def ledger_id(self) -> str:
        return f"{self.log.origin}#local"

    def submit(self, checkpoint_note: str) -> dict[str, Any]:
        """Append an entry anchoring ``checkpoint_note``; serialized with log appends."""
        note = parse_note(checkpoint_note)
        checkpoint = Checkpoint.from_body(note.text)
        checkpoint_sha256 = hashlib.sha256(note.text.encode()).hexdigest()
        with self.log.serialized() as (conn, _size):
            for earlier in self._receipts(conn):
                if earlier.get("size") != checkpoint.size:
                    continue
                if earlier.get("checkpoint_sha256") != checkpoint_sha256:
                    raise VerificationError(
                        f"the local ledger already anchors another checkpoint at size "
                        f"{checkpoint.size} (entry {earlier.get('index')})"
                    )
                return earlier  # anchored before, by a run that did not finish
            last = conn.one(
                f"SELECT idx, entry_hash FROM {LEDGER_TABLE} ORDER BY idx DESC LIMIT 1"
            )
            receipt: dict[str, Any] = {
                "type": LOCAL_RECEIPT_TYPE,
                "ledger": self.ledger_id,
                "index": 0 if last is None else int(last[0]) + 1,
                "origin": checkpoint.origin,
                "size": checkpoint.size,
                "root": checkpoint.root.hex(),
                "checkpoint_sha256": checkpoint_sha256,
                "previous": None if last is None else str(last[1]),
                "anchored_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            receipt["entry_hash"] = local_entry_hash(receipt)
            conn.execute(
                f"INSERT INTO {LEDGER_TABLE} (idx, entry_hash, receipt) VALUES (?, ?, ?)",
                (receipt["index"], receipt["entry_hash"], json.dumps(receipt, sort_keys=True)),
            )
        return receipt

    @staticmethod
    def _receipts(conn: LogConnection) -> list[dict[str, Any]]:
        """Every entry's receipt by index; a row that is not a JSON object reads as {}."""
        rows = conn.all(f"SELECT receipt FROM {LEDGER_TABLE} ORDER BY idx")
        receipts: list[dict[str, Any]] = []
        for (text,) in rows:
            try:
                receipt = json.loads(text)
            except ValueError:
                receipt = None
            receipts.append(receipt if isinstance(receipt, dict) else {})
        return receipts

    def entries(self) -> list[dict[str, Any]]:
        """Every entry's receipt, by index (none while nothing was anchored)."""
        with self.log.reading() as conn:
            if not conn.has_table(LEDGER_TABLE):
                return []
            return self._receipts(conn)

    def chain_problems(self) -> list[str]:
        """Why entries are not intact or not linked to the ones before them; [] if none."""
        problems: list[str] = []
        previous: str | None = None
        with self.log.reading() as conn:
            if not conn.has_table(LEDGER_TABLE):
                return []
            columns = [row[0] for row in
                       conn.all(f"SELECT entry_hash FROM {LEDGER_TABLE} ORDER BY idx")]
            entries = self._receipts(conn)
        for i, (entry, column) in enumerate(zip(entries, columns, strict=True)):
            if column != entry.get("entry_hash"):
                problems.append(f"local ledger entry {i} has another entry_hash than its receipt")
            if entry.get("index") != i:
                problems.append(f"local ledger entry {i} has index {entry.get('index')}")
            if not entry or _entry_hash(entry) != entry.get("entry_hash"):
                problems.append(f"local ledger entry {i} was altered")
            elif entry.get("previous") != previous:
                problems.append(f"local ledger entry {i} does not link to entry {i - 1}")
            previous = entry.get("entry_hash")
        return problems

    def verify_chain(self) -> None:
        """Raise unless every entry is intact and linked to the one before it."""
        problems = self.chain_problems()
        if problems:
            raise VerificationError(problems[0])

    def verify(self, receipt: Mapping[str, Any], checkpoint_note: str) -> None:
        """Offline checks, then: the ledger holds this very entry, and its chain is intact."""
        checkpoint = Checkpoint.from_body(parse_note(checkpoint_note).text)
        check_local_receipt(receipt, checkpoint, checkpoint_note)
        if receipt.get("ledger") != self.ledger_id:
            raise VerificationError(f"receipt is from ledger {receipt.get('ledger')!r}")
        entries = self.entries()
        index = receipt["index"]
        if index >= len(entries) or entries[index].get("entry_hash") != receipt["entry_hash"]:
            raise VerificationError(f"the local ledger holds no entry {index} with this hash")
        self.verify_chain()
