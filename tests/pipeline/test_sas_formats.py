"""SAS date and datetime formats: contracts generated from define.xml and the XPORT reader
decide from one list (pipeline.sas_formats), so a number formatted by any of them is a
date, or a datetime, on both paths."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest

from pipeline.contract import parse_contract
from pipeline.define_xml import contracts_from_define
from pipeline.readers import read_delivery
from pipeline.sas_formats import SAS_DATE_FORMATS, SAS_DATETIME_FORMATS, sas_temporal_kind

KINDS = {**dict.fromkeys(SAS_DATE_FORMATS, "date"),
         **dict.fromkeys(SAS_DATETIME_FORMATS, "datetime")}
DAYS = 23000  # 2022-12-21, counted from 1960-01-01 as SAS does
DAY = dt.date(1960, 1, 1) + dt.timedelta(days=DAYS)
MIDNIGHT = dt.datetime(DAY.year, DAY.month, DAY.day)  # naive, as in the table


def _column(i: int) -> str:
    return f"V{i:02d}"


def _format(i: int, name: str) -> str:
    # a width, and every other one in lower case, as define.xml and SAS both allow
    return f"{name}19." if i % 2 else f"{name.lower()}19."


def _define(formats: list[str]) -> str:
    refs = "".join(f'<ItemRef ItemOID="IT.{_column(i)}" OrderNumber="{i + 1}" Mandatory="No"/>'
                   for i in range(len(formats)))
    items = "".join(f'<ItemDef OID="IT.{_column(i)}" Name="{_column(i)}" DataType="integer" '
                    f'Length="8" SASFieldName="{_column(i)}" '
                    f'def:DisplayFormat="{_format(i, name)}"/>'
                    for i, name in enumerate(formats))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:def="http://www.cdisc.org/ns/def/v2.0"
     xmlns:xlink="http://www.w3.org/1999/xlink" ODMVersion="1.3.2" FileType="Snapshot"
     FileOID="SYN" CreationDateTime="2024-01-01T00:00:00">
 <Study OID="SYN">
  <GlobalVariables><StudyName>SYN01</StudyName><StudyDescription>Synthetic</StudyDescription>
   <ProtocolName>SYN01</ProtocolName></GlobalVariables>
  <MetaDataVersion OID="MDV.SYN" Name="SYN" def:DefineVersion="2.0.0"
                   def:StandardName="CDISC SDTM" def:StandardVersion="3.2">
   <ItemGroupDef OID="IG.XX" Domain="XX" Name="XX" Repeating="Yes" IsReferenceData="No"
        SASDatasetName="XX" Purpose="Tabulation" def:Structure="One record per thing"
        def:Class="FINDINGS" def:ArchiveLocationID="LF.XX">
    <Description><TranslatedText xml:lang="en">Things</TranslatedText></Description>
    {refs}
    <def:leaf ID="LF.XX" xlink:href="xx.xpt"><def:title>xx.xpt</def:title></def:leaf>
   </ItemGroupDef>
   {items}
  </MetaDataVersion>
 </Study>
</ODM>
"""


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """An XPORT file with one column per format, holding DAY in that format's unit, and a
    define.xml that gives each column its format."""
    formats = list(KINDS)
    values = {_column(i): [float(DAYS if KINDS[name] == "date" else DAYS * 86400)]
              for i, name in enumerate(formats)}
    folder = tmp_path_factory.mktemp("sas_formats")
    pyreadstat.write_xport(pd.DataFrame(values), str(folder / "xx.xpt"), table_name="XX",
                           variable_format={_column(i): _format(i, name)
                                            for i, name in enumerate(formats)})
    (folder / "define.xml").write_text(_define(formats))
    return folder, formats


def _contract(types: list[str]) -> Any:
    return parse_contract({"name": "xx", "fields": [
        {"name": _column(i), "type": t} for i, t in enumerate(types)]})


def test_every_format_has_one_kind() -> None:
    assert not set(SAS_DATE_FORMATS) & set(SAS_DATETIME_FORMATS)
    for name, kind in KINDS.items():
        assert sas_temporal_kind(f" {name.lower()}10.2 ") == kind, name
    assert sas_temporal_kind("BEST12.") is None and sas_temporal_kind(None) is None
    assert sas_temporal_kind("DATEAMPM22.") == "datetime"  # not the DATE format


def test_define_xml_types_every_format(delivery: tuple[Path, list[str]]) -> None:
    folder, formats = delivery
    xx = contracts_from_define(folder / "define.xml")["xx"]
    assert [f["type"] for f in xx["fields"]] == [KINDS[name] for name in formats]
    assert "deviations" not in xx["trialproof"]  # the data agrees with what define.xml says
    table = read_delivery(folder / "xx.xpt", parse_contract(xx)).table.to_pylist()
    assert table == [{_column(i): DAY if KINDS[name] == "date" else MIDNIGHT
                      for i, name in enumerate(formats)}]


def test_reader_takes_the_unit_from_every_format(delivery: tuple[Path, list[str]]) -> None:
    """Read under the other kind: the format, not the contract, says whether the number
    counts days or seconds."""
    folder, formats = delivery
    swapped = ["datetime" if KINDS[name] == "date" else "date" for name in formats]
    read = read_delivery(folder / "xx.xpt", _contract(swapped))
    assert read.type_errors == []
    assert read.table.to_pylist() == [{_column(i): MIDNIGHT if KINDS[name] == "date" else DAY
                                       for i, name in enumerate(formats)}]
