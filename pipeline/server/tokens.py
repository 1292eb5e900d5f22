"""Sponsor bearer tokens, each scoped to one trial. Only SHA-256 hashes are stored.

``<home>/tokens.json`` holds ``[{name, trial, sha256, created_at}]``. A token is
shown once, when it is created; it never appears in a file, a log or an error.
"""

from __future__ import annotations

__all__ = ["TOKEN_PREFIX", "Token", "TokenStore"]

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.errors import UsageError
from pipeline.fsutil import write_text_durably
from pipeline.store import check_name

TOKEN_PREFIX = "tpt_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Token:
    name: str
    trial: str
    sha256: str
    created_at: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The tokens of a home."""

    def __init__(self, home_path: Path) -> None:
        self.path = home_path / "tokens.json"

    def tokens(self) -> list[Token]:
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            raise UsageError(f"{self.path} cannot be read") from None
        return [Token(**row) for row in rows]

    def _save(self, tokens: list[Token]) -> None:
        write_text_durably(self.path, json.dumps([asdict(t) for t in tokens], indent=2) + "\n")
        self.path.chmod(0o600)

    def create(self, name: str, trial: str) -> str:
        """Make a token for ``trial`` and return it; only its hash is kept."""
        if not _NAME.fullmatch(name):
            raise UsageError(f"token name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        try:
            check_name(trial, "trial")
        except Exception as exc:
            raise UsageError(str(exc)) from None
        tokens = self.tokens()
        if any(t.name == name for t in tokens):
            raise UsageError(f"a token named {name!r} exists; revoke it first")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._save([*tokens, Token(name, trial, _digest(secret), created)])
        return secret

    def revoke(self, name: str) -> None:
        tokens = self.tokens()
        kept = [t for t in tokens if t.name != name]
        if len(kept) == len(tokens):
            raise UsageError(f"no token named {name!r}")
        self._save(kept)

    def find(self, secret: str) -> Token | None:
        """The token whose hash matches ``secret``, compared in constant time."""
        digest = _digest(secret)
        found = None
        for token in self.tokens():
            if hmac.compare_digest(token.sha256, digest):
                found = token
        return found
