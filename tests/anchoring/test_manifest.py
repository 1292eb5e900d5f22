"""The version manifest's additive fields (docs/formats.md §3, §5): ``salt_scheme`` and
``same_content_as``, checked where present, and valid against the published schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from anchoring.canonical import SALT_SCHEME, SALT_SCHEME_V1, SALT_SCHEME_V2
from anchoring.errors import ProofFormatError
from anchoring.manifest import MANIFEST_TYPE, check_manifest, manifest_salt_scheme

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "formats" / "manifest.schema.json"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def manifest(**extra: Any) -> dict[str, Any]:
    return {
        "type": MANIFEST_TYPE,
        "trial": "T1",
        "dataset": "dm",
        "version": 3,
        "contract": {"name": "dm", "sha256": _hash("contract")},
        "source": {"name": "dm.csv", "sha256": _hash("source"), "bytes": 10},
        "records": 2,
        "root": _hash("root"),
        "previous": _hash("previous"),
        "validation": {"success": True, "report_sha256": _hash("report")},
        "ingested_at": "2026-11-30T12:00:00Z",
        **extra,
    }


def _schema_errors(obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    return [e.message for e in validator.iter_errors(obj)]


def test_new_versions_name_the_version_bound_scheme() -> None:
    assert SALT_SCHEME == SALT_SCHEME_V2 == "trialproof/salt/v2"
    assert SALT_SCHEME_V1 == "trialproof/salt/v1"


@pytest.mark.parametrize(
    "extra",
    [{}, {"salt_scheme": SALT_SCHEME_V2}, {"salt_scheme": SALT_SCHEME_V1},
     {"salt_scheme": "trialproof/salt/subject/v1"}, {"same_content_as": 1},
     {"same_content_as": 2, "salt_scheme": SALT_SCHEME_V2}],
)
def test_manifests_with_and_without_the_additive_fields_are_accepted(
    extra: dict[str, Any],
) -> None:
    """A scheme this code does not know is still a well-formed manifest: verifying a
    proof never derives a salt, so a later scheme must not break older verifiers."""
    check_manifest(manifest(**extra))
    assert _schema_errors(manifest(**extra)) == []


def test_a_manifest_without_salt_scheme_used_the_first_scheme() -> None:
    assert manifest_salt_scheme(manifest()) == SALT_SCHEME_V1
    assert manifest_salt_scheme(manifest(salt_scheme=SALT_SCHEME_V2)) == SALT_SCHEME_V2


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"salt_scheme": ""}, "salt_scheme"),
        ({"salt_scheme": 2}, "salt_scheme"),
        ({"salt_scheme": None}, "salt_scheme"),
        ({"same_content_as": 3}, "same_content_as"),  # not earlier than version 3
        ({"same_content_as": 0}, "same_content_as"),
        ({"same_content_as": True}, "same_content_as"),
        ({"same_content_as": "1"}, "same_content_as"),
    ],
)
def test_malformed_additive_fields_are_refused(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(ProofFormatError, match=field):
        check_manifest(manifest(**extra))
