"""The sponsor registry's schema and its checks (docs/architecture.md): which datasets are
ingested, from where, and when.

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

The DAG files import this module when they are parsed: it imports nothing heavy at
module level and nothing from Airflow.
"""

from __future__ import annotations

__all__ = [
    "ARRIVAL",
    "DEFAULT_REGISTRY",
    "FORBIDDEN_FOLDERS",
    "LOG_ASSET_URI",
    "MANUAL",
    "MAX_REGISTRY_BYTES",
    "MAX_REGISTRY_DEPTH",
    "PRESETS",
    "SYSTEM_FOLDERS",
    "DeliveryPolicy",
    "PeriodicJob",
    "Registry",
    "RegistryEntry",
    "RegistryFileError",
    "RegistryProblem",
    "check_deliveries",
    "check_schedule",
    "is_remote",
    "load_registry",
    "read_registry",
    "resolve_registry",
]

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.errors import PipelineError
from pipeline.names import NAME_RULE, is_plain_name

if TYPE_CHECKING:
    from pipeline.registry_watch import WatchSettings

logger = logging.getLogger("trialproof.registry")

DEFAULT_REGISTRY = Path("registry") / "sponsors.yaml"
#: The Airflow asset that every commit updates and the anchor DAG may be scheduled on.
LOG_ASSET_URI = "trialproof://log"
#: Schedule keyword: ingest as soon as a new delivery arrives (a sensor polls the folder).
ARRIVAL = "on-arrival"
#: Schedule keyword: only when triggered by hand or through the API.
MANUAL = "manual"
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
