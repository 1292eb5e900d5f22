"""Readers: every pilot file loads, the same data gives the same typed table in every
format, values that do not fit become TypeIssues, and unreadable files give one clear
ReadError that starts with the file's path."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from trialproof_paths import PILOT_DIR

from pipeline.contract import Contract, load_contract, parse_contract
from pipeline.errors import ReadError
from pipeline.readers import ARROW_TYPES, Delivery, TypeIssue, read_delivery

REPO = Path(__file__).resolve().parents[2]
PILOT = PILOT_DIR
CONTRACTS = REPO / "schemas" / "contracts" / "cdiscpilot01"

XPT_FILES = [
    ("sdtm_cdiscpilot01/dm.xpt", "sdtm/dm.json"),
    ("sdtm_cdiscpilot01/ae.xpt", "sdtm/ae.json"),
    ("sdtm_cdiscpilot01/ds.xpt", "sdtm/ds.json"),
    ("sdtm_cdiscpilot01/ex.xpt", "sdtm/ex.json"),
    ("sdtm_cdiscpilot01/ts.xpt", "sdtm/ts.json"),
    ("adam_cdiscpilot01/adsl.xpt", "adam/adsl.json"),
    ("adam_cdiscpilot01/adae.xpt", "adam/adae.json"),
    ("adam_cdiscpilot01/adtte.xpt", "adam/adtte.json"),
    ("sdtm_cdiscpilot01_update2/lbur.xpt", "sdtm_update2/lbur.json"),
    ("sdtm_cdiscpilot01_update2/vs.xpt", "sdtm_update2/vs.json"),
    ("datasetjson_pilot5/dm.json", "sdtm/dm.json"),
    ("datasetjson_pilot5/ae.json", "sdtm/ae.json"),
    ("datasetjson_pilot5/ex.json", "sdtm/ex.json"),
]

_cache: dict[tuple[str, str], Delivery] = {}


def contract(name: str) -> Contract:
    return load_contract(CONTRACTS / name)


def pilot(data: str, contract_name: str) -> Delivery:
    if (data, contract_name) not in _cache:
        _cache[data, contract_name] = read_delivery(PILOT / data, contract(contract_name))
    return _cache[data, contract_name]


def small(fields: dict[str, str], **options: Any) -> Contract:
    descriptor: dict[str, Any] = {"name": "t", "fields": [{"name": n, "type": t}
                                                          for n, t in fields.items()]}
    descriptor.update(options)
    return parse_contract(descriptor)


def sorted_by_key(table: pa.Table, c: Contract) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in c.primary_key])


def read_error(path: Path, c: Contract, fmt: str | None = None) -> str:
    with pytest.raises(ReadError) as info:
        read_delivery(path, c, fmt)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "Traceback" not in message
    return message


# --------------------------------------------------------------------------- the pilot data


@pytest.mark.pilot_data
@pytest.mark.parametrize(("data", "contract_name"), XPT_FILES)
def test_every_pilot_file_loads_under_its_contract(data: str, contract_name: str) -> None:
    delivery = pilot(data, contract_name)
    c = contract(contract_name)
    assert delivery.rows > 0
    assert delivery.table.column_names == list(c.field_names)
    assert delivery.table.schema.types == [ARROW_TYPES[f.type] for f in c.fields]
    assert delivery.type_errors == []
    assert delivery.missing_columns == ()
    assert delivery.dropped_columns == ()


@pytest.mark.pilot_data
@pytest.mark.parametrize("domain", ["dm", "ae", "ex"])
def test_xpt_and_dataset_json_give_equal_tables(domain: str) -> None:
    c = contract(f"sdtm/{domain}.json")
    from_xpt = pilot(f"sdtm_cdiscpilot01/{domain}.xpt", f"sdtm/{domain}.json")
    from_json = pilot(f"datasetjson_pilot5/{domain}.json", f"sdtm/{domain}.json")
    assert (from_xpt.format, from_json.format) == ("xpt", "dataset-json")
    assert from_xpt.rows == from_json.rows
    assert sorted_by_key(from_xpt.table, c).equals(sorted_by_key(from_json.table, c))
    # both exports keep the same row order too
    assert from_xpt.table.equals(from_json.table)


@pytest.mark.pilot_data
def test_pilot_representations_are_normalized() -> None:
    dm = pilot("datasetjson_pilot5/dm.json", "sdtm/dm.json").table.to_pylist()
    first = {r["USUBJID"]: r for r in dm}["01-701-1015"]
    assert first["DMDY"] == -7  # " -7" in the file
    assert first["AGE"] == 63 and first["RFICDTC"] is None and first["DTHFL"] is None
    ae = pilot("datasetjson_pilot5/ae.json", "sdtm/ae.json").table
    assert ae.column("AELLTCD").null_count == ae.num_rows  # "NA" everywhere in the file
    adsl = pilot("adam_cdiscpilot01/adsl.xpt", "adam/adsl.json").table.to_pylist()[0]
    assert adsl["TRTSDT"] == dt.date(2014, 1, 2)  # SAS day 19725
    assert adsl["TRT01PN"] == 0 and isinstance(adsl["TRT01PN"], int)
    ts = pilot("sdtm_cdiscpilot01/ts.xpt", "sdtm/ts.json").table
    assert any("Alzheimer\u2019s" in (v or "") for v in ts.column("TSVAL").to_pylist())


@pytest.mark.pilot_data
def test_pilot5_adsl_is_another_derivation_of_adsl() -> None:
    """datasetjson_pilot5/adsl.json is not the pilot's adsl.xpt: it renames and adds columns."""
    c = contract("adam/adsl.json")
    message = read_error(PILOT / "datasetjson_pilot5/adsl.json", c)
    assert "TRTDURD, EOSSTT, DCSREAS" in message
    options = {**c.descriptor["trialproof"], "unknownColumns": "drop"}
    dropping = parse_contract({**c.descriptor, "trialproof": options})
    delivery = read_delivery(PILOT / "datasetjson_pilot5/adsl.json", dropping)
    assert delivery.dropped_columns == ("TRTDURD", "EOSSTT", "DCSREAS")
    assert delivery.missing_columns == ("TRTDUR", "DCREASCD")
    assert delivery.type_errors == [] and delivery.rows == 254


# ------------------------------------------------------------------------- one table, every format


def _padded_dataset_json(table: pa.Table, c: Contract) -> dict[str, Any]:
    """Dataset-JSON 1.1 the way the pilot 5 export writes it: numbers as padded strings,
    missing numbers as "NA", strings padded with trailing blanks."""
    rows = []
    for record in table.to_pylist():
        row: list[Any] = []
        for f in c.fields:
            value = record[f.name]
            if f.type in ("integer", "number"):
                row.append("NA" if value is None else f" {value}")
            elif f.type in ("date", "datetime"):
                row.append(None if value is None else value.isoformat())
            else:
                row.append("" if value is None else value + "  ")
        rows.append(row)
    columns = [{"itemOID": f.name, "name": f.name, "label": f.name,
                "dataType": {"number": "decimal"}.get(f.type, f.type)} for f in c.fields]
    return {"datasetJSONVersion": "1.1.0", "itemGroupOID": c.name, "name": c.name,
            "records": len(rows), "columns": columns, "rows": rows}


@pytest.mark.parametrize(("data", "contract_name"), [
    ("sdtm_cdiscpilot01/dm.xpt", "sdtm/dm.json"),
    ("adam_cdiscpilot01/adsl.xpt", "adam/adsl.json"),  # dates, integers, numbers
])
@pytest.mark.pilot_data
def test_same_data_gives_the_same_table_in_every_format(tmp_path: Path, data: str,
                                                         contract_name: str) -> None:
    c = contract(contract_name)
    expected = pilot(data, contract_name).table
    pcsv.write_csv(expected, tmp_path / "d.csv")
    pq.write_table(expected, tmp_path / "d.parquet")
    records = [{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()}
               for r in expected.to_pylist()]
    (tmp_path / "d.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    doc = _padded_dataset_json(expected, c)
    (tmp_path / "d.json").write_text(json.dumps(doc, indent=1))
    meta = {k: v for k, v in doc.items() if k != "rows"}
    (tmp_path / "dj.ndjson").write_text(
        "\n".join(json.dumps(x) for x in [meta, *doc["rows"]]) + "\n")
    for name, fmt in [("d.csv", "csv"), ("d.parquet", "parquet"), ("d.ndjson", "ndjson"),
                      ("d.json", "dataset-json"), ("dj.ndjson", "dataset-json")]:
        delivery = read_delivery(tmp_path / name, c)
        assert delivery.format == fmt, name
        assert delivery.type_errors == [], name
        assert delivery.table.equals(expected), name
        # a staged copy has no extension: the content tells the format
        staged = tmp_path / f"raw-{name.replace('.', '-')}"
        shutil.copyfile(tmp_path / name, staged)
        assert read_delivery(staged, c).table.equals(expected), name


# --------------------------------------------------------------------------- normalization


def test_text_values_are_typed_by_the_contract(tmp_path: Path) -> None:
    c = small({"s": "string", "i": "integer", "n": "number", "b": "boolean", "d": "date",
               "t": "datetime"}, missingValues=["", "N/A"])
    path = tmp_path / "v.csv"
    path.write_text(
        "s,i,n,b,d,t\n"
        "  a  , -7 , 1.5 ,Y,2014-01-02,2014-01-02T11:45\n"
        "N/A,5.0,NA,false,,2014-01-02T11:45:00Z\n"
        "x,.,.5e1,n,2014-02-28,2014-01-02T11:45:00+02:00\n"
        "y,5.5,nan,maybe,2014-02-30,2014-01-02\n"
        "z,0x10,inf,1,02/01/2014,2014-01-02 11:45:00.250\n"
        "w,9007199254740993,1e999,0,2014-1-2,2014-13-02T00:00\n"
    )
    delivery = read_delivery(path, c)
    assert delivery.table.to_pylist() == [
        {"s": "  a", "i": -7, "n": 1.5, "b": True, "d": dt.date(2014, 1, 2),
         "t": dt.datetime(2014, 1, 2, 11, 45)},
        {"s": None, "i": 5, "n": None, "b": False, "d": None,
         "t": dt.datetime(2014, 1, 2, 11, 45)},
        {"s": "x", "i": None, "n": 5.0, "b": False, "d": dt.date(2014, 2, 28),
         "t": dt.datetime(2014, 1, 2, 9, 45)},
        {"s": "y", "i": None, "n": None, "b": None, "d": None, "t": None},
        {"s": "z", "i": None, "n": None, "b": True, "d": None,
         "t": dt.datetime(2014, 1, 2, 11, 45, 0, 250000)},
        {"s": "w", "i": None, "n": None, "b": False, "d": None, "t": None},
    ]
    assert delivery.type_errors == [
        TypeIssue("i", 3, "5.5"), TypeIssue("b", 3, "maybe"), TypeIssue("d", 3, "2014-02-30"),
        TypeIssue("t", 3, "2014-01-02"),
        TypeIssue("i", 4, "0x10"), TypeIssue("n", 4, "inf"), TypeIssue("d", 4, "02/01/2014"),
        TypeIssue("i", 5, "9007199254740993"), TypeIssue("n", 5, "1e999"),
        TypeIssue("d", 5, "2014-1-2"), TypeIssue("t", 5, "2014-13-02T00:00"),
    ]


def test_json_numbers_strings_and_mixtures(tmp_path: Path) -> None:
    c = small({"i": "integer", "n": "number", "s": "string", "b": "boolean"})
    path = tmp_path / "v.ndjson"
    lines = [{"i": 3.0, "n": 1, "s": 12, "b": True}, {"i": " 4", "n": " 2.5", "s": 1.5, "b": 0},
             {"i": 2.5, "n": "NA", "s": "a ", "b": "Y"}, {"i": {"x": 1}, "n": None, "b": None}]
    path.write_text("\n".join(json.dumps(x) for x in lines))
    delivery = read_delivery(path, c)
    assert delivery.format == "ndjson"
    assert delivery.table.to_pylist() == [
        {"i": 3, "n": 1.0, "s": "12", "b": True},
        {"i": 4, "n": 2.5, "s": "1.5", "b": False},
        {"i": None, "n": None, "s": "a", "b": True},
        {"i": None, "n": None, "s": None, "b": None},
    ]
    assert delivery.type_errors == [TypeIssue("i", 2, "2.5"), TypeIssue("i", 3, '{"x": 1}')]


def test_parquet_types_are_cast(tmp_path: Path) -> None:
    c = small({"i": "integer", "n": "number", "d": "date", "t": "datetime", "s": "string"})
    table = pa.table({
        "i": pa.array([1.0, 2.5, None, float("nan")]),
        "n": pa.array([1, 2, None, 4], pa.int32()),
        "d": pa.array([dt.datetime(2014, 1, 2), dt.datetime(2014, 1, 2, 1), None, None],
                      pa.timestamp("ns")),
        "t": pa.array([dt.datetime(2014, 1, 2, 12, tzinfo=dt.UTC), None, None, None],
                      pa.timestamp("ms", tz="Europe/Paris")),
        "s": pa.array(["a", "b", None, "c"]).dictionary_encode(),
    })
    pq.write_table(table, tmp_path / "v.parquet")
    delivery = read_delivery(tmp_path / "v.parquet", c)
    assert delivery.table.to_pylist() == [
        {"i": 1, "n": 1.0, "d": dt.date(2014, 1, 2), "t": dt.datetime(2014, 1, 2, 12), "s": "a"},
        {"i": None, "n": 2.0, "d": None, "t": None, "s": "b"},
        {"i": None, "n": None, "d": None, "t": None, "s": None},
        {"i": None, "n": 4.0, "d": None, "t": None, "s": "c"},
    ]
    assert delivery.type_errors == [TypeIssue("i", 1, "2.5"),
                                    TypeIssue("d", 1, "2014-01-02 01:00:00")]


def test_sas_numeric_dates_and_datetimes(tmp_path: Path) -> None:
    import pandas as pd
    import pyreadstat

    frame = pd.DataFrame({"ADT": [19725.0, None, 1.5], "ADTM": [1704277800.0, 0.0, None],
                          "ATM": [3600.0, 0.0, 1.0], "AVAL": [1.0, 2.0, 3.0]})
    path = tmp_path / "v.xpt"
    pyreadstat.write_xport(frame, str(path), table_name="V",
                           variable_format={"ADT": "DATE9.", "ADTM": "DATETIME20."})
    c = small({"ADT": "date", "ADTM": "datetime", "ATM": "number", "AVAL": "integer"})
    delivery = read_delivery(path, c)
    assert delivery.table.to_pylist() == [
        {"ADT": dt.date(2014, 1, 2), "ADTM": dt.datetime(2014, 1, 2, 10, 30), "ATM": 3600.0,
         "AVAL": 1},
        {"ADT": None, "ADTM": dt.datetime(1960, 1, 1), "ATM": 0.0, "AVAL": 2},
        {"ADT": None, "ADTM": None, "ATM": 1.0, "AVAL": 3},
    ]
    assert delivery.type_errors == [TypeIssue("ADT", 2, "1.5")]
    # the DATE9. format says the number counts days, whatever the contract's type
    as_datetime = small({"ADT": "datetime", "ADTM": "date", "ATM": "number", "AVAL": "number"})
    first = read_delivery(path, as_datetime).table.to_pylist()[0]
    assert first["ADT"] == dt.datetime(2014, 1, 2) and first["ADTM"] is None


def test_unknown_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text("a,extra,other\n1,x,y\n")
    message = read_error(path, small({"a": "integer", "b": "string"}))
    assert "extra, other" in message and "'t'" in message
    dropping = small({"a": "integer", "b": "string"}, trialproof={"unknownColumns": "drop"})
    delivery = read_delivery(path, dropping)
    assert delivery.dropped_columns == ("extra", "other")
    assert delivery.missing_columns == ("b",)
    assert delivery.table.to_pylist() == [{"a": 1, "b": None}]
    assert delivery.table.column_names == ["a", "b"]


# --------------------------------------------------------------------------- unreadable files


@pytest.fixture
def dm() -> Contract:
    return contract("sdtm/dm.json")


@pytest.mark.parametrize("name", ["e.csv", "e.parquet", "e.xpt", "e.json", "e.ndjson", "e"])
def test_empty_file(tmp_path: Path, dm: Contract, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert "empty (0 bytes)" in read_error(tmp_path / name, dm)


def test_missing_file_and_unknown_format(tmp_path: Path, dm: Contract) -> None:
    assert "no such file" in read_error(tmp_path / "nope.csv", dm)
    (tmp_path / "x.csv").write_text("a\n1\n")
    assert "unknown format 'xlsx'" in read_error(tmp_path / "x.csv", dm, "xlsx")


@pytest.mark.pilot_data
def test_truncated_and_corrupt_xpt(tmp_path: Path, dm: Contract) -> None:
    source = (PILOT / "sdtm_cdiscpilot01/dm.xpt").read_bytes()
    cut = tmp_path / "cut.xpt"
    cut.write_bytes(source[:50001])
    assert "truncated SAS XPORT file" in read_error(cut, dm)
    cut.write_bytes(source[:50000])  # whole 80-byte records, but inside a row
    assert "ends inside row 132" in read_error(cut, dm)
    cut.write_bytes(source[:-80])
    assert "truncated" in read_error(cut, dm)
    cut.write_bytes(source[:200])
    read_error(cut, dm)
    broken = bytearray(source)
    broken[100:400] = b"\xff" * 300
    cut.write_bytes(bytes(broken))
    read_error(cut, dm)
    twice = tmp_path / "two.xpt"
    twice.write_bytes(source + source[80 * 3:])
    assert "holds 2 datasets" in read_error(twice, dm)


@pytest.mark.pilot_data
def test_wrong_format(tmp_path: Path, dm: Contract) -> None:
    csv = tmp_path / "dm.xpt"
    csv.write_text("STUDYID,DOMAIN\nX,DM\n")
    assert "not a SAS XPORT file" in read_error(csv, dm)
    not_parquet = tmp_path / "dm.parquet"
    not_parquet.write_text("STUDYID,DOMAIN\nX,DM\n")
    assert "not a Parquet file" in read_error(not_parquet, dm)
    xpt_as_csv = tmp_path / "dm.csv"
    shutil.copyfile(PILOT / "sdtm_cdiscpilot01/dm.xpt", xpt_as_csv)
    assert "is a SAS XPORT file, not csv" in read_error(xpt_as_csv, dm)
    zipped = tmp_path / "dm.json"
    shutil.copyfile(PILOT / "sdtm_cdiscpilot01_update2/cdiscpilot_update2.zip", zipped)
    assert "ZIP" in read_error(zipped, dm)


@pytest.mark.pilot_data
def test_truncated_and_corrupt_parquet(tmp_path: Path, dm: Contract) -> None:
    table = pilot("sdtm_cdiscpilot01/dm.xpt", "sdtm/dm.json").table
    good = tmp_path / "good.parquet"
    pq.write_table(table, good)
    data = good.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated Parquet file" in read_error(cut, dm)
    broken = bytearray(data)
    broken[len(data) - 200: len(data) - 8] = b"\x00" * 192  # the footer metadata
    cut.write_bytes(bytes(broken))
    read_error(cut, dm)


def test_csv_that_is_not_utf8(tmp_path: Path, dm: Contract) -> None:
    path = tmp_path / "dm.csv"
    text = "STUDYID,DOMAIN,USUBJID\nCDISCPILOT01,DM,01-701-1015\nCDISCPILOT01,DM,Müller\n"
    path.write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index(b"\xfc")
    assert f"not valid UTF-8 at byte {offset} (line 3)" in read_error(path, dm)
    # far past the first block, too
    body = "CDISCPILOT01,DM,01-701-1015\n" * 10_000
    path.write_bytes(("STUDYID,DOMAIN,USUBJID\n" + body).encode() + "x,DM,é\n".encode("latin-1"))
    offset = len(("STUDYID,DOMAIN,USUBJID\n" + body).encode()) + 5
    assert f"not valid UTF-8 at byte {offset} (line 10002)" in read_error(path, dm)
    # in the header
    path.write_bytes("STUDYID,DOMAIN,NAMÉ\n".encode("latin-1"))
    assert "not valid UTF-8 at byte 18 (line 1)" in read_error(path, dm)


def test_bad_csv_shapes(tmp_path: Path, dm: Contract) -> None:
    path = tmp_path / "dm.csv"
    path.write_text("STUDYID,DOMAIN\nA,DM\nB,DM\nC\n")
    assert "line 4 has 1 field(s); the header has 2" in read_error(path, dm)
    path.write_text("STUDYID,DOMAIN,STUDYID\nA,DM,A\n")
    assert "duplicate column name(s) STUDYID" in read_error(path, dm)


@pytest.mark.pilot_data
def test_bad_dataset_json(tmp_path: Path, dm: Contract) -> None:
    good = json.loads((PILOT / "datasetjson_pilot5/dm.json").read_text())
    path = tmp_path / "dm.json"

    def write(doc: Any) -> Path:
        path.write_text(json.dumps(doc))
        return path

    assert 'no "columns"' in read_error(write({k: v for k, v in good.items() if k != "columns"}),
                                        dm)
    assert 'no "rows"' in read_error(write({k: v for k, v in good.items() if k != "rows"}), dm)
    short = {**good, "rows": [good["rows"][0][:-1], *good["rows"][1:]]}
    assert "row 0 has 24 value(s); there are 25 columns" in read_error(write(short), dm)
    fewer = {**good, "rows": good["rows"][:-1]}
    assert "records=306 but holds 305 rows" in read_error(write(fewer), dm)
    assert "unsupported Dataset-JSON version '1.0.0'" in read_error(
        write({**good, "datasetJSONVersion": "1.0.0"}), dm)
    assert "not Dataset-JSON" in read_error(write([1, 2]), dm)
    text = json.dumps(good, indent=1)
    path.write_text(text[: len(text) // 2])
    assert "not valid JSON at line" in read_error(path, dm)
    ndjson = tmp_path / "dm.ndjson"
    meta = {k: v for k, v in good.items() if k != "rows"}
    ndjson.write_text(json.dumps(meta) + "\n" + json.dumps(good["rows"][0]) + "\n[1, 2\n")
    assert "not valid JSON at line 3" in read_error(ndjson, dm)
    ndjson.write_text(json.dumps(meta) + "\n" + json.dumps(good["rows"][0][:3]) + "\n")
    assert "line 2 has 3 value(s); there are 25 columns" in read_error(ndjson, dm)


def test_bad_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    path.write_text('{"a": 1}\n{"a": 2\n')
    c = small({"a": "integer"})
    assert "not valid JSON at line 2" in read_error(path, c)
    path.write_text('{"a": 1}\n[2]\n')
    assert "line 2 is not a JSON object" in read_error(path, c)


# --------------------------------------------------------------------------- performance


def test_a_million_rows_are_read_vectorized(tmp_path: Path) -> None:
    n = 1_000_000
    rng = np.random.default_rng(7)
    days = rng.integers(15_000, 20_000, n)
    table = pa.table({
        "ID": pa.array(np.arange(n)),
        "SUBJID": pc.cast(pa.array(rng.integers(0, 10**6, n)), pa.string()),
        "ARM": pc.binary_join_element_wise(
            "arm-", pc.cast(pa.array(rng.integers(0, 9, n)), pa.string()), ""),
        "AGE": pa.array(rng.integers(18, 90, n)),
        "DOSE": pa.array(rng.random(n) * 100),
        "WEIGHT": pa.array(rng.random(n) * 100),
        "SAFFL": pa.array(rng.random(n) > 0.5),
        "ADT": pc.cast(pa.array(days.astype("int32")), pa.date32()),
        "ADTM": pc.cast(pa.array(days * 86_400_000_000 + 3_600_000_000), pa.timestamp("us")),
        "CAT": pc.cast(pa.array(rng.integers(0, 5, n)), pa.string()),
        "SEQ": pa.array(rng.integers(0, 100, n)),
        "AVAL": pa.array(rng.random(n)),
    })
    c = small({"ID": "integer", "SUBJID": "string", "ARM": "string", "AGE": "integer",
               "DOSE": "number", "WEIGHT": "number", "SAFFL": "boolean", "ADT": "date",
               "ADTM": "datetime", "CAT": "string", "SEQ": "integer", "AVAL": "number"})
    csv_path, parquet_path = tmp_path / "big.csv", tmp_path / "big.parquet"
    pcsv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path)
    read_delivery(parquet_path, c)  # warm up (the first Arrow comparison imports pandas)
    for path in (csv_path, parquet_path):
        started = time.perf_counter()
        delivery = read_delivery(path, c)
        elapsed = time.perf_counter() - started
        assert delivery.rows == n and delivery.type_errors == []
        assert delivery.table.equals(table)
        # A Python loop over 12 million values takes far longer than this.
        assert elapsed < 12, f"{path.name}: {elapsed:.1f}s"
    # A few bad values among a million are found without a loop over every row.
    text = csv_path.read_bytes().splitlines(keepends=True)
    for row in (10, 500_000, 999_999):
        text[row + 1] = text[row + 1].replace(b",", b",x", 1)  # SUBJID "x...": fine; AGE next
        fields = text[row + 1].split(b",")
        fields[3] = b"old"
        text[row + 1] = b",".join(fields)
    csv_path.write_bytes(b"".join(text))
    started = time.perf_counter()
    delivery = read_delivery(csv_path, c)
    assert time.perf_counter() - started < 12
    assert [(i.column, i.row, i.value) for i in delivery.type_errors] == [
        ("AGE", 10, "old"), ("AGE", 500_000, "old"), ("AGE", 999_999, "old")]
