"""``trialproof contracts from-define`` prints, per dataset, the deviations it recorded and
the columns that nothing but their type constrains."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_define_xml import SYNTHETIC

from pipeline.define_xml import deviations_by_kind, unconstrained_columns

REPO = Path(__file__).resolve().parents[2]


def test_from_define_prints_deviations_by_kind_and_unconstrained_columns(tmp_path: Path) -> None:
    (tmp_path / "define.xml").write_text(SYNTHETIC)
    (tmp_path / "xx.csv").write_text(
        "USUBJID,XXSEQ,XXTESTCD,XXORRES,XXSTRESN,XXDTC,XXFL\n"
        "S1,1,HGT,170,1,2014-01-02T10:00,Y\n"
        "S1,2,HGT,1700,2,2014-01,N\n"
        "S2,1,BMI,,1.5,2014-1-2,\n"
    )
    done = subprocess.run([sys.executable, "-m", "pipeline", "contracts", "from-define",
                           str(tmp_path / "define.xml"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(tmp_path / "out" / "xx.json")
    headings = [ln.strip() for ln in lines if ln.startswith("  ") and not ln.startswith("    ")]
    assert headings[:4] == ["types widened (1):", "keys changed (1):",
                            "codelists dropped (2):", "other (3):"]
    text = done.stdout
    assert "    - XXSTRESN: define.xml says integer, but xx.csv has 1 value(s)" in text
    assert "    - primaryKey: define.xml gives USUBJID, XXTESTCD" in text
    assert "    - XXTESTCD: define.xml says the codelist 'HGT', 'WGT'" in text
    # what reconciliation left without a codelist, a pattern or a range (XXFL keeps its enum)
    assert headings[4].startswith("no codelist and no other constraint")
    assert headings[4].endswith(": USUBJID, XXSEQ, XXTESTCD, XXORRES, XXSTRESN, XXDTC")


def test_unconstrained_columns_ignore_required_and_length() -> None:
    descriptor = {"fields": [
        {"name": "A", "type": "string", "constraints": {"required": True, "maxLength": 8}},
        {"name": "B", "type": "string", "constraints": {"enum": ["X"]}},
        {"name": "C", "type": "integer", "constraints": {"minimum": 0}},
        {"name": "D", "type": "string", "constraints": {"pattern": "[0-9]+"}},
        {"name": "E", "type": "number"},
    ], "trialproof": {}}
    assert unconstrained_columns(descriptor) == ["A", "E"]
    assert deviations_by_kind(descriptor) == {}
