"""Outcome matching and classification on real ClinicalTrials.gov API v2 records and
edited copies of them (the three switches COMPare found most often)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.outcomes import (
    MATCH_THRESHOLD,
    Outcome,
    compare_outcomes,
    normalize,
    registered_outcomes,
    reported_outcomes,
)

CTGOV = Path(__file__).parent / "data" / "ctgov"
STUDIES = sorted(p.stem for p in CTGOV.glob("NCT*.json"))


def study(nct: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((CTGOV / f"{nct}.json").read_text(encoding="utf-8"))
    return record


def statuses(before: list[Outcome], after: list[Outcome]) -> list[str]:
    return [f.status for f in compare_outcomes(before, after)]


def test_all_five_records_are_read() -> None:
    assert len(STUDIES) == 5
    counts = {nct: len(registered_outcomes(study(nct))) for nct in STUDIES}
    assert counts == {"NCT00763412": 9, "NCT00973089": 1, "NCT02210780": 11,
                      "NCT05594173": 2, "NCT06171568": 8}


@pytest.mark.parametrize("nct", ["NCT00763412", "NCT02210780", "NCT05594173"])
def test_real_registered_and_reported_outcomes_match(nct: str) -> None:
    record = study(nct)
    findings = compare_outcomes(registered_outcomes(record), reported_outcomes(record))
    assert findings and all(f.status == "unchanged" for f in findings)
    primaries = [f for f in findings if f.before and f.before.role == "primary"]
    assert primaries and all(f.after and f.after.role == "primary" for f in primaries)


def test_a_record_compared_with_itself_is_unchanged() -> None:
    for nct in STUDIES:
        outcomes = registered_outcomes(study(nct))
        assert set(statuses(outcomes, outcomes)) <= {"unchanged"}


def test_primary_removed() -> None:
    record = study("NCT00763412")
    edited = copy.deepcopy(record)
    del edited["protocolSection"]["outcomesModule"]["primaryOutcomes"][2]  # CRP
    findings = compare_outcomes(registered_outcomes(record), registered_outcomes(edited))
    removed = [f for f in findings if f.status == "removed"]
    assert [f.before.measure for f in removed if f.before] == ["CRP"]
    assert sum(f.discrepancy for f in findings) == 1


def test_secondary_promoted() -> None:
    record = study("NCT00763412")
    edited = copy.deepcopy(record)
    module = edited["protocolSection"]["outcomesModule"]
    module["primaryOutcomes"].append(module["secondaryOutcomes"].pop(0))  # Glucose Tolerance
    findings = compare_outcomes(registered_outcomes(record), registered_outcomes(edited))
    moved = [f for f in findings if f.status == "moved"]
    assert len(moved) == 1 and moved[0].changes == ("role",)
    assert moved[0].before and moved[0].before.role == "secondary"
    assert moved[0].after and moved[0].after.role == "primary"
    assert moved[0].before.measure == "Glucose Tolerance"


def test_time_frame_changed_from_week_16_to_week_24() -> None:
    record = study("NCT02210780")
    edited = copy.deepcopy(record)
    primary = edited["protocolSection"]["outcomesModule"]["primaryOutcomes"][0]
    assert primary["timeFrame"] == "Week 16"
    primary["timeFrame"] = "Week 24"
    findings = compare_outcomes(registered_outcomes(record), registered_outcomes(edited))
    changed = [f for f in findings if f.discrepancy]
    assert len(changed) == 1
    assert changed[0].status == "changed" and changed[0].changes == ("time_frame",)
    assert changed[0].after and changed[0].after.time_frame == "Week 24"


def test_reworded_title_matches_by_similarity_and_reports_the_score() -> None:
    record = study("NCT02210780")
    before = registered_outcomes(record)
    after = [
        Outcome(o.role, o.measure.replace("Percentage of Participants", "Proportion of Patients"),
                o.time_frame) if i == 0 else o
        for i, o in enumerate(before)
    ]
    findings = compare_outcomes(before, after)
    reworded = findings[0]
    assert reworded.status == "changed" and reworded.changes == ("measure",)
    assert reworded.similarity is not None and MATCH_THRESHOLD <= reworded.similarity < 1


def test_unrelated_outcome_is_removed_and_added_not_matched() -> None:
    before = [Outcome("primary", "Body mass index", "2 years")]
    after = [Outcome("primary", "Serum ferritin concentration", "2 years")]
    assert statuses(before, after) == ["removed", "added"]


def test_layout_and_case_are_not_changes() -> None:
    before = [Outcome("primary", "Change in  HbA1c.", "Week 16")]
    after = [Outcome("primary", "change in hba1c", " week 16 ")]
    assert statuses(before, after) == ["unchanged"]
    assert normalize("A\u00a0B  c.") == "a b c"


def test_duplicate_titles_pair_by_time_frame() -> None:
    before = [Outcome("secondary", "Weight", "Week 8"), Outcome("secondary", "Weight", "Week 16")]
    after = [Outcome("secondary", "Weight", "Week 16"), Outcome("secondary", "Weight", "Week 8")]
    assert statuses(before, after) == ["unchanged", "unchanged"]
