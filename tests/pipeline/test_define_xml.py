"""Contracts from define.xml: both Define-XML versions, the pilot contracts as committed
(regenerated only by scripts/generate_contracts.py), and their reconciliation with the data."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import frictionless
import pytest
from trialproof_paths import PILOT_DIR

from pipeline.contract import load_contract, parse_contract
from pipeline.define_xml import (
    contracts_from_define,
    data_violations,
    write_contracts,
)
from pipeline.errors import ContractError
from pipeline.iso8601 import ISO8601_DATETIME_PATTERN, ISO8601_TIME_PATTERN, pattern_label
from pipeline.readers import read_delivery

REPO = Path(__file__).resolve().parents[2]
PILOT = PILOT_DIR
CONTRACTS = REPO / "schemas" / "contracts" / "cdiscpilot01"
SDTM = PILOT / "sdtm_cdiscpilot01" / "define.xml"
ADAM = PILOT / "adam_cdiscpilot01" / "define.xml"
SDTM2 = PILOT / "sdtm_cdiscpilot01_update2" / "define.xml"
COMMITTED = sorted(CONTRACTS.rglob("*.json"))

needs_pilot = pytest.mark.pilot_data


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_contracts",
                                                  REPO / "scripts" / "generate_contracts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sdtm() -> dict[str, dict[str, Any]]:
    return contracts_from_define(SDTM, check_data=False)


@pytest.fixture(scope="module")
def adam() -> dict[str, dict[str, Any]]:
    return contracts_from_define(ADAM, check_data=False)


@pytest.fixture(scope="module")
def sdtm2() -> dict[str, dict[str, Any]]:
    return contracts_from_define(SDTM2, check_data=False)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("contracts")
    _script().generate(PILOT.parents[1], out)
    yield out


def fields(descriptor: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in descriptor["fields"]}


# --------------------------------------------------------------------------- both define versions


@needs_pilot
def test_both_define_versions_parse(sdtm: dict[str, Any], adam: dict[str, Any],
                                    sdtm2: dict[str, Any]) -> None:
    assert len(sdtm) == 22 and len(adam) == 10 and len(sdtm2) == 31
    assert {"dm", "ae", "ex", "ts", "suppdm"} <= set(sdtm)
    assert {"adsl", "adae", "adtte", "adlbc"} <= set(adam)
    assert {"lbur", "lbch", "vs"} <= set(sdtm2)
    for descriptor in sdtm.values():
        assert descriptor["trialproof"]["defineVersion"] == "1.0.0"
        assert descriptor["trialproof"]["standard"] == "CDISC SDTM 3.1.2"
    for descriptor in sdtm2.values():
        assert descriptor["trialproof"]["defineVersion"] == "2.0.0"
        assert descriptor["trialproof"]["standard"] == "CDISC SDTM 3.2"
    assert adam["adsl"]["trialproof"]["standard"] == "CDISC ADaM 2.1"
    for descriptor in [*sdtm.values(), *adam.values(), *sdtm2.values()]:
        parse_contract(descriptor)
        assert descriptor["trialproof"]["unknownColumns"] == "error"


@needs_pilot
def test_dm_from_define_1_0(sdtm: dict[str, Any]) -> None:
    import pyreadstat

    dm = sdtm["dm"]
    _, meta = pyreadstat.read_xport(str(PILOT / "sdtm_cdiscpilot01/dm.xpt"), metadataonly=True)
    assert [f["name"] for f in dm["fields"]] == list(meta.column_names)  # OrderNumber order
    f = fields(dm)
    assert dm["title"] == "Demographics"
    assert dm["primaryKey"] == ["STUDYID", "USUBJID"]  # def:DomainKeys
    assert f["USUBJID"] == {"name": "USUBJID", "title": "Unique Subject Identifier",
                            "type": "string", "constraints": {"required": True, "maxLength": 11}}
    assert {"F", "M"} <= set(f["SEX"]["constraints"]["enum"])
    assert f["AGE"]["type"] == "integer" and f["DMDY"]["type"] == "integer"
    assert f["RFSTDTC"]["type"] == "string"
    assert f["RFSTDTC"]["constraints"]["pattern"] == ISO8601_DATETIME_PATTERN
    assert "required" not in f["RFSTDTC"].get("constraints", {})


@needs_pilot
def test_dm_from_define_2_0(sdtm2: dict[str, Any]) -> None:
    dm = sdtm2["dm"]
    f = fields(dm)
    assert dm["primaryKey"] == ["STUDYID", "USUBJID"]  # KeySequence
    assert dm["title"] == "Demographics"
    assert f["USUBJID"]["constraints"]["required"] is True
    assert f["USUBJID"]["title"] == "Unique Subject Identifier"  # from Description
    assert {"F", "M"} <= set(f["SEX"]["constraints"]["enum"])
    assert f["RFSTDTC"]["constraints"]["pattern"] == ISO8601_DATETIME_PATTERN
    assert sdtm2["vs"]["primaryKey"] == ["STUDYID", "USUBJID", "VSTESTCD", "VISITNUM",
                                         "VSTPTNUM"]


@needs_pilot
def test_adam_sas_dates_are_dates(adam: dict[str, Any]) -> None:
    adsl = fields(adam["adsl"])
    for name in ("TRTSDT", "TRTEDT", "DISONSDT", "VISIT1DT", "RFENDT"):
        assert adsl[name]["type"] == "date", name  # integer with DisplayFormat DATE9.
    assert adsl["RFSTDTC"]["type"] == "string"  # character ISO 8601 in ADSL
    assert adsl["TRT01PN"]["type"] == "integer"
    assert adsl["TRT01PN"]["constraints"]["enum"] == [0, 54, 81]  # integer codelist
    assert adsl["BMIBL"]["type"] == "number"
    assert fields(adam["adae"])["ASTDT"]["type"] == "date"
    assert fields(adam["adae"])["ASTDY"]["type"] == "integer"


def test_iso8601_pattern() -> None:
    pattern = re.compile(ISO8601_DATETIME_PATTERN)
    for good in ("2014", "2014-01", "2014-01-02", "2014-01-02T11", "2014-01-02T11:45",
                 "2014-01-02T11:45:30", "2014-01-02T11:45:30.5", "2014-01-02T11:45Z",
                 "2014-01-02T11:45:30+01:00"):
        assert pattern.search(good), good
    for bad in ("2014-1-2", "02/01/2014", "2014-01-02 11:45", "14-01-02", "2014-01-02T",
                "2014-01-02Z"):
        assert not pattern.search(bad), bad


def test_iso8601_components_must_exist() -> None:
    """A date that has the right shape but is not on the calendar, or a time past 23:59,
    breaks the pattern: a data manager's typo must not pass validation."""
    pattern = re.compile(ISO8601_DATETIME_PATTERN)
    for good in ("2014-12-31", "2013-04-30", "2012-02-29", "2014-01-02T23:59:60Z",
                 "2014-01-02T00:00-05:30"):
        assert pattern.search(good), good
    for bad in ("2014-13", "2014-00", "2014-13-45", "2012-02-30", "2014-04-31", "2014-01-00",
                "2014-01-32", "2014-01-02T24", "2014-01-02T99:99", "2014-01-02T11:60",
                "2014-01-02T11:45+24:00"):
        assert not pattern.search(bad), bad
    clock = re.compile(ISO8601_TIME_PATTERN)
    assert clock.search("23:59:59.5") and not clock.search("24:00")
    # Reports name the pattern rather than print it.
    assert pattern_label(ISO8601_DATETIME_PATTERN) == "ISO 8601 date or datetime, on the calendar"
    assert pattern_label("^[A-Z]+$") == "^[A-Z]+$"


# ------------------------------------------------------------------------- the committed contracts


@needs_pilot
def test_committed_contracts_are_what_the_generator_writes(regenerated: Path) -> None:
    """Golden files: regenerate them with scripts/generate_contracts.py, never by hand."""
    assert COMMITTED, "no committed contracts; run scripts/generate_contracts.py"
    produced = sorted(regenerated.rglob("*.json"))
    assert [p.relative_to(regenerated) for p in produced] == \
        [p.relative_to(CONTRACTS) for p in COMMITTED]
    for path in COMMITTED:
        assert (regenerated / path.relative_to(CONTRACTS)).read_text() == path.read_text(), \
            f"{path} differs from what the generator writes now"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(CONTRACTS)))
def test_committed_contract_loads(path: Path) -> None:
    c = load_contract(path)
    assert c.name == path.stem
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True,
                              ensure_ascii=False) + "\n"
    report = frictionless.Schema.validate_descriptor(json.loads(text))
    assert report.valid, [e.message for e in report.errors]


CHECKED = [p for p in COMMITTED
           if "checkedAgainst" in json.loads(p.read_text())["trialproof"]]


def _define_dir(path: Path) -> Path:
    return {"sdtm": PILOT / "sdtm_cdiscpilot01", "adam": PILOT / "adam_cdiscpilot01",
            "sdtm_update2": PILOT / "sdtm_cdiscpilot01_update2"}[path.parent.name]


@needs_pilot
def test_every_pilot_xpt_has_a_checked_contract() -> None:
    checked = {(p.parent.name, p.stem) for p in CHECKED}
    assert checked == {("sdtm", "dm"), ("sdtm", "ae"), ("sdtm", "ds"), ("sdtm", "ex"),
                       ("sdtm", "ts"), ("adam", "adsl"), ("adam", "adae"), ("adam", "adtte"),
                       ("sdtm_update2", "lbur"), ("sdtm_update2", "vs")}


@needs_pilot
@pytest.mark.parametrize("path", CHECKED, ids=lambda p: str(p.relative_to(CONTRACTS)))
def test_the_pilot_data_meets_its_contract(path: Path) -> None:
    """Checked value by value, independently of define_xml.data_violations."""
    c = load_contract(path)
    data = _define_dir(path) / c.descriptor["trialproof"]["checkedAgainst"]["file"]
    delivery = read_delivery(data, c)
    assert delivery.type_errors == [] and delivery.missing_columns == ()
    assert delivery.rows == c.descriptor["trialproof"]["checkedAgainst"]["rows"]
    rows = delivery.table.to_pylist()
    for f in c.fields:
        values = [r[f.name] for r in rows]
        present = [v for v in values if v is not None]
        if f.required:
            assert len(present) == len(values), f.name
        if f.enum is not None:
            assert set(present) <= set(f.enum), (f.name, set(present) - set(f.enum))
        if f.pattern is not None:
            assert all(re.fullmatch(f.pattern, v) for v in present), f.name
        if f.max_length is not None:
            assert all(len(v) <= f.max_length for v in present), f.name
    if c.primary_key:
        keys = [tuple(r[k] for k in c.primary_key) for r in rows]
        assert all(None not in k for k in keys)
        assert len(set(keys)) == len(keys)
    assert data_violations(c, delivery) == {}


@needs_pilot
def test_known_deviations_are_recorded() -> None:
    def deviations(name: str) -> list[str]:
        return list(load_contract(CONTRACTS / name).descriptor["trialproof"]["deviations"])

    adsl = deviations("adam/adsl.json")
    assert any(d.startswith("BMIBLGR1: ") and "'>=30'" in d and "enum dropped" in d
               for d in adsl)
    assert any(d.startswith("SEX: ") and "blanks were removed" in d for d in adsl)
    assert fields(load_contract(CONTRACTS / "adam/adsl.json").descriptor)["SEX"][
        "constraints"]["enum"] == ["F", "M", "U"]
    vs = load_contract(CONTRACTS / "sdtm_update2/vs.json")
    assert vs.primary_key == ("STUDYID", "USUBJID", "VSTESTCD", "VISITNUM", "VSSEQ")
    assert vs.field("VSSTRESN").type == "number"
    assert load_contract(CONTRACTS / "adam/adae.json").primary_key == ("USUBJID", "AETERM",
                                                                         "AESEQ")
    assert "deviations" not in load_contract(CONTRACTS / "sdtm/dm.json").descriptor["trialproof"]


# --------------------------------------------------------------------------- reconciliation


SYNTHETIC = """<?xml version="1.0" encoding="UTF-8"?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:def="http://www.cdisc.org/ns/def/v2.0"
     xmlns:xlink="http://www.w3.org/1999/xlink" ODMVersion="1.3.2" FileType="Snapshot"
     FileOID="SYN" CreationDateTime="2024-01-01T00:00:00">
 <Study OID="SYN">
  <GlobalVariables><StudyName>SYN01</StudyName><StudyDescription>Synthetic</StudyDescription>
   <ProtocolName>SYN01</ProtocolName></GlobalVariables>
  <MetaDataVersion OID="MDV.SYN" Name="SYN" def:DefineVersion="2.0.0"
                   def:StandardName="CDISC SDTM" def:StandardVersion="3.2">
   <ItemGroupDef OID="IG.XX" Domain="XX" Name="XX" Repeating="Yes" IsReferenceData="No"
        SASDatasetName="XX" Purpose="Tabulation" def:Structure="One record per test"
        def:Class="FINDINGS" def:ArchiveLocationID="LF.XX">
    <Description><TranslatedText xml:lang="en">Things</TranslatedText></Description>
    <ItemRef ItemOID="IT.USUBJID" OrderNumber="1" Mandatory="Yes" KeySequence="1"/>
    <ItemRef ItemOID="IT.XXTESTCD" OrderNumber="3" Mandatory="Yes" KeySequence="2"/>
    <ItemRef ItemOID="IT.XXSEQ" OrderNumber="2" Mandatory="Yes"/>
    <ItemRef ItemOID="IT.XXORRES" OrderNumber="4" Mandatory="Yes"/>
    <ItemRef ItemOID="IT.XXSTRESN" OrderNumber="5" Mandatory="No"/>
    <ItemRef ItemOID="IT.XXDTC" OrderNumber="6" Mandatory="No"/>
    <ItemRef ItemOID="IT.XXFL" OrderNumber="7" Mandatory="No"/>
    <def:leaf ID="LF.XX" xlink:href="xx.csv"><def:title>xx.csv</def:title></def:leaf>
   </ItemGroupDef>
   <ItemDef OID="IT.USUBJID" Name="USUBJID" DataType="text" Length="8" SASFieldName="USUBJID">
    <Description><TranslatedText xml:lang="en">Subject</TranslatedText></Description></ItemDef>
   <ItemDef OID="IT.XXSEQ" Name="XXSEQ" DataType="integer" Length="8" SASFieldName="XXSEQ">
    <Description><TranslatedText xml:lang="en">Sequence</TranslatedText></Description></ItemDef>
   <ItemDef OID="IT.XXTESTCD" Name="XXTESTCD" DataType="text" Length="4" SASFieldName="XXTESTCD">
    <Description><TranslatedText xml:lang="en">Test</TranslatedText></Description>
    <CodeListRef CodeListOID="CL.TESTCD"/></ItemDef>
   <ItemDef OID="IT.XXORRES" Name="XXORRES" DataType="text" Length="3" SASFieldName="XXORRES">
    <Description><TranslatedText xml:lang="en">Result</TranslatedText></Description></ItemDef>
   <ItemDef OID="IT.XXSTRESN" Name="XXSTRESN" DataType="integer" Length="8"
            SASFieldName="XXSTRESN">
    <Description><TranslatedText xml:lang="en">Numeric</TranslatedText></Description>
    <CodeListRef CodeListOID="CL.N"/></ItemDef>
   <ItemDef OID="IT.XXDTC" Name="XXDTC" DataType="datetime" Length="16" SASFieldName="XXDTC">
    <Description><TranslatedText xml:lang="en">When</TranslatedText></Description></ItemDef>
   <ItemDef OID="IT.XXFL" Name="XXFL" DataType="text" Length="1" SASFieldName="XXFL">
    <Description><TranslatedText xml:lang="en">Flag</TranslatedText></Description>
    <CodeListRef CodeListOID="CL.NY"/></ItemDef>
   <CodeList OID="CL.TESTCD" Name="Test" DataType="text">
    <EnumeratedItem CodedValue="HGT"/><EnumeratedItem CodedValue="WGT"/></CodeList>
   <CodeList OID="CL.N" Name="N" DataType="integer">
    <CodeListItem CodedValue="1"><Decode><TranslatedText>one</TranslatedText></Decode>
    </CodeListItem>
    <CodeListItem CodedValue="2"><Decode><TranslatedText>two</TranslatedText></Decode>
    </CodeListItem></CodeList>
   <CodeList OID="CL.NY" Name="NY" DataType="text">
    <CodeListItem CodedValue="N"><Decode><TranslatedText>No</TranslatedText></Decode>
    </CodeListItem>
    <CodeListItem CodedValue="Y"><Decode><TranslatedText>Yes</TranslatedText></Decode>
    </CodeListItem></CodeList>
  </MetaDataVersion>
 </Study>
</ODM>
"""


def test_synthetic_define_without_data(tmp_path: Path) -> None:
    (tmp_path / "define.xml").write_text(SYNTHETIC)
    xx = contracts_from_define(tmp_path / "define.xml")["xx"]
    assert [f["name"] for f in xx["fields"]] == ["USUBJID", "XXSEQ", "XXTESTCD", "XXORRES",
                                                 "XXSTRESN", "XXDTC", "XXFL"]
    assert xx["primaryKey"] == ["USUBJID", "XXTESTCD"]
    f = fields(xx)
    assert f["XXTESTCD"]["constraints"] == {"required": True, "maxLength": 4,
                                            "enum": ["HGT", "WGT"]}
    assert f["XXSTRESN"] == {"name": "XXSTRESN", "title": "Numeric", "type": "integer",
                             "constraints": {"enum": [1, 2]}}
    assert "checkedAgainst" not in xx["trialproof"] and "deviations" not in xx["trialproof"]


def test_reconciliation_drops_only_what_the_data_breaks(tmp_path: Path) -> None:
    (tmp_path / "define.xml").write_text(SYNTHETIC)
    (tmp_path / "xx.csv").write_text(
        "USUBJID,XXSEQ,XXTESTCD,XXORRES,XXSTRESN,XXDTC,XXFL\n"
        "S1,1,HGT,170,1,2014-01-02T10:00,Y\n"
        "S1,2,HGT,1700,2,2014-01,N\n"
        "S2,1,BMI,,1.5,2014-1-2,\n"
    )
    xx = contracts_from_define(tmp_path / "define.xml")["xx"]
    f = fields(xx)
    assert xx["primaryKey"] == ["USUBJID", "XXTESTCD", "XXSEQ"]
    assert f["USUBJID"]["constraints"] == {"required": True, "maxLength": 8}
    assert f["XXTESTCD"]["constraints"] == {"required": True, "maxLength": 4}
    assert f["XXORRES"].get("constraints") is None
    assert f["XXSTRESN"]["type"] == "number" and "constraints" not in f["XXSTRESN"]
    assert f["XXDTC"]["constraints"] == {"maxLength": 16}
    assert f["XXFL"]["constraints"] == {"maxLength": 1, "enum": ["N", "Y"]}
    deviations = xx["trialproof"]["deviations"]
    assert deviations == [
        "XXTESTCD: define.xml says the codelist 'HGT', 'WGT', but xx.csv also holds 'BMI'; "
        "enum dropped",
        "XXORRES: define.xml says Mandatory=\"Yes\", but xx.csv has 1 empty value(s) in 3 rows;"
        " required dropped",
        "XXORRES: define.xml says Length=3, but xx.csv holds values up to 4 characters long; "
        "maxLength dropped",
        "XXSTRESN: define.xml says integer, but xx.csv has 1 value(s) that are not integers: "
        "'1.5'; type integer widened to number",
        "XXDTC: define.xml says an ISO 8601 date/time, but xx.csv holds '2014-1-2'; "
        "pattern dropped",
        "XXSTRESN: define.xml says the codelist 1, 2, but xx.csv also holds 1.5; enum dropped",
        "primaryKey: define.xml gives USUBJID, XXTESTCD, but in xx.csv 1 row(s) repeat a key, "
        "e.g. ('S1', 'HGT'); USUBJID, XXTESTCD, XXSEQ is used instead",
    ]
    assert xx["trialproof"]["checkedAgainst"]["rows"] == 3
    c = parse_contract(xx)
    assert data_violations(c, read_delivery(tmp_path / "xx.csv", c)) == {}


def test_reconciliation_adds_columns_the_define_forgot(tmp_path: Path) -> None:
    (tmp_path / "define.xml").write_text(SYNTHETIC)
    (tmp_path / "xx.csv").write_text("USUBJID,XXSEQ,XXTESTCD,XXORRES,XXNEW\nS1,1,HGT,170,a\n")
    xx = contracts_from_define(tmp_path / "define.xml")["xx"]
    assert xx["fields"][-1] == {"name": "XXNEW", "type": "string"}
    assert "XXNEW: not in define.xml, but xx.csv has the column; added as string" in \
        xx["trialproof"]["deviations"]
    assert "XXDTC: define.xml lists the column but xx.csv does not have it" in \
        xx["trialproof"]["deviations"]
    assert read_delivery(tmp_path / "xx.csv", parse_contract(xx)).dropped_columns == ()


def test_write_contracts(tmp_path: Path) -> None:
    (tmp_path / "define.xml").write_text(SYNTHETIC)
    written = write_contracts(tmp_path / "define.xml", tmp_path / "out")
    assert written == [tmp_path / "out" / "xx.json"]
    assert load_contract(written[0]).primary_key == ("USUBJID", "XXTESTCD")
    assert written[0].read_text().endswith("}\n")


# --------------------------------------------------------------------------- not a define.xml


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "not well-formed XML"),
    (b"STUDYID,DOMAIN\nX,DM\n", "not well-formed XML"),
    (b"<?xml version='1.0'?><ODM><Study/>", "not a Define-XML file"),
    (b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:def="http://www.cdisc.org/ns/def/v2.0">'
     b"<Study>", "not well-formed XML"),
    (b"<html><body/></html>", "not a Define-XML file"),
    (b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"><Study OID="S"/></ODM>',
     "an ODM file but not a Define-XML file"),
    (b'<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:def="http://www.cdisc.org/ns/def/v2.0"'
     b' FileOID="F" CreationDateTime="2024-01-01T00:00:00" ODMVersion="1.3.2" '
     b'FileType="Snapshot"/>', "has no Study element"),
])
def test_not_a_define_xml(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "define.xml"
    path.write_bytes(content)
    with pytest.raises(ContractError) as info:
        contracts_from_define(path)
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)


def test_missing_define(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="cannot be read"):
        contracts_from_define(tmp_path / "nope.xml")


@needs_pilot
def test_a_define_1_0_copy_without_its_data_is_not_checked(tmp_path: Path) -> None:
    shutil.copyfile(SDTM, tmp_path / "define.xml")
    dm = contracts_from_define(tmp_path / "define.xml")["dm"]
    assert "checkedAgainst" not in dm["trialproof"]

