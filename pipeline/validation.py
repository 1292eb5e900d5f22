"""Validate a delivery against its contract with Great Expectations (DESIGN Flow: validate).

:func:`compile_suite` turns a :class:`~pipeline.contract.Contract` into a GX
``ExpectationSuite``: for every field the column exists, has the contract type, and keeps
its constraints (required, enum, pattern, minimum/maximum, minLength/maxLength); the
primary key is present and unique. The contract's extra suite (``trialproof.expectations``,
a GX 1.x suite JSON file) is appended.

:func:`validate` runs that suite on an Arrow table in an ephemeral GX context that writes
no files, and returns a :class:`ValidationReport`. The reader's findings become checks of
their own: values that did not fit the contract type ("values have the contract type")
and contract columns absent from the delivery ("column exists").

The report identifies failing rows by primary key (or by 0-based row index when the
contract has none), at most :data:`FAILING_ROWS_CAP` per check; people see them numbered
from 1. Its JSON form is deterministic: the same table, contract and reader findings give
the same bytes.

Great Expectations is imported on first use, never at module import, so that the CLI and
Airflow DAG parsing stay fast.
"""

from __future__ import annotations

__all__ = [
    "FAILING_ROWS_CAP",
    "REPORT_TYPE",
    "TypeIssueLike",
    "ValidationReport",
    "compile_suite",
    "failure_digest",
    "json_safe",
    "rejection_html",
    "validate",
]

import datetime as dt
import importlib
import json
import logging
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from pipeline.contract import Contract, Field, read_json_file
from pipeline.errors import ContractError

#: At most this many failing rows are listed per check.
FAILING_ROWS_CAP = 20
#: The ``type`` of a report's JSON form.
REPORT_TYPE = "trialproof/validation-report/v1"

# The pandas type names ExpectColumnValuesToBeOfType compares with a column's dtype.type.
# With Arrow-backed columns dtype.type is the Python scalar type (str, int, float, bool,
# datetime.date, datetime.datetime); with numpy columns it is np.int64 / np.float64 / np.bool_,
# which np.dtype("int"/"float"/"bool") also gives. GX resolves "date" and "datetime" through
# pandas.core.dtypes.dtypes, which re-exports the datetime classes.
_GX_TYPE_NAMES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "date": "date",
    "datetime": "datetime",
}
_RANGE_TYPES = ("integer", "number", "date", "datetime")
_CHECK_META = "trialproof_check"


class TypeIssueLike(Protocol):
    """A value the reader could not give its contract type (``pipeline.readers.TypeIssue``)."""

    @property
    def column(self) -> str: ...

    @property
    def row(self) -> int: ...  # 0-based, in file order (= the table's row index)

    @property
    def value(self) -> Any: ...


# --------------------------------------------------------------------------- GX at the boundary

_gx_module: Any = None


def _gx() -> Any:
    """Import Great Expectations on first use; everything GX is ``Any`` from here on."""
    global _gx_module  # noqa: PLW0603 - a lazily imported module, set once
    if _gx_module is None:
        with _quiet():
            module: Any = importlib.import_module("great_expectations")
            engine: Any = importlib.import_module(
                "great_expectations.execution_engine.pandas_execution_engine"
            )
        # GX fingerprints every pandas batch smaller than HASH_THRESHOLD bytes with
        # pandas.util.hash_pandas_object (11-20 s for 1M rows x 12 columns here) only to
        # put an MD5 into the result's batch_markers, which the report leaves out anyway.
        engine.HASH_THRESHOLD = 0
        _gx_module = module
    return _gx_module


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep GX's log records and warnings off stderr while it works."""
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _expectation_configuration(kind: str, kwargs: Mapping[str, Any],
                               meta: Mapping[str, Any] | None = None) -> Any:
    module: Any = importlib.import_module(
        "great_expectations.expectations.expectation_configuration"
    )
    return module.ExpectationConfiguration(type=kind, kwargs=dict(kwargs), meta=dict(meta or {}))


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class _Check:
    """One line of the report: a GX expectation, or a finding of the reader."""

    expectation: str  # GX snake_case type, e.g. "expect_column_values_to_be_in_set"
    kwargs: Mapping[str, Any]  # JSON-safe, as reported
    description: str
    origin: str  # "contract", "suite" (the contract's extra suite) or "reader"
    gx_kwargs: Mapping[str, Any] | None = None  # what GX gets; None: a reader finding
    meta: Mapping[str, Any] = field(default_factory=dict)
    # reader findings only
    failing: tuple[tuple[int, Any], ...] = ()  # (row, value), all of them
    count: int = 0

    @property
    def columns(self) -> list[str]:
        return _columns_of(self.kwargs)


def _columns_of(kwargs: Mapping[str, Any]) -> list[str]:
    if isinstance(kwargs.get("column"), str):
        return [kwargs["column"]]
    if isinstance(kwargs.get("column_list"), list):
        return [str(c) for c in kwargs["column_list"]]
    return [str(kwargs[k]) for k in ("column_A", "column_B") if isinstance(kwargs.get(k), str)]


def _typed_bound(f: Field, what: str, value: Any) -> Any:
    """A contract value as GX must compare it with the column (dates as date objects)."""
    if f.type not in ("date", "datetime") or not isinstance(value, str):
        return value
    try:
        if f.type == "date":
            return dt.date.fromisoformat(value)
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ContractError(f"field {f.name!r}: {what} {value!r} is not an ISO 8601 "
                            f"{f.type}") from None
    # Datetime columns reach GX in UTC; a bound without an offset is UTC too.
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp


def _field_checks(f: Field, key: Sequence[str]) -> list[_Check]:
    name = f.name
    checks = [
        _Check("expect_column_to_exist", {"column": name}, "column exists", "contract",
               {"column": name}),
        _Check("expect_column_values_to_be_of_type",
               {"column": name, "type_": _GX_TYPE_NAMES[f.type]},
               f"column has the contract type ({f.type})", "contract",
               {"column": name, "type_": _GX_TYPE_NAMES[f.type]}),
    ]
    if f.required or name in key:
        why = "primary key" if name in key else "required"
        checks.append(_Check("expect_column_values_to_not_be_null", {"column": name},
                             f"values are present ({why})", "contract", {"column": name}))
    if f.enum is not None:
        checks.append(_Check(
            "expect_column_values_to_be_in_set", {"column": name, "value_set": list(f.enum)},
            "values are in the allowed set (enum)", "contract",
            {"column": name, "value_set": [_typed_bound(f, "enum value", v) for v in f.enum]},
        ))
    if f.pattern is not None:
        if f.type != "string":
            raise ContractError(f"field {f.name!r}: pattern applies to string fields only, "
                                f"not {f.type}")
        # Table Schema patterns match the whole value; GX's pandas check is re.search-like.
        # \Z, not $ (which Python lets match before a final newline); pandas hands the
        # pattern to RE2 as \z, or to Python's re for what RE2 cannot do (lookarounds ...).
        regex = f"^(?:{f.pattern})\\Z"
        checks.append(_Check(
            "expect_column_values_to_match_regex", {"column": name, "regex": regex},
            f"values match the pattern {f.pattern}", "contract",
            {"column": name, "regex": regex},
        ))
    if f.minimum is not None or f.maximum is not None:
        if f.type not in _RANGE_TYPES:
            raise ContractError(f"field {f.name!r}: minimum/maximum apply to "
                                f"{', '.join(_RANGE_TYPES)} fields, not {f.type}")
        bounds = {"min_value": f.minimum, "max_value": f.maximum}
        checks.append(_Check(
            "expect_column_values_to_be_between", {"column": name, **bounds},
            "values are within the allowed range (minimum/maximum)", "contract",
            {"column": name, **{k: _typed_bound(f, k, v) for k, v in bounds.items()}},
        ))
    if f.min_length is not None or f.max_length is not None:
        if f.type != "string":
            raise ContractError(f"field {f.name!r}: minLength/maxLength apply to string "
                                f"fields only, not {f.type}")
        lengths = {"min_value": f.min_length, "max_value": f.max_length}
        checks.append(_Check(
            "expect_column_value_lengths_to_be_between", {"column": name, **lengths},
            "value lengths are within the allowed range (minLength/maxLength)", "contract",
            lengths | {"column": name},
        ))
    return checks


def _key_check(key: Sequence[str]) -> _Check:
    if len(key) == 1:
        return _Check("expect_column_values_to_be_unique", {"column": key[0]},
                      "primary key is unique", "contract", {"column": key[0]})
    return _Check("expect_compound_columns_to_be_unique", {"column_list": list(key)},
                  "primary key is unique", "contract", {"column_list": list(key)})


def _suite_checks(path: Path) -> list[_Check]:
    """The extra suite's expectations, checked by GX itself; a bad file is a ContractError."""
    document = read_json_file(path, f"expectation suite {path}")
    if not isinstance(document, Mapping) or not isinstance(document.get("expectations"), list):
        raise ContractError(f'expectation suite {path}: must be a JSON object with an '
                            f'"expectations" list (the GX 1.x suite format)')
    checks: list[_Check] = []
    problems: list[str] = []
    for i, entry in enumerate(document["expectations"]):
        kind = entry.get("type", entry.get("expectation_type")) if isinstance(entry, Mapping) \
            else None
        kwargs = entry.get("kwargs", {}) if isinstance(entry, Mapping) else None
        meta = entry.get("meta") or {} if isinstance(entry, Mapping) else None
        if not isinstance(kind, str) or not isinstance(kwargs, Mapping) \
                or not isinstance(meta, Mapping):
            problems.append(f'expectations[{i}] must be an object with a "type" string and '
                            f'a "kwargs" object')
            continue
        checks.append(_Check(kind, json_safe(kwargs),
                             str(meta.get("description") or kind.replace("_", " ")),
                             "suite", dict(kwargs), dict(meta)))
    if problems:
        raise ContractError(f"expectation suite {path}: {'; '.join(problems)}")
    _build_suite(f"suite:{path.name}", checks, source=str(path))  # unknown types, bad kwargs
    return checks


def _build_suite(name: str, checks: Sequence[_Check], source: str) -> Any:
    """A GX ExpectationSuite of ``checks`` (tagged with their positions), or a ContractError.

    GX drops an expectation whose type it does not know with nothing but a log record, so
    the suite's size is checked against what was asked for.
    """
    gx = _gx()
    configs = [
        _expectation_configuration(c.expectation, c.gx_kwargs or {}, {**c.meta, _CHECK_META: i})
        for i, c in enumerate(checks)
    ]
    with _quiet():
        try:
            suite = gx.ExpectationSuite(name=name, expectations=configs)
        except Exception:  # every reason is collected and explained below
            suite = None
    if suite is not None and len(suite.expectations) == len(configs):
        return suite
    declared = Counter(c.expectation for c in checks)
    kept = 0 if suite is None else len(suite.expectations)
    problems = []
    unknown = sorted(set(declared) - _known_types(declared))
    if unknown:
        problems.append(f"unknown expectation type(s) {', '.join(unknown)}")
    for i, config in enumerate(configs):
        if checks[i].expectation in unknown:
            continue
        try:
            with _quiet():
                config.to_domain_obj()
        except Exception as exc:  # pydantic and GX errors alike
            detail = " ".join(str(exc).split())
            problems.append(f"expectations[{i}] ({checks[i].expectation}): {detail}")
    if not problems:  # pragma: no cover - GX lost one for a reason of its own
        problems.append(f"GX kept {kept} of {len(configs)} expectations")
    raise ContractError(f"expectation suite {source}: {'; '.join(problems)}")


def _known_types(kinds: Iterable[str]) -> set[str]:
    registry: Any = importlib.import_module("great_expectations.expectations.registry")
    known = set()
    for kind in kinds:
        try:
            registry.get_expectation_impl(kind)
        except Exception:  # not registered
            continue
        known.add(kind)
    return known


def _contract_checks(contract: Contract, absent: Iterable[str] = ()) -> list[_Check]:
    skip = set(absent)
    checks: list[_Check] = []
    for f in contract.fields:
        field_checks = _field_checks(f, contract.primary_key)
        if f.name not in skip:
            checks.extend(field_checks)
    if contract.primary_key and not skip & set(contract.primary_key):
        checks.append(_key_check(contract.primary_key))
    return checks


def compile_suite(contract: Contract) -> Any:
    """The contract as a ``great_expectations.ExpectationSuite``, its extra suite appended.

    Raises :class:`ContractError` for a constraint GX cannot check on its field's type, and
    for an extra suite that is unreadable, not JSON, or has an expectation GX does not know
    or cannot build from its kwargs (each such expectation is named).
    """
    checks = _contract_checks(contract)
    if contract.expectations is not None:
        checks += _suite_checks(contract.expectations)
    return _build_suite(f"contract:{contract.name}", checks, source=contract.name)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class ValidationReport:
    """What validation found. ``results`` holds one JSON-safe dict per check, in a fixed order:
    per contract field, its checks (exists, type, reader type issues, required, enum, pattern,
    range, length), then primary-key uniqueness (and, only when it fails, uniqueness after
    Unicode NFC normalization), then the extra suite's expectations.

    Each result: ``expectation`` (GX type), ``check`` (plain words), ``origin`` ("contract",
    "suite" or "reader"), ``columns``, ``kwargs``, ``success``, ``unexpected_count``,
    ``unexpected_percent``, ``observed_value``, ``errors`` (GX exception messages) and
    ``failing_rows``: up to 20 of ``{"key": {pk column: value} or {"row": n}, "row": n,
    "value": offending value}`` (``row`` is 0-based; the HTML page and the task-log digest
    number rows from 1, the first data row of the delivery).
    """

    success: bool
    source_name: str
    contract_name: str
    contract_sha256: str
    rows: int
    results: list[dict[str, Any]]
    engine: str = ""

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["success"]]

    def summary(self) -> str:
        """One line: PASS/FAIL and the failed checks."""
        if self.success:
            return f"PASS: {len(self.results)} checks on {self.rows} rows of {self.source_name}"
        failed = [f"{r['check']} [{', '.join(r['columns']) or 'table'}]" for r in self.failures]
        return (f"FAIL: {len(failed)} of {len(self.results)} checks failed on {self.rows} rows "
                f"of {self.source_name}: {'; '.join(failed)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": REPORT_TYPE,
            "success": self.success,
            "source": {"name": self.source_name},
            "contract": {"name": self.contract_name, "sha256": self.contract_sha256},
            "rows": self.rows,
            "engine": self.engine,
            "statistics": {
                "checks": len(self.results),
                "passed": sum(1 for r in self.results if r["success"]),
                "failed": len(self.failures),
            },
            "results": self.results,
        }

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys, no timestamps or run ids): hash it as it is."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ValidationReport:
        data = json.loads(text)
        return cls(
            success=bool(data["success"]),
            source_name=data["source"]["name"],
            contract_name=data["contract"]["name"],
            contract_sha256=data["contract"]["sha256"],
            rows=int(data["rows"]),
            results=list(data["results"]),
            engine=str(data.get("engine", "")),
        )

    def to_html(self) -> str:
        """A self-contained page for a data manager (``templates/report.html``): the summary
        and the failed checks with their rows first, the passing checks folded after."""
        return _render_html(self)


# --------------------------------------------------------------------------- validate


def validate(
    table: Any,
    contract: Contract,
    *,
    type_issues: Iterable[TypeIssueLike] = (),
    missing_columns: Iterable[str] = (),
    source_name: str,
) -> ValidationReport:
    """Validate ``table`` (a ``pyarrow.Table`` typed by ``contract``) and report.

    ``type_issues`` are the reader's values that did not fit their column's type;
    ``missing_columns`` the contract columns the delivery lacks (the reader fills them with
    nulls). Both fail the report. GX runs in an ephemeral context and writes no files.
    Raises :class:`ContractError` if the contract's extra suite is invalid.
    """
    names = set(table.column_names)
    absent = [f.name for f in contract.fields
              if f.name in set(missing_columns) or f.name not in names]
    issues: dict[str, list[tuple[int, Any]]] = {}
    for issue in type_issues:
        issues.setdefault(issue.column, []).append((int(issue.row), issue.value))

    plan: list[_Check] = []
    for f in contract.fields:
        if f.name in absent:
            plan.append(_Check("expect_column_to_exist", {"column": f.name}, "column exists",
                               "reader"))
            if f.name in issues:
                plan.append(_type_issue_check(f.name, f.type, issues.pop(f.name)))
            continue
        for check in _field_checks(f, contract.primary_key):
            plan.append(check)
            if check.expectation == "expect_column_values_to_be_of_type" and f.name in issues:
                plan.append(_type_issue_check(f.name, f.type, issues.pop(f.name)))
    if contract.primary_key and not set(absent) & set(contract.primary_key):
        plan.append(_key_check(contract.primary_key))
        normalization = _normalization_check(table, contract.primary_key)
        if normalization is not None:
            plan.append(normalization)
    for column in sorted(issues):  # columns the contract does not know
        plan.append(_type_issue_check(column, "unknown", issues[column]))
    if contract.expectations is not None:
        plan.extend(_suite_checks(contract.expectations))

    outcomes = _run_gx(table, contract, [c for c in plan if c.gx_kwargs is not None])
    results: list[dict[str, Any]] = []
    gx_results = iter(outcomes)
    for check in plan:
        if check.gx_kwargs is None:
            results.append(_reader_result(check, table, contract))
        else:
            results.append(next(gx_results))
    gx = _gx()
    return ValidationReport(
        success=all(r["success"] for r in results),
        source_name=source_name,
        contract_name=contract.name,
        contract_sha256=contract.sha256,
        rows=int(table.num_rows),
        results=results,
        engine=f"great_expectations {gx.__version__}",
    )


def _normalization_check(table: Any, key: Sequence[str]) -> _Check | None:
    """Key values that differ only in their Unicode normalization ("é" as one code point,
    NFC, or as "e" and a combining accent, NFD) look the same but hash apart, so one record
    would be committed twice. A failed check naming the rows, or None when there are none
    (the check is listed only when it fails)."""
    pa: Any = importlib.import_module("pyarrow")
    pc: Any = importlib.import_module("pyarrow.compute")
    text = [k for k in key if pa.types.is_string(table.schema.field(k).type)
            or pa.types.is_large_string(table.schema.field(k).type)]
    normalized = {k: pc.utf8_normalize(table.column(k), form="NFC") for k in text}
    if not any(pc.any(pc.not_equal(table.column(k), normalized[k])).as_py() for k in text):
        return None  # every value is NFC already: distinct values stay distinct
    raw = [table.column(k).to_pylist() for k in key]
    folded = [normalized[k].to_pylist() if k in normalized else raw[i]
              for i, k in enumerate(key)]
    spellings: dict[tuple[Any, ...], set[tuple[Any, ...]]] = {}
    for row in range(table.num_rows):
        spellings.setdefault(tuple(c[row] for c in folded), set()).add(
            tuple(c[row] for c in raw))
    failing = []
    for row in range(table.num_rows):
        if len(spellings[tuple(c[row] for c in folded)]) > 1:
            # escaped, so that the two spellings can be told apart in the report
            shown = {k: None if raw[i][row] is None else
                     str(raw[i][row]).encode("ascii", "backslashreplace").decode("ascii")
                     for i, k in enumerate(key) if k in normalized}
            failing.append((row, shown[text[0]] if len(shown) == 1 else shown))
    if not failing:
        return None
    return _Check("expect_primary_key_to_be_unique_after_unicode_normalization",
                  {"column_list": list(key), "form": "NFC"},
                  "primary key values are distinct after Unicode normalization (NFC)",
                  "reader", failing=tuple(failing), count=len(failing))


def _type_issue_check(column: str, kind: str, found: list[tuple[int, Any]]) -> _Check:
    found.sort(key=lambda item: item[0])
    return _Check("expect_column_values_to_have_contract_type", {"column": column, "type": kind},
                  f"values have the contract type ({kind})", "reader",
                  failing=tuple(found), count=len(found))


# --------------------------------------------------------------------------- running GX


def _to_frame(table: Any) -> Any:
    """The table as pandas, zero-copy where it can be, in dtypes GX checks quickly.

    Arrow-backed columns (``pd.ArrowDtype``) throughout, except: floating columns become
    numpy float64 (null as NaN) and integer columns without nulls numpy int64, because
    GX's ExpectColumnValuesToBeBetween is vectorized only for numpy int/float dtypes (it
    calls a Python function per value otherwise: about 1 s per million rows). Naive
    timestamps are read as UTC, like the canonical form does.
    """
    pa: Any = importlib.import_module("pyarrow")
    pd: Any = importlib.import_module("pandas")
    data: dict[str, Any] = {}
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        column, kind = chunked, chunked.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        series: Any = None
        if pa.types.is_floating(kind):
            series = column.cast(pa.float64()).to_pandas()
        elif pa.types.is_integer(kind) and column.null_count == 0:
            try:
                series = column.cast(pa.int64()).to_pandas()
            except (pa.ArrowInvalid, OverflowError):
                series = None  # uint64 beyond int64: keep it Arrow-backed
        elif pa.types.is_timestamp(kind) and kind.tz is None:
            column = column.cast(pa.timestamp(kind.unit, tz="UTC"))
        if series is None:
            series = column.to_pandas(types_mapper=pd.ArrowDtype)
        data[name] = series
    return pd.DataFrame(data, copy=False)


def _run_gx(table: Any, contract: Contract, checks: Sequence[_Check]) -> list[dict[str, Any]]:
    """Run ``checks`` on ``table`` in an ephemeral GX context; one result per check, in order."""
    if not checks:
        return []
    gx = _gx()
    suite = _build_suite(f"contract:{contract.name}", checks, source=contract.name)
    frame = _to_frame(table)
    base: Any = importlib.import_module("great_expectations.data_context.types.base")
    # In-memory stores, no data-docs site (GX's default ephemeral config points one at a
    # temporary directory), no progress bars on stderr, no analytics.
    config = base.DataContextConfig(
        store_backend_defaults=base.InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=base.ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    with _quiet():
        context = gx.get_context(mode="ephemeral", project_config=config)
        batch = (
            context.data_sources.add_pandas("delivery")
            .add_dataframe_asset("table")
            .add_batch_definition_whole_dataframe("whole table")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        # SUMMARY lists the first unexpected values and their row indices. The primary key
        # is looked up in the Arrow table for those rows only: GX's own
        # unexpected_index_column_names walks every unexpected row in Python with
        # DataFrame.at (38 s for a column whose million values all fail).
        outcome = batch.validate(suite, result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": FAILING_ROWS_CAP,
        })
    by_check: dict[int, Any] = {}
    for result in outcome.results:
        index = (result.expectation_config.meta or {}).get(_CHECK_META)
        if isinstance(index, int):
            by_check[index] = result
    rows = _Rows(table, contract.primary_key)
    return [_gx_result(check, by_check.get(i), rows) for i, check in enumerate(checks)]


class _Rows:
    """Look up failing rows in the Arrow table: their primary key and offending values."""

    def __init__(self, table: Any, key: Sequence[str]) -> None:
        self.table = table
        present = set(table.column_names)
        self.key = list(key) if key and all(k in present for k in key) else []

    def failing(self, rows: Sequence[int], columns: Sequence[str],
                values: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        pa: Any = importlib.import_module("pyarrow")
        rows = [int(r) for r in rows[:FAILING_ROWS_CAP]]
        valid = [r for r in rows if 0 <= r < self.table.num_rows]
        where = pa.array(valid, pa.int64())
        present = [c for c in columns if c in set(self.table.column_names)]
        looked_up = {c: dict(zip(valid, self.table.column(c).take(where).to_pylist(),
                                 strict=True))
                     for c in {*self.key, *present}}
        entries = []
        for j, row in enumerate(rows):
            if self.key and row in looked_up[self.key[0]]:
                key = {k: json_safe(looked_up[k][row]) for k in self.key}
            else:
                key = {"row": row}
            value: Any
            if values is not None:
                value = values[j]
            elif len(present) == 1:
                value = looked_up[present[0]].get(row)
            elif present:
                value = {c: looked_up[c].get(row) for c in present}
            else:
                value = None
            entries.append({"key": key, "row": row, "value": json_safe(value)})
        return entries


def _result(check: _Check, success: bool, **found: Any) -> dict[str, Any]:
    percent = found.get("unexpected_percent")
    return {
        "expectation": check.expectation,
        "check": check.description,
        "origin": check.origin,
        "columns": check.columns,
        "kwargs": json_safe(dict(check.kwargs)),
        "success": success,
        "unexpected_count": found.get("unexpected_count"),
        "unexpected_percent": None if percent is None else round(float(percent), 6),
        "observed_value": json_safe(found.get("observed_value")),
        "errors": found.get("errors", []),
        "failing_rows": found.get("failing_rows", []),
    }


def _gx_result(check: _Check, outcome: Any, rows: _Rows) -> dict[str, Any]:
    if outcome is None:
        return _result(check, False, errors=["Great Expectations returned no result"])
    found: dict[str, Any] = dict(outcome.result or {})
    success = bool(outcome.success)
    count = found.get("unexpected_count")
    failing: list[dict[str, Any]] = []
    if not success:
        indices = [i for i in found.get("partial_unexpected_index_list") or []
                   if isinstance(i, int) or hasattr(i, "__index__")]
        failing = rows.failing([int(i) for i in indices], check.columns)
    return _result(
        check, success,
        unexpected_count=None if count is None else int(count),
        unexpected_percent=found.get("unexpected_percent"),
        observed_value=found.get("observed_value"),
        errors=_exception_messages(outcome.exception_info),
        failing_rows=failing,
    )


def _reader_result(check: _Check, table: Any, contract: Contract) -> dict[str, Any]:
    if check.expectation == "expect_column_to_exist":
        return _result(check, False, observed_value="absent from the delivery")
    rows = int(table.num_rows)
    listed = check.failing[:FAILING_ROWS_CAP]
    return _result(
        check, False,
        unexpected_count=check.count,
        unexpected_percent=100.0 * check.count / rows if rows else 100.0,
        failing_rows=_Rows(table, contract.primary_key).failing(
            [row for row, _ in listed], check.columns, [value for _, value in listed]
        ),
    )


def _exception_messages(info: Any) -> list[str]:
    """GX's exception messages (no tracebacks: they carry paths and line numbers)."""
    messages: set[str] = set()

    def collect(item: Any) -> None:
        if not isinstance(item, Mapping):
            return
        if "exception_message" in item or "raised_exception" in item:
            message = item.get("exception_message")
            if message and (item.get("raised_exception") or item.get("exception_traceback")):
                messages.add(" ".join(str(message).split()))
            return
        for value in item.values():
            collect(value)

    collect(info)
    return sorted(messages)


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: ISO 8601 dates, no NaN, numpy scalars unwrapped."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else str(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((json_safe(v) for v in value), key=repr)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


# --------------------------------------------------------------------------- text digest


def failure_digest(report_json: str, rows_per_check: int = 5) -> list[str]:
    """The report's failures as plain lines for a task log: each failed check with its
    first failing rows (key, 1-based row number, value); or, for a delivery that could not
    be read, the reader's problem."""
    data = json.loads(report_json)
    if "results" not in data:  # a rejection: the file could not be read
        return [f"could not be read: {data.get('error')}"]
    report = ValidationReport.from_json(report_json)
    lines = [report.summary()]
    for result in report.failures:
        columns = ", ".join(result["columns"]) or "table"
        count = result.get("unexpected_count")
        lines.append(f"  FAILED {result['check']} [{columns}]"
                     + (f": {count:,} row(s)" if count is not None else ""))
        for entry in result["failing_rows"][:rows_per_check]:
            key = ", ".join(f"{k}={_text(v)}" for k, v in entry["key"].items() if k != "row")
            where = f"row {_row_number(entry)}" + (f" ({key})" if key else "")
            lines.append(f"    {where}: {_short(entry['value'], 120)}")
    return lines


# --------------------------------------------------------------------------- HTML

#: The page template (Jinja2, autoescaped), shipped beside this module.
REPORT_TEMPLATE = "templates/report.html"
_ORIGINS = {"reader": "found by the reader", "suite": "contract's extra suite"}


def _text(value: Any) -> str:
    """A value as the page shows it: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(json_safe(value), ensure_ascii=False, sort_keys=True)


def _short(value: Any, limit: int = 240) -> str:
    text = _text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _render(**page: Any) -> str:
    """Fill the report template; Jinja2 (a dependency of GX) is imported on first use."""
    import jinja2

    source = (Path(__file__).parent / REPORT_TEMPLATE).read_text(encoding="utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True)
    return environment.from_string(source).render(**page)


def _page_check(number: int, result: Mapping[str, Any]) -> dict[str, Any]:
    failing = result.get("failing_rows") or []
    key_columns: list[str] = []
    for entry in failing:
        if "row" not in entry["key"]:  # {"row": n} stands in for a missing primary key
            key_columns.extend(k for k in entry["key"] if k not in key_columns)
    return {
        "number": number,
        "check": result["check"],
        "origin": _ORIGINS.get(result.get("origin") or ""),
        "columns": ", ".join(result["columns"]) or "table",
        "expectation": result["expectation"],
        "kwargs": _short(result["kwargs"], 1000 if not result["success"] else 240),
        "count": result.get("unexpected_count"),
        "observed": None if result.get("observed_value") is None
        else _text(result["observed_value"]),
        "errors": list(result.get("errors") or []),
        "key_columns": key_columns,
        "failing": [{"key": [_text(entry["key"].get(k)) for k in key_columns],
                     "number": _row_number(entry), "value": _text(entry["value"])}
                    for entry in failing],
    }


def _row_number(entry: Mapping[str, Any]) -> Any:
    """The row as people count it: from 1, the first data row (``row`` is 0-based)."""
    return entry["row"] + 1 if isinstance(entry.get("row"), int) else ""


def _render_html(report: ValidationReport) -> str:
    checks = [_page_check(n, r) for n, r in enumerate(report.results, 1)]
    failed = [c for c, r in zip(checks, report.results, strict=True) if not r["success"]]
    passed = [c for c, r in zip(checks, report.results, strict=True) if r["success"]]
    verdict = "PASS" if report.success else "FAIL"
    return _render(verdict=verdict, badge=verdict.lower(), source=report.source_name,
                   sha256=None, contract=report.contract_name,
                   contract_sha256=report.contract_sha256, rows=report.rows, engine=report.engine,
                   problem=None, checks=checks, failed=failed, passed=passed)


def rejection_html(source_name: str, sha256: str, contract_name: str, problem: str) -> str:
    """The report page of a delivery that could not be read (truncated, empty, wrong
    format or header): the reader's one-line problem, never the file's content."""
    return _render(verdict="REJECTED", badge="rejected", source=source_name, sha256=sha256,
                   contract=contract_name, contract_sha256=None, rows=None, engine=None,
                   problem=problem, checks=[], failed=[], passed=[])
