"""Dataset contracts: Frictionless Table Schema JSON files (docs/architecture.md, schemas/).

A contract names a dataset's fields, their types and constraints, and its
primary key. trialproof reads these Table Schema properties:

- ``fields[].name``, ``fields[].type`` (string, integer, number, boolean, date, datetime),
  ``fields[].constraints`` (required, enum, pattern, minimum, maximum, maxLength);
- ``primaryKey`` (a name or a list of names);
- ``missingValues`` (strings read as missing in text formats; default ``[""]``);
- ``trialproof.unknownColumns``: ``"error"`` (default) or ``"drop"`` for columns a delivery
  has that the contract does not;
- ``trialproof.expectations``: an extra Great Expectations suite (JSON), relative to the contract;
- ``trialproof.allowEmpty``: ``true`` to accept a delivery with no rows (default ``false``:
  a header-only delivery is refused).

The contract's identity in a manifest is its name and the SHA-256 of its RFC 8785 bytes.
"""

from __future__ import annotations

__all__ = [
    "CONTRACTS_ENV",
    "DEFAULT_CONTRACTS",
    "FIELD_TYPES",
    "Contract",
    "Field",
    "contract_files",
    "contract_search_folders",
    "load_contract",
    "parse_contract",
    "read_json_file",
]

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchoring.canonical import canonical_json
from anchoring.errors import CanonicalizationError
from pipeline.errors import ContractError

#: Folders (separated by ``os.pathsep``) searched first for a contract given by name.
CONTRACTS_ENV = "TRIALPROOF_CONTRACTS"
#: Searched when no folder is configured, relative to the working directory.
DEFAULT_CONTRACTS = Path("schemas") / "contracts"
FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
_CONSTRAINTS = {
    "required",
    "unique",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "maxLength",
    "minLength",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    minimum: float | int | None = None
    maximum: float | int | None = None
    max_length: int | None = None
    min_length: int | None = None
    title: str | None = None

    @property
    def whole_value_pattern(self) -> str | None:
        """``pattern`` as a regular expression over the whole value: a Table Schema
        pattern matches the whole value, while GX's check and ``re.search`` find it
        anywhere. ``\\Z``, not ``$``, which Python lets match before a final newline."""
        return None if self.pattern is None else f"^(?:{self.pattern})\\Z"


@dataclass(frozen=True)
class Contract:
    name: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...]
    missing_values: tuple[str, ...]
    unknown_columns: str
    expectations: Path | None
    descriptor: Mapping[str, Any]
    sha256: str
    path: Path | None = None
    allow_empty: bool = False

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _where(source: str, detail: str) -> ContractError:
    return ContractError(f"{source}: {detail}")


def _parse_field(raw: Any, i: int, source: str) -> Field:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise _where(source, f"fields[{i}] must be an object with a non-empty name")
    name = raw["name"]
    ftype = raw.get("type", "string")
    if ftype not in FIELD_TYPES:
        raise _where(
            source, f"field {name!r} has type {ftype!r}; expected one of {', '.join(FIELD_TYPES)}"
        )
    constraints = raw.get("constraints", {})
    if not isinstance(constraints, Mapping):
        raise _where(source, f"field {name!r}: constraints must be an object")
    unknown = set(constraints) - _CONSTRAINTS
    if unknown:
        raise _where(source, f"field {name!r}: unknown constraint(s) {sorted(unknown)}")
    enum = constraints.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        raise _where(source, f"field {name!r}: enum must be a non-empty list")
    pattern = constraints.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise _where(source, f"field {name!r}: pattern is not a valid regex: {exc}") from None
    for bound in ("minimum", "maximum"):
        value = constraints.get(bound)
        not_number = isinstance(value, bool) or not isinstance(value, int | float)
        temporal_text = ftype in ("date", "datetime") and isinstance(value, str)
        if value is not None and not_number and not temporal_text:
            raise _where(source, f"field {name!r}: {bound} must be a number")
    for length in ("maxLength", "minLength"):
        value = constraints.get(length)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise _where(source, f"field {name!r}: {length} must be a non-negative integer")
    required = constraints.get("required", False)
    if not isinstance(required, bool):
        raise _where(source, f"field {name!r}: required must be true or false")
    return Field(
        name=name,
        type=ftype,
        required=required,
        enum=tuple(enum) if enum is not None else None,
        pattern=pattern,
        minimum=constraints.get("minimum"),
        maximum=constraints.get("maximum"),
        max_length=constraints.get("maxLength"),
        min_length=constraints.get("minLength"),
        title=raw.get("title"),
    )


def parse_contract(descriptor: Any, source: str = "contract", base: Path | None = None) -> Contract:
    """Check a Table Schema descriptor and turn it into a :class:`Contract`.

    Raises :class:`ContractError` naming ``source`` and what is wrong.
    """
    if not isinstance(descriptor, Mapping):
        raise _where(source, "a contract must be a JSON object (a Frictionless Table Schema)")
    fields = _parse_fields(descriptor, source)
    key = _parse_primary_key(descriptor, [f.name for f in fields], source)
    missing_values = descriptor.get("missingValues", [""])
    if not isinstance(missing_values, list) or not all(isinstance(m, str) for m in missing_values):
        raise _where(source, '"missingValues" must be a list of strings')
    options = descriptor.get("trialproof", {})
    if not isinstance(options, Mapping):
        raise _where(source, '"trialproof" must be an object')
    unknown_columns = options.get("unknownColumns", "error")
    if unknown_columns not in ("error", "drop"):
        raise _where(source, 'trialproof.unknownColumns must be "error" or "drop"')
    allow_empty = options.get("allowEmpty", False)
    if not isinstance(allow_empty, bool):
        raise _where(source, "trialproof.allowEmpty must be true or false")
    suite_path = _expectation_suite_path(options, source, base)
    name = descriptor.get("name") or (Path(source).stem if source != "contract" else "contract")
    try:
        digest = hashlib.sha256(canonical_json(dict(descriptor))).hexdigest()
    except CanonicalizationError as exc:
        raise _where(source, f"cannot be canonicalized: {exc}") from None
    return Contract(
        name=str(name),
        fields=fields,
        primary_key=tuple(key),
        missing_values=tuple(missing_values),
        unknown_columns=unknown_columns,
        expectations=suite_path,
        descriptor=descriptor,
        sha256=digest,
        allow_empty=allow_empty,
    )


def _parse_fields(descriptor: Mapping[str, Any], source: str) -> tuple[Field, ...]:
    """The ``fields`` of a Table Schema, each checked, with no name twice."""
    raw_fields = descriptor.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise _where(source, '"fields" must be a non-empty list')
    fields = tuple(_parse_field(raw, i, source) for i, raw in enumerate(raw_fields))
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _where(source, f"duplicate field name(s) {duplicates}")
    return fields


def _parse_primary_key(descriptor: Mapping[str, Any], names: list[str], source: str) -> list[str]:
    """The ``primaryKey`` as a list of the names of known fields."""
    key = descriptor.get("primaryKey", [])
    key = [key] if isinstance(key, str) else key
    if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
        raise _where(source, '"primaryKey" must be a field name or a list of field names')
    missing_key = [k for k in key if k not in names]
    if missing_key:
        raise _where(source, f"primaryKey names unknown field(s) {missing_key}")
    return key


def _expectation_suite_path(
    options: Mapping[str, Any], source: str, base: Path | None
) -> Path | None:
    """The GX suite file ``trialproof.expectations`` names, relative to ``base``; it must exist."""
    expectations = options.get("expectations")
    if expectations is None:
        return None
    if not isinstance(expectations, str):
        raise _where(source, "trialproof.expectations must be a path to a GX suite JSON file")
    suite_path = (base or Path.cwd()) / expectations
    if not suite_path.is_file():
        raise _where(source, f"expectation suite {suite_path} does not exist")
    return suite_path


def read_json_file(path: Path, what: str) -> Any:
    """The JSON document in ``path``; a :class:`ContractError` naming ``what`` otherwise."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{what}: cannot be read: {exc}") from None
    except ValueError as exc:
        raise ContractError(f"{what}: not valid JSON: {exc}") from None


def contract_search_folders(configured: Iterable[Path] | None = None) -> tuple[Path, ...]:
    """The folders a contract name is looked up in: those of ``$TRIALPROOF_CONTRACTS``, then
    ``configured`` (by default ``./schemas/contracts``). Each existing folder appears once,
    resolved, so that one file reached two ways never makes a name ambiguous."""
    folders = [Path(p) for p in os.environ.get(CONTRACTS_ENV, "").split(os.pathsep) if p]
    folders += [Path.cwd() / DEFAULT_CONTRACTS] if configured is None else list(configured)
    return tuple(dict.fromkeys(folder.resolve() for folder in folders if folder.is_dir()))


def contract_files(name: str, search: tuple[Path, ...]) -> list[Path]:
    """The files that hold a contract called ``name`` in the ``search`` directories
    (``<name>.json``, ``<name>.schema.json``, searched recursively)."""
    return [
        hit
        for directory in search
        for pattern in (f"{name}.json", f"{name}.schema.json")
        for hit in sorted(directory.rglob(pattern))
    ]


def load_contract(path_or_name: str | Path, search: tuple[Path, ...] = ()) -> Contract:
    """Load a contract from a path, or by name from ``search`` directories (``<name>.json``,
    ``<name>.schema.json``, searched recursively)."""
    path = Path(path_or_name)
    if not path.is_file() and "/" in str(path_or_name):
        qualified = [
            d / f"{path_or_name}.json" for d in search if (d / f"{path_or_name}.json").is_file()
        ]
        if qualified:
            path = qualified[0]
    if not path.is_file():
        candidates = contract_files(str(path_or_name), search)
        if not candidates:
            raise ContractError(
                f"contract {str(path_or_name)!r} not found (looked in "
                f"{', '.join(str(s) for s in search) or 'no directories'})"
            )
        if len(candidates) > 1:
            raise ContractError(
                f"contract name {str(path_or_name)!r} is ambiguous: "
                f"{', '.join(str(c) for c in candidates)}; pass a path"
            )
        path = candidates[0]
    contract = parse_contract(read_json_file(path, str(path)), str(path), base=path.parent)
    return Contract(**{**contract.__dict__, "path": path})
