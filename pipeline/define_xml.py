"""Dataset contracts from a CDISC Define-XML (1.0, 2.0 or 2.1) file (into schemas/).

Each ItemGroupDef becomes a Frictionless Table Schema: its ItemRefs in OrderNumber order,
typed from the ItemDef (text -> string with maxLength; integer; float -> number; ISO 8601
text dates -> string with a pattern; SAS numeric dates and datetimes, told by their
DisplayFormat or the ADaM *DT/*DTM names -> date/datetime), an enum from the CodeList,
required from Mandatory="Yes", and a primary key from KeySequence (2.x) or def:DomainKeys
(1.0).

A define.xml states what the data should be; the data files beside it show what it is.
Where a data file named by the dataset's def:leaf is present, it is read under the new
contract and each constraint it breaks is dropped for that field alone, with a line in
``trialproof.deviations`` saying what define.xml said and what the data holds. So a
generated contract accepts the data it was generated for, and says where it had to.
"""

from __future__ import annotations

__all__ = [
    "contract_json",
    "contracts_from_define",
    "data_violations",
    "deviations_by_kind",
    "unconstrained_columns",
    "write_contracts",
]

import hashlib
import json
import operator
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.contract import Contract, Field, parse_contract
from pipeline.errors import ContractError, ReadError
from pipeline.iso8601 import (
    ISO8601_DATETIME_PATTERN,
    ISO8601_DURATION_PATTERN,
    ISO8601_TIME_PATTERN,
)
from pipeline.sas_formats import sas_temporal_kind

_ISO_TEXT_TYPES = {
    "date": ISO8601_DATETIME_PATTERN,
    "datetime": ISO8601_DATETIME_PATTERN,
    "partialDate": ISO8601_DATETIME_PATTERN,
    "partialDatetime": ISO8601_DATETIME_PATTERN,
    "incompleteDatetime": ISO8601_DATETIME_PATTERN,
    "time": ISO8601_TIME_PATTERN,
    "partialTime": ISO8601_TIME_PATTERN,
    "durationDatetime": ISO8601_DURATION_PATTERN,
    "intervalDatetime": None,
}
_NUMERIC_TYPES = {"integer": "integer", "float": "number", "double": "number",
                  "decimal": "number"}

_ODM_NAMESPACES = {"http://www.cdisc.org/ns/odm/v1.2", "http://www.cdisc.org/ns/odm/v1.3"}
_DEFINE_NAMESPACES = {
    "http://www.cdisc.org/ns/def/v1.0": ("1.0", "define_2_0"),
    "http://www.cdisc.org/ns/def/v2.0": ("2.0", "define_2_0"),
    "http://www.cdisc.org/ns/def/v2.1": ("2.1", "define_2_1"),
}
_XLINK = "http://www.w3.org/1999/xlink"
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class _Document:
    path: Path
    define_version: str  # "1.0", "2.0" or "2.1"
    study: Any  # odmlib Study
    sha256: str


# --------------------------------------------------------------------------- loading


def _sniff(path: Path) -> tuple[str, str]:
    """The ODM and def: namespace URIs of ``path``; ContractError if it is not a define.xml."""
    namespaces: dict[str, str] = {}
    odm = ""
    try:
        for event, item in ET.iterparse(path, events=("start-ns", "start")):
            if event == "start-ns":
                namespaces[item[0]] = item[1]
                continue
            tag = str(item.tag)
            odm = tag[1:tag.index("}")] if tag.startswith("{") else ""
            if not tag.endswith("}ODM") or odm not in _ODM_NAMESPACES:
                raise ContractError(f"{path}: not a Define-XML file (the root element is "
                                    f"{tag!r}, not a CDISC ODM element)")
            break
    except ET.ParseError as exc:
        raise ContractError(f"{path}: not well-formed XML: {exc}") from None
    except OSError as exc:
        raise ContractError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    defines = [uri for uri in namespaces.values() if uri in _DEFINE_NAMESPACES]
    if not defines:
        raise ContractError(f"{path}: an ODM file but not a Define-XML file (no def: namespace "
                            f"{', '.join(sorted(_DEFINE_NAMESPACES))})")
    return odm, defines[0]


@contextmanager
def _namespaces(odm: str, define: str) -> Iterator[Any]:
    """odmlib keeps its namespaces in one process-wide registry: set ours, then put the
    previous ones back."""
    import odmlib.ns_registry

    ns: Any = odmlib.ns_registry  # untyped
    before = ns.NamespaceRegistry().snapshot()
    registry = ns.NamespaceRegistry(prefix="odm", uri=odm, is_default=True, is_reset=True)
    ns.NamespaceRegistry(prefix="def", uri=define)
    ns.NamespaceRegistry(prefix="xlink", uri=_XLINK)
    try:
        yield registry
    finally:
        ns.NamespaceRegistry.reset()
        for prefix, uri in before["namespaces"].items():
            ns.NamespaceRegistry(prefix=prefix, uri=uri,
                                 is_default=prefix in before["default"])


def _load(path: Path) -> _Document:
    from odmlib import define_loader
    from odmlib.exceptions import OdmlibError, OdmlibParsingError
    from odmlib.mode import permissive

    odm, define_ns = _sniff(path)
    version, model = _DEFINE_NAMESPACES[define_ns]
    try:
        # Importing the model resets odmlib's namespace registry, so build the loader first.
        loader = define_loader.XMLDefineLoader(model_package=model, ns_uri=define_ns)
        with _namespaces(odm, define_ns) as registry:
            loader.create_document(str(path), namespace_registry=registry)
            if version == "1.0":
                # odmlib has no Define-XML 1.0 model. 1.0 and 2.0 share the ODM core this
                # module reads (ItemGroupDef, ItemRef, ItemDef, CodeList, CodeListRef), so the
                # 2.0 model loads a 1.0 file under its own (ODM 1.2, def v1.0) namespaces. It
                # must load permissively: the 1.0-only attributes (def:Label, def:DomainKeys,
                # Comment, Origin) are not in the 2.0 model; odmlib keeps the namespaced ones as
                # plain attributes (Label, DomainKeys) and drops the others, which we don't use.
                with permissive():
                    study = loader.load_study()
            else:
                study = loader.load_study()
    except OdmlibParsingError as exc:
        raise ContractError(f"{path}: not well-formed XML: {exc.__cause__ or exc}") from None
    except OdmlibError as exc:
        raise ContractError(f"{path}: not a valid Define-XML {version} file: "
                            f"{str(exc).splitlines()[0]}") from None
    except IndexError:  # odmlib indexes the first Study without looking
        raise ContractError(f"{path}: the Define-XML has no Study element") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise ContractError(f"{path}: cannot be loaded as Define-XML {version}: {exc}") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return _Document(path, version, study, digest)


# --------------------------------------------------------------------------- descriptors


def _get(obj: Any, name: str) -> Any:
    """An odmlib attribute or child, or None (odmlib creates empty children on access)."""
    try:
        return getattr(obj, name, None)
    except Exception:  # odmlib descriptors raise for unset required attributes
        return None


def _text(obj: Any) -> str | None:
    """The first TranslatedText of a Description, or None."""
    texts = _get(obj, "TranslatedText") or []
    for text in texts:
        content = _get(text, "_content")
        if content:
            return str(content).strip()
    return None


def _label(obj: Any) -> str | None:
    label = _get(obj, "Label")  # def:Label in Define-XML 1.0
    if isinstance(label, str) and label.strip():
        return label.strip()
    description = _get(obj, "Description")
    return _text(description) if description is not None else None


def _standard(mdv: Any) -> str | None:
    name, version = _get(mdv, "StandardName"), _get(mdv, "StandardVersion")
    if not name:
        standards = _get(_get(mdv, "Standards"), "Standard") or []  # Define-XML 2.1
        for standard in standards:
            name, version = _get(standard, "Name"), _get(standard, "Version")
            break
    if not name:
        return None
    return f"{name} {version}" if version else str(name)


def _is_adam(standard: str | None) -> bool:
    return standard is not None and "adam" in standard.lower()


def _numeric_kind(name: str, data_type: str, display_format: str | None, adam: bool) -> str:
    """The contract type of a SAS numeric: SAS dates and datetimes are numbers in the file
    (days or seconds from 1960-01-01) but dates and datetimes in the contract."""
    kind = sas_temporal_kind(display_format)
    if kind is not None:
        return kind
    if not (display_format or "").strip() and adam:
        # ADaMIG naming: *DTM datetime, *DT date, *TM time (a number of seconds)
        if name.endswith("DTM"):
            return "datetime"
        if name.endswith("DT"):
            return "date"
    return _NUMERIC_TYPES[data_type]


def _codes(codelist: Any, name: str, deviations: list[str]) -> list[str]:
    values: list[str] = []
    padded: list[str] = []
    for kind in ("CodeListItem", "EnumeratedItem"):
        for item in _get(codelist, kind) or []:
            value = _get(item, "CodedValue")
            if not isinstance(value, str | int | float):
                continue
            text = str(value)
            if text != text.rstrip():
                # Trailing blanks are not part of a SAS value (XPORT pads, readers strip them);
                # the pilot ADaM define.xml has "F\xa0" for F.
                padded.append(text)
                text = text.rstrip()
            if text not in values:
                values.append(text)
    if padded:
        deviations.append(f"{name}: define.xml codelist {_get(codelist, 'OID')} has coded "
                          f"value(s) ending in blanks ({_sample(padded)}); the blanks were "
                          f"removed")
    return values


def _enum(field_type: str, codes: list[str], name: str, oid: str,
          deviations: list[str]) -> list[Any] | None:
    if not codes or field_type == "string":
        return codes or None
    try:
        return [_number(c, field_type == "integer") for c in codes]
    except ValueError:
        deviations.append(f"{name}: define.xml codelist {oid} has values that are not "
                          f"{field_type}s ({_sample(codes)}); enum not set")
        return None


def _number(code: str, integer: bool) -> int | float:
    value = float(code)
    if not integer:
        return value
    if not value.is_integer():
        raise ValueError(code)
    return int(value)


def _field(ref: Any, item: Any, codelists: dict[str, Any], adam: bool,
           deviations: list[str]) -> dict[str, Any]:
    name = str(_get(item, "Name"))
    data_type = str(_get(item, "DataType") or "text")
    length = _get(item, "Length")
    constraints: dict[str, Any] = {}
    if _get(ref, "Mandatory") == "Yes":
        constraints["required"] = True
    if data_type in _NUMERIC_TYPES:
        field_type = _numeric_kind(name, data_type, _get(item, "DisplayFormat"), adam)
    elif data_type == "boolean":
        field_type = "boolean"
    else:
        field_type = "string"
        if isinstance(length, int) and length > 0:
            constraints["maxLength"] = length
        pattern = _ISO_TEXT_TYPES.get(data_type)
        if pattern:
            constraints["pattern"] = pattern
    oid = _get(_get(item, "CodeListRef"), "CodeListOID")
    if oid and field_type in ("string", "integer", "number"):
        codelist = codelists.get(oid)
        if codelist is None:
            deviations.append(f"{name}: define.xml refers to codelist {oid}, which it does not "
                              f"define; enum not set")
        else:
            enum = _enum(field_type, _codes(codelist, name, deviations), name, oid, deviations)
            if enum:
                constraints["enum"] = enum
    field: dict[str, Any] = {"name": name, "type": field_type}
    title = _label(item)
    if title:
        field["title"] = title
    if constraints:
        field["constraints"] = constraints
    return field


def _order(ref: Any) -> tuple[int, int]:
    order = _get(ref, "OrderNumber")
    return (0, int(order)) if isinstance(order, int | float) else (1, 0)


def _primary_key(group: Any, refs: list[Any], names: dict[str, str],
                 deviations: list[str]) -> list[str]:
    keyed = [(int(_get(r, "KeySequence")), names[_get(r, "ItemOID")]) for r in refs
             if _get(r, "KeySequence") is not None and _get(r, "ItemOID") in names]
    if keyed:
        return [name for _, name in sorted(keyed)]
    domain_keys = _get(group, "DomainKeys")  # def:DomainKeys in Define-XML 1.0
    if not isinstance(domain_keys, str) or not domain_keys.strip():
        return []
    key = [k.strip() for k in domain_keys.split(",") if k.strip()]
    unknown = [k for k in key if k not in names.values()]
    if unknown:
        deviations.append(f"primaryKey: define.xml def:DomainKeys {domain_keys!r} names "
                          f"{', '.join(unknown)}, which the dataset does not have; primaryKey "
                          f"not set")
        return []
    return key


def _descriptor(doc: _Document, group: Any, items: dict[str, Any],
                codelists: dict[str, Any]) -> dict[str, Any]:
    mdv = doc.study.MetaDataVersion
    standard = _standard(mdv)
    deviations: list[str] = []
    refs = sorted(_get(group, "ItemRef") or [], key=_order)
    names: dict[str, str] = {}
    fields = []
    for ref in refs:
        oid = _get(ref, "ItemOID")
        item = items.get(oid)
        if item is None:
            deviations.append(f"define.xml ItemRef {oid} has no ItemDef; column left out")
            continue
        names[oid] = str(_get(item, "Name"))
        fields.append(_field(ref, item, codelists, _is_adam(standard), deviations))
    name = str(_get(group, "Name")).lower()
    study = _get(_get(doc.study, "GlobalVariables"), "StudyName")
    options: dict[str, Any] = {
        "unknownColumns": "error",
        "generatedFrom": doc.path.name,
        "defineSha256": doc.sha256,
        "defineVersion": _get(mdv, "DefineVersion") or doc.define_version,
        "itemGroupOID": _get(group, "OID"),
    }
    for key, value in (("standard", standard), ("study", _get(study, "_content")),
                       ("structure", _get(group, "Structure")),
                       ("class", _class(group)), ("domain", _get(group, "Domain"))):
        if isinstance(value, str) and value.strip():
            options[key] = value.strip()
    descriptor: dict[str, Any] = {"name": name}
    title = _label(group)
    if title:
        descriptor["title"] = title
    descriptor["fields"] = fields
    primary_key = _primary_key(group, refs, names, deviations)
    if primary_key:
        descriptor["primaryKey"] = primary_key
    descriptor["missingValues"] = [""]
    if deviations:
        options["deviations"] = deviations
    descriptor["trialproof"] = options
    return descriptor


def _class(group: Any) -> str | None:
    value = _get(group, "Class")
    if isinstance(value, str):
        return value
    name = _get(value, "Name")  # Define-XML 2.1: def:Class is an element
    return str(name) if name else None


def _data_file(doc: _Document, group: Any) -> Path:
    """The dataset's file beside the define.xml, as its def:leaf names it."""
    href = _get(_get(group, "leaf"), "href")
    name = href.strip() if isinstance(href, str) and href.strip() else f"{_get(group, 'Name')}.xpt"
    path = doc.path.parent / name
    return path if path.is_file() else doc.path.parent / name.lower()


def contracts_from_define(path: Path, check_data: bool = True) -> dict[str, dict[str, Any]]:
    """Dataset name (lowercase) -> Table Schema descriptor, for every dataset in the
    define.xml at ``path``. With ``check_data``, each dataset's data file beside the
    define.xml (its def:leaf), when present, is read and the contract reconciled with it.

    Raises :class:`ContractError` for a file that is not a readable define.xml."""
    path = Path(path)
    doc = _load(path)
    mdv = _get(doc.study, "MetaDataVersion")
    if mdv is None or not _get(mdv, "OID"):
        raise ContractError(f"{path}: the Define-XML has no MetaDataVersion")
    items = {_get(i, "OID"): i for i in _get(mdv, "ItemDef") or []}
    codelists = {_get(c, "OID"): c for c in _get(mdv, "CodeList") or []}
    groups = _get(mdv, "ItemGroupDef") or []
    if not groups:
        raise ContractError(f"{path}: the define.xml describes no datasets (no ItemGroupDef)")
    contracts: dict[str, dict[str, Any]] = {}
    for group in groups:
        descriptor = _descriptor(doc, group, items, codelists)
        name = descriptor["name"]
        if name in contracts:
            raise ContractError(f"{path}: two datasets are named {name!r}")
        data = _data_file(doc, group)
        if check_data and data.is_file():
            descriptor = _reconcile(descriptor, data)
        contracts[name] = descriptor
    return dict(sorted(contracts.items()))


def contract_json(descriptor: dict[str, Any]) -> str:
    """The committed form of a contract: sorted, indented JSON ending in a newline."""
    return json.dumps(descriptor, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_contracts(define_path: Path, out_dir: Path, check_data: bool = True) -> list[Path]:
    """Write ``<dataset>.json`` into ``out_dir`` for every dataset of the define.xml;
    return the paths written."""
    contracts = contracts_from_define(Path(define_path), check_data=check_data)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, descriptor in contracts.items():
        target = out_dir / f"{name}.json"
        parse_contract(descriptor, str(target))  # never write a contract we could not load
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(contract_json(descriptor), encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    return written


#: How ``contracts from-define`` groups a contract's deviations, in this order.
DEVIATION_KINDS = ("types widened", "keys changed", "codelists dropped", "other")
#: Constraints that check what a value is. ``required`` only says a value is there, and a
#: length limit lets any short enough wrong code through.
_VALUE_CONSTRAINTS = ("enum", "pattern", "minimum", "maximum")


def deviations_by_kind(descriptor: dict[str, Any]) -> dict[str, list[str]]:
    """The contract's recorded deviations from its define.xml, grouped as
    :data:`DEVIATION_KINDS` (only the kinds that occur)."""
    grouped: dict[str, list[str]] = {}
    for line in descriptor.get("trialproof", {}).get("deviations", []):
        if "widened to" in line:
            kind = "types widened"
        elif line.startswith("primaryKey:"):
            kind = "keys changed"
        elif line.endswith(("enum dropped", "enum not set")):
            kind = "codelists dropped"
        else:
            kind = "other"
        grouped.setdefault(kind, []).append(line)
    return {kind: grouped[kind] for kind in DEVIATION_KINDS if kind in grouped}


def unconstrained_columns(descriptor: dict[str, Any]) -> list[str]:
    """Columns with no codelist and no other check on what their values are (a pattern or
    a range): any value of their type (and length) passes validation, wrong codes included."""
    return [f["name"] for f in descriptor.get("fields", [])
            if not any(c in f.get("constraints", {}) for c in _VALUE_CONSTRAINTS)]


# --------------------------------------------------------------------------- data reconciliation


def _sample(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_EXAMPLES])
    return shown + (f" and {len(values) - _MAX_EXAMPLES} more" if len(values) > _MAX_EXAMPLES
                    else "")


def _column_values(delivery: Any, name: str) -> list[Any]:
    return list(delivery.table.column(name).to_pylist())


def data_violations(contract: Contract, delivery: Any) -> dict[str, dict[str, str]]:
    """What in ``delivery`` breaks ``contract``: field -> {constraint: evidence}. Covers
    types (``delivery.type_errors``), required, enum, pattern, maxLength, minLength,
    minimum, maximum; and "primaryKey" -> {"primaryKey": evidence} for a key that is not
    unique or has empty values."""
    found: dict[str, dict[str, str]] = {}
    rows = delivery.rows
    bad_types: dict[str, list[str]] = {}
    for issue in delivery.type_errors:
        bad_types.setdefault(issue.column, []).append(issue.value)
    for f in contract.fields:
        problems = _field_violations(f, _column_values(delivery, f.name), rows,
                                     bad_types.get(f.name, []))
        if problems:
            found[f.name] = problems
    key_problem = _key_problem(delivery, contract.primary_key)
    if key_problem:
        found["primaryKey"] = {"primaryKey": key_problem}
    return found


def _field_violations(f: Field, values: list[Any], rows: int,
                      bad_types: list[str]) -> dict[str, str]:
    """What the column ``values`` of field ``f`` break: {constraint: evidence}."""
    problems: dict[str, str] = {}
    if bad_types:
        problems["type"] = (f"has {len(bad_types)} value(s) that are not "
                            f"{f.type}s: {_sample(sorted(set(bad_types)))}")
    present = [v for v in values if v is not None]
    if f.required and len(present) < rows:
        problems["required"] = f"has {rows - len(present)} empty value(s) in {rows} rows"
    problems.update(_value_set_violations(f, present))
    problems.update(_length_violations(f, present))
    problems.update(_range_violations(f, present))
    return problems


def _value_set_violations(f: Field, present: list[Any]) -> dict[str, str]:
    """The enum and pattern constraints ``present`` (the non-empty values) break."""
    problems: dict[str, str] = {}
    if f.enum is not None:
        allowed = set(f.enum)
        outside = sorted({v for v in present if v not in allowed}, key=str)
        if outside:
            problems["enum"] = f"also holds {_sample(outside)}"
    if f.whole_value_pattern is not None:
        regex = re.compile(f.whole_value_pattern)
        unmatched = sorted({v for v in present if isinstance(v, str) and not regex.search(v)})
        if unmatched:
            problems["pattern"] = f"holds {_sample(unmatched)}"
    return problems


def _length_violations(f: Field, present: list[Any]) -> dict[str, str]:
    """The maxLength and minLength constraints ``present`` (the non-empty values) break."""
    problems: dict[str, str] = {}
    if f.max_length is not None:
        longest = max((len(v) for v in present if isinstance(v, str)), default=0)
        if longest > f.max_length:
            problems["maxLength"] = f"holds values up to {longest} characters long"
    if f.min_length is not None:
        shortest = min((len(v) for v in present if isinstance(v, str)), default=None)
        if shortest is not None and shortest < f.min_length:
            problems["minLength"] = f"holds values of {shortest} characters"
    return problems


def _range_violations(f: Field, present: list[Any]) -> dict[str, str]:
    """The minimum and maximum constraints ``present`` (the non-empty values) break."""
    problems: dict[str, str] = {}
    for bound, broken in (("minimum", operator.lt), ("maximum", operator.gt)):
        limit = getattr(f, bound)
        if limit is not None:
            beyond = [v for v in present if isinstance(v, int | float) and broken(v, limit)]
            if beyond:
                problems[bound] = f"holds {_sample(sorted(set(beyond)))}"
    return problems


def _key_problem(delivery: Any, key: tuple[str, ...] | list[str]) -> str | None:
    if not key:
        return None
    columns = [_column_values(delivery, k) for k in key]
    empty = [k for k, values in zip(key, columns, strict=True) if any(v is None for v in values)]
    if empty:
        return f"key column(s) {', '.join(empty)} have empty values"
    seen: set[tuple[Any, ...]] = set()
    duplicates = 0
    example: tuple[Any, ...] | None = None
    for row in zip(*columns, strict=True):
        if row in seen:
            duplicates += 1
            example = example or row
        seen.add(row)
    if duplicates:
        return f"{duplicates} row(s) repeat a key, e.g. {example!r}"
    return None


def _seq_candidates(descriptor: dict[str, Any]) -> list[str]:
    """The --SEQ variables of a dataset, the domain's own first (AESEQ in AE)."""
    domain = str(descriptor["trialproof"].get("domain") or descriptor["name"][:2]).upper()
    seqs = [f["name"] for f in descriptor["fields"] if f["name"].endswith("SEQ")]
    return sorted(seqs, key=lambda n: (n != f"{domain}SEQ", n))


def _repair_key(delivery: Any, key: list[str], seqs: list[str]) -> list[str] | None:
    """The define.xml key, less the columns the data leaves empty, extended by the first
    --SEQ variable that makes it unique; None if none does."""
    columns = {name: _column_values(delivery, name) for name in key}
    kept = [k for k in key if all(v is not None for v in columns[k])]
    for candidate in ([kept] if kept != key else []) + [[*kept, s] for s in seqs if s not in kept]:
        if candidate and not _key_problem(delivery, candidate):
            return candidate
    return None


def _read_for_check(data: Path, descriptor: dict[str, Any]) -> Any:
    """Read ``data`` under the contract so far, keeping columns it does not know apart."""
    from pipeline.readers import read_delivery

    options = {**descriptor["trialproof"], "unknownColumns": "drop"}
    return read_delivery(data, parse_contract({**descriptor, "trialproof": options}, str(data)))


def _drop_broken(descriptor: dict[str, Any], delivery: Any, source: str,
                 deviations: list[str]) -> bool:
    """Drop each constraint the data breaks (widen a type the data does not fit); True if a
    type changed, so that the data must be read again."""
    fields = {f["name"]: f for f in descriptor["fields"]}
    retyped = False
    problems = data_violations(parse_contract(descriptor, source), delivery)
    for name, broken in problems.items():
        if name == "primaryKey":
            continue
        field = fields[name]
        if "type" in broken:
            widened = "number" if field["type"] == "integer" else "string"
            deviations.append(f"{name}: define.xml says {_define_type(field)}, but {source} "
                              f"{broken['type']}; type {field['type']} widened to {widened}")
            field["type"] = widened
            retyped = True
            continue
        constraints = field.get("constraints", {})
        for constraint, evidence in broken.items():
            said = _define_said(constraint, constraints.get(constraint))
            deviations.append(f"{name}: define.xml says {said}, but {source} {evidence}; "
                              f"{constraint} dropped")
            constraints.pop(constraint, None)
        if not constraints:
            field.pop("constraints", None)
    return retyped


def _mend_key(descriptor: dict[str, Any], delivery: Any, source: str,
              deviations: list[str]) -> None:
    key = list(descriptor.get("primaryKey", []))
    problem = _key_problem(delivery, key)
    if not problem:
        return
    repaired = _repair_key(delivery, key, _seq_candidates(descriptor))
    given = ", ".join(key)
    if repaired:
        descriptor["primaryKey"] = repaired
        deviations.append(f"primaryKey: define.xml gives {given}, but in {source} {problem}; "
                          f"{', '.join(repaired)} is used instead")
    else:
        descriptor.pop("primaryKey")
        deviations.append(f"primaryKey: define.xml gives {given}, but in {source} {problem}, "
                          f"and no --SEQ variable mends it; primaryKey dropped")


def _reconcile(descriptor: dict[str, Any], data: Path) -> dict[str, Any]:
    """Drop exactly the constraints the data file breaks, recording each as a deviation."""
    descriptor = json.loads(json.dumps(descriptor))  # a private copy
    options = descriptor["trialproof"]
    deviations: list[str] = list(options.get("deviations", []))
    source = data.name
    try:
        delivery = _read_for_check(data, descriptor)
    except ReadError as exc:
        deviations.append(f"{source} could not be read to check this contract: {exc}")
        options["deviations"] = deviations
        return descriptor
    if delivery.dropped_columns:
        # The contract must accept its own data: add the columns define.xml forgot, typed as
        # the data file has them (XPORT knows only text and numbers).
        for name in delivery.dropped_columns:
            field_type = _xpt_column_type(data, name)
            descriptor["fields"].append({"name": name, "type": field_type})
            deviations.append(f"{name}: not in define.xml, but {source} has the column; "
                              f"added as {field_type}")
        delivery = _read_for_check(data, descriptor)
    for name in delivery.missing_columns:
        deviations.append(f"{name}: define.xml lists the column but {source} does not have it")
    for _ in range(3):  # a widened type makes values valid that were not: check again
        if not _drop_broken(descriptor, delivery, source, deviations):
            break
        delivery = _read_for_check(data, descriptor)
    _mend_key(descriptor, delivery, source, deviations)
    options["checkedAgainst"] = {
        "file": source,
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "rows": delivery.rows,
    }
    if deviations:
        options["deviations"] = deviations
    return descriptor


def _define_type(field: dict[str, Any]) -> str:
    return {"integer": "integer", "number": "float", "string": "text",
            "date": "a SAS date", "datetime": "a SAS datetime",
            "boolean": "boolean"}.get(field["type"], str(field["type"]))


def _define_said(constraint: str, value: Any) -> str:
    if constraint == "required":
        return 'Mandatory="Yes"'
    if constraint == "enum":
        return f"the codelist {_sample(list(value or []))}"
    if constraint == "maxLength":
        return f"Length={value}"
    if constraint == "pattern":
        return "an ISO 8601 date/time"
    return f"{constraint}={value!r}"


def _xpt_column_type(data: Path, name: str) -> str:
    import pyreadstat

    try:
        _, meta = pyreadstat.read_xport(str(data), metadataonly=True)
    except Exception:
        return "string"
    return "string" if (meta.readstat_variable_types or {}).get(name) == "string" else "number"
