"""Asking a C2SP tlog-witness to cosign a checkpoint (``POST <prefix>/add-checkpoint``).

The client sends the size it believes the witness last cosigned and a
consistency proof from there. A ``409 Conflict`` names the witness's real size
(``text/x.tlog.size``); the client retries once from that size, with a proof
from it. The witness's cosignature/v1 line is added to the checkpoint note
(C2SP tlog-cosignature). Producer side only.
"""

from __future__ import annotations

__all__ = ["WitnessLedger", "add_checkpoint_body"]

import base64
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from anchoring._internal.ledgers.submission import LedgerRefused, LedgerUnavailable, Submission
from anchoring.checkpoint import Checkpoint
from anchoring.errors import AnchoringError
from anchoring.ledgers.witness import TLOG_SIZE_CONTENT_TYPE, add_cosignatures
from anchoring.note import Verifier, parse_note

#: (old size, new size) -> RFC 9162 consistency proof, from the log.
ConsistencyProver = Callable[[int, int], Sequence[bytes]]


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The add-checkpoint request body (C2SP tlog-witness)."""
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()


class WitnessLedger:
    """A witness configured for this log: its URL prefix and its cosigning vkey."""

    kind = "witness"

    def __init__(
        self, name: str, url: str, witness: Verifier, prove: ConsistencyProver,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.witness = witness
        self.prove = prove
        self.timeout = timeout

    def _post(self, body: bytes) -> tuple[int, str, str]:
        request = urllib.request.Request(
            f"{self.url}/add-checkpoint", data=body, method="POST",
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = response.read().decode()
                return response.status, response.headers.get_content_type(), answer
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            return exc.code, exc.headers.get_content_type(), text
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LedgerUnavailable(f"witness {self.name} at {self.url}: {reason}") from None

    def submit(self, note: str, known_size: int = 0) -> Submission:
        """Get the witness's cosignature on ``note``; ``known_size`` is its last cosigned size."""
        checkpoint = Checkpoint.from_body(parse_note(note).text)
        old = known_size if 0 <= known_size <= checkpoint.size else 0
        for _attempt in range(3):
            proof = self.prove(old, checkpoint.size) if 0 < old < checkpoint.size else []
            status, content_type, text = self._post(add_checkpoint_body(old, proof, note))
            if status == 200:
                try:
                    cosigned = add_cosignatures(note, text, self.witness)
                except AnchoringError as exc:
                    raise LedgerRefused(f"witness {self.name}: {exc}") from None
                return Submission("confirmed", note=cosigned, data={"size": checkpoint.size})
            if status == 409 and content_type == TLOG_SIZE_CONTENT_TYPE:
                theirs = _size(text)
                if theirs is None:
                    raise LedgerRefused(f"witness {self.name} answered 409 without a size")
                if theirs > checkpoint.size:
                    raise LedgerRefused(
                        f"witness {self.name} already cosigned size {theirs}, past this "
                        f"checkpoint's {checkpoint.size}"
                    )
                if theirs == old:
                    raise LedgerRefused(
                        f"witness {self.name} holds a different root at size {theirs}: "
                        "the log forked"
                    )
                old = theirs
                continue
            raise _refusal(self.name, status, text)
        raise LedgerUnavailable(f"witness {self.name} kept answering 409")


def _size(text: str) -> int | None:
    line = text.strip()
    return int(line) if line.isascii() and line.isdigit() else None


def _refusal(name: str, status: int, text: str) -> AnchoringError:
    meaning = {
        400: "rejected the request as malformed",
        403: "does not trust this log's key",
        404: "does not know this log's origin",
        422: "rejected the consistency proof",
    }.get(status)
    detail = text.strip().splitlines()[0][:200] if text.strip() else ""
    if meaning is None:
        return LedgerUnavailable(f"witness {name} answered HTTP {status}")
    suffix = f": {detail}" if detail else ""
    return LedgerRefused(f"witness {name} {meaning} (HTTP {status}{suffix})")
