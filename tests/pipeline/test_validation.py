"""pipeline.validation against real Great Expectations: every contract constraint, the reader's
findings, the extra suite, and reports that are deterministic, escaped and leave no files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pytest

from pipeline.contract import Contract, parse_contract
from pipeline.errors import ContractError
from pipeline.validation import (
    FAILING_ROWS_CAP,
    REPORT_TYPE,
    ValidationReport,
    compile_suite,
    validate,
)

DATA = Path(__file__).parent / "data"
REPO_ROOT = Path(__file__).resolve().parents[2]
UTC = dt.UTC

DM: dict[str, Any] = {
    "name": "dm",
    "primaryKey": "USUBJID",
    "fields": [
        {"name": "USUBJID", "type": "string",
         "constraints": {"pattern": "01-701-[0-9]{4}", "maxLength": 12}},
        {"name": "AGE", "type": "integer",
         "constraints": {"required": True, "minimum": 18, "maximum": 100}},
        {"name": "SEX", "type": "string", "constraints": {"required": True, "enum": ["F", "M"]}},
        {"name": "ARM", "type": "string", "constraints": {"maxLength": 20, "minLength": 3}},
        {"name": "WEIGHT", "type": "number", "constraints": {"minimum": 0}},
        {"name": "RFSTDTC", "type": "date", "constraints": {"minimum": "2012-01-01"}},
        {"name": "RFXSTDTC", "type": "datetime",
         "constraints": {"maximum": "2016-01-01T00:00:00Z"}},
        {"name": "SAFFL", "type": "boolean"},
    ],
}
TYPES = {"USUBJID": pa.string(), "AGE": pa.int64(), "SEX": pa.string(), "ARM": pa.string(),
         "WEIGHT": pa.float64(), "RFSTDTC": pa.date32(), "RFXSTDTC": pa.timestamp("us"),
         "SAFFL": pa.bool_()}


class TypeIssue(NamedTuple):  # the shape pipeline.readers reports
    column: str
    row: int
    value: str


def contract_of(descriptor: dict[str, Any] = DM, **changes: Any) -> Contract:
    return parse_contract({**descriptor, **changes}, base=DATA)


def dm_columns(rows: int = 6) -> dict[str, list[Any]]:
    return {
        "USUBJID": [f"01-701-{1000 + i}" for i in range(rows)],
        "AGE": [20 + i for i in range(rows)],
        "SEX": ["F" if i % 2 else "M" for i in range(rows)],
        "ARM": [None if i % 3 == 0 else "Placebo" for i in range(rows)],
        "WEIGHT": [None if i == 2 else 60.5 + i for i in range(rows)],
        "RFSTDTC": [dt.date(2014, 1, 1) + dt.timedelta(days=i) for i in range(rows)],
        "RFXSTDTC": [dt.datetime(2014, 1, 2, 8, 30) + dt.timedelta(hours=i) for i in range(rows)],
        "SAFFL": [i % 4 != 0 for i in range(rows)],
    }


def dm_table(rows: int = 6, **overrides: dict[int, Any]) -> pa.Table:
    """The clean DM table, with ``COLUMN={row: value}`` overrides."""
    columns = dm_columns(rows)
    for name, changes in overrides.items():
        for row, value in changes.items():
            columns[name][row] = value
    return pa.table({n: pa.array(v, TYPES[n]) for n, v in columns.items()})


def failed(report: ValidationReport) -> list[dict[str, Any]]:
    return [r for r in report.results if not r["success"]]


def only_failure(report: ValidationReport) -> dict[str, Any]:
    failures = failed(report)
    assert len(failures) == 1, [(r["check"], r["columns"], r["errors"]) for r in failures]
    return failures[0]


def key(i: int) -> dict[str, str]:
    return {"USUBJID": f"01-701-{1000 + i}"}


# --------------------------------------------------------------------------- the suite


def test_compile_suite_has_one_expectation_per_constraint() -> None:
    suite = compile_suite(contract_of())
    got = [(e.expectation_type, e.configuration.kwargs.get("column")) for e in suite.expectations]
    assert got == [
        ("expect_column_to_exist", "USUBJID"),
        ("expect_column_values_to_be_of_type", "USUBJID"),
        ("expect_column_values_to_not_be_null", "USUBJID"),  # a key column is required
        ("expect_column_values_to_match_regex", "USUBJID"),
        ("expect_column_value_lengths_to_be_between", "USUBJID"),
        ("expect_column_to_exist", "AGE"),
        ("expect_column_values_to_be_of_type", "AGE"),
        ("expect_column_values_to_not_be_null", "AGE"),
        ("expect_column_values_to_be_between", "AGE"),
        ("expect_column_to_exist", "SEX"),
        ("expect_column_values_to_be_of_type", "SEX"),
        ("expect_column_values_to_not_be_null", "SEX"),
        ("expect_column_values_to_be_in_set", "SEX"),
        ("expect_column_to_exist", "ARM"),
        ("expect_column_values_to_be_of_type", "ARM"),
        ("expect_column_value_lengths_to_be_between", "ARM"),
        ("expect_column_to_exist", "WEIGHT"),
        ("expect_column_values_to_be_of_type", "WEIGHT"),
        ("expect_column_values_to_be_between", "WEIGHT"),
        ("expect_column_to_exist", "RFSTDTC"),
        ("expect_column_values_to_be_of_type", "RFSTDTC"),
        ("expect_column_values_to_be_between", "RFSTDTC"),
        ("expect_column_to_exist", "RFXSTDTC"),
        ("expect_column_values_to_be_of_type", "RFXSTDTC"),
        ("expect_column_values_to_be_between", "RFXSTDTC"),
        ("expect_column_to_exist", "SAFFL"),
        ("expect_column_values_to_be_of_type", "SAFFL"),
        ("expect_column_values_to_be_unique", "USUBJID"),
    ]


def test_compile_suite_appends_the_extra_suite() -> None:
    suite = compile_suite(contract_of(trialproof={"expectations": "dm_extra_suite.json"}))
    assert [e.expectation_type for e in suite.expectations[-2:]] == [
        "expect_column_values_to_be_between", "expect_table_row_count_to_be_between"]


def test_compound_key_is_one_uniqueness_expectation() -> None:
    suite = compile_suite(contract_of(primaryKey=["SEX", "AGE"]))
    last = suite.expectations[-1]
    assert last.expectation_type == "expect_compound_columns_to_be_unique"
    assert last.configuration.kwargs["column_list"] == ["SEX", "AGE"]


@pytest.mark.parametrize(("field", "message"), [
    ({"name": "N", "type": "integer", "constraints": {"pattern": "[0-9]+"}}, "pattern"),
    ({"name": "N", "type": "integer", "constraints": {"maxLength": 3}}, "maxLength"),
    ({"name": "S", "type": "string", "constraints": {"minimum": 3}}, "minimum"),
    ({"name": "D", "type": "date", "constraints": {"minimum": "01/02/2014"}}, "ISO 8601"),
])
def test_constraints_gx_cannot_check_on_that_type_are_contract_errors(
    field: dict[str, Any], message: str,
) -> None:
    with pytest.raises(ContractError, match=message):
        compile_suite(parse_contract({"fields": [field]}))


# --------------------------------------------------------------------------- the extra suite


def write_suite(tmp_path: Path, expectations: Any, text: str | None = None) -> Contract:
    path = tmp_path / "suite.json"
    path.write_text(text if text is not None else json.dumps({"name": "extra",
                                                              "expectations": expectations}))
    return parse_contract({**DM, "trialproof": {"expectations": "suite.json"}}, base=tmp_path)


def test_unknown_expectation_type_is_named(tmp_path: Path) -> None:
    contract = write_suite(tmp_path, [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "AGE"}},
        {"type": "expect_column_values_to_be_awesome", "kwargs": {"column": "AGE"}},
    ])
    with pytest.raises(ContractError, match=r"unknown expectation type.*"
                                            r"expect_column_values_to_be_awesome"):
        compile_suite(contract)
    with pytest.raises(ContractError, match="expect_column_values_to_be_awesome"):
        validate(dm_table(), contract, source_name="dm.csv")


@pytest.mark.parametrize(("expectations", "text", "message"), [
    ([{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "SEX"}}], None,
     r"expectations\[0\] \(expect_column_values_to_be_in_set\).*value_set"),
    ([{"type": "expect_column_values_to_be_in_set",
       "kwargs": {"column": "SEX", "value_set": ["F"], "bogus": 1}}], None, "bogus"),
    ([{"kwargs": {"column": "SEX"}}], None, r'expectations\[0\] must be an object with a "type"'),
    (None, "{not json", "not valid JSON"),
    (None, "[]", '"expectations" list'),
])
def test_invalid_extra_suite_is_a_contract_error(
    tmp_path: Path, expectations: Any, text: str | None, message: str,
) -> None:
    with pytest.raises(ContractError, match=message):
        compile_suite(write_suite(tmp_path, expectations, text))


def test_extra_suite_is_applied() -> None:
    contract = contract_of(trialproof={"expectations": "dm_extra_suite.json"})
    assert validate(dm_table(), contract, source_name="dm.csv").success
    report = validate(dm_table(WEIGHT={4: 350.0}), contract, source_name="dm.csv")
    failure = only_failure(report)
    assert failure["origin"] == "suite"
    assert failure["check"] == "weight is plausible for an adult (kg)"
    assert failure["kwargs"] == {"column": "WEIGHT", "max_value": 300.0}
    assert failure["failing_rows"] == [{"key": key(4), "row": 4, "value": 350.0}]
    assert report.results[-1]["expectation"] == "expect_table_row_count_to_be_between"
    assert report.results[-1]["success"]


def test_legacy_expectation_type_key_is_accepted(tmp_path: Path) -> None:
    contract = write_suite(tmp_path, [{"expectation_type": "expect_column_values_to_be_in_set",
                                       "kwargs": {"column": "SEX", "value_set": ["F"]}}])
    failure = only_failure(validate(dm_table(), contract, source_name="dm.csv"))
    assert failure["unexpected_count"] == 3


# --------------------------------------------------------------------------- validate


def test_clean_table_passes() -> None:
    contract = contract_of()
    report = validate(dm_table(), contract, source_name="dm.csv")
    assert report.success, report.summary()
    assert len(report.results) == len(compile_suite(contract).expectations) == 28
    assert (report.source_name, report.rows) == ("dm.csv", 6)
    assert (report.contract_name, report.contract_sha256) == ("dm", contract.sha256)
    assert all(r["failing_rows"] == [] and r["errors"] == [] for r in report.results)
    types = {r["columns"][0]: r["observed_value"] for r in report.results
             if r["expectation"] == "expect_column_values_to_be_of_type"}
    assert types == {"USUBJID": "str", "AGE": "int64", "SEX": "str", "ARM": "str",
                     "WEIGHT": "float64", "RFSTDTC": "date", "RFXSTDTC": "datetime",
                     "SAFFL": "bool"}  # numpy int64/float64 columns; Arrow-backed otherwise
    assert report.summary().startswith("PASS")


def test_empty_table_passes() -> None:
    assert validate(dm_table(0), contract_of(), source_name="dm.csv").success


@pytest.mark.parametrize(("column", "bad", "expectation"), [
    ("SEX", "X", "expect_column_values_to_be_in_set"),
    ("SEX", None, "expect_column_values_to_not_be_null"),
    ("AGE", None, "expect_column_values_to_not_be_null"),
    ("AGE", 101, "expect_column_values_to_be_between"),
    ("AGE", 17, "expect_column_values_to_be_between"),
    ("WEIGHT", -1.5, "expect_column_values_to_be_between"),
    ("RFSTDTC", dt.date(2011, 12, 31), "expect_column_values_to_be_between"),
    ("RFXSTDTC", dt.datetime(2016, 1, 1, 0, 0, 1), "expect_column_values_to_be_between"),
    ("ARM", "Xanomeline High Dose 81mg", "expect_column_value_lengths_to_be_between"),
    ("ARM", "X", "expect_column_value_lengths_to_be_between"),
    ("USUBJID", "01-702-1003", "expect_column_values_to_match_regex"),
    ("USUBJID", "x01-701-1003", "expect_column_values_to_match_regex"),  # anchored at start
    ("USUBJID", "01-701-10033", "expect_column_values_to_match_regex"),  # ... and at end
    ("USUBJID", "01-701-1003\n", "expect_column_values_to_match_regex"),  # even before \n
])
def test_each_constraint_names_the_failing_row(column: str, bad: Any, expectation: str) -> None:
    overrides: dict[str, dict[int, Any]] = {column: {3: bad}}
    report = validate(dm_table(6, **overrides), contract_of(), source_name="dm.csv")
    assert not report.success
    failure = only_failure(report)
    assert failure["expectation"] == expectation
    assert failure["columns"] == [column]
    assert failure["unexpected_count"] == 1
    expected_key = {"USUBJID": bad} if column == "USUBJID" else key(3)
    value = bad.isoformat() if isinstance(bad, dt.date) else bad
    assert failure["failing_rows"] == [{"key": expected_key, "row": 3, "value": value}]


def test_duplicate_primary_key_names_both_rows() -> None:
    report = validate(dm_table(USUBJID={4: "01-701-1001"}), contract_of(), source_name="dm.csv")
    failure = only_failure(report)
    assert (failure["expectation"], failure["check"]) == (
        "expect_column_values_to_be_unique", "primary key is unique")
    assert failure["unexpected_count"] == 2
    assert failure["failing_rows"] == [
        {"key": key(1), "row": 1, "value": "01-701-1001"},
        {"key": key(1), "row": 4, "value": "01-701-1001"},
    ]


def test_duplicate_compound_key_names_rows_by_every_key_column() -> None:
    contract = contract_of(primaryKey=["SEX", "AGE"])
    report = validate(dm_table(AGE={3: 21}), contract, source_name="dm.csv")
    failure = only_failure(report)
    assert failure["expectation"] == "expect_compound_columns_to_be_unique"
    assert failure["failing_rows"] == [
        {"key": {"SEX": "F", "AGE": 21}, "row": 1, "value": {"SEX": "F", "AGE": 21}},
        {"key": {"SEX": "F", "AGE": 21}, "row": 3, "value": {"SEX": "F", "AGE": 21}},
    ]


def test_without_primary_key_rows_are_named_by_index() -> None:
    contract = contract_of(primaryKey=[])
    failure = only_failure(validate(dm_table(SEX={5: "U"}), contract, source_name="dm.csv"))
    assert failure["failing_rows"] == [{"key": {"row": 5}, "row": 5, "value": "U"}]


def test_failing_rows_are_capped_but_counted() -> None:
    rows = 50
    table = dm_table(rows, SEX=dict.fromkeys(range(rows), "?"))
    failure = only_failure(validate(table, contract_of(), source_name="dm.csv"))
    assert failure["unexpected_count"] == rows
    assert failure["unexpected_percent"] == 100.0
    assert [r["row"] for r in failure["failing_rows"]] == list(range(FAILING_ROWS_CAP))


def test_nullable_integer_column_is_range_checked() -> None:
    report = validate(dm_table(AGE={1: None, 2: 150}), contract_of(), source_name="dm.csv")
    by_expectation = {r["expectation"]: r for r in failed(report)}
    assert set(by_expectation) == {"expect_column_values_to_not_be_null",
                                   "expect_column_values_to_be_between"}
    assert by_expectation["expect_column_values_to_be_between"]["failing_rows"] == [
        {"key": key(2), "row": 2, "value": 150}]


def test_type_issues_are_failed_checks_per_column() -> None:
    issues = [TypeIssue("AGE", row, f"age {row}") for row in range(30, 4, -1)]
    issues += [TypeIssue("RFSTDTC", 2, "2014-02-30")]
    table = dm_table(40, AGE=dict.fromkeys(range(5, 31)), RFSTDTC={2: None})
    contract = contract_of(fields=[f if f["name"] != "AGE" else {"name": "AGE", "type": "integer"}
                                   for f in DM["fields"]])
    report = validate(table, contract, type_issues=issues, source_name="dm.csv")
    failures = failed(report)
    assert [(r["check"], r["columns"], r["origin"], r["unexpected_count"]) for r in failures] == [
        ("values have the contract type (integer)", ["AGE"], "reader", 26),
        ("values have the contract type (date)", ["RFSTDTC"], "reader", 1),
    ]
    age = failures[0]
    assert age["unexpected_percent"] == 65.0
    assert len(age["failing_rows"]) == FAILING_ROWS_CAP
    assert age["failing_rows"][0] == {"key": key(5), "row": 5, "value": "age 5"}
    assert failures[1]["failing_rows"] == [{"key": key(2), "row": 2, "value": "2014-02-30"}]
    # reported right after the column's own type check
    names = [(r["expectation"], r["columns"]) for r in report.results]
    at = names.index(("expect_column_values_to_be_of_type", ["AGE"]))
    assert names[at + 1] == ("expect_column_values_to_have_contract_type", ["AGE"])


def test_missing_columns_fail_column_exists_and_skip_their_other_checks() -> None:
    table = dm_table(ARM=dict.fromkeys(range(6)), SEX=dict.fromkeys(range(6)))  # reader: nulls
    report = validate(table, contract_of(), missing_columns=["SEX", "ARM"], source_name="dm.csv")
    failures = failed(report)
    assert [(r["expectation"], r["columns"], r["origin"]) for r in failures] == [
        ("expect_column_to_exist", ["SEX"], "reader"),
        ("expect_column_to_exist", ["ARM"], "reader"),
    ]
    assert not [r for r in report.results if r["columns"] in (["SEX"], ["ARM"]) and r["success"]]
    # a column absent from the table itself counts as missing too
    report = validate(dm_table().drop_columns(["SAFFL"]), contract_of(), source_name="dm.csv")
    assert [(r["expectation"], r["columns"]) for r in failed(report)] == [
        ("expect_column_to_exist", ["SAFFL"])]


def test_missing_key_column_drops_the_uniqueness_check() -> None:
    report = validate(dm_table().drop_columns(["USUBJID"]), contract_of(),
                      type_issues=[TypeIssue("AGE", 1, "x")], source_name="dm.csv")
    assert not [r for r in report.results if r["check"] == "primary key is unique"]
    issue = next(r for r in report.results if r["origin"] == "reader" and r["columns"] == ["AGE"])
    assert issue["failing_rows"] == [{"key": {"row": 1}, "row": 1, "value": "x"}]


# --------------------------------------------------------------------------- the report


def test_json_report_is_deterministic_and_round_trips() -> None:
    contract = contract_of(trialproof={"expectations": "dm_extra_suite.json"})
    table = dm_table(SEX={1: "X"}, USUBJID={2: "01-701-1001"})
    issues = [TypeIssue("AGE", 0, "twenty")]
    first = validate(table, contract, type_issues=issues, source_name="dm.csv").to_json()
    second = validate(table, contract, type_issues=issues, source_name="dm.csv").to_json()
    assert first == second
    data = json.loads(first)
    assert data["type"] == REPORT_TYPE
    assert data["success"] is False
    assert data["contract"] == {"name": "dm", "sha256": contract.sha256}
    assert data["statistics"]["failed"] == 3
    text = first.lower()
    assert "run_id" not in text and "batch_id" not in text and "ge_load_time" not in text
    assert ValidationReport.from_json(first).to_json() == first


def test_html_report_escapes_values_and_is_self_contained() -> None:
    evil = "<script>alert('x')</script>"
    report = validate(dm_table(SEX={2: evil}, ARM={1: "A & B"}), contract_of(),
                      source_name="<b>dm</b>.csv")
    page = report.to_html()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;dm&lt;/b&gt;.csv" in page
    assert "FAIL" in page and "01-701-1002" in page  # the failing row, by primary key
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert validate(dm_table(), contract_of(), source_name="dm.csv").to_html().count("FAIL") == 0


# --------------------------------------------------------------------------- process hygiene


def test_importing_validation_does_not_import_great_expectations() -> None:
    code = ("import sys, pipeline.validation; "
            "assert 'great_expectations' not in sys.modules, 'GX imported'; "
            "assert 'pandas' not in sys.modules, 'pandas imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def test_gx_writes_no_files_prints_nothing_and_reports_the_same_bytes(tmp_path: Path) -> None:
    """In a fresh process with an empty HOME, TMPDIR and working directory: no gx/ or
    great_expectations files appear, stderr stays empty, and the report's sha256 matches
    this process's (under another hash seed too)."""
    work, home = tmp_path / "cwd", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    script = textwrap.dedent(f"""
        import hashlib, json, sys
        sys.path[:0] = [{str(REPO_ROOT)!r}, {str(Path(__file__).parent)!r}]
        from test_validation import DM, DATA, dm_table, TypeIssue
        from pipeline.contract import parse_contract
        from pipeline.validation import validate
        contract = parse_contract({{**DM, "trialproof": {{"expectations": "dm_extra_suite.json"}}}},
                                  base=DATA)
        report = validate(dm_table(SEX={{1: "X"}}), contract, source_name="dm.csv",
                          type_issues=[TypeIssue("AGE", 0, "twenty")])
        print(hashlib.sha256(report.to_json().encode()).hexdigest())
    """)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(temp), "PYTHONHASHSEED": "12345"}
    env.pop("GX_HOME", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=work, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert list(work.rglob("*")) == []
    assert list(home.rglob("*")) == []
    assert list(temp.rglob("*")) == []  # not even the data-docs directory GX defaults to
    contract = contract_of(trialproof={"expectations": "dm_extra_suite.json"})
    here = validate(dm_table(SEX={1: "X"}), contract, source_name="dm.csv",
                    type_issues=[TypeIssue("AGE", 0, "twenty")])
    assert done.stdout.strip() == hashlib.sha256(here.to_json().encode()).hexdigest()
