"""The outcome-switching check over a trial's logged registry records.

For each registered study, the baseline is its earliest logged registry record
(or one the caller designates by log index). Its planned outcomes are compared
with those of every later logged record, and with the outcomes reported in the
results section of the latest record that has one. Every comparison names the
two log entries it compares and when each was first anchored, so a reader can
verify both sides offline with entry proofs.
"""

from __future__ import annotations

__all__ = [
    "Comparison",
    "OutcomeReport",
    "Side",
    "StudyCheck",
    "check_outcomes",
    "render_html",
]

import html
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import UsageError
from pipeline.home import Home
from pipeline.outcomes import (
    OutcomeFinding,
    compare_outcomes,
    registered_outcomes,
    reported_outcomes,
)
from pipeline.preregistration import (
    ProvenTime,
    RegistryRecordEntry,
    proven_time,
    registry_entries,
)


@dataclass(frozen=True)
class Side:
    """One log entry a comparison rests on."""

    entry: RegistryRecordEntry
    proven: ProvenTime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "log_index": self.entry.log_index,
            "last_update": self.entry.entry.get("last_update"),
            "sha256": self.entry.sha256,
            "fetched_at": self.entry.entry.get("fetched_at"),
            "proven_time": None if self.proven is None else self.proven.to_json(),
        }

    def cite(self) -> str:
        when = "not yet anchored" if self.proven is None else f"first anchored {self.proven}"
        update = self.entry.entry.get("last_update") or "no update date"
        return f"log entry {self.entry.log_index} (registry update {update}; {when})"


@dataclass(frozen=True)
class Comparison:
    """The baseline's planned outcomes against one later record (``registration``)
    or against the outcomes reported in a record's results section (``results``)."""

    against: str
    baseline: Side
    other: Side
    findings: list[OutcomeFinding]

    @property
    def discrepancies(self) -> list[OutcomeFinding]:
        return [f for f in self.findings if f.discrepancy]

    def to_json(self) -> dict[str, Any]:
        cites = [self.baseline.entry.log_index, self.other.entry.log_index]
        return {
            "against": self.against,
            "baseline": self.baseline.to_json(),
            "other": self.other.to_json(),
            "discrepancies": len(self.discrepancies),
            "findings": [{**f.to_json(), "log_entries": cites} for f in self.findings],
        }


@dataclass
class StudyCheck:
    registry: str
    study_id: str
    baseline: Side
    comparisons: list[Comparison] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "study_id": self.study_id,
            "baseline": self.baseline.to_json(),
            "comparisons": [c.to_json() for c in self.comparisons],
        }


@dataclass
class OutcomeReport:
    trial: str
    studies: list[StudyCheck] = field(default_factory=list)

    @property
    def discrepancies(self) -> int:
        return sum(len(c.discrepancies) for s in self.studies for c in s.comparisons)

    @property
    def ok(self) -> bool:
        return self.discrepancies == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "ok": self.ok,
            "discrepancies": self.discrepancies,
            "studies": [s.to_json() for s in self.studies],
        }


_Studies = dict[tuple[str, str], list[RegistryRecordEntry]]


def _by_study(entries: list[RegistryRecordEntry]) -> _Studies:
    studies: _Studies = {}
    for entry in entries:
        key = (str(entry.entry["registry"]), str(entry.entry["study_id"]))
        studies.setdefault(key, []).append(entry)
    return studies


def _study_check(
    home: Home, registry: str, study_id: str, entries: list[RegistryRecordEntry], start: int
) -> StudyCheck:
    def side(entry: RegistryRecordEntry) -> Side:
        return Side(entry, proven_time(home, entry.log_index))

    baseline = side(entries[start])
    planned = registered_outcomes(baseline.entry.record(home))
    check = StudyCheck(registry, study_id, baseline)
    for later in entries[start + 1 :]:
        findings = compare_outcomes(planned, registered_outcomes(later.record(home)))
        check.comparisons.append(Comparison("registration", baseline, side(later), findings))
    for entry in reversed(entries[start:]):
        reported = reported_outcomes(entry.record(home))
        if reported:
            findings = compare_outcomes(planned, reported)
            check.comparisons.append(Comparison("results", baseline, side(entry), findings))
            break
    return check


def check_outcomes(home: Home, trial: str, baseline_index: int | None = None) -> OutcomeReport:
    """Compare each study's baseline outcomes with its later records and its results.

    ``baseline_index`` designates the baseline record by its log index (for example
    the registration that matches the protocol or the SAP); by default it is each
    study's earliest logged record.
    """
    studies = _by_study(registry_entries(home, trial))
    if not studies:
        raise UsageError(
            f"no registry records are logged for {trial}; add one with "
            "`trialproof registry-record add --trial T FILE.json`"
        )
    report = OutcomeReport(trial)
    designated = False
    for (registry, study_id), entries in studies.items():
        start = 0
        if baseline_index is not None:
            positions = [i for i, e in enumerate(entries) if e.log_index == baseline_index]
            if not positions:
                continue
            start, designated = positions[0], True
        report.studies.append(_study_check(home, registry, study_id, entries, start))
    if baseline_index is not None and not designated:
        raise UsageError(f"--baseline {baseline_index} is not a registry record of {trial}")
    return report


# -- HTML ---------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.status{font-weight:600;white-space:nowrap}
.ok{color:#17652a}.bad{color:#a4161a}.cite{color:#555;font-size:.9rem}
"""


def _outcome_cell(finding: OutcomeFinding, which: str) -> str:
    outcome = finding.before if which == "before" else finding.after
    if outcome is None:
        return "<td>—</td>"
    return (
        f"<td><strong>{html.escape(outcome.role)}</strong>: {html.escape(outcome.measure)}"
        f"<br><span class=cite>time frame: {html.escape(outcome.time_frame or '—')}</span></td>"
    )


def _finding_row(finding: OutcomeFinding) -> str:
    css = "bad" if finding.discrepancy else "ok"
    detail = ", ".join(c.replace("_", " ") for c in finding.changes)
    score = "" if finding.similarity is None else f"{finding.similarity:.2f}"
    return (
        f"<tr><td class='status {css}'>{html.escape(finding.status)}"
        f"{'<br>' + html.escape(detail) if detail else ''}</td>"
        f"{_outcome_cell(finding, 'before')}{_outcome_cell(finding, 'after')}"
        f"<td>{score}</td></tr>"
    )


def _comparison_html(comparison: Comparison) -> str:
    title = (
        "Registered outcomes at baseline vs. a later registration"
        if comparison.against == "registration"
        else "Registered outcomes at baseline vs. outcomes reported in the results"
    )
    rows = "".join(_finding_row(f) for f in comparison.findings)
    return (
        f"<h3>{title}</h3>"
        f"<p class=cite>Baseline: {html.escape(comparison.baseline.cite())}<br>"
        f"Compared with: {html.escape(comparison.other.cite())}</p>"
        f"<p>{len(comparison.discrepancies)} discrepanc"
        f"{'y' if len(comparison.discrepancies) == 1 else 'ies'}.</p>"
        "<table><tr><th>finding</th><th>baseline</th><th>compared</th>"
        f"<th>title similarity</th></tr>{rows}</table>"
    )


def render_html(report: OutcomeReport) -> str:
    """A self-contained page a journal editor can read: the verdict first, then each
    comparison with the log entries it rests on."""
    verdict = (
        "<p class='status ok'>No outcome was switched.</p>"
        if report.ok
        else f"<p class='status bad'>{report.discrepancies} discrepancies between the "
        "registered and the later or reported outcomes.</p>"
    )
    studies = "".join(
        f"<h2>{html.escape(s.registry)} {html.escape(s.study_id)}</h2>"
        + "".join(_comparison_html(c) for c in s.comparisons)
        + ("" if s.comparisons else "<p>Only one record is logged; nothing to compare yet.</p>")
        for s in report.studies
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Outcome check: {html.escape(report.trial)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Outcome check: {html.escape(report.trial)}</h1>{verdict}"
        "<p class=cite>Each side of a comparison is a log entry of the trial's transparency "
        "log; `trialproof prove-entry --log-index N` gives a proof of it that verifies offline "
        f"with the log's public key.</p>{studies}</body></html>\n"
    )
