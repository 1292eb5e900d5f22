"""The sponsor registry (DESIGN Airflow): which datasets are ingested, from where, and when.

A registry is a YAML file. Sponsors declare, for each trial and dataset, the
contract, where deliveries arrive, the schedule, the owners, and whom to
notify when an ingest fails::

    contracts: [../schemas/contracts]      # contract search folders, relative to this file
    anchor: {schedule: "@hourly"}          # the anchor DAG (env: TRIALPROOF_ANCHOR_SCHEDULE)
    audit: {schedule: "@daily", notify: [audit@example.org]}   # TRIALPROOF_AUDIT_SCHEDULE
    defaults:                              # applied to every entry below
      sponsor: CDISC
      owners: [data-manager@example.org]
      schedule: "@daily"
    datasets:
      - trial: CDISCPILOT01
        dataset: dm
        contract: cdiscpilot01/sdtm/dm     # a name under the contract folders, or a path
        deliveries: ../examples/deliveries/CDISCPILOT01/dm/*.xpt   # or s3://bucket/dm/*.xpt
        schedule: "0 6 * * *"              # cron, @hourly/@daily/..., on-arrival or manual
        owners: [dm-team@example.org]
        notify: [qa@example.org]           # default: the owners

:func:`load_registry` never raises for a bad entry: it returns the valid
entries and one :class:`RegistryProblem` per thing wrong, with its location.
Only a file that cannot be read or is not YAML raises :class:`RegistryFileError`.

The second half of this module is what the Airflow tasks in ``dags/`` call,
so that each task is a few lines: list new deliveries, stage, validate and
commit one, and record a failure notification. XCom carries only paths and
hashes. Nothing here imports Airflow, and nothing heavy is imported at module
level (the DAG files import this module when they are parsed).
"""

from __future__ import annotations

__all__ = [
    "ARRIVAL",
    "DEFAULT_REGISTRY",
    "LOG_ASSET_URI",
    "MANUAL",
    "NOTIFICATIONS_FILE",
    "PeriodicJob",
    "Registry",
    "RegistryEntry",
    "RegistryFileError",
    "RegistryProblem",
    "check_deliveries",
    "check_schedule",
    "commit_delivery",
    "failure_notifier",
    "is_remote",
    "list_deliveries",
    "load_registry",
    "new_deliveries",
    "notify_failure",
    "read_registry",
    "resolve_registry",
    "stage_delivery",
    "validate_delivery",
]

import glob
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.home import Home

log = logging.getLogger("trialproof.registry")

DEFAULT_REGISTRY = Path("registry") / "sponsors.yaml"
#: The Airflow asset that every commit updates and the anchor DAG may be scheduled on.
LOG_ASSET_URI = "trialproof://log"
#: The failure notifications, one JSON object a line, in the home.
NOTIFICATIONS_FILE = "notifications.log"
#: Schedule keyword: ingest as soon as a new delivery arrives (a sensor polls the folder).
ARRIVAL = "on-arrival"
#: Schedule keyword: only when triggered by hand or through the API.
MANUAL = "manual"
#: New deliveries taken by one run; Airflow maps each, and caps a mapping at 1024 by default.
MAX_PER_RUN = 200
#: Airflow's cron presets.
PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually")

# Trial and dataset names become directory names and DAG ids (see pipeline.store.check_name).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB_MAGIC = re.compile(r"[*?\[]")
_DAG_ID_MAX = 250
_TOP_KEYS = {"version", "contracts", "anchor", "audit", "defaults", "datasets"}
_ENTRY_KEYS = {"trial", "dataset", "sponsor", "contract", "deliveries", "schedule", "owners",
               "notify", "retries", "retry_delay", "poke_interval", "poke_timeout",
               "description"}
_DEFAULT_KEYS = _ENTRY_KEYS - {"trial", "dataset", "contract", "deliveries", "description"}
_PERIODIC_KEYS = {"schedule", "notify", "on_log_update"}
# Files a sponsor's upload tool may leave while it writes; never ingested.
_PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")


class RegistryFileError(PipelineError):
    """The registry file cannot be read, or is not a YAML mapping."""


@dataclass(frozen=True)
class RegistryProblem:
    """One thing wrong with a registry, and where: the entry index, trial/dataset and field."""

    message: str
    index: int | None = None
    trial: str | None = None
    dataset: str | None = None
    field: str | None = None

    @property
    def location(self) -> str:
        if self.index is None:
            where = "registry"
        else:
            where = f"datasets[{self.index}]"
            if self.trial or self.dataset:
                where += f" ({self.trial or '?'}/{self.dataset or '?'})"
        if self.field:
            where += f" field '{self.field}'"
        return where

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "trial": self.trial, "dataset": self.dataset,
                "field": self.field, "location": self.location, "message": self.message}


@dataclass(frozen=True)
class RegistryEntry:
    """One registered dataset: what its ingest DAG needs."""

    index: int
    trial: str
    dataset: str
    contract: str
    contract_path: Path
    deliveries: str
    schedule: str
    owners: tuple[str, ...]
    notify: tuple[str, ...]
    sponsor: str | None = None
    description: str | None = None
    retries: int = 2
    retry_delay: int = 300
    poke_interval: int = 60
    poke_timeout: int = 3600

    @property
    def dag_id(self) -> str:
        return f"ingest__{self.trial}__{self.dataset}"

    @property
    def remote(self) -> bool:
        """Deliveries arrive at an fsspec URL rather than a local folder."""
        return is_remote(self.deliveries)

    @property
    def on_arrival(self) -> bool:
        return self.schedule == ARRIVAL

    @property
    def airflow_schedule(self) -> str | None:
        """The DAG's ``schedule``: cron or preset as given; ``@continuous`` for on-arrival
        (a sensor then waits for the delivery); None for manual."""
        if self.schedule == ARRIVAL:
            return "@continuous"
        if self.schedule == MANUAL:
            return None
        return self.schedule

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "trial": self.trial, "dataset": self.dataset,
                "dag_id": self.dag_id, "sponsor": self.sponsor, "contract": self.contract,
                "contract_path": str(self.contract_path), "deliveries": self.deliveries,
                "schedule": self.schedule, "owners": list(self.owners),
                "notify": list(self.notify), "retries": self.retries}


@dataclass(frozen=True)
class PeriodicJob:
    """The anchor or audit DAG's settings."""

    schedule: str
    notify: tuple[str, ...] = ()
    on_log_update: bool = False

    @property
    def airflow_schedule(self) -> str | None:
        return None if self.schedule == MANUAL else self.schedule


@dataclass(frozen=True)
class Registry:
    path: Path
    entries: tuple[RegistryEntry, ...]
    problems: tuple[RegistryProblem, ...]
    contract_dirs: tuple[Path, ...]
    anchor: PeriodicJob = field(default_factory=lambda: PeriodicJob("@hourly"))
    audit: PeriodicJob = field(default_factory=lambda: PeriodicJob("@daily"))

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"registry": str(self.path), "ok": self.ok,
                "entries": [e.to_json() for e in self.entries],
                "problems": [p.to_json() for p in self.problems],
                "anchor": {"schedule": self.anchor.schedule},
                "audit": {"schedule": self.audit.schedule}}


def resolve_registry(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--registry``, else ``$TRIALPROOF_REGISTRY``, else ``./registry/sponsors.yaml``."""
    chosen = explicit or os.environ.get("TRIALPROOF_REGISTRY") or DEFAULT_REGISTRY
    return Path(chosen).expanduser().resolve()


def is_remote(location: str) -> bool:
    return bool(_URL.match(location)) and not location.startswith("file://")


# -- checking ---------------------------------------------------------------------


def check_schedule(value: object) -> str:
    """The schedule as given, or ValueError saying what is accepted."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a cron expression, a preset (@hourly, @daily, ...), "
                         f"'{ARRIVAL}' or '{MANUAL}'")
    text = " ".join(value.split())
    if text in (ARRIVAL, MANUAL) or text in PRESETS:
        return text
    if text.startswith("@"):
        raise ValueError(f"unknown preset {text!r}; use one of {', '.join(PRESETS)}, "
                         f"'{ARRIVAL}' or '{MANUAL}'")
    from croniter import croniter  # type: ignore[import-untyped]

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(f"{text!r} is not a valid 5-field cron expression "
                         "(minute hour day-of-month month day-of-week)")
    return text


def _people(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or \
            not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a name or e-mail address, or a non-empty list of them")
    return tuple(v.strip() for v in value)


def _seconds(value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"must be a whole number from {low} to {high}")
    return value


def _glob_base(pattern: str) -> str:
    """The folder part of a glob: everything before the first component with a wildcard."""
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if _GLOB_MAGIC.search(part):
            return "/".join(parts[:i]) or "/"
    return pattern


def check_deliveries(value: object, base: Path) -> str:
    """The delivery location as an absolute glob or URL, or ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a folder, a glob such as deliveries/dm/*.xpt, or an fsspec "
                         "URL such as s3://bucket/dm/*.xpt")
    text = value.strip()
    if is_remote(text):
        protocol = text.split("://", 1)[0]
        import fsspec  # type: ignore[import-untyped]
        from fsspec.registry import get_filesystem_class  # type: ignore[import-untyped]

        if protocol not in fsspec.available_protocols():
            raise ValueError(f"unknown storage protocol {protocol!r} in {text!r}")
        try:
            get_filesystem_class(protocol)
        except ImportError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
        if not _GLOB_MAGIC.search(text):
            text = text.rstrip("/") + "/*"
        return text
    if text.startswith("file://"):
        text = text[len("file://"):]
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    pattern = os.path.normpath(path)
    if not _GLOB_MAGIC.search(pattern):
        if not Path(pattern).is_dir():
            raise ValueError(f"delivery folder {pattern} does not exist")
        return os.path.join(pattern, "*")
    folder = _glob_base(pattern)
    if not Path(folder).is_dir():
        raise ValueError(f"delivery folder {folder} does not exist")
    return pattern


def _periodic(raw: object, what: str, default: str, env: str,
              problems: list[RegistryProblem]) -> PeriodicJob:
    settings: Mapping[str, Any] = {}
    if raw is not None:
        if not isinstance(raw, Mapping):
            problems.append(RegistryProblem(f"'{what}' must be a mapping such as "
                                            "{schedule: \"@hourly\"}", field=what))
        else:
            settings = raw
            for key in sorted(set(settings) - _PERIODIC_KEYS, key=str):
                problems.append(RegistryProblem(f"unknown setting {key!r}; expected one of "
                                                f"{', '.join(sorted(_PERIODIC_KEYS))}",
                                                field=f"{what}.{key}"))
    schedule = default
    source = os.environ.get(env) or settings.get("schedule")
    where = env if os.environ.get(env) else f"{what}.schedule"
    if source is not None:
        try:
            schedule = check_schedule(source)
            if schedule == ARRIVAL:
                raise ValueError(f"'{ARRIVAL}' is only for ingest entries")
        except ValueError as exc:
            problems.append(RegistryProblem(str(exc), field=where))
            schedule = default
    notify: tuple[str, ...] = ()
    if settings.get("notify") is not None:
        try:
            notify = _people(settings["notify"])
        except ValueError as exc:
            problems.append(RegistryProblem(str(exc), field=f"{what}.notify"))
    on_log_update = settings.get("on_log_update", False)
    if not isinstance(on_log_update, bool):
        problems.append(RegistryProblem("must be true or false", field=f"{what}.on_log_update"))
        on_log_update = False
    return PeriodicJob(schedule, notify, on_log_update)


def _contract_dirs(raw: object, base: Path, problems: list[RegistryProblem]) -> tuple[Path, ...]:
    dirs: list[Path] = [Path(p) for p in os.environ.get("TRIALPROOF_CONTRACTS", "").split(
        os.pathsep) if p]
    if raw is None:
        dirs.append(Path.cwd() / "schemas" / "contracts")
    else:
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            problems.append(RegistryProblem("must be a folder or a list of folders",
                                            field="contracts"))
            items = []
        for item in items:
            path = Path(item).expanduser()
            path = path if path.is_absolute() else base / path
            if not path.is_dir():
                problems.append(RegistryProblem(f"contract folder {path} does not exist",
                                                field="contracts"))
            dirs.append(path)
    return tuple(dict.fromkeys(d.resolve() for d in dirs if d.is_dir()))


@dataclass
class _EntryCheck:
    """Checks one raw entry, collecting a problem per bad field."""

    index: int
    raw: Mapping[str, Any]
    defaults: Mapping[str, Any]
    base: Path
    contract_dirs: tuple[Path, ...]
    found: list[RegistryProblem] = field(default_factory=list)

    @property
    def trial(self) -> str | None:
        value = self.raw.get("trial")
        return value if isinstance(value, str) else None

    @property
    def dataset(self) -> str | None:
        value = self.raw.get("dataset")
        return value if isinstance(value, str) else None

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.raw:
            return self.raw[name]
        return self.defaults.get(name, default)

    def problem(self, name: str, message: str) -> None:
        self.found.append(RegistryProblem(message, self.index, self.trial, self.dataset, name))

    def names(self) -> None:
        for key in sorted(set(self.raw) - _ENTRY_KEYS, key=str):
            self.problem(str(key), "unknown field; expected one of "
                                   f"{', '.join(sorted(_ENTRY_KEYS))}")
        for name in ("trial", "dataset"):
            value = self.raw.get(name)
            if value is None:
                self.problem(name, "is required")
            elif not isinstance(value, str) or not _NAME.fullmatch(value):
                self.problem(name, f"{value!r} must be 1-128 letters, digits, '.', '_' or '-', "
                                   "starting with a letter or digit")
        if self.trial and self.dataset and \
                len(f"ingest__{self.trial}__{self.dataset}") > _DAG_ID_MAX:
            self.problem("dataset", "trial and dataset names together are too long for a DAG "
                                    f"id (at most {_DAG_ID_MAX - 10} characters)")

    def contract(self) -> tuple[str, Path] | None:
        ref = self.raw.get("contract")
        if not isinstance(ref, str) or not ref.strip():
            self.problem("contract", "is required: a contract name under the contract "
                                     "folders, or a path to a Table Schema JSON file")
            return None
        from pipeline.contract import load_contract

        ref = ref.strip()
        target = ref
        candidate = Path(ref).expanduser()
        if not candidate.is_absolute() and (self.base / candidate).is_file():
            target = str(self.base / candidate)
        try:
            loaded = load_contract(target, self.contract_dirs)
        except PipelineError as exc:
            self.problem("contract", str(exc))
            return None
        return ref, (loaded.path or Path(target)).resolve()

    def checked(self, name: str, check: Callable[[Any], Any], required: str) -> Any:
        value = self.get(name)
        if value is None:
            self.problem(name, required)
            return None
        try:
            return check(value)
        except ValueError as exc:
            self.problem(name, str(exc))
            return None

    def number(self, name: str, default: int, low: int, high: int) -> int:
        try:
            return _seconds(self.get(name, default), low, high)
        except ValueError as exc:
            self.problem(name, str(exc))
            return default

    def text(self, name: str) -> str | None:
        value = self.get(name)
        if value is not None and not isinstance(value, str):
            self.problem(name, "must be text")
            return None
        return value

    def entry(self) -> RegistryEntry | None:
        self.names()
        contract = self.contract()
        deliveries = self.checked("deliveries", lambda v: check_deliveries(v, self.base),
                                  "is required: a folder, a glob or an fsspec URL")
        schedule = self.checked("schedule", check_schedule,
                                f"is required: a cron expression, a preset, '{ARRIVAL}' or "
                                f"'{MANUAL}'")
        owners = self.checked("owners", _people, "is required: who is responsible for this "
                                                 "dataset's deliveries")
        notify = owners if self.get("notify") is None else self.checked("notify", _people, "")
        numbers = {
            "retries": self.number("retries", 2, 0, 10),
            "retry_delay": self.number("retry_delay", 300, 0, 86400),
            "poke_interval": self.number("poke_interval", 60, 1, 86400),
            "poke_timeout": self.number("poke_timeout", 3600, 10, 7 * 86400),
        }
        sponsor, description = self.text("sponsor"), self.text("description")
        if self.found or contract is None or not self.trial or not self.dataset:
            return None
        return RegistryEntry(
            index=self.index, trial=self.trial, dataset=self.dataset, contract=contract[0],
            contract_path=contract[1], deliveries=deliveries, schedule=schedule, owners=owners,
            notify=notify, sponsor=sponsor, description=description, **numbers,
        )


def _entry(index: int, raw: object, context: tuple[Mapping[str, Any], Path, tuple[Path, ...]],
           problems: list[RegistryProblem]) -> RegistryEntry | None:
    if not isinstance(raw, Mapping):
        problems.append(RegistryProblem("each entry must be a mapping with trial, dataset, "
                                        "contract, deliveries, schedule and owners", index))
        return None
    defaults, base, contract_dirs = context
    check = _EntryCheck(index, raw, defaults, base, contract_dirs)
    entry = check.entry()
    problems.extend(check.found)
    return entry


def _read_yaml(file: Path) -> Mapping[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryFileError(f"registry {file} not found (set TRIALPROOF_REGISTRY or pass "
                                "--registry)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryFileError(f"registry {file} cannot be read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RegistryFileError(f"registry {file} is not valid YAML{where}: {reason}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise RegistryFileError(f"registry {file} must be a YAML mapping with a 'datasets' list, "
                                f"not a {type(data).__name__}")
    return data


def _defaults(data: Mapping[str, Any], problems: list[RegistryProblem]) -> dict[str, Any]:
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append(RegistryProblem("must be a mapping", field="defaults"))
        return {}
    for key in sorted(set(defaults) - _DEFAULT_KEYS, key=str):
        problems.append(RegistryProblem(f"not a default; expected one of "
                                        f"{', '.join(sorted(_DEFAULT_KEYS))}",
                                        field=f"defaults.{key}"))
    return {k: v for k, v in defaults.items() if k in _DEFAULT_KEYS}


def read_registry(path: str | os.PathLike[str] | None = None) -> Registry:
    """Read and check a registry. Raises :class:`RegistryFileError` only when the file
    cannot be read or is not a YAML mapping; every other problem is in ``problems``."""
    file = resolve_registry(path)
    data = _read_yaml(file)
    base = file.parent
    problems: list[RegistryProblem] = []
    for key in sorted(set(data) - _TOP_KEYS, key=str):
        problems.append(RegistryProblem(f"unknown setting; expected one of "
                                        f"{', '.join(sorted(_TOP_KEYS))}", field=str(key)))
    if data.get("version", 1) != 1:
        problems.append(RegistryProblem("only version 1 is understood", field="version"))
    contract_dirs = _contract_dirs(data.get("contracts"), base, problems)
    anchor = _periodic(data.get("anchor"), "anchor", "@hourly", "TRIALPROOF_ANCHOR_SCHEDULE",
                       problems)
    audit = _periodic(data.get("audit"), "audit", "@daily", "TRIALPROOF_AUDIT_SCHEDULE",
                      problems)
    context = (_defaults(data, problems), base, contract_dirs)
    raw_entries = data.get("datasets")
    if raw_entries is None:
        raw_entries = []
    if not isinstance(raw_entries, list):
        problems.append(RegistryProblem("must be a list of dataset entries", field="datasets"))
        raw_entries = []

    entries: list[RegistryEntry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_entries):
        entry = _entry(index, raw, context, problems)
        if entry is None:
            continue
        if entry.dag_id in seen:
            problems.append(RegistryProblem(f"duplicate of datasets[{seen[entry.dag_id]}]: each "
                                            "trial and dataset is registered once",
                                            index, entry.trial, entry.dataset, "dataset"))
            continue
        seen[entry.dag_id] = index
        entries.append(entry)
    return Registry(file, tuple(entries), tuple(problems), contract_dirs, anchor, audit)


def load_registry(path: str | os.PathLike[str] | None = None
                  ) -> tuple[list[RegistryEntry], list[RegistryProblem]]:
    """(valid entries, problems). Raises only :class:`RegistryFileError` (unreadable, not YAML)."""
    registry = read_registry(path)
    return list(registry.entries), list(registry.problems)


# -- what the ingest tasks call ------------------------------------------------------


def _is_candidate(name: str) -> bool:
    return not name.startswith(".") and not name.lower().endswith(_PARTIAL_SUFFIXES)


def list_deliveries(entry: RegistryEntry) -> list[str]:
    """Every delivery file at the entry's location (local paths or URLs), sorted."""
    if entry.remote:
        import fsspec

        fs, pattern = fsspec.core.url_to_fs(entry.deliveries)
        found = []
        for path in fs.glob(pattern):
            if _is_candidate(path.rsplit("/", 1)[-1]) and fs.isfile(path):
                found.append(fs.unstrip_protocol(path))
        return sorted(found)
    return sorted(p for p in glob.glob(entry.deliveries, recursive=True)
                  if _is_candidate(os.path.basename(p)) and os.path.isfile(p))


def _hash_remote(url: str) -> tuple[str, int]:
    import fsspec

    digest = hashlib.sha256()
    size = 0
    with fsspec.open(url, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _quarantined(home: Home, trial: str, dataset: str) -> dict[str, Path]:
    """sha256 prefix (12 hex) -> quarantine folder, for this dataset's rejected deliveries."""
    found: dict[str, Path] = {}
    folder = home.path / "quarantine"
    if not folder.is_dir():
        return found
    suffix = re.compile(rf"^\d{{8}}T\d{{6}}Z-{re.escape(trial)}-{re.escape(dataset)}"
                        r"-([0-9a-f]{12})(?:-\d+)?$")
    for child in folder.iterdir():
        match = suffix.match(child.name)
        if match:
            found.setdefault(match.group(1), child)
    return found


def new_deliveries(home: Home, entry: RegistryEntry,
                   limit: int = MAX_PER_RUN) -> list[dict[str, Any]]:
    """The deliveries not yet seen for this dataset, as ``{path, name, sha256, size}``,
    at most ``limit`` of them (in name order; the rest wait for the next run).

    Skipped, with a log line each: a file whose sha256 is already a committed
    version of the dataset; one already rejected into quarantine (deliver a
    corrected file, or remove its quarantine folder to try it again); and a
    second file with the same bytes as another in this batch.
    """
    from pipeline.fsutil import sha256_file
    from pipeline.store import Store

    store = Store(home.path, home.log())
    committed = {info.manifest.get("source", {}).get("sha256"): info.version
                 for info in store.versions(entry.trial, entry.dataset)}
    quarantined = _quarantined(home, entry.trial, entry.dataset)
    fresh: list[dict[str, Any]] = []
    batch: set[str] = set()
    for location in list_deliveries(entry):
        sha, size = _hash_remote(location) if entry.remote else sha256_file(Path(location))
        name = location.rsplit("/", 1)[-1]
        if sha in committed:
            log.info("skip %s: already committed as %s/%s v%s", name, entry.trial,
                     entry.dataset, committed[sha])
        elif sha[:12] in quarantined:
            log.info("skip %s: rejected earlier, see %s", name, quarantined[sha[:12]])
        elif sha in batch:
            log.info("skip %s: same bytes as another file in this batch", name)
        elif len(fresh) >= limit:
            log.info("%s waits for the next run (at most %d deliveries a run)", name, limit)
        else:
            batch.add(sha)
            fresh.append({"path": location, "name": name, "sha256": sha, "size": size})
    log.info("%s/%s: %d new deliveries", entry.trial, entry.dataset, len(fresh))
    return fresh


def stage_delivery(home: Home, delivery: Mapping[str, Any]) -> dict[str, Any]:
    """Stage one listed delivery (downloading it first when it is remote); StagedDelivery JSON."""
    from pipeline.ingest import stage

    location = str(delivery["path"])
    if not is_remote(location):
        staged = stage(home, Path(location))
    else:
        import fsspec

        incoming = home.path / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="download-", dir=incoming))
        try:
            local = tmp / str(delivery.get("name") or location.rsplit("/", 1)[-1])
            with fsspec.open(location, "rb") as src, open(local, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            staged = stage(home, local)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if delivery.get("sha256") and staged.sha256 != delivery["sha256"]:
        log.warning("%s changed since it was listed (sha256 %s, now %s); staging what is there",
                    location, delivery["sha256"], staged.sha256)
    log.info("staged %s as %s (%d bytes)", staged.name, staged.path, staged.size)
    return staged.to_json()


def validate_delivery(home: Home, entry: RegistryEntry,
                      staged_json: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a staged delivery against the entry's contract; ValidatedDelivery JSON.

    Raises :class:`pipeline.errors.ValidationFailed` (already quarantined, with the report path).
    """
    from pipeline.contract import load_contract
    from pipeline.ingest import StagedDelivery, validate

    staged = StagedDelivery.from_json(dict(staged_json))
    contract = load_contract(entry.contract_path)
    validated = validate(home, staged, entry.trial, entry.dataset, contract)
    log.info("%s is valid under contract %s", staged.name, contract.name)
    return validated.to_json()


def commit_delivery(home: Home, entry: RegistryEntry,
                    validated_json: Mapping[str, Any]) -> dict[str, Any]:
    """Commit a validated delivery (idempotent by source sha256); a short summary for XCom."""
    from pipeline.contract import load_contract
    from pipeline.ingest import ValidatedDelivery, commit

    validated = ValidatedDelivery.from_json(dict(validated_json))
    result = commit(home, validated, load_contract(entry.contract_path))
    summary = result.to_json()
    summary.pop("manifest", None)
    summary["source"] = result.manifest["source"]
    summary["records"] = result.manifest["records"]
    if result.status == "committed":
        log.info("committed %s/%s v%d: %d records, root %s, log entry %d", result.trial,
                 result.dataset, result.version, result.manifest["records"],
                 result.manifest["root"], result.log_index)
    else:
        log.info("unchanged: %s is already %s/%s v%d", validated.staged.name, result.trial,
                 result.dataset, result.version)
    return summary


# -- failure notifications -----------------------------------------------------------


def _chain(exc: BaseException | None) -> Iterable[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def notify_failure(home_path: Path, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Log a failure notification and append it to ``<home>/notifications.log`` (JSON lines)."""
    line = {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **payload}
    who = ", ".join(line.get("notify") or line.get("owners") or []) or "nobody registered"
    report = f"; report: {line['report']}" if line.get("report") else ""
    log.error("FAILED %s %s (notify %s): %s%s", line.get("dag_id"), line.get("task_id"), who,
              line.get("error"), report)
    home_path.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(home_path / NOTIFICATIONS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)  # one write with O_APPEND: concurrent workers do not interleave
        os.fsync(fd)
    finally:
        os.close(fd)
    return line


def failure_notifier(entry: RegistryEntry | None = None, *, job: str | None = None,
                     owners: Iterable[str] = (), notify: Iterable[str] = ()
                     ) -> Callable[[Mapping[str, Any]], None]:
    """An Airflow ``on_failure_callback``: names the failed task, the error, the quarantine
    report (for a rejected delivery) and whom to notify. Never raises."""
    def callback(context: Mapping[str, Any]) -> None:
        try:
            _notify_from_context(context, entry, job, tuple(owners), tuple(notify))
        except Exception:  # a broken notification must not hide the failure
            log.exception("could not record the failure notification")

    return callback


def _failure_reason(context: Mapping[str, Any], ti: Any, error: object) -> str:
    """The error a failure notification carries: the task's exception, else the reason
    Airflow gave, else what is known when the task never raised (it was killed, lost its
    worker, or its worker could not reach the API server before it started)."""
    if error is not None:
        text = str(error)
        return text.splitlines()[0] if text.strip() else type(error).__name__
    reason = context.get("reason")
    if isinstance(reason, str) and reason.strip():
        return reason.strip().splitlines()[0]
    state = getattr(ti, "state", None) or "failed"
    attempt = getattr(ti, "try_number", None)
    return (f"the task ended {state}{f' on attempt {attempt}' if attempt else ''} without an "
            "error of its own: its worker was killed or lost, or could not reach Airflow's API "
            "server; the task's log in the Airflow UI has the details")


def _notify_from_context(context: Mapping[str, Any], entry: RegistryEntry | None,
                         job: str | None, owners: tuple[str, ...],
                         notify: tuple[str, ...]) -> None:
    from pipeline.errors import ValidationFailed
    from pipeline.home import resolve_home

    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    payload: dict[str, Any] = {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "run_id": getattr(ti, "run_id", None) or context.get("run_id"),
        "try_number": getattr(ti, "try_number", None),
        "error": _failure_reason(context, ti, error),
    }
    if entry is not None:
        payload.update(trial=entry.trial, dataset=entry.dataset, owners=list(entry.owners),
                       notify=list(entry.notify))
    else:
        payload.update(job=job, owners=list(owners), notify=list(notify or owners))
    for exc in _chain(error if isinstance(error, BaseException) else None):
        if isinstance(exc, ValidationFailed):
            payload.update(report=exc.report_path, quarantine=exc.quarantine_path)
            break
    notify_failure(resolve_home(None), payload)
