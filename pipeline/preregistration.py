"""Pre-registration: planning documents and registry records as log entries.

A sponsor registers each planning document (protocol, statistical analysis
plan, ...) and every version of its registry records as they happen, so that
the anchored log shows what was planned before the results were known
(docs/formats.md §11, entry types ``trialproof/document/v1`` and
``trialproof/registry-record/v1``).

Stored files (not public formats)::

    <home>/documents/<sha256>              a registered document's bytes
    <home>/registry-records/<sha256>.json  a registry record's JCS bytes
"""

from __future__ import annotations

__all__ = [
    "DOCUMENT_KINDS",
    "DOCUMENT_TYPE",
    "REGISTRY_RECORD_TYPE",
    "DocumentEntry",
    "ProvenTime",
    "RegistryRecordEntry",
    "add_registry_record",
    "document_entries",
    "entry_proof",
    "find_document",
    "proven_time",
    "register_document",
    "registered_trials",
    "registry_entries",
]

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anchoring._internal.log import LogEntry
from anchoring.canonical import canonical_json
from anchoring.errors import AnchoringError, CanonicalizationError, DuplicateEntryError
from pipeline.errors import StoreError, UsageError
from pipeline.fsutil import copy_durably, sha256_file, write_bytes_durably
from pipeline.home import Home
from pipeline.store import check_name

DOCUMENT_TYPE = "trialproof/document/v1"
REGISTRY_RECORD_TYPE = "trialproof/registry-record/v1"
DOCUMENT_KINDS = ("protocol", "sap", "icf", "dmp", "csr", "other")
CLINICALTRIALS_GOV = "clinicaltrials.gov"
_MAX_LABEL = 200


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _document_key(trial: str) -> str:
    # ":" never occurs in trial or dataset names, so these keys never look like
    # a dataset's "<trial>/<dataset>".
    return f"document:{trial}"


def _registry_key(trial: str, registry: str, study_id: str) -> str:
    return f"registry-record:{trial}:{registry}:{study_id}"


@dataclass(frozen=True)
class ProvenTime:
    """When an entry was first anchored: the earliest anchoring that covers it."""

    time: str
    ledger: str
    independent: bool
    anchored_size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "ledger": self.ledger,
            "independent": self.independent,
            "anchored_size": self.anchored_size,
        }

    def __str__(self) -> str:
        note = "" if self.independent else ", not independent"
        return f"{self.time} ({self.ledger}{note})"


def proven_time(home: Home, log_index: int) -> ProvenTime | None:
    """The time of the earliest anchoring whose checkpoint covers ``log_index``: a TSA's
    genTime or a block time where the anchoring has one, otherwise the local ledger's
    time, which is marked not independent. None while no anchoring covers the entry."""
    from pipeline.anchor import anchored, receipts_for
    from pipeline.document_proof import first_anchored

    for size in anchored(home):
        if size <= log_index:
            continue
        _note, receipts = receipts_for(home, size)
        found = first_anchored(list(receipts.values()))
        if found is not None:
            return ProvenTime(found["time"], found["ledger"], found["independent"], size)
    return None


# -- documents -------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentEntry:
    """A registered document: its log entry and where the log put it."""

    log_index: int
    entry: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.entry["sha256"])

    def to_json(self, proven: ProvenTime | None = None) -> dict[str, Any]:
        return {
            **self.entry,
            "log_index": self.log_index,
            "proven_time": None if proven is None else proven.to_json(),
        }


def _entry_object(entry: LogEntry) -> dict[str, Any]:
    try:
        obj = json.loads(entry.leaf_input)
    except ValueError:
        raise StoreError(f"log entry {entry.index} is not JSON") from None
    if not isinstance(obj, dict):
        raise StoreError(f"log entry {entry.index} is not a JSON object")
    return obj


def _check_label(label: str) -> str:
    if not label.strip() or len(label) > _MAX_LABEL or not label.isprintable():
        raise UsageError(f"--label must be 1-{_MAX_LABEL} printable characters")
    return label


def register_document(home: Home, trial: str, kind: str, label: str, file: Path) -> DocumentEntry:
    """Keep ``file`` under its sha256 and append a ``trialproof/document/v1`` entry.

    Registering the same bytes again for the trial returns the entry already in the
    log, so a retry never appends twice.
    """
    check_name(trial, "trial")
    if kind not in DOCUMENT_KINDS:
        raise UsageError(f"--kind must be one of {', '.join(DOCUMENT_KINDS)}; got {kind!r}")
    _check_label(label)
    if file.is_symlink() or not file.is_file():
        raise UsageError(f"{file.name}: not a regular file")
    sha256, size = sha256_file(file)
    folder = home.path / "documents"
    folder.mkdir(mode=0o700, exist_ok=True)
    stored = folder / sha256
    if not stored.is_file():
        with open(file, "rb") as source:
            if not copy_durably(source, stored, sha256):
                raise UsageError(f"{file.name} changed while it was being registered")
    entry = {
        "type": DOCUMENT_TYPE,
        "trial": trial,
        "kind": kind,
        "label": label,
        "name": file.name,
        "sha256": sha256,
        "bytes": size,
        "registered_at": _now(),
    }
    try:
        appended = home.log().append_keyed(
            _document_key(trial),
            lambda _previous: canonical_json(entry),
            refuse=lambda earlier: _entry_object(earlier).get("sha256") == sha256,
        )
    except DuplicateEntryError as exc:
        earlier = exc.entry
        assert isinstance(earlier, LogEntry)
        return DocumentEntry(earlier.index, _entry_object(earlier))
    return DocumentEntry(appended.index, entry)


def document_entries(home: Home, trial: str) -> list[DocumentEntry]:
    """The trial's registered documents, in log order."""
    check_name(trial, "trial")
    return [
        DocumentEntry(e.index, _entry_object(e))
        for e in home.log().entries_for_key(_document_key(trial))
    ]


def find_document(home: Home, trial: str, sha256: str) -> DocumentEntry:
    for document in document_entries(home, trial):
        if document.sha256 == sha256:
            return document
    raise StoreError(f"no document with sha256 {sha256[:16]}… is registered for {trial}")


# -- registry records ---------------------------------------------------------


@dataclass(frozen=True)
class RegistryRecordEntry:
    """One logged version of a registry record."""

    log_index: int
    entry: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.entry["sha256"])

    def record(self, home: Home) -> dict[str, Any]:
        """The stored record, checked against the sha256 the log committed to."""
        path = home.path / "registry-records" / f"{self.sha256}.json"
        try:
            data = path.read_bytes()
        except OSError:
            raise StoreError(f"registry record {self.sha256[:16]}… is missing") from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise StoreError(f"registry record {self.sha256[:16]}… does not match its log entry")
        record: dict[str, Any] = json.loads(data)
        return record

    def to_json(self, proven: ProvenTime | None = None) -> dict[str, Any]:
        return {
            **self.entry,
            "log_index": self.log_index,
            "proven_time": None if proven is None else proven.to_json(),
        }


def _study_facts(record: dict[str, Any]) -> tuple[str, str | None]:
    protocol = record.get("protocolSection")
    if not isinstance(protocol, dict):
        raise UsageError("not a ClinicalTrials.gov API v2 study record: no protocolSection")
    study_id = protocol.get("identificationModule", {}).get("nctId")
    if not isinstance(study_id, str) or not study_id:
        raise UsageError("the study record has no protocolSection.identificationModule.nctId")
    check_name(study_id, "study ID")
    status = protocol.get("statusModule", {})
    last_update = status.get("lastUpdatePostDateStruct", {}).get("date") or status.get(
        "lastUpdateSubmitDate"
    )
    return study_id, last_update if isinstance(last_update, str) else None


class _Unchanged(Exception):
    """The record equals the study's latest logged version: nothing to append."""


def add_registry_record(
    home: Home,
    trial: str,
    record: dict[str, Any],
    *,
    registry: str = CLINICALTRIALS_GOV,
    fetched_at: str | None = None,
) -> RegistryRecordEntry | None:
    """Log ``record`` as a ``trialproof/registry-record/v1`` entry if its canonical JSON
    differs from the study's latest logged version; None when it is unchanged."""
    check_name(trial, "trial")
    study_id, last_update = _study_facts(record)
    try:
        data = canonical_json(record)
    except (CanonicalizationError, AnchoringError) as exc:
        raise UsageError(f"the study record cannot be canonicalized: {exc}") from None
    sha256 = hashlib.sha256(data).hexdigest()
    folder = home.path / "registry-records"
    folder.mkdir(mode=0o700, exist_ok=True)
    stored = folder / f"{sha256}.json"
    if not stored.is_file():
        write_bytes_durably(stored, data)
    entry = {
        "type": REGISTRY_RECORD_TYPE,
        "trial": trial,
        "registry": registry,
        "study_id": study_id,
        "last_update": last_update,
        "sha256": sha256,
        "fetched_at": fetched_at or _now(),
    }
    key = _registry_key(trial, registry, study_id)

    def build(previous: LogEntry | None) -> bytes:
        if previous is not None and _entry_object(previous).get("sha256") == sha256:
            raise _Unchanged
        return canonical_json(entry)

    try:
        appended = home.log().append_keyed(key, build)
    except _Unchanged:
        return None
    return RegistryRecordEntry(appended.index, entry)


def registry_entries(home: Home, trial: str) -> list[RegistryRecordEntry]:
    """Every logged registry record of the trial, in log order."""
    check_name(trial, "trial")
    prefix = f"registry-record:{trial}:"
    log = home.log()
    entries = [e for key in log.entry_keys() if key.startswith(prefix)
               for e in log.entries_for_key(key)]
    return [RegistryRecordEntry(e.index, _entry_object(e))
            for e in sorted(entries, key=lambda e: e.index)]


def registered_trials(home: Home) -> list[str]:
    """The trials with a registered document or a logged registry record."""
    return sorted({key.split(":")[1] for key in home.log().entry_keys()
                   if key.startswith(("document:", "registry-record:"))})


# -- entry proofs -------------------------------------------------------------


def entry_proof(home: Home, log_index: int) -> dict[str, Any]:
    """An entry proof (docs/formats.md §8, ``trialproof/entry-proof/v1``) for any log
    entry, against the newest anchored checkpoint covering it (else the latest)."""
    from anchoring.record_proof import build_entry_proof
    from pipeline.prove import checkpoint_for

    log = home.log()
    checkpoint, anchors = checkpoint_for(home, log_index)
    proof = build_entry_proof(
        entry=_entry_object(log.entry(log_index)),
        log=log,
        log_index=log_index,
        checkpoint=checkpoint,
        anchors=anchors,
    )
    return proof.to_json_object()
