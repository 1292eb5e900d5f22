"""Outcome switching: compare the outcomes a trial registered first with later ones.

A ClinicalTrials.gov API v2 study record lists its planned outcomes in
``protocolSection.outcomesModule`` (``primaryOutcomes``, ``secondaryOutcomes``,
``otherOutcomes``: each ``measure``, ``description``, ``timeFrame``), and, once
results are posted, the outcomes it reports in
``resultsSection.outcomeMeasuresModule.outcomeMeasures`` (each ``type``,
``title``, ``description``, ``timeFrame``).

Outcomes are matched by normalized title first, then by fuzzy similarity
(:class:`difflib.SequenceMatcher`), and each pair or leftover is classified as
unchanged, added, removed, moved (primary <-> secondary) or changed (measure or
time frame). Pure functions over parsed JSON: no I/O here.
"""

from __future__ import annotations

__all__ = [
    "MATCH_THRESHOLD",
    "Outcome",
    "OutcomeFinding",
    "compare_outcomes",
    "has_results",
    "normalize",
    "registered_outcomes",
    "reported_outcomes",
]

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from typing import Any

#: Titles at least this similar (0..1) are taken for the same outcome, reworded.
MATCH_THRESHOLD = 0.75

_ROLES_REGISTERED = (
    ("primaryOutcomes", "primary"),
    ("secondaryOutcomes", "secondary"),
    ("otherOutcomes", "other"),
)
_ROLES_REPORTED = {
    "PRIMARY": "primary",
    "SECONDARY": "secondary",
    "OTHER_PRE_SPECIFIED": "other",
    "POST_HOC": "post-hoc",
}
_SPACE = re.compile(r"\s+")
_EDGE_PUNCTUATION = " .;:,"


@dataclass(frozen=True)
class Outcome:
    """One outcome as a registry states it."""

    role: str
    measure: str
    time_frame: str
    description: str = ""


@dataclass(frozen=True)
class OutcomeFinding:
    """What became of one outcome: ``status`` is unchanged, added, removed, moved or
    changed; ``changes`` lists every difference (``role``, ``measure``, ``time_frame``)."""

    status: str
    before: Outcome | None
    after: Outcome | None
    similarity: float | None
    changes: tuple[str, ...] = ()

    @property
    def discrepancy(self) -> bool:
        return self.status != "unchanged"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "changes": list(self.changes),
            "similarity": None if self.similarity is None else round(self.similarity, 3),
            "before": None if self.before is None else asdict(self.before),
            "after": None if self.after is None else asdict(self.after),
        }


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def normalize(text: str) -> str:
    """Casefolded NFKC text with runs of white space made one space and edge
    punctuation removed, so that layout alone never reads as a change."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", folded).strip(_EDGE_PUNCTUATION)


def registered_outcomes(study: Mapping[str, Any]) -> list[Outcome]:
    """The planned outcomes of a study record (``protocolSection.outcomesModule``)."""
    module = study.get("protocolSection", {}).get("outcomesModule", {})
    outcomes = []
    for key, role in _ROLES_REGISTERED:
        for item in module.get(key, []) or []:
            if isinstance(item, Mapping) and _text(item.get("measure")):
                outcomes.append(
                    Outcome(
                        role,
                        _text(item.get("measure")),
                        _text(item.get("timeFrame")),
                        _text(item.get("description")),
                    )
                )
    return outcomes


def has_results(study: Mapping[str, Any]) -> bool:
    return bool(reported_outcomes(study))


def reported_outcomes(study: Mapping[str, Any]) -> list[Outcome]:
    """The outcomes reported in the results section (``outcomeMeasuresModule``)."""
    module = study.get("resultsSection", {}).get("outcomeMeasuresModule", {})
    outcomes = []
    for item in module.get("outcomeMeasures", []) or []:
        if isinstance(item, Mapping) and _text(item.get("title")):
            role = _ROLES_REPORTED.get(_text(item.get("type")).upper(), "other")
            outcomes.append(
                Outcome(
                    role,
                    _text(item.get("title")),
                    _text(item.get("timeFrame")),
                    _text(item.get("description")),
                )
            )
    return outcomes


def _pair_finding(before: Outcome, after: Outcome, similarity: float) -> OutcomeFinding:
    changes = []
    if before.role != after.role:
        changes.append("role")
    if normalize(before.measure) != normalize(after.measure):
        changes.append("measure")
    if normalize(before.time_frame) != normalize(after.time_frame):
        changes.append("time_frame")
    if "role" in changes:
        status = "moved"
    elif changes:
        status = "changed"
    else:
        status = "unchanged"
    return OutcomeFinding(status, before, after, similarity, tuple(changes))


def _closeness(before: Outcome, after: Outcome) -> tuple[int, int]:
    """Among equal titles, prefer the same role, then the same time frame."""
    return (
        int(before.role == after.role),
        int(normalize(before.time_frame) == normalize(after.time_frame)),
    )


def _match_exact(
    before: Sequence[Outcome], after: Sequence[Outcome], free: set[int]
) -> dict[int, int]:
    pairs: dict[int, int] = {}
    for i, old in enumerate(before):
        title = normalize(old.measure)
        same = [j for j in free if normalize(after[j].measure) == title]
        if same:
            j = max(same, key=lambda k: (_closeness(old, after[k]), -k))
            pairs[i] = j
            free.discard(j)
    return pairs


def _match_fuzzy(
    before: Sequence[Outcome], after: Sequence[Outcome], todo: Sequence[int], free: set[int]
) -> dict[int, tuple[int, float]]:
    scored = []
    for i in todo:
        for j in free:
            ratio = SequenceMatcher(
                None, normalize(before[i].measure), normalize(after[j].measure), autojunk=False
            ).ratio()
            if ratio >= MATCH_THRESHOLD:
                scored.append((ratio, -i, -j))
    pairs: dict[int, tuple[int, float]] = {}
    for ratio, neg_i, neg_j in sorted(scored, reverse=True):
        i, j = -neg_i, -neg_j
        if i not in pairs and j in free:
            pairs[i] = (j, ratio)
            free.discard(j)
    return pairs


def compare_outcomes(before: Sequence[Outcome], after: Sequence[Outcome]) -> list[OutcomeFinding]:
    """Classify every outcome of ``before`` (the baseline) against ``after``.

    Pairs are made from equal normalized titles first, then greedily from the
    most similar remaining titles at or above :data:`MATCH_THRESHOLD`.
    Findings keep the baseline's order; added outcomes come last.
    """
    free = set(range(len(after)))
    exact = _match_exact(before, after, free)
    fuzzy = _match_fuzzy(before, after, [i for i in range(len(before)) if i not in exact], free)
    findings = []
    for i, old in enumerate(before):
        if i in exact:
            findings.append(_pair_finding(old, after[exact[i]], 1.0))
        elif i in fuzzy:
            j, ratio = fuzzy[i]
            findings.append(_pair_finding(old, after[j], ratio))
        else:
            findings.append(OutcomeFinding("removed", old, None, None))
    findings.extend(OutcomeFinding("added", None, after[j], None) for j in sorted(free))
    return findings
