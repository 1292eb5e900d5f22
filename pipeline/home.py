"""The trialproof *home*: configuration, keys and the log database (DESIGN Storage).

Layout::

    <home>/config.json      origin, key name, log URL (null: SQLite in the home)
    <home>/keys/log.skey    the log's Ed25519 signing key (mode 0600)
    <home>/keys/salt.key    the master salt key (mode 0600); per-trial keys derive from it
    <home>/log.db           the SQLite log, unless a PostgreSQL URL is configured

Key material never appears in output, logs or error messages. Every file and folder a
process creates once it has opened a home is readable by its owner only (umask 077),
unless ``config.json`` says ``"permissions": "group"`` (group may read: umask 027).
The keys stay owner-only in any case.
"""

from __future__ import annotations

__all__ = ["DEFAULT_HOME", "PERMISSIONS", "Home", "enclosing_home", "file_mode", "resolve_home"]

import json
import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchoring.canonical import derive_trial_salt_key
from anchoring.errors import KeyFormatError
from anchoring.note import Signer, Verifier
from pipeline.errors import HomeError

if TYPE_CHECKING:
    from anchoring.log import TransparencyLog

DEFAULT_HOME = ".trialproof"
_CONFIG = "config.json"
#: config.json "permissions" -> the umask of processes working in the home.
PERMISSIONS = {"owner": 0o077, "group": 0o027}


def resolve_home(explicit: str | os.PathLike[str] | None) -> Path:
    """``--home``, else ``$TRIALPROOF_HOME``, else ``./.trialproof``."""
    chosen = explicit or os.environ.get("TRIALPROOF_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


def _umask(home: Path) -> int:
    """The umask the home's ``permissions`` setting asks for; owner-only when unset or
    unreadable (never looser than asked)."""
    try:
        config = json.loads((home / _CONFIG).read_text(encoding="utf-8"))
        setting = config.get("permissions", "owner") if isinstance(config, dict) else "owner"
    except (OSError, ValueError):
        setting = "owner"
    return PERMISSIONS.get(setting, PERMISSIONS["owner"]) if isinstance(setting, str) \
        else PERMISSIONS["owner"]


def file_mode(home: Path) -> int:
    """The mode of a new file in ``home`` (0600, or 0640 with ``"permissions": "group"``),
    for writers that may run before a :class:`Home` is opened."""
    return 0o666 & ~_umask(home)


def enclosing_home(path: Path) -> Path | None:
    """The trialproof home ``path`` lies in (its own config and keys), if any."""
    for folder in (path, *path.parents):
        if (folder / _CONFIG).is_file() and (folder / "keys").is_dir():
            return folder
    return None


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def _write_durably(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


@dataclass
class Home:
    """An initialized home directory."""

    path: Path
    _log: TransparencyLog | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Raw deliveries, reports and the log may hold personal data: whatever this
        # process writes from now on (SQLite and pyarrow files too) is private.
        os.umask(_umask(self.path))

    @classmethod
    def init(cls, path: Path, origin: str, key_name: str | None = None) -> Home:
        """Create a home with a fresh signing key and salt key. Refuses to overwrite one."""
        if (path / _CONFIG).exists():
            raise HomeError(f"{path} is already a trialproof home; refusing to replace its keys")
        if not origin or any(c.isspace() for c in origin):
            raise HomeError(
                "the origin must be a non-empty string without spaces, "
                "such as trials.example.org/log"
            )
        name = key_name or origin
        try:
            signer = Signer.generate(name)
        except KeyFormatError as exc:
            raise HomeError(str(exc)) from None
        os.umask(PERMISSIONS["owner"])  # the home folder itself, before any config exists
        keys = path / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        os.chmod(keys, 0o700)
        for leftover in ("log.skey", "salt.key"):  # from an init that crashed before config
            (keys / leftover).unlink(missing_ok=True)
        _write_secret(keys / "log.skey", signer.skey() + "\n")
        _write_secret(keys / "salt.key", secrets.token_hex(32) + "\n")
        config = {"origin": origin, "key_name": name, "log_url": None}
        _write_durably(path / _CONFIG, json.dumps(config, indent=2) + "\n")
        home = cls(path)
        home.log().size()  # create the log tables now
        return home

    @classmethod
    def open(cls, path: Path) -> Home:
        if not (path / _CONFIG).is_file():
            raise HomeError(
                f"{path} is not a trialproof home; create one with: trialproof init --origin ORIGIN"
            )
        return cls(path)

    @cached_property
    def config(self) -> dict[str, Any]:
        try:
            config: dict[str, Any] = json.loads((self.path / _CONFIG).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HomeError(f"{self.path / _CONFIG} cannot be read: {exc}") from None
        return config

    @property
    def origin(self) -> str:
        return str(self.config["origin"])

    @property
    def log_url(self) -> str:
        """``$TRIALPROOF_LOG_URL``, else the configured URL, else SQLite in the home."""
        url = os.environ.get("TRIALPROOF_LOG_URL") or self.config.get("log_url")
        return str(url) if url else f"sqlite:///{self.path / 'log.db'}"

    @cached_property
    def signer(self) -> Signer:
        path = self.path / "keys" / "log.skey"
        try:
            return Signer.from_skey(path.read_text(encoding="utf-8"))
        except OSError:
            raise HomeError(f"the log signing key {path} cannot be read") from None
        except KeyFormatError:
            raise HomeError(f"the log signing key {path} is damaged") from None

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    def trial_salt_key(self, trial: str) -> bytes:
        path = self.path / "keys" / "salt.key"
        try:
            master = bytes.fromhex(path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            raise HomeError(f"the salt key {path} cannot be read") from None
        return derive_trial_salt_key(master, trial)

    def log(self) -> TransparencyLog:
        """The home's log, opened once per Home."""
        if self._log is None:
            from anchoring.log import TransparencyLog

            self._log = TransparencyLog(self.log_url, self.origin)
        return self._log
