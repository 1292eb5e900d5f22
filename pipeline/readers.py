"""Read a delivery into an Arrow table typed by its contract (DESIGN Flow: read).

Formats: CSV, Parquet, SAS XPORT (.xpt), CDISC Dataset-JSON 1.1 (one JSON document, or
the NDJSON variant whose first line is the metadata and each further line a row array),
and NDJSON of one JSON object per line.

The same data gives the same typed table whatever the format. Strings lose trailing
spaces (XPORT pads them) and the contract's missing values become null; numbers given
as text may carry spaces, and "", "." and "NA" are missing in non-string columns; an
integral float is an integer; SAS numeric dates count days, and datetimes seconds, from
1960-01-01. A value that does not fit its column's type becomes null and is listed in
``Delivery.type_errors``: the validation step reports it, the reader does not raise.
A file that cannot be read at all raises :class:`ReadError` starting with its path.
"""

from __future__ import annotations

__all__ = ["ARROW_TYPES", "FORMATS", "Delivery", "TypeIssue", "read_delivery"]

import codecs
import json
import math
import mmap
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]
import pyarrow.csv as pcsv  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from pipeline.contract import Contract, Field
from pipeline.errors import ReadError
from pipeline.quoting import library_reason, quote_name, quote_names

FORMATS = ("csv", "parquet", "xpt", "dataset-json", "ndjson")

ARROW_TYPES: dict[str, Any] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
}

_ALIASES = {
    "pq": "parquet", "xport": "xpt", "sas": "xpt", "json": "dataset-json",
    "datasetjson": "dataset-json", "dataset_json": "dataset-json", "jsonl": "ndjson",
}
_EXTENSIONS = {
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xpt": "xpt",
    ".json": "dataset-json", ".ndjson": "ndjson", ".jsonl": "ndjson",
}

# Text that means "no value" in a non-string column, whatever the contract lists:
# SAS exports write "." and R exports (Dataset-JSON from the pilot 5 package) write "NA".
_NONSTRING_MISSING = frozenset({"", ".", "NA"})
_MAX_SAFE_INTEGER = 2**53 - 1
_SAS_EPOCH_DAYS = 3653  # 1960-01-01 to 1970-01-01
_SAS_EPOCH_SECONDS = _SAS_EPOCH_DAYS * 86400
# Years 1..9999: the canonical forms are "YYYY-MM-DD" and RFC 3339, four-digit years.
_MIN_DAY, _MAX_DAY = -719162, 2932896
_MIN_US, _MAX_US = _MIN_DAY * 86_400_000_000, (_MAX_DAY + 1) * 86_400_000_000 - 1

_INT_RE = r"^[+-]?[0-9]+$"
_DEC_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME_RE = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                r"(Z|[+-][0-9]{2}:?[0-9]{2})?$")
_ZONE_RE = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
_TRUE = ("true", "y", "1")
_FALSE = ("false", "n", "0")

_XPT_LIBRARY = (b"HEADER RECORD*******LIBRARY HEADER RECORD",
                b"HEADER RECORD*******LIBV8   HEADER RECORD")
_XPT_MEMBER = (b"HEADER RECORD*******MEMBER  HEADER RECORD",
               b"HEADER RECORD*******MEMBV8  HEADER RECORD")
_XPT_OBS = (b"HEADER RECORD*******OBS     HEADER RECORD",
            b"HEADER RECORD*******OBSV8   HEADER RECORD")
# SAS formats whose numbers count seconds (datetimes) or days (dates).
_SAS_DATETIME_FORMATS = re.compile(r"^(DATETIME|DTDATE|E8601DT|B8601DT|IS8601DT|E8601DZ|MDYAMPM)")
_SAS_DATE_FORMATS = re.compile(
    r"^(DATE|YYMMDD|MMDDYY|DDMMYY|E8601DA|B8601DA|IS8601DA|YYMON|MONYY|WORDDATE|WEEKDATE|"
    r"NLDATE|JULIAN|YYQ|MMYY|YYMM)")


class TypeIssue(NamedTuple):
    """A value that does not fit its column's contract type (it became null in the table)."""

    column: str
    row: int  # 0-based, in file order
    value: str  # the value as the file gave it


@dataclass(frozen=True)
class Delivery:
    """A delivery read and typed by its contract."""

    table: Any  # pyarrow.Table: exactly the contract's columns, in contract order
    missing_columns: tuple[str, ...]
    dropped_columns: tuple[str, ...]
    type_errors: list[TypeIssue]
    rows: int
    format: str


@dataclass
class _Source:
    """Columns as the file holds them, before the contract types them."""

    names: list[str]
    columns: dict[str, Any]  # name -> pa.Array
    rows: int
    # Values a reader already knows are unusable (nested JSON), per column: (row, raw text).
    issues: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # XPORT only: SAS format per column; numeric dates then count from 1960-01-01.
    sas_formats: dict[str, str] | None = None


# --------------------------------------------------------------------------- entry point


def read_delivery(
    path: Path | str, contract: Contract, fmt: str | None = None, name: str | None = None
) -> Delivery:
    """Read ``path`` (format from ``fmt``, else its extension, else its content) under
    ``contract``. Raises :class:`ReadError` for a file that cannot be read.

    ``name`` is the delivery's own file name when ``path`` is a copy of it (the staged
    bytes in ``raw/``): its extension chooses the format, and errors name it.
    """
    path = Path(path)
    if name is None:
        return _read(path, contract, fmt, path)
    try:
        return _read(path, contract, fmt, Path(name))
    except ReadError as exc:
        raise ReadError(str(exc).replace(str(path), name)) from None


def _read(path: Path, contract: Contract, fmt: str | None, named: Path) -> Delivery:
    if not path.exists():
        raise ReadError(f"{path}: no such file")
    if not path.is_file():
        raise ReadError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReadError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise ReadError(f"{path}: the file is empty (0 bytes)")
    kind = _format(path, fmt if fmt is not None else _EXTENSIONS.get(named.suffix.lower()))
    try:
        _check_magic(path, kind)
        source, actual = _READERS[kind](path, contract)
        return _conform(source, contract, path, actual)
    except (ReadError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a library's own error: name the file, never a bare traceback
        # from None: the library's own message may quote the file, and tracebacks are logged
        raise ReadError(f"{path}: cannot be read as {kind}: {library_reason(exc)}") from None


def _format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        kind = _ALIASES.get(fmt.lower(), fmt.lower())
        if kind not in FORMATS:
            raise ReadError(f"{path}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return kind
    kind_or_none = _EXTENSIONS.get(path.suffix.lower())
    if kind_or_none is not None:
        return kind_or_none
    return _sniff(path)


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _binary_kind(head: bytes) -> str | None:
    """Name a binary container from its first bytes, or None for text."""
    if head.startswith(b"PAR1"):
        return "Parquet"
    if head.startswith(_XPT_LIBRARY):
        return "SAS XPORT"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP (or XLSX)"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "OLE2 (XLS)"
    if head.startswith(b"SQLite format 3\x00"):
        return "SQLite"
    if head.startswith(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"):
        return "binary"
    return None


def _sniff(path: Path) -> str:
    """The format of a file without a telling extension (a staged ``raw/<sha256>``)."""
    head = _head(path)
    kind = _binary_kind(head)
    if kind == "Parquet":
        return "parquet"
    if kind == "SAS XPORT":
        return "xpt"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        first = _first_line_json(path)
        if isinstance(first, dict) and "datasetJSONVersion" in first:
            return "dataset-json"
        return "ndjson" if isinstance(first, dict) else "dataset-json"
    return "csv"


def _check_magic(path: Path, kind: str) -> None:
    head = _head(path, 80)
    found = _binary_kind(head)
    if kind == "parquet":
        if not head.startswith(b"PAR1"):
            raise ReadError(f"{path}: not a Parquet file (no PAR1 magic bytes at the start"
                            f"{'; it is a ' + found + ' file' if found else ''})")
        with open(path, "rb") as f:
            f.seek(-4, 2)
            if f.read(4) != b"PAR1":
                raise ReadError(f"{path}: truncated Parquet file (no PAR1 footer at the end)")
    elif kind == "xpt":
        if not head.startswith(_XPT_LIBRARY):
            what = f"it is a {found} file" if found else "it looks like text"
            raise ReadError(f"{path}: not a SAS XPORT file (no XPORT library header; {what})")
    elif found is not None:
        raise ReadError(f"{path}: is a {found} file, not {kind}")


# --------------------------------------------------------------------------- text helpers


def _utf8_error(path: Path, data: bytes | None = None) -> ReadError | None:
    """A ReadError locating the first byte that is not UTF-8, or None if all of it is."""
    if data is None:
        data = path.read_bytes()
    try:
        codecs.decode(data, "utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return ReadError(f"{path}: not valid UTF-8 at byte {exc.start} (line {line}); "
                         f"the file must be encoded as UTF-8")
    return None


def _decode(path: Path) -> str:
    data = path.read_bytes()
    error = _utf8_error(path, data)
    if error is not None:
        raise error
    return data.decode("utf-8-sig")


def _json_error(path: Path, exc: json.JSONDecodeError, line_offset: int = 0) -> ReadError:
    return ReadError(f"{path}: not valid JSON at line {exc.lineno + line_offset} column "
                     f"{exc.colno}: {exc.msg}")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _loads(path: Path, text: str, line: int | None = None) -> Any:
    """Parse JSON where a key repeated in one object is an error: parsers disagree on which
    of the two counts (the last, for Python), so the file says two things at once."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as dup:
        where = f" (line {line})" if line is not None else ""
        raise ReadError(f"{path}: duplicate JSON key {quote_name(dup.key)} in one "
                        f"object{where}") from None


def _first_line_json(path: Path) -> Any:
    with open(path, "rb") as f:
        line = f.readline()
    try:
        return json.loads(line.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _scalar_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)  # NaN is missing
    return str(value)


def _array_from_values(values: Sequence[Any]) -> tuple[Any, list[tuple[int, str]]]:
    """One JSON column as an Arrow array. Mixed value types (numbers and strings in one
    column) become text, which the contract then types like any other text."""
    issues = [(i, json.dumps(v)) for i, v in enumerate(values) if isinstance(v, dict | list)]
    if issues:
        values = [None if isinstance(v, dict | list) else v for v in values]
    try:
        return pa.array(values, from_pandas=True), issues
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([_scalar_text(v) for v in values], pa.string()), issues


def _source_from_columns(names: list[str], columns: Sequence[Sequence[Any]], rows: int) -> _Source:
    arrays: dict[str, Any] = {}
    issues: dict[str, list[tuple[int, str]]] = {}
    for name, values in zip(names, columns, strict=True):
        arrays[name], bad = _array_from_values(values)
        if bad:
            issues[name] = bad
    return _Source(names, arrays, rows, issues)


# --------------------------------------------------------------------------- format readers


def _read_csv(path: Path, contract: Contract) -> tuple[_Source, str]:
    error = _utf8_error(path, _head(path, 1 << 16).rsplit(b"\n", 1)[0])
    if error is not None:
        raise error
    convert = pcsv.ConvertOptions(
        # Every contract column is read as text so that the contract, not inference, types it
        # (inference would turn "0012" into 12).
        column_types={f.name: pa.string() for f in contract.fields},
        strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[],
    )
    try:
        table = pcsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "UTF8" in message or "UTF-8" in message:
            raise _utf8_error(path) or ReadError(f"{path}: {library_reason(exc)}") from None
        if "Expected" in message and "columns" in message:
            raise _ragged_csv(path, convert) from None
        if "Empty CSV file" in message:
            raise ReadError(f"{path}: no header row") from None
        raise ReadError(f"{path}: not a valid CSV file: {library_reason(exc)}") from None
    return _source_from_table(table), "csv"


def _ragged_csv(path: Path, convert: Any) -> ReadError:
    """Find the row with the wrong number of fields (only single-threaded reads number rows)."""
    found: list[Any] = []

    def handler(row: Any) -> str:
        found.append(row)
        return "error"

    try:
        pcsv.read_csv(path, read_options=pcsv.ReadOptions(use_threads=False),
                      parse_options=pcsv.ParseOptions(invalid_row_handler=handler),
                      convert_options=convert)
    except pa.ArrowInvalid as exc:
        if found:
            row = found[0]
            where = f"line {row.number}" if row.number is not None else "a row"
            return ReadError(f"{path}: {where} has {row.actual_columns} field(s); the header has "
                             f"{row.expected_columns}")
        return ReadError(f"{path}: not a valid CSV file: {library_reason(exc)}")
    return ReadError(f"{path}: rows have different numbers of fields")


def _source_from_table(table: Any) -> _Source:
    # duplicate names collapse here; _conform reports them from ``names``
    columns = {name: table.column(i) for i, name in enumerate(table.column_names)}
    return _Source(list(table.column_names), columns, table.num_rows)


def _read_parquet(path: Path, contract: Contract) -> tuple[_Source, str]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ReadError(f"{path}: corrupt or truncated Parquet file: "
                        f"{library_reason(exc)}") from None
    return _source_from_table(table), "parquet"


def _read_xpt(path: Path, contract: Contract) -> tuple[_Source, str]:
    import pyreadstat

    _check_xpt_members(path)
    try:
        try:
            data, meta = pyreadstat.read_xport(str(path), output_format="dict",
                                               disable_datetime_conversion=True)
        except UnicodeDecodeError:
            # XPORT records no encoding. Text that is not UTF-8 is read as Windows-1252,
            # the SAS WLATIN1 default (the pilot's ts.xpt has a 0x92 apostrophe).
            data, meta = pyreadstat.read_xport(str(path), output_format="dict",
                                               disable_datetime_conversion=True,
                                               encoding="WINDOWS-1252")
    except Exception as exc:  # pyreadstat's errors carry no file name
        raise ReadError(f"{path}: corrupt or not a SAS XPORT file: "
                        f"{library_reason(exc)}") from None
    names = list(meta.column_names)
    rows = int(meta.number_rows or 0) if names else 0
    widths = meta.variable_storage_width or {}
    _check_xpt_structure(path, rows, sum(int(widths.get(n, 0)) for n in names))
    kinds = meta.readstat_variable_types or {}
    columns: dict[str, Any] = {}
    for name in names:
        values = data[name]
        if kinds.get(name) == "string":
            columns[name] = pa.array(values, pa.string(), from_pandas=True)
        else:
            columns[name] = pa.array(values, pa.float64(), from_pandas=True)  # NaN: SAS missing
        rows = len(columns[name])
    formats = {n: str(f or "") for n, f in (meta.original_variable_types or {}).items()}
    return _Source(names, columns, rows, sas_formats=formats), "xpt"


def _check_xpt_structure(path: Path, rows: int, row_length: int) -> None:
    """XPORT has no row count, and pyreadstat silently returns the rows before a cut: so a
    truncated file is found from its layout (80-byte records; blank padding after the last
    row)."""
    size = path.stat().st_size
    if size % 80:
        raise ReadError(f"{path}: truncated SAS XPORT file ({size} bytes is not a whole number "
                        f"of 80-byte records)")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        obs = max(mm.find(marker) for marker in _XPT_OBS)
        if obs < 0:
            raise ReadError(f"{path}: corrupt SAS XPORT file (no OBS header record)")
        if row_length <= 0:
            return
        tail = mm[obs + 80 + rows * row_length:]
        if len(tail) >= 80 or tail.strip(b" "):
            raise ReadError(f"{path}: truncated SAS XPORT file (it ends inside row {rows + 1}; "
                            f"{rows} complete rows)")


def _check_xpt_members(path: Path) -> None:
    """pyreadstat reads the first dataset of a library only: refuse to hide the others."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        members = sum(_count(mm, marker) for marker in _XPT_MEMBER)
    if members > 1:
        raise ReadError(f"{path}: holds {members} datasets; a delivery must hold exactly one")


def _count(mm: mmap.mmap, marker: bytes) -> int:
    count, at = 0, mm.find(marker)
    while at >= 0:
        count += 1
        at = mm.find(marker, at + 1)
    return count


def _read_dataset_json(path: Path, contract: Contract) -> tuple[_Source, str]:
    suffix = path.suffix.lower()
    if suffix != ".json":
        # The NDJSON variant: line 1 is the metadata, so it has no "rows" (a one-line
        # document named .json without "rows" is a broken document instead).
        first = _first_line_json(path)
        if isinstance(first, dict) and "rows" not in first:
            return _read_dataset_ndjson(path)
        if suffix in (".ndjson", ".jsonl") and not isinstance(first, dict):
            raise ReadError(f"{path}: line 1 is not the Dataset-JSON metadata object")
    text = _decode(path)
    try:
        doc = _loads(path, text)
    except json.JSONDecodeError as exc:
        raise _json_error(path, exc) from None
    names = _dataset_json_columns(path, doc)
    rows = doc.get("rows")
    if rows is None:
        raise ReadError(f'{path}: Dataset-JSON has no "rows"')
    if not isinstance(rows, list):
        raise ReadError(f'{path}: Dataset-JSON "rows" must be a list of row arrays')
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise ReadError(f"{path}: Dataset-JSON row {i} is not an array")
        if len(row) != len(names):
            raise ReadError(f"{path}: Dataset-JSON row {i} has {len(row)} value(s); "
                            f"there are {len(names)} columns")
    _check_records(path, doc, len(rows))
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return _source_from_columns(names, columns, len(rows)), "dataset-json"


def _dataset_json_columns(path: Path, doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        raise ReadError(f"{path}: not Dataset-JSON (the top level is not a JSON object)")
    version = doc.get("datasetJSONVersion")
    if version is None:
        raise ReadError(f"{path}: not Dataset-JSON 1.1 (no datasetJSONVersion)")
    if not isinstance(version, str) or not re.match(r"^1\.1(\.|$)", version):
        shown = quote_name(version)
        shown = f"'{shown}'" if shown == version else shown  # a plain version, as it was
        raise ReadError(f"{path}: unsupported Dataset-JSON version {shown} "
                        f"(this reader reads 1.1.x)")
    columns = doc.get("columns")
    if columns is None:
        raise ReadError(f'{path}: Dataset-JSON has no "columns"')
    if not isinstance(columns, list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and c["name"] for c in columns):
        raise ReadError(f'{path}: Dataset-JSON "columns" must be a list of objects with a "name"')
    return [c["name"] for c in columns]


def _check_records(path: Path, doc: dict[str, Any], rows: int) -> None:
    records = doc.get("records")
    if records is not None and records != rows:
        said = records if isinstance(records, int) else quote_name(records)
        raise ReadError(f"{path}: Dataset-JSON says records={said} but holds {rows} rows "
                        f"(truncated or edited?)")


def _json_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers."""
    return [(i, line) for i, line in enumerate(_decode(path).split("\n"), 1) if line.strip()]


def _read_dataset_ndjson(path: Path) -> tuple[_Source, str]:
    lines = _json_lines(path)
    first_number, first_line = lines[0]
    meta = _loads(path, first_line, first_number)  # strictly this time: no repeated keys
    names = _dataset_json_columns(path, meta)
    rows: list[list[Any]] = []
    for number, line in lines[1:]:
        try:
            row = _loads(path, line, number)
        except json.JSONDecodeError as exc:
            raise _json_error(path, exc, number - 1) from None
        if not isinstance(row, list):
            raise ReadError(f"{path}: line {number} is not a row array")
        if len(row) != len(names):
            raise ReadError(f"{path}: line {number} has {len(row)} value(s); there are "
                            f"{len(names)} columns")
        rows.append(row)
    _check_records(path, meta, len(rows))
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return _source_from_columns(names, columns, len(rows)), "dataset-json"


def _read_ndjson(path: Path, contract: Contract) -> tuple[_Source, str]:
    first = _first_line_json(path)
    if isinstance(first, dict) and "datasetJSONVersion" in first:
        return _read_dataset_json(path, contract)
    records: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for number, line in _json_lines(path):
        try:
            obj = _loads(path, line, number)
        except json.JSONDecodeError as exc:
            raise _json_error(path, exc, number - 1) from None
        if not isinstance(obj, dict):
            raise ReadError(f"{path}: line {number} is not a JSON object")
        names.update(dict.fromkeys(obj))
        records.append(obj)
    columns = [[r.get(n) for r in records] for n in names]
    return _source_from_columns(list(names), columns, len(records)), "ndjson"


_READERS: dict[str, Callable[[Path, Contract], tuple[_Source, str]]] = {
    "csv": _read_csv,
    "parquet": _read_parquet,
    "xpt": _read_xpt,
    "dataset-json": _read_dataset_json,
    "ndjson": _read_ndjson,
}


# --------------------------------------------------------------------------- typing by contract


def _conform(source: _Source, contract: Contract, path: Path, fmt: str) -> Delivery:
    duplicates = sorted({n for n in source.names if source.names.count(n) > 1})
    if duplicates:
        raise ReadError(f"{path}: duplicate column name(s) {quote_names(duplicates)}")
    known = set(contract.field_names)
    unknown = [n for n in source.names if n not in known]
    if unknown and contract.unknown_columns == "error":
        raise ReadError(f"{path}: column(s) not in contract {contract.name!r}: "
                        f"{quote_names(unknown)} (the contract's unknownColumns is \"error\")")
    missing_values = frozenset(contract.missing_values)
    arrays, issues, missing = [], [], []
    for f in contract.fields:
        target = ARROW_TYPES[f.type]
        if f.name not in source.columns:
            missing.append(f.name)
            arrays.append(pa.nulls(source.rows, target))
            continue
        original = source.columns[f.name]
        sas_format = source.sas_formats.get(f.name, "") if source.sas_formats is not None else None
        typed, bad = _convert(original, f, missing_values, sas_format)
        for row in bad:
            issues.append(TypeIssue(f.name, row, _raw(original, row)))
        for row, raw in source.issues.get(f.name, ()):
            issues.append(TypeIssue(f.name, row, raw))
        arrays.append(typed)
    order = {name: i for i, name in enumerate(contract.field_names)}
    issues.sort(key=lambda issue: (issue.row, order[issue.column]))
    schema = pa.schema([pa.field(f.name, ARROW_TYPES[f.type]) for f in contract.fields])
    table = pa.Table.from_arrays(arrays, schema=schema)
    return Delivery(table, tuple(missing), tuple(unknown), issues, table.num_rows, fmt)


def _raw(array: Any, row: int) -> str:
    value = array[row].as_py()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return repr(value)
    return str(value)


_Result = tuple[Any, list[int]]


def _null(type_: Any) -> Any:
    return pa.scalar(None, type_)


def _indices(mask: Any) -> list[int]:
    """Rows where ``mask`` is true (null counts as false)."""
    if mask is None:
        return []
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return []
    return list(pc.indices_nonzero(mask).to_pylist())


def _cast_lenient(array: Any, target: Any) -> _Result:
    """Cast, with the values Arrow refuses set to null and their rows returned. Arrow fails
    a whole cast for one bad value, so the failing half is split until the values are found:
    a few vectorized casts per bad value instead of one Python call per row."""
    try:
        return pc.cast(array, target), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) <= 16:
        parts, bad = [], []
        for i in range(len(array)):
            try:
                parts.append(pc.cast(array.slice(i, 1), target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                parts.append(pa.nulls(1, target))
                bad.append(i)
        return pa.concat_arrays(parts), bad
    middle = len(array) // 2
    left, left_bad = _cast_lenient(array.slice(0, middle), target)
    right, right_bad = _cast_lenient(array.slice(middle), target)
    return pa.concat_arrays([left, right]), left_bad + [middle + i for i in right_bad]


def _in_set(array: Any, values: Sequence[Any]) -> Any:
    """``array`` is one of ``values`` (null stays null). A few equality tests beat is_in,
    which builds a hash table per chunk."""
    if not values:
        return pc.is_null(array)  # never true for a value; null where the array is null
    result = pc.equal(array, values[0])
    for value in values[1:]:
        result = pc.or_(result, pc.equal(array, value))
    return result


def _keep(array: Any, mask: Any) -> Any:
    """``array`` where ``mask`` is true, null elsewhere."""
    return pc.if_else(pc.fill_null(mask, False), array, _null(array.type))


def _merge(*parts: list[int]) -> list[int]:
    rows: set[int] = set()
    for part in parts:
        rows.update(part)
    return sorted(rows)


def _decode_dictionary(array: Any) -> Any:
    if pa.types.is_dictionary(array.type):
        return pc.cast(array, array.type.value_type)
    return array


def _is_text(t: Any) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t))


def _is_numeric(t: Any) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _convert(array: Any, f: Field, missing: frozenset[str], sas_format: str | None) -> _Result:
    array = _decode_dictionary(array)
    t = array.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        array, bad = _cast_lenient(array, pa.string())  # text that is not UTF-8 is a type error
        converted, more = _convert(array, f, missing, sas_format)
        return converted, _merge(bad, more)
    if pa.types.is_null(t):
        return pa.nulls(len(array), ARROW_TYPES[f.type]), []
    if _is_text(t):
        array = array.cast(pa.string())
    if f.type == "string":
        return _to_string(array, missing)
    if _is_text(t):
        text = _prepare_text(array, missing | _NONSTRING_MISSING)
        return _TEXT_CONVERTERS[f.type](text)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        array = array.cast(pa.float64())
        array = pc.if_else(pc.is_nan(array), _null(pa.float64()), array)  # NaN is missing
    return _typed_to(array, f.type, sas_format)


def _all_bad(array: Any, target: Any) -> _Result:
    return pa.nulls(len(array), target), _indices(pc.is_valid(array))


def _prepare_text(array: Any, missing: frozenset[str]) -> Any:
    text = pc.ascii_trim_whitespace(array)
    return pc.if_else(pc.fill_null(_in_set(text, sorted(missing)), False),
                      _null(pa.string()), text)


def _to_string(array: Any, missing: frozenset[str]) -> _Result:
    t = array.type
    bad: list[int] = []
    if pa.types.is_string(t):
        text = pc.ascii_rtrim(array, characters=" ")  # XPORT pads; other formats may too
    elif pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_date(t):
        text = pc.cast(array, pa.string())
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        number = pc.cast(array, pa.float64())
        number = pc.if_else(pc.is_nan(number), _null(pa.float64()), number)
        integral = pc.and_(pc.equal(pc.floor(number), number),
                           pc.less_equal(pc.abs(number), float(_MAX_SAFE_INTEGER)))
        as_int = pc.cast(pc.cast(_keep(number, integral), pa.int64()), pa.string())
        # an integral float reads as the integer it is, as it would in CSV or JSON
        text = pc.coalesce(as_int, pc.cast(number, pa.string()))
    elif pa.types.is_timestamp(t):
        if t.tz is not None:
            array = pc.cast(array, pa.timestamp(t.unit))
        text = pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")
    else:
        return _all_bad(array, pa.string())
    if missing:
        text = pc.if_else(pc.fill_null(_in_set(text, sorted(missing)), False),
                          _null(pa.string()), text)
    return text, bad


def _matches(text: Any, pattern: str) -> Any:
    return pc.fill_null(pc.match_substring_regex(text, pattern), False)


def _unmatched(text: Any, ok: Any) -> list[int]:
    return _indices(pc.and_(pc.is_valid(text), pc.invert(ok)))


def _float_to_int(number: Any) -> _Result:
    good = pc.and_(pc.and_(pc.is_finite(number), pc.equal(pc.floor(number), number)),
                   pc.less_equal(pc.abs(number), float(_MAX_SAFE_INTEGER)))
    good = pc.fill_null(good, False)
    return pc.cast(_keep(number, good), pa.int64()), _unmatched(number, good)


def _safe_integers(integers: Any) -> _Result:
    good = pc.fill_null(pc.less_equal(pc.abs_checked(integers), _MAX_SAFE_INTEGER), False)
    return _keep(integers, good), _unmatched(integers, good)


def _text_to_integer(text: Any) -> _Result:
    is_int = _matches(text, _INT_RE)
    not_int = _unmatched(text, is_int)
    plain = _keep(text, is_int)
    if pc.any(pc.starts_with(plain, "+")).as_py():
        plain = pc.replace_substring_regex(plain, pattern=r"^\+", replacement="")
    integers, bad_int = _cast_lenient(plain, pa.int64())  # beyond int64: a type error
    integers, bad_range = _safe_integers(integers)
    if not not_int:  # the usual case: plain integers only
        return integers, _merge(bad_int, bad_range)
    is_dec = pc.and_(_matches(text, _DEC_RE), pc.invert(is_int))
    floats, bad_float = _cast_lenient(_keep(text, is_dec), pa.float64())
    from_floats, bad_frac = _float_to_int(floats)
    result = pc.coalesce(integers, from_floats)
    return result, _merge(_unmatched(text, pc.or_(is_int, is_dec)), bad_int, bad_range,
                          bad_float, bad_frac)


def _text_to_number(text: Any) -> _Result:
    ok = _matches(text, _DEC_RE)
    unmatched = _unmatched(text, ok)
    if unmatched:
        is_nan = pc.fill_null(pc.equal(pc.ascii_lower(text), "nan"), False)
        text = pc.if_else(is_nan, _null(pa.string()), text)  # NaN is missing (DESIGN Formats 2)
        unmatched = _unmatched(text, ok)
    number, bad_cast = _cast_lenient(_keep(text, ok), pa.float64())
    finite = pc.fill_null(pc.is_finite(number), False)
    return _keep(number, finite), _merge(unmatched, bad_cast, _unmatched(number, finite))


def _text_to_boolean(text: Any) -> _Result:
    lower = pc.ascii_lower(text)
    is_true = pc.fill_null(_in_set(lower, _TRUE), False)
    is_false = pc.fill_null(_in_set(lower, _FALSE), False)
    result = pc.if_else(is_true, True, pc.if_else(is_false, False, _null(pa.bool_())))
    return result, _unmatched(text, pc.or_(is_true, is_false))


def _date_range(days: Any) -> _Result:
    good = pc.fill_null(pc.and_(pc.greater_equal(days, _MIN_DAY),
                                pc.less_equal(days, _MAX_DAY)), False)
    in_range = pc.cast(_keep(days, good), pa.int32())
    return pc.cast(in_range, pa.date32()), _unmatched(days, good)


def _text_to_date(text: Any) -> _Result:
    ok = _matches(text, _DATE_RE)
    dates, bad_cast = _cast_lenient(_keep(text, ok), pa.date32())
    return dates, _merge(_unmatched(text, ok), bad_cast)


def _text_to_datetime(text: Any) -> _Result:
    ok = _matches(text, _DATETIME_RE)
    zoned = pc.and_(ok, _matches(text, _ZONE_RE))
    naive = pc.and_(ok, pc.invert(zoned))
    local, bad_local = _cast_lenient(_keep(text, naive), pa.timestamp("us"))
    utc, bad_utc = _cast_lenient(_keep(text, zoned), pa.timestamp("us", tz="UTC"))
    result = pc.coalesce(local, pc.cast(utc, pa.timestamp("us")))
    result, bad_range = _timestamp_range(result)
    return result, _merge(_unmatched(text, ok), bad_local, bad_utc, bad_range)


def _timestamp_range(stamps: Any) -> _Result:
    micros = pc.cast(stamps, pa.int64())
    good = pc.fill_null(pc.and_(pc.greater_equal(micros, _MIN_US),
                                pc.less_equal(micros, _MAX_US)), False)
    return _keep(stamps, good), _unmatched(stamps, good)


_TEXT_CONVERTERS: dict[str, Callable[[Any], _Result]] = {
    "integer": _text_to_integer,
    "number": _text_to_number,
    "boolean": _text_to_boolean,
    "date": _text_to_date,
    "datetime": _text_to_datetime,
}


def _sas_unit(sas_format: str | None, default: str) -> str:
    fmt = (sas_format or "").upper()
    if _SAS_DATETIME_FORMATS.match(fmt):
        return "seconds"
    if _SAS_DATE_FORMATS.match(fmt):
        return "days"
    return default


def _typed_to(array: Any, target: str, sas_format: str | None) -> _Result:
    """Convert a typed (non-text) column: Parquet, XPORT numbers, JSON numbers/booleans."""
    t = array.type
    if target == "integer":
        if pa.types.is_integer(t):
            return _safe_integers(pc.cast(array, pa.int64()))
        if pa.types.is_floating(t):
            return _float_to_int(array)
        return _all_bad(array, pa.int64())
    if target == "number":
        if pa.types.is_integer(t):
            return pc.cast(array, pa.float64()), []
        if pa.types.is_floating(t):
            finite = pc.fill_null(pc.is_finite(array), False)
            return _keep(array, finite), _unmatched(array, finite)
        return _all_bad(array, pa.float64())
    if target == "boolean":
        if pa.types.is_boolean(t):
            return array, []
        if _is_numeric(t):
            number = pc.cast(array, pa.float64())
            ok = pc.fill_null(_in_set(number, (0.0, 1.0)), False)
            return pc.cast(_keep(number, ok), pa.bool_()), _unmatched(number, ok)
        return _all_bad(array, pa.bool_())
    if target == "date":
        return _typed_to_date(array, sas_format)
    return _typed_to_datetime(array, sas_format)


def _typed_to_date(array: Any, sas_format: str | None) -> _Result:
    t = array.type
    if pa.types.is_date(t):
        return pc.cast(array, pa.date32()), []
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            array = pc.cast(array, pa.timestamp(t.unit))
        midnight = pc.fill_null(pc.equal(pc.floor_temporal(array, unit="day"), array), False)
        dates = pc.cast(_keep(array, midnight), pa.date32())
        return dates, _unmatched(array, midnight)
    if sas_format is not None and _is_numeric(t):
        # SAS counts days from 1960-01-01 (seconds, for a DATETIME format)
        number = pc.cast(array, pa.float64())
        if _sas_unit(sas_format, "days") == "seconds":
            number = pc.divide(number, 86400.0)
        days, bad = _float_to_int(number)
        dates, bad_range = _date_range(pc.subtract(days, _SAS_EPOCH_DAYS))
        return dates, _merge(bad, bad_range)
    # A bare number in another format has no agreed epoch: not a date.
    return _all_bad(array, pa.date32())


def _typed_to_datetime(array: Any, sas_format: str | None) -> _Result:
    t = array.type
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            array = pc.cast(array, pa.timestamp(t.unit))  # the UTC wall time
        stamps, bad = _cast_lenient(array, pa.timestamp("us"))  # sub-microsecond: a type error
        stamps, bad_range = _timestamp_range(stamps)
        return stamps, _merge(bad, bad_range)
    if sas_format is not None and _is_numeric(t):
        # SAS counts seconds from 1960-01-01 (days, for a DATE format)
        number = pc.cast(array, pa.float64())
        scale = 86_400_000_000.0 if _sas_unit(sas_format, "seconds") == "days" else 1_000_000.0
        micros = pc.round(pc.multiply(number, scale))
        finite = pc.fill_null(pc.and_(pc.is_finite(micros),
                                      pc.less_equal(pc.abs(micros), 2.0**62)), False)
        as_int = pc.subtract(pc.cast(_keep(micros, finite), pa.int64()),
                             _SAS_EPOCH_SECONDS * 1_000_000)
        stamps, bad_range = _timestamp_range(pc.cast(as_int, pa.timestamp("us")))
        return stamps, _merge(_unmatched(number, finite), bad_range)
    # Dates (no time of day) and bare numbers are not datetimes.
    return _all_bad(array, pa.timestamp("us"))
