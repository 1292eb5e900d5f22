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
    "DeliveryPolicy",
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
from pipeline.names import NAME_RULE, is_plain_name

if TYPE_CHECKING:
    from pipeline.home import Home
    from pipeline.registry_watch import WatchSettings

logger = logging.getLogger("trialproof.registry")

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

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB_MAGIC = re.compile(r"[*?\[]")
_DAG_ID_MAX = 250
_TOP_KEYS = {"version", "contracts", "anchor", "audit", "defaults", "datasets", "registry_watch"}
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


def _watch_settings() -> WatchSettings:
    from pipeline.registry_watch import WatchSettings

    return WatchSettings()


@dataclass(frozen=True)
class Registry:
    path: Path
    entries: tuple[RegistryEntry, ...]
    problems: tuple[RegistryProblem, ...]
    contract_dirs: tuple[Path, ...]
    anchor: PeriodicJob = field(default_factory=lambda: PeriodicJob("@hourly"))
    audit: PeriodicJob = field(default_factory=lambda: PeriodicJob("@daily"))
    watch: WatchSettings = field(default_factory=_watch_settings)

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


#: Folders a delivery location may never be in, whatever the deployment allows.
FORBIDDEN_FOLDERS = ("/boot", "/dev", "/etc", "/proc", "/root", "/sys")
#: Folders a delivery location is not in either, unless the deployment lists them.
SYSTEM_FOLDERS = (*FORBIDDEN_FOLDERS, "/bin", "/lib", "/lib32", "/lib64", "/run", "/sbin", "/usr",
                  "/var/lib", "/var/log", "/var/run", "/var/spool")
#: fsspec protocols that reach this machine's own files or chain others: never a delivery URL.
_LOCAL_PROTOCOLS = ("file", "local", "blockcache", "filecache", "simplecache", "cached",
                    "reference", "dir")


@dataclass(frozen=True)
class DeliveryPolicy:
    """Where deliveries may come from: the deployment's allow-list, in the home's
    ``config.json``::

        "deliveries": {"folders": ["/srv/sponsor-drops", "s3://drops/trialproof"],
                       "protocols": ["s3"]}

    ``folders``: the local base folders (and URL prefixes) a location must lie in;
    absent, any local folder outside the home, system folders and hidden folders.
    :data:`FORBIDDEN_FOLDERS` (``/etc``, ``/proc`` ...) are refused in any case.
    ``protocols``: the fsspec protocols allowed for URLs; absent, none. A location in or
    above a trialproof home is never allowed.
    """

    home: Path | None = None
    folders: tuple[str, ...] | None = None
    protocols: tuple[str, ...] = ()

    @classmethod
    def for_home(cls, home: Path | None) -> DeliveryPolicy:
        """The policy of the home at ``home`` (its config.json), or the default."""
        if home is None:
            return cls()
        home = Path(os.path.abspath(home))
        try:
            config = json.loads((home / "config.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(home)
        except (OSError, ValueError) as exc:
            raise RegistryFileError(f"{home / 'config.json'} cannot be read: {exc}") from None
        settings = config.get("deliveries") if isinstance(config, dict) else None
        if settings is None:
            return cls(home)
        if not isinstance(settings, dict):
            raise RegistryFileError(f"{home / 'config.json'}: deliveries must be an object "
                                    'with "folders" and "protocols" lists')
        lists: dict[str, tuple[str, ...] | None] = {}
        for name in ("folders", "protocols"):
            value = settings.get(name)
            if value is not None and (not isinstance(value, list) or not all(
                    isinstance(v, str) and v for v in value)):
                raise RegistryFileError(f"{home / 'config.json'}: deliveries.{name} must be a "
                                        "list of strings")
            lists[name] = None if value is None else tuple(value)
        return cls(home, lists["folders"], tuple(p.lower() for p in lists["protocols"] or ()))

    def check_local(self, pattern: str) -> None:
        """ValueError unless the local glob ``pattern`` (absolute, normalized) is allowed."""
        from pipeline.fsutil import is_within
        from pipeline.home import enclosing_home

        folder = Path(_glob_base(pattern))
        real = folder.resolve()
        for where in (folder, real):
            home = enclosing_home(where)
            if home is not None:
                raise ValueError(f"{pattern} is inside the trialproof home {home}; deliveries "
                                 "come from outside the home")
        if self.home is not None:
            for home in (self.home, self.home.resolve()):
                if is_within(home, folder) or is_within(home, real):
                    raise ValueError(f"{pattern} would reach into the trialproof home {home}; "
                                     "choose a folder that does not contain it")
        refused = SYSTEM_FOLDERS if self.folders is None else FORBIDDEN_FOLDERS
        system = next((f for f in refused if is_within(real, Path(f))), None)
        if system is not None or real == Path(real.anchor):
            raise ValueError(f"{pattern} is in the system folder {system or real.anchor}; "
                             "deliveries come from a folder of their own")
        if self.folders is None:
            hidden = next((p for p in real.parts if p.startswith(".")), None)
            if hidden is not None:
                raise ValueError(f"{pattern} is in the hidden folder {hidden}; deliveries "
                                 "come from a visible folder")
            return
        allowed = [Path(f).expanduser().resolve() for f in self.folders if not _URL.match(f)]
        if not any(is_within(real, a) for a in allowed):
            raise ValueError(f"{pattern} is not in a delivery folder this deployment allows "
                             f"({', '.join(map(str, allowed)) or 'none'}; config.json "
                             "deliveries.folders)")

    def check_remote(self, url: str) -> None:
        """ValueError unless the fsspec ``url`` is allowed."""
        import ipaddress
        from urllib.parse import urlsplit

        protocol = url.split("://", 1)[0].lower()
        if "::" in url:
            raise ValueError(f"{url}: chained fsspec URLs (::) are not allowed")
        if protocol in _LOCAL_PROTOCOLS or protocol not in self.protocols:
            raise ValueError(f"{url}: the protocol {protocol!r} is not allowed here; the "
                             "deployment lists the allowed ones in config.json "
                             f"deliveries.protocols ({', '.join(self.protocols) or 'none'})")
        host = urlsplit(url).hostname or ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if host == "localhost" or (address is not None and (
                address.is_loopback or address.is_link_local or address.is_unspecified)):
            raise ValueError(f"{url}: a URL on this machine or its link-local network is not "
                             "a delivery location")
        prefixes = [f.rstrip("/") + "/" for f in self.folders or () if _URL.match(f)]
        if self.folders is not None and not any(url.startswith(p) for p in prefixes):
            raise ValueError(f"{url} is not under a delivery location this deployment allows "
                             "(config.json deliveries.folders)")


def check_deliveries(value: object, base: Path, policy: DeliveryPolicy | None = None) -> str:
    """The delivery location as an absolute glob or URL, or ValueError. ``policy``: where
    deliveries may come from (default: :class:`DeliveryPolicy` without a home)."""
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
        if not _GLOB_MAGIC.search(text):
            text = text.rstrip("/") + "/*"
        (policy or DeliveryPolicy()).check_remote(text)  # before importing the protocol's code
        try:
            get_filesystem_class(protocol)
        except ImportError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
        return text
    if text.startswith("file://"):
        text = text[len("file://"):]
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    pattern = os.path.normpath(path)
    (policy or DeliveryPolicy()).check_local(pattern)
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
    from pipeline.contract import contract_search_folders

    if raw is None:
        return contract_search_folders()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        problems.append(RegistryProblem("must be a folder or a list of folders",
                                        field="contracts"))
        items = []
    dirs: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_dir():
            problems.append(RegistryProblem(f"contract folder {path} does not exist",
                                            field="contracts"))
        dirs.append(path)
    return contract_search_folders(dirs)


@dataclass
class _EntryCheck:
    """Checks one raw entry, collecting a problem per bad field."""

    index: int
    raw: Mapping[str, Any]
    defaults: Mapping[str, Any]
    base: Path
    contract_dirs: tuple[Path, ...]
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
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
            elif not is_plain_name(value):
                self.problem(name, f"{value!r} must be {NAME_RULE}")
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
        deliveries = self.checked("deliveries",
                                  lambda v: check_deliveries(v, self.base, self.policy),
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


_Context = tuple[Mapping[str, Any], Path, tuple[Path, ...], DeliveryPolicy]


def _entry(index: int, raw: object, context: _Context,
           problems: list[RegistryProblem]) -> RegistryEntry | None:
    if not isinstance(raw, Mapping):
        problems.append(RegistryProblem("each entry must be a mapping with trial, dataset, "
                                        "contract, deliveries, schedule and owners", index))
        return None
    defaults, base, contract_dirs, policy = context
    check = _EntryCheck(index, raw, defaults, base, contract_dirs, policy)
    entry = check.entry()
    problems.extend(check.found)
    return entry


#: A registry file larger than this is refused (a registry of thousands of entries is smaller).
MAX_REGISTRY_BYTES = 1 << 20
#: Mappings and lists nested deeper than this are refused (a registry needs four levels).
MAX_REGISTRY_DEPTH = 16


class _StrictLoader(yaml.SafeLoader):
    """YAML without anchors and aliases (a few lines of nested aliases expand to gigabytes:
    the "billion laughs"), without a key repeated in one mapping (which of the two would
    count is not obvious), and nested at most :data:`MAX_REGISTRY_DEPTH` deep. Each is
    refused while the file is parsed, before anything is built from it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.MarkedYAMLError(problem="anchors and aliases (& and *) are not allowed",
                                       problem_mark=mark)
        if isinstance(event, yaml.CollectionStartEvent):
            self._depth += 1
            if self._depth > MAX_REGISTRY_DEPTH:
                raise yaml.MarkedYAMLError(problem=f"nested more than {MAX_REGISTRY_DEPTH} "
                                                   "levels deep", problem_mark=mark)
        try:
            return super().compose_node(parent, index)
        finally:
            if isinstance(event, yaml.CollectionStartEvent):
                self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[str] = set()
        key_node: Any
        for key_node, _value in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise yaml.MarkedYAMLError(problem=f"duplicate key {key_node.value!r}",
                                               problem_mark=key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(file: Path) -> Mapping[str, Any]:
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_REGISTRY_BYTES + 1)
        if len(raw) > MAX_REGISTRY_BYTES:
            raise RegistryFileError(f"registry {file} is larger than {MAX_REGISTRY_BYTES} bytes")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise RegistryFileError(f"registry {file} not found (set TRIALPROOF_REGISTRY or pass "
                                "--registry)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryFileError(f"registry {file} cannot be read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader, made stricter
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


def read_registry(path: str | os.PathLike[str] | None = None,
                  home: str | os.PathLike[str] | None = None) -> Registry:
    """Read and check a registry. Raises :class:`RegistryFileError` only when the file
    cannot be read or is not a YAML mapping; every other problem is in ``problems``.

    ``home`` (default ``$TRIALPROOF_HOME``, then ``./.trialproof``) decides where
    deliveries may come from (:class:`DeliveryPolicy`)."""
    from pipeline.home import resolve_home

    policy = DeliveryPolicy.for_home(resolve_home(home))
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
    from pipeline.registry_watch import parse_watch

    watch = parse_watch(data.get("registry_watch"), problems)
    context = (_defaults(data, problems), base, contract_dirs, policy)
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
    return Registry(file, tuple(entries), tuple(problems), contract_dirs, anchor, audit, watch)


def load_registry(path: str | os.PathLike[str] | None = None,
                  home: str | os.PathLike[str] | None = None
                  ) -> tuple[list[RegistryEntry], list[RegistryProblem]]:
    """(valid entries, problems). Raises only :class:`RegistryFileError` (unreadable, not YAML)."""
    registry = read_registry(path, home)
    return list(registry.entries), list(registry.problems)


# -- what the ingest tasks call ------------------------------------------------------


def _is_candidate(name: str) -> bool:
    return not name.startswith(".") and not name.lower().endswith(_PARTIAL_SUFFIXES)


def list_deliveries(entry: RegistryEntry, home: Home | None = None) -> list[str]:
    """Every delivery file at the entry's location (local paths or URLs), sorted.

    The location is checked again against the home's :class:`DeliveryPolicy` (the
    registry may have been checked under another configuration), and local files that
    are symbolic links or lie in a trialproof home are left out, with a warning.
    """
    policy = DeliveryPolicy.for_home(home.path if home is not None else None)
    if entry.remote:
        import fsspec

        _allowed(policy.check_remote, entry)
        fs, pattern = fsspec.core.url_to_fs(entry.deliveries)
        found = []
        for path in fs.glob(pattern):
            if _is_candidate(path.rsplit("/", 1)[-1]) and fs.isfile(path):
                found.append(fs.unstrip_protocol(path))
        return sorted(found)
    _allowed(policy.check_local, entry)
    return sorted(p for p in glob.glob(entry.deliveries, recursive=True)
                  if _is_candidate(os.path.basename(p)) and _safe_local(p, home))


def _allowed(check: Callable[[str], None], entry: RegistryEntry) -> None:
    try:
        check(entry.deliveries)
    except ValueError as exc:
        raise RegistryFileError(f"datasets[{entry.index}] ({entry.trial}/{entry.dataset}) "
                                f"field 'deliveries': {exc}") from None


def _safe_local(path: str, home: Home | None) -> bool:
    """A regular file, reached through no symbolic link and outside any home."""
    from pipeline.errors import ReadError

    if home is not None:
        from pipeline.ingest import refuse_unsafe_delivery

        try:
            refuse_unsafe_delivery(home, Path(path))
        except ReadError as exc:
            logger.warning("skip %s", exc)
            return False
    elif os.path.islink(path):
        logger.warning("skip %s: refused: it is a symbolic link", path)
        return False
    return os.path.isfile(path)


def _hash_remote(url: str) -> tuple[str, int]:
    import fsspec

    digest = hashlib.sha256()
    size = 0
    with fsspec.open(url, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _written_at(path: Path) -> str:
    """When a file was last written, as a manifest's ``ingested_at`` is (RFC 3339, UTC,
    seconds), so that the two compare as text."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_deliveries(home: Home, entry: RegistryEntry,
                   limit: int = MAX_PER_RUN) -> list[dict[str, Any]]:
    """The deliveries not yet seen for this dataset, as ``{path, name, sha256, size}``,
    at most ``limit`` of them (in name order; the rest wait for the next run).

    Skipped, with a log line each: a file with the bytes of the dataset's latest
    version, or of an earlier version unless the file was written after the latest
    version was committed (that is a rollback, and new; a remote file has no such
    time here, so it is skipped); one already rejected into quarantine (deliver a
    corrected file, or remove its quarantine folder to try it again); and a
    second file with the same bytes as another in this batch.
    """
    from pipeline.fsutil import sha256_file

    store = home.store()
    versions = store.versions(entry.trial, entry.dataset)
    committed = {info.manifest.get("source", {}).get("sha256"): info.version
                 for info in versions}
    latest_at = versions[-1].manifest["ingested_at"] if versions else ""
    fresh: list[dict[str, Any]] = []
    batch: set[str] = set()
    for location in list_deliveries(entry, home):
        sha, size = _hash_remote(location) if entry.remote else sha256_file(Path(location))
        name = location.rsplit("/", 1)[-1]
        quarantined = store.quarantine_dir(entry.trial, entry.dataset, sha)
        if sha in committed and (committed[sha] == versions[-1].version or entry.remote
                                 or _written_at(Path(location)) <= latest_at):
            logger.info("skip %s: already committed as %s/%s v%s", name, entry.trial,
                     entry.dataset, committed[sha])
        elif quarantined.is_dir():
            logger.info("skip %s: rejected earlier, see %s", name, quarantined)
        elif sha in batch:
            logger.info("skip %s: same bytes as another file in this batch", name)
        elif len(fresh) >= limit:
            logger.info("%s waits for the next run (at most %d deliveries a run)", name, limit)
        else:
            batch.add(sha)
            fresh.append({"path": location, "name": name, "sha256": sha, "size": size})
    logger.info("%s/%s: %d new deliveries", entry.trial, entry.dataset, len(fresh))
    return fresh


def stage_delivery(home: Home, delivery: Mapping[str, Any]) -> dict[str, Any]:
    """Stage one listed delivery (downloading it first when it is remote); StagedDelivery JSON."""
    from pipeline.ingest import stage, stage_download

    location = str(delivery["path"])
    if not is_remote(location):
        staged = stage(home, Path(location))
    else:
        import fsspec

        try:
            DeliveryPolicy.for_home(home.path).check_remote(location)
        except ValueError as exc:
            raise RegistryFileError(str(exc)) from None
        incoming = home.path / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="download-", dir=incoming))
        try:
            local = tmp / str(delivery.get("name") or location.rsplit("/", 1)[-1])
            with fsspec.open(location, "rb") as src, open(local, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            staged = stage_download(home, local, local.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if delivery.get("sha256") and staged.sha256 != delivery["sha256"]:
        logger.warning("%s changed since it was listed (sha256 %s, now %s); staging what is there",
                    location, delivery["sha256"], staged.sha256)
    logger.info("staged %s as %s (%d bytes)", staged.name, staged.path, staged.size)
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
    logger.info("%s is valid under contract %s", staged.name, contract.name)
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
        logger.info("committed %s/%s v%d: %d records, root %s, log entry %d", result.trial,
                 result.dataset, result.version, result.manifest["records"],
                 result.manifest["root"], result.log_index)
    else:
        logger.info("unchanged: %s is already %s/%s v%d", validated.staged.name, result.trial,
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
    logger.error("FAILED %s %s (notify %s): %s%s", line.get("dag_id"), line.get("task_id"), who,
              line.get("error"), report)
    from pipeline.home import file_mode

    home_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = (json.dumps(line, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(home_path / NOTIFICATIONS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                 file_mode(home_path))
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
            logger.exception("could not record the failure notification")

    return callback


#: A notification quotes at most this many characters of the error.
_ERROR_WIDTH = 500


def _shortened(line: str) -> str:
    """trialproof's own messages quote no file content (see :mod:`pipeline.quoting`); a
    long message is cut all the same."""
    return line if len(line) <= _ERROR_WIDTH else line[: _ERROR_WIDTH - 1] + "…"


def _failure_reason(context: Mapping[str, Any], ti: Any, error: object) -> str:
    """The error a failure notification carries: the task's exception, else the reason
    Airflow gave, else what is known when the task never raised (it was killed, lost its
    worker, or its worker could not reach the API server before it started)."""
    if error is not None:
        text = str(error).strip()
        return _shortened(text.splitlines()[0] if text else type(error).__name__)
    reason = context.get("reason")
    if isinstance(reason, str) and reason.strip():
        return _shortened(reason.strip().splitlines()[0])
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
