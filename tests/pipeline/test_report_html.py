"""The HTML validation report leads with the failures: a summary, each failed check with
its failing rows (key, 1-based row number, value), then the passing checks folded; and an
unreadable delivery gets a page too, which names the problem but never the file's content."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from test_validation import contract_of, dm_table

from pipeline.contract import parse_contract
from pipeline.errors import ValidationFailed
from pipeline.home import Home
from pipeline.ingest import ingest
from pipeline.validation import failure_digest, validate

ORIGIN = "trials.example.org/log"
CONTRACT = {"name": "lb", "primaryKey": ["USUBJID", "LBSEQ"],
            "fields": [{"name": "USUBJID", "type": "string"},
                       {"name": "LBSEQ", "type": "integer"},
                       {"name": "LBTESTCD", "type": "string",
                        "constraints": {"enum": ["ALB", "ALT"]}}]}


def test_failures_come_first_with_their_rows_and_the_passing_checks_are_folded() -> None:
    # 0-based table row 4 is the 5th data row of the delivery
    report = validate(dm_table(SEX={4: "X"}), contract_of(), source_name="dm.csv")
    (failure,) = report.failures
    (row,) = failure["failing_rows"]
    assert (row["row"], row["value"]) == (4, "X")  # JSON: 0-based, as before

    page = report.to_html()
    summary = page.index("Summary: 1 of")
    failed_section = page.index('id="check-')
    details = page.index("<details>")
    assert summary < failed_section < details
    assert "passing check(s)</summary>" in page[details:]
    assert page.count("values are in the allowed set (enum)") == 2  # summary + failed check
    folded = page[details:]
    assert "values are in the allowed set (enum)" not in folded
    assert "column exists" in folded and "column exists" not in page[:details]
    # the failing row: its key column, its 1-based row number and the value
    match = re.search(r"<th>USUBJID</th><th>row</th><th>value</th></tr></thead><tbody>\s*"
                      r"<tr><td>([^<]*)</td><td class=\"num\">(\d+)</td><td>([^<]*)</td>", page)
    assert match is not None, page
    assert match.groups() == ("01-701-1004", "5", "X")


def test_a_passing_report_has_no_failure_section() -> None:
    page = validate(dm_table(), contract_of(), source_name="dm.csv").to_html()
    assert "Summary: all" in page and "Failed checks" not in page and "FAIL" not in page
    assert "<details>" in page


@pytest.mark.parametrize(("name", "content"), [
    ("empty.csv", b""),
    ("truncated.parquet", b"PAR1\x15\x04\x15\x10SECRETVALUE-1234"),
    ("header.csv", b"SUBJECT;SEQ\nSECRETVALUE-1234;1\n"),
])
def test_an_unreadable_delivery_gets_an_html_report_without_its_content(
        tmp_path: Path, name: str, content: bytes) -> None:
    home = Home.init(tmp_path / "home", ORIGIN)
    source = tmp_path / name
    source.write_bytes(content)
    with pytest.raises(ValidationFailed) as caught:
        ingest(home, source, "T1", "lb", parse_contract(CONTRACT, "lb.json"))
    report = Path(caught.value.report_path)
    assert report.name == "report.html" and str(report) in str(caught.value)
    page = report.read_text()
    problem = json.loads((report.parent / "report.json").read_text())["error"]
    assert "REJECTED" in page and "could not be read" in page and name in page
    assert problem.split(":")[-1].strip()[:20] in html.unescape(page)  # the page escapes it
    assert "SECRETVALUE" not in page


def test_the_task_log_digest_names_each_failure_with_its_rows() -> None:
    report = validate(dm_table(SEX={4: "X"}), contract_of(), source_name="dm.csv")
    lines = failure_digest(report.to_json())
    assert lines[0].startswith("FAIL: 1 of ")
    assert lines[1] == "  FAILED values are in the allowed set (enum) [SEX]: 1 row(s)"
    assert lines[2] == "    row 5 (USUBJID=01-701-1004): X"
    rejection = json.dumps({"success": False, "error": "dm.xpt: the file is empty (0 bytes)"})
    assert failure_digest(rejection) == ["could not be read: dm.xpt: the file is empty (0 bytes)"]
