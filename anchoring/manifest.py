"""The dataset-version manifest (docs/formats.md §5): the log's leaf input."""

from __future__ import annotations

__all__ = ["MANIFEST_TYPE", "check_manifest", "manifest_leaf_input", "manifest_salt_scheme"]

from collections.abc import Mapping
from typing import Any

from anchoring.canonical import SALT_SCHEME_V1, canonical_json
from anchoring.errors import ProofFormatError
from anchoring.merkle.hasher import is_hex_hash

MANIFEST_TYPE = "trialproof/dataset-version/v1"


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ProofFormatError(f"manifest: {message}")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_manifest(manifest: Mapping[str, Any]) -> None:
    """Raise :class:`ProofFormatError` unless ``manifest`` has every Formats 5 field, well typed.

    Extra fields are allowed (docs/formats.md §5: adding fields is fine).
    """
    _require(manifest.get("type") == MANIFEST_TYPE, f'"type" must be "{MANIFEST_TYPE}"')
    for name in ("trial", "dataset", "ingested_at"):
        _require(
            isinstance(manifest.get(name), str) and bool(manifest[name]),
            f'"{name}" must be a string',
        )
    _require(
        _is_count(manifest.get("version")) and manifest["version"] >= 1,
        '"version" must be an integer >= 1',
    )
    _require(_is_count(manifest.get("records")), '"records" must be a non-negative integer')
    _require(is_hex_hash(manifest.get("root")), '"root" must be 64 lowercase hex digits')
    previous = manifest.get("previous", 0)
    _require(previous is None or is_hex_hash(previous), '"previous" must be a hex hash or null')
    contract = manifest.get("contract")
    _require(
        isinstance(contract, Mapping)
        and isinstance(contract.get("name"), str)
        and is_hex_hash(contract.get("sha256")),
        '"contract" must be {name, sha256}',
    )
    source = manifest.get("source")
    _require(
        isinstance(source, Mapping)
        and isinstance(source.get("name"), str)
        and is_hex_hash(source.get("sha256"))
        and _is_count(source.get("bytes")),
        '"source" must be {name, sha256, bytes}',
    )
    validation = manifest.get("validation")
    _require(
        isinstance(validation, Mapping)
        and isinstance(validation.get("success"), bool)
        and is_hex_hash(validation.get("report_sha256")),
        '"validation" must be {success, report_sha256}',
    )
    html = manifest["validation"].get("report_html_sha256")  # older manifests lack it
    _require(html is None or is_hex_hash(html), '"validation.report_html_sha256" must be a hash')
    # Additive fields, checked where present. An unknown salt scheme is no error here:
    # verifying a proof never derives a salt.
    if "salt_scheme" in manifest:
        scheme = manifest["salt_scheme"]
        _require(isinstance(scheme, str) and bool(scheme), '"salt_scheme" must be a string')
    if "same_content_as" in manifest:
        earlier = manifest["same_content_as"]
        _require(
            _is_count(earlier) and 1 <= earlier < manifest["version"],
            '"same_content_as" must be an earlier version number',
        )


def manifest_salt_scheme(manifest: Mapping[str, Any]) -> str:
    """The salt scheme a version was committed under (docs/formats.md §3, §5): its
    ``salt_scheme``, or v1 for a manifest written before the field existed."""
    return str(manifest.get("salt_scheme", SALT_SCHEME_V1))


def manifest_leaf_input(manifest: Mapping[str, Any]) -> bytes:
    """The log leaf input of a manifest: exactly its RFC 8785 bytes (docs/formats.md §5)."""
    return canonical_json(manifest)
