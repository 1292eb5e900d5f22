"""Watch a trial registry: fetch each registered study and log every change.

The sponsor registry's ``registry_watch`` section names the studies::

    registry_watch:
      schedule: "@daily"                             # env TRIALPROOF_REGISTRY_WATCH_SCHEDULE
      base_url: https://clinicaltrials.gov/api/v2    # env TRIALPROOF_REGISTRY_URL
      retries: 3                                     # with exponential back-off
      studies:
        - {trial: CDISCPILOT01, study_id: NCT00000000}

Each study is fetched from ``<base_url>/studies/<study_id>`` (ClinicalTrials.gov
API v2) and logged as a ``trialproof/registry-record/v1`` entry when its
canonical JSON changed since the last fetch (:func:`pipeline.preregistration.add_registry_record`).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BASE_URL",
    "RegistryFetchError",
    "WatchSettings",
    "WatchedStudy",
    "check_base_url",
    "fetch_study",
    "parse_watch",
    "watch_registry",
]

import contextlib
import ipaddress
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError
from pipeline.names import check_name, is_plain_name

if TYPE_CHECKING:
    from pipeline.home import Home
    from pipeline.registry import RegistryProblem

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
#: A study record is a few hundred kB at most; anything far larger is not one.
MAX_RECORD_BYTES = 16 << 20
_KEYS = {"schedule", "base_url", "studies", "notify", "retries"}


class RegistryFetchError(PipelineError):
    """The registry could not be reached, or answered with an error or a non-record."""


@dataclass(frozen=True)
class WatchedStudy:
    trial: str
    study_id: str
    registry: str = "clinicaltrials.gov"


@dataclass(frozen=True)
class WatchSettings:
    schedule: str = "@daily"
    base_url: str = DEFAULT_BASE_URL
    studies: tuple[WatchedStudy, ...] = ()
    notify: tuple[str, ...] = ()
    retries: int = 3


def check_base_url(url: str) -> str:
    """HTTPS anywhere; plain HTTP only to this machine (a local mirror or a test)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        loopback = host == "localhost"
        with contextlib.suppress(ValueError):
            loopback = loopback or ipaddress.ip_address(host).is_loopback
        if loopback:
            return url.rstrip("/")
    raise ValueError("base_url must be an https:// URL (or http:// to localhost)")


def _studies(raw: object, problems: list[RegistryProblem]) -> tuple[WatchedStudy, ...]:
    from pipeline.registry import RegistryProblem

    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(RegistryProblem("must be a list", field="registry_watch.studies"))
        return ()
    studies = []
    for i, item in enumerate(raw):
        where = f"registry_watch.studies[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"trial", "study_id", "registry"}:
            problems.append(RegistryProblem("must be {trial, study_id[, registry]}", field=where))
            continue
        trial, study_id = item.get("trial"), item.get("study_id")
        try:
            check_name(str(trial), "trial")
        except PipelineError as exc:
            problems.append(RegistryProblem(str(exc), field=f"{where}.trial"))
            continue
        if not is_plain_name(study_id):
            problems.append(RegistryProblem("must be a study ID such as NCT01234567",
                                            field=f"{where}.study_id"))
            continue
        studies.append(WatchedStudy(str(trial), study_id,
                                    str(item.get("registry", "clinicaltrials.gov"))))
    return tuple(studies)


def parse_watch(raw: object, problems: list[RegistryProblem]) -> WatchSettings:
    """The ``registry_watch`` section, with one problem per thing wrong."""
    from pipeline.registry import RegistryProblem, check_schedule

    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(RegistryProblem("must be a mapping", field="registry_watch"))
        return WatchSettings()
    for key in sorted(set(raw) - _KEYS, key=str):
        expected = ", ".join(sorted(_KEYS))
        problems.append(RegistryProblem(f"unknown setting; expected one of {expected}",
                                        field=f"registry_watch.{key}"))
    settings = WatchSettings()
    schedule = os.environ.get("TRIALPROOF_REGISTRY_WATCH_SCHEDULE") or raw.get("schedule")
    if schedule is not None:
        try:
            settings = WatchSettings(schedule=check_schedule(schedule))
        except ValueError as exc:
            problems.append(RegistryProblem(str(exc), field="registry_watch.schedule"))
    base_url = os.environ.get("TRIALPROOF_REGISTRY_URL") or raw.get("base_url") or DEFAULT_BASE_URL
    try:
        base_url = check_base_url(str(base_url))
    except ValueError as exc:
        problems.append(RegistryProblem(str(exc), field="registry_watch.base_url"))
        base_url = DEFAULT_BASE_URL
    notify = raw.get("notify") or []
    retries = raw.get("retries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 20:
        problems.append(RegistryProblem("must be an integer from 0 to 20",
                                        field="registry_watch.retries"))
        retries = 3
    return WatchSettings(
        settings.schedule,
        base_url,
        _studies(raw.get("studies"), problems),
        tuple(str(n) for n in notify) if isinstance(notify, list) else (),
        retries,
    )


def fetch_study(base_url: str, study_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """GET ``<base_url>/studies/<study_id>`` (ClinicalTrials.gov API v2) as JSON."""
    if not is_plain_name(study_id):
        raise RegistryFetchError(f"{study_id!r} is not a study ID")
    url = f"{check_base_url(base_url)}/studies/{urllib.parse.quote(study_id)}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_RECORD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise RegistryFetchError(f"{study_id}: the registry answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RegistryFetchError(f"{study_id}: the registry cannot be reached ({reason})") from None
    if len(data) > MAX_RECORD_BYTES:
        raise RegistryFetchError(f"{study_id}: the answer is larger than {MAX_RECORD_BYTES} bytes")
    try:
        record = json.loads(data)
    except ValueError:
        raise RegistryFetchError(f"{study_id}: the registry's answer is not JSON") from None
    if not isinstance(record, dict) or "protocolSection" not in record:
        raise RegistryFetchError(f"{study_id}: the registry's answer is not a study record")
    return record


def watch_registry(home: Home, settings: WatchSettings) -> list[dict[str, Any]]:
    """Fetch every watched study and log the changed ones; one summary per study.

    Every study is tried; if any fetch failed, :class:`RegistryFetchError` names them
    all after the others were logged.
    """
    from pipeline.preregistration import add_registry_record

    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for study in settings.studies:
        try:
            record = fetch_study(settings.base_url, study.study_id)
        except RegistryFetchError as exc:
            failures.append(str(exc))
            continue
        logged = add_registry_record(home, study.trial, record, registry=study.registry)
        results.append({
            "trial": study.trial,
            "study_id": study.study_id,
            "changed": logged is not None,
            "log_index": None if logged is None else logged.log_index,
        })
    if failures:
        raise RegistryFetchError("; ".join(failures))
    return results
