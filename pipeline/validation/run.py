"""Running a contract's checks with Great Expectations (docs/architecture.md).

:func:`validate` runs the suite of :mod:`pipeline.validation.suite` on an Arrow table in
an ephemeral GX context that writes no files, and returns a
:class:`~pipeline.validation.report.ValidationReport`. The reader's findings become checks
of their own: values that did not fit the contract type ("values have the contract type")
and contract columns absent from the delivery ("column exists").
"""

from __future__ import annotations

__all__ = [
    "TypeIssueLike",
    "validate",
]

import importlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pipeline.contract import Contract, Field
from pipeline.validation.report import FAILING_ROWS_CAP, ValidationReport, json_safe
from pipeline.validation.suite import (
    _CHECK_META,
    _build_suite,
    _Check,
    _field_checks,
    _gx,
    _key_check,
    _quiet,
    _suite_checks,
)


class TypeIssueLike(Protocol):
    """A value the reader could not give its contract type (``pipeline.readers.TypeIssue``)."""

    @property
    def column(self) -> str: ...

    @property
    def row(self) -> int: ...  # 0-based, in file order (= the table's row index)

    @property
    def value(self) -> Any: ...



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
    plan = _plan(table, contract, type_issues, missing_columns)
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


def _plan(table: Any, contract: Contract, type_issues: Iterable[TypeIssueLike],
          missing_columns: Iterable[str]) -> list[_Check]:
    """Every check of the report, in its order (see :class:`ValidationReport`)."""
    names = set(table.column_names)
    absent = [f.name for f in contract.fields
              if f.name in set(missing_columns) or f.name not in names]
    issues: dict[str, list[tuple[int, Any]]] = {}
    for issue in type_issues:
        issues.setdefault(issue.column, []).append((int(issue.row), issue.value))

    plan: list[_Check] = []
    for f in contract.fields:
        plan += _column_plan(f, f.name in absent, contract.primary_key, issues)
    if contract.primary_key and not set(absent) & set(contract.primary_key):
        plan.append(_key_check(contract.primary_key))
        normalization = _normalization_check(table, contract.primary_key)
        if normalization is not None:
            plan.append(normalization)
    for column in sorted(issues):  # columns the contract does not know
        plan.append(_type_issue_check(column, "unknown", issues[column]))
    if contract.expectations is not None:
        plan.extend(_suite_checks(contract.expectations))
    return plan


def _column_plan(f: Field, absent: bool, key: Sequence[str],
                 issues: dict[str, list[tuple[int, Any]]]) -> list[_Check]:
    """The checks of one contract field; takes the field's reader type issues out of
    ``issues`` and lists them after its type check."""
    if absent:
        plan = [_Check("expect_column_to_exist", {"column": f.name}, "column exists", "reader")]
        if f.name in issues:
            plan.append(_type_issue_check(f.name, f.type, issues.pop(f.name)))
        return plan
    plan = []
    for check in _field_checks(f, key):
        plan.append(check)
        if check.expectation == "expect_column_values_to_be_of_type" and f.name in issues:
            plan.append(_type_issue_check(f.name, f.type, issues.pop(f.name)))
    return plan


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
