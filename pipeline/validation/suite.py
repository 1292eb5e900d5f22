"""The Great Expectations suite of a contract (docs/architecture.md).

:func:`compile_suite` turns a :class:`~pipeline.contract.Contract` into a GX
``ExpectationSuite``: for every field the column exists, has the contract type, and keeps
its constraints (required, enum, pattern, minimum/maximum, minLength/maxLength); the
primary key is present and unique. The contract's extra suite (``trialproof.expectations``,
a GX 1.x suite JSON file) is appended.

Great Expectations is imported on first use (:func:`_gx`), never at module import, so
that the CLI and Airflow DAG parsing stay fast.
"""

from __future__ import annotations

__all__ = [
    "compile_suite",
    "import_great_expectations",
]

import datetime as dt
import importlib
import logging
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.contract import Contract, Field, read_json_file
from pipeline.errors import ContractError
from pipeline.iso8601 import pattern_label
from pipeline.validation.report import json_safe

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


def import_great_expectations() -> None:
    """Import Great Expectations now rather than at the first validation: a process that
    forks task runners (Airflow's LocalExecutor, :mod:`pipeline.airflow_executor`, or a
    Celery worker, :mod:`pipeline.airflow_celery`) pays the import once, and every task
    it forks starts with it loaded."""
    _gx()


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
        # pandas hands the pattern to RE2 (\Z as \z), or to Python's re for what RE2
        # cannot do (lookarounds ...).
        regex = f.whole_value_pattern
        checks.append(_Check(
            "expect_column_values_to_match_regex", {"column": name, "regex": regex},
            f"values match the pattern {pattern_label(f.pattern)}", "contract",
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
