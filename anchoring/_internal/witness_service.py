"""A C2SP tlog-witness: ``POST /add-checkpoint``, cosigning with C2SP tlog-cosignature.

For each log it knows (by origin), the witness keeps the size and root of the
latest checkpoint it cosigned. It cosigns a new checkpoint only when the log's
signature verifies and a consistency proof (RFC 9162 §2.1.4) leads from that
size to the new one; it stores the new state, committed to disk, before it
answers. So a restarted witness still refuses a rollback or a fork, and a
witness whose state is missing refuses to start rather than begin from zero.

A witness home holds::

    <dir>/witness.skey   the witness's Ed25519 cosigning key (mode 0600)
    <dir>/witness.db     SQLite: the latest cosigned checkpoint per origin

Standard library and ``cryptography`` only; this is a producer-side module that
the offline verifier never imports.
"""

from __future__ import annotations

__all__ = [
    "AddCheckpoint",
    "Answer",
    "BadRequest",
    "Witness",
    "WitnessStateError",
    "init_witness",
    "load_signer",
    "parse_add_checkpoint",
    "serve",
]

import base64
import binascii
import os
import sqlite3
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from anchoring.checkpoint import Checkpoint
from anchoring.errors import AnchoringError, KeyFormatError, NoteFormatError
from anchoring.ledgers.witness import TLOG_SIZE_CONTENT_TYPE
from anchoring.merkle.verify import verify_consistency
from anchoring.note import COSIGNATURE_V1, Signer, Verifier, open_note, parse_note

_KEY_FILE = "witness.skey"
_STATE_FILE = "witness.db"
_MAX_PROOF_LINES = 63
_MAX_BODY = 1 << 20
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cosigned (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    cosigned_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    request TEXT NOT NULL,
    refused_at TEXT NOT NULL
);
"""


class WitnessStateError(AnchoringError):
    """The witness home is missing, incomplete or damaged."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Every commit reaches the disk before the witness answers.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA journal_mode=DELETE")
    return conn


def init_witness(home: Path, name: str) -> Signer:
    """Create a witness home: a fresh cosigning key and empty state. Refuses to replace one."""
    if (home / _KEY_FILE).exists() or (home / _STATE_FILE).exists():
        raise WitnessStateError(f"{home} already holds a witness; refusing to replace it")
    signer = Signer.generate(name, COSIGNATURE_V1)
    home.mkdir(parents=True, exist_ok=True)
    conn = _connect(home / _STATE_FILE)
    conn.executescript(_SCHEMA)
    conn.close()
    fd = os.open(home / _KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(signer.skey() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return signer


def load_signer(home: Path) -> Signer:
    """The witness's cosigning key from its home."""
    path = home / _KEY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise WitnessStateError(
            f"{path} cannot be read; create a witness with: trialproof witness init"
        ) from None
    try:
        signer = Signer.from_skey(text)
    except KeyFormatError:
        raise WitnessStateError(f"the witness key {path} is damaged") from None
    if signer.sig_type != COSIGNATURE_V1:
        raise WitnessStateError(f"the witness key {path} is not a cosignature/v1 key")
    return signer


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint request body (C2SP tlog-witness)."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


class BadRequest(ValueError):
    """The request body does not follow C2SP tlog-witness (answered with 400)."""


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse ``old <size>``, proof lines, a blank line, then the signed checkpoint."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise BadRequest("the body has no blank line before the checkpoint")
    lines = head.split("\n")
    old_line = lines[0]
    if not old_line.startswith("old "):
        raise BadRequest("the body does not start with an old size line")
    digits = old_line[4:]
    if not digits.isascii() or not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
        raise BadRequest("the old size is not a decimal without leading zeros")
    proof_lines = lines[1:]
    if len(proof_lines) > _MAX_PROOF_LINES:
        raise BadRequest(f"more than {_MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in proof_lines:
        try:
            raw = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("a consistency proof line is not base64") from None
        if len(raw) != 32:
            raise BadRequest("a consistency proof line is not a 32-byte hash")
        proof.append(raw)
    return AddCheckpoint(int(digits), tuple(proof), note)


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str


class Witness:
    """The witness's state and checks, independent of HTTP."""

    def __init__(self, home: Path, logs: Sequence[Verifier]) -> None:
        state = home / _STATE_FILE
        if not state.is_file():
            raise WitnessStateError(
                f"the witness state {state} is missing; a witness never starts again from "
                "zero (that would let a log roll back): restore the state or retire this witness"
            )
        self.signer = load_signer(home)
        self._conn = _connect(state)
        tables = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master")}
        if not {"cosigned", "refused"} <= tables:
            raise WitnessStateError(f"the witness state {state} is damaged")
        self._logs: dict[str, list[Verifier]] = {}
        for key in logs:
            # A log's origin is its key's name (as `trialproof init` makes it).
            self._logs.setdefault(key.name, []).append(key)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def _refuse(self, origin: str, status: HTTPStatus, reason: str, request: str) -> Answer:
        # Kept as evidence: a correctly signed checkpoint that does not extend what was
        # cosigned may show a log misbehaving (C2SP tlog-witness allows logging it).
        self._conn.execute(
            "INSERT INTO refused (origin, status, reason, request, refused_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (origin, int(status), reason, request, _now()),
        )
        return Answer(int(status), "text/plain; charset=utf-8", reason + "\n")

    def add_checkpoint(self, body: bytes) -> Answer:
        """Answer one add-checkpoint request as C2SP tlog-witness specifies."""
        try:
            request = parse_add_checkpoint(body)
            note = parse_note(request.note)
            checkpoint = Checkpoint.from_body(note.text)
        except (BadRequest, NoteFormatError) as exc:
            return Answer(400, "text/plain; charset=utf-8", f"{exc}\n")
        keys = self._logs.get(checkpoint.origin)
        if keys is None:
            return Answer(404, "text/plain; charset=utf-8", "unknown log origin\n")
        try:
            open_note(note, keys)
        except AnchoringError:
            return Answer(403, "text/plain; charset=utf-8", "no valid signature from the log\n")
        if request.old_size > checkpoint.size:
            return Answer(400, "text/plain; charset=utf-8", "old size is past the checkpoint\n")
        if request.old_size == 0 and request.proof:
            return Answer(400, "text/plain; charset=utf-8", "a proof from size 0 must be empty\n")
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                answer = self._check_and_store(request, checkpoint, note.text)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return answer

    def _check_and_store(self, request: AddCheckpoint, checkpoint: Checkpoint, text: str) -> Answer:
        row = self._conn.execute(
            "SELECT size, root FROM cosigned WHERE origin = ?", (checkpoint.origin,)
        ).fetchone()
        size, root = (0, None) if row is None else (int(row[0]), bytes(row[1]))
        conflict = Answer(409, TLOG_SIZE_CONTENT_TYPE, f"{size}\n")
        if request.old_size != size:
            return conflict  # the client's view is stale: it retries from our size
        if request.old_size == checkpoint.size and root is not None:
            if root != checkpoint.root:
                self._refuse(checkpoint.origin, HTTPStatus.CONFLICT, "fork", request.note)
                return conflict
        elif root is not None:
            try:
                verify_consistency(size, checkpoint.size, root, checkpoint.root, request.proof)
            except AnchoringError as exc:
                return self._refuse(
                    checkpoint.origin,
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    f"consistency proof does not verify: {exc}",
                    request.note,
                )
        self._conn.execute(
            "INSERT INTO cosigned (origin, size, root, note, cosigned_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "note = excluded.note, cosigned_at = excluded.cosigned_at",
            (checkpoint.origin, checkpoint.size, checkpoint.root, request.note, _now()),
        )
        return Answer(200, "text/plain; charset=utf-8", self.signer.signature_line(text))


def _handler(witness: Witness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the spec recommends

        def do_POST(self) -> None:
            if self.path.rstrip("/").rsplit("/", 1)[-1] != "add-checkpoint":
                self._send(Answer(404, "text/plain; charset=utf-8", "not found\n"))
                return
            declared = self.headers.get("Content-Length") or "0"
            length = int(declared) if declared.isdigit() else 0
            if not 0 < length <= _MAX_BODY:
                self._send(Answer(400, "text/plain; charset=utf-8", "bad Content-Length\n"))
                return
            self._send(witness.add_checkpoint(self.rfile.read(length)))

        def do_GET(self) -> None:
            self._send(Answer(405, "text/plain; charset=utf-8", "use POST /add-checkpoint\n"))

        def _send(self, answer: Answer) -> None:
            data = answer.body.encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"witness: {self.address_string()} {format % args}\n")

    return Handler


def serve(home: Path, logs: Sequence[Verifier], host: str, port: int) -> None:
    """Serve ``POST /add-checkpoint`` until interrupted; prints the URL once listening."""
    witness = Witness(home, logs)
    server = ThreadingHTTPServer((host, port), _handler(witness))
    bound_host, bound_port = server.server_address[:2]
    print(f"witness {witness.signer.name} listening on http://{bound_host!s}:{bound_port}",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        witness.close()
