"""The trialproof *home*: configuration, keys and the log database (docs/architecture.md).

Layout::

    <home>/config.json      origin, key name, log URL (null: SQLite in the home)
    <home>/keys/log.skey    the log's Ed25519 signing key (mode 0600)
    <home>/keys/salt.key    the master salt key (mode 0600); per-trial keys derive from it
    <home>/log.db           the SQLite log, unless a PostgreSQL URL is configured

Key material never appears in output, logs or error messages. Every file and folder a
process creates once it has opened a home is readable by its owner only (umask 077),
unless ``config.json`` says ``"permissions": "group"`` (group may read: umask 027).
The keys stay owner-only in any case.

Opening a home refuses one whose log is missing or empty while the home shows
that it had entries (committed versions, anchors, an audit checkpoint): a new
log would sign a second history that conflicts with the one already handed
out. It then finishes any commit a crash interrupted (:meth:`Store.recover`),
before anything reads the store. A home the process cannot write is opened
read-only: ``versions``, ``prove`` and ``audit`` still work, and nothing is
written.
"""

from __future__ import annotations

__all__ = [
    "AUDIT_CHECKPOINT",
    "DEFAULT_HOME",
    "PERMISSIONS",
    "Home",
    "enclosing_home",
    "file_mode",
    "resolve_home",
]

import json
import os
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchoring.canonical import derive_trial_salt_key
from anchoring.errors import KeyFormatError, LogDatabaseError, MalformedError
from anchoring.note import Signer, Verifier
from pipeline.errors import HomeError
from pipeline.fsutil import write_text_durably

if TYPE_CHECKING:
    from anchoring._internal.log import TransparencyLog
    from pipeline.store import Store

DEFAULT_HOME = ".trialproof"
_CONFIG = "config.json"
_LOG_DB = "log.db"
#: The checkpoint of the last clean audit, relative to the home.
AUDIT_CHECKPOINT = Path("audit") / "last-clean-checkpoint.txt"
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


@dataclass
class Home:
    """An initialized home directory."""

    path: Path
    _log: TransparencyLog | None = field(default=None, repr=False, compare=False)
    #: Open the log read-only and write nothing (a home this process cannot write).
    read_only: bool = False

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
        write_text_durably(path / _CONFIG, json.dumps(config, indent=2) + "\n")
        home = cls(path)
        home.log().size()  # create the log tables now
        return home

    @classmethod
    def open(cls, path: Path, *, read_only: bool | None = None) -> Home:
        """Open an initialized home (read-only when ``read_only`` is None and it is not
        writable), refuse it if its log was lost, and finish interrupted commits."""
        if not (path / _CONFIG).is_file():
            raise HomeError(
                f"{path} is not a trialproof home; create one with: trialproof init --origin ORIGIN"
            )
        home = cls(path)
        home.read_only = home._unwritable() if read_only is None else read_only
        try:
            home._refuse_lost_log()
            if not home.read_only and (path / "datasets").is_dir():
                home.store().recover()
        except LogDatabaseError:
            pass  # damaged, not lost: every use of the log names the damage; audit reports it
        return home

    @property
    def anchors_path(self) -> Path:
        """The anchorings: one folder per anchored size (docs/architecture.md, the home)."""
        return self.path / "anchors"

    def anchoring_folder(self, size: int) -> Path:
        """The folder of the anchoring of the log at ``size``."""
        return self.anchors_path / f"{size:012d}"

    @property
    def _home_database(self) -> Path | None:
        """The SQLite file in the home, unless the log lives elsewhere."""
        database = self.path / _LOG_DB
        return database if self.log_url == f"sqlite:///{database}" else None

    def _unwritable(self) -> bool:
        database = self._home_database
        if not os.access(self.path, os.W_OK):
            return True
        return database is not None and database.exists() and not os.access(database, os.W_OK)

    def _history(self) -> list[str]:
        """What in the home shows that its log has had entries."""
        found = []
        if next(self.path.glob("datasets/*/*/v[0-9]*"), None) is not None:
            found.append("committed versions in datasets/")
        if self.anchors_path.is_dir():  # made only when a non-empty log is anchored
            found.append("anchors/")
        remembered = self.path / AUDIT_CHECKPOINT
        if remembered.is_file():
            from anchoring.checkpoint import Checkpoint
            from anchoring.note import parse_note

            try:
                size = Checkpoint.from_body(parse_note(remembered.read_text("utf-8")).text).size
            except (OSError, ValueError, MalformedError):
                size = None
            if size != 0:
                found.append(f"an audit checkpoint ({AUDIT_CHECKPOINT})")
        return found

    def _refuse_lost_log(self) -> None:
        """Refuse a home whose log is missing or empty though it has had entries."""
        history = self._history()
        if not history:
            return
        database = self._home_database
        if database is not None and not database.is_file():
            lost = f"the log database {database} is missing"
        elif database is not None and database.stat().st_size == 0:
            lost = f"the log database {database} is empty"
        else:
            if self.log().size() > 0:
                return
            lost = "the log database holds no entries"
        raise HomeError(
            f"{lost}, but the home holds {' and '.join(history)}: restore the log database "
            "from a backup (a new log would sign a second, conflicting history); "
            "`trialproof init` is only for a brand-new home"
        )

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
        return str(url) if url else f"sqlite:///{self.path / _LOG_DB}"

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
            from anchoring._internal.log import TransparencyLog
            from pipeline.extras import require_pipeline_extra

            require_pipeline_extra()

            self._log = TransparencyLog(self.log_url, self.origin, read_only=self.read_only)
        return self._log

    def store(self) -> Store:
        """The home's version store, over :meth:`log`."""
        from pipeline.store import Store

        return Store(self.path, self.log())
