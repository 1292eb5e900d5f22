"""The ledgers a home anchors to, kept in its ``config.json`` under ``"ledgers"``.

Each ledger is an object with a unique ``name`` and a ``type``: ``local`` (the
embedded default, on unless removed), ``ethereum``, ``witness`` or ``tsa``.
Secrets are never stored here: an ethereum ledger names the file
(``key_file``) or the environment variable (``key_env``) holding its key.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_LEDGERS",
    "LEDGER_TYPES",
    "add_ledger",
    "build_ledger",
    "ledger_specs",
    "read_chain_key",
    "remove_ledger",
    "select_specs",
]

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from anchoring.errors import KeyFormatError
from anchoring.note import COSIGNATURE_V1, Verifier
from pipeline.errors import HomeError, UsageError
from pipeline.fsutil import write_text_durably
from pipeline.home import Home

LEDGER_TYPES = ("local", "ethereum", "witness", "tsa")
DEFAULT_LEDGERS: tuple[dict[str, Any], ...] = ({"name": "local", "type": "local"},)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def ledger_specs(home: Home) -> list[dict[str, Any]]:
    """The configured ledgers; the local ledger alone when none are configured."""
    raw = home.config.get("ledgers")
    if raw is None:
        return [dict(spec) for spec in DEFAULT_LEDGERS]
    where = home.path / "config.json"
    if not isinstance(raw, list):
        raise HomeError(f"{where}: \"ledgers\" must be a list")
    specs: list[dict[str, Any]] = []
    for item in raw:
        spec = {"name": item, "type": item} if isinstance(item, str) else item
        if (not isinstance(spec, dict) or spec.get("type") not in LEDGER_TYPES
                or not isinstance(spec.get("name", spec.get("type")), str)):
            raise HomeError(f"{where}: unknown ledger {item!r}")
        specs.append({"name": spec.get("name", spec["type"]), **spec})
    return specs


def _save(home: Home, specs: list[dict[str, Any]]) -> None:
    config = dict(home.config)
    config["ledgers"] = specs
    write_text_durably(home.path / "config.json", json.dumps(config, indent=2) + "\n")
    home.__dict__.pop("config", None)  # the cached config is stale now


def _check_url(url: str, what: str) -> str:
    if not re.fullmatch(r"https?://[^\s]+", url):
        raise UsageError(f"{what} must be an http:// or https:// URL, got {url!r}")
    return url


def add_ledger(home: Home, spec: dict[str, Any]) -> dict[str, Any]:
    """Check and add one ledger; its name must be new."""
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError("--name must be 1-64 letters, digits, '.', '_' or '-'")
    specs = ledger_specs(home)
    if any(s["name"] == name for s in specs):
        raise UsageError(f"a ledger named {name!r} is already configured")
    kind = spec["type"]
    if kind in ("ethereum", "witness", "tsa"):
        key = "rpc" if kind == "ethereum" else "url"
        _check_url(str(spec[key]), f"--{key}")
    if kind == "ethereum":
        _check_ethereum_spec(spec)
    if kind == "witness":
        _check_witness_spec(spec)
    if kind == "tsa":
        _check_tsa_spec(spec)
    clean = {k: v for k, v in spec.items() if v is not None}
    _save(home, [*specs, clean])
    return clean


def _check_ethereum_spec(spec: dict[str, Any]) -> None:
    """Check an ethereum ledger's key source, contract address and numbers; resolve its key file."""
    if (spec.get("key_file") is None) == (spec.get("key_env") is None):
        raise UsageError("give exactly one of --key-file and --key-env")
    if spec.get("key_file") is not None:
        spec["key_file"] = str(Path(spec["key_file"]).expanduser().resolve())
    if spec.get("to") is not None and not _ADDRESS.fullmatch(spec["to"]):
        raise UsageError("--to must be a 0x-prefixed 20-byte hex address")
    if spec["chain_id"] <= 0 or spec.get("confirmations", 1) < 1:
        raise UsageError("--chain-id and --confirmations must be positive")


def _check_witness_spec(spec: dict[str, Any]) -> None:
    """Check that a witness ledger's vkey is a cosignature/v1 key (C2SP tlog-cosignature)."""
    try:
        witness = Verifier.from_vkey(spec["vkey"])
    except KeyFormatError as exc:
        raise UsageError(f"--vkey: {exc}") from None
    if witness.sig_type != COSIGNATURE_V1:
        raise UsageError("--vkey is not a witness (cosignature/v1) key")


def _check_tsa_spec(spec: dict[str, Any]) -> None:
    """Resolve a time-stamp authority's CA file, if it has one; it must be a file."""
    if spec.get("ca_file") is None:
        return
    ca = Path(spec["ca_file"]).expanduser().resolve()
    if not ca.is_file():
        raise UsageError(f"--ca-file {ca} is not a file")
    spec["ca_file"] = str(ca)


def remove_ledger(home: Home, name: str) -> None:
    specs = ledger_specs(home)
    kept = [s for s in specs if s["name"] != name]
    if len(kept) == len(specs):
        raise UsageError(f"no ledger named {name!r} is configured")
    _save(home, kept)


def select_specs(home: Home, names: Sequence[str] | None) -> list[dict[str, Any]]:
    """The configured ledgers, or only the named ones (each must be configured)."""
    specs = ledger_specs(home)
    if not names:
        return specs
    known = {s["name"]: s for s in specs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"--ledger {unknown[0]!r} is not configured (see: trialproof ledger list)")
    return [known[n] for n in dict.fromkeys(names)]


def read_chain_key(spec: dict[str, Any]) -> str:
    """The ethereum ledger's private key, from its file or environment variable."""
    if spec.get("key_env"):
        value = os.environ.get(spec["key_env"])
        if not value:
            raise UsageError(f"ledger {spec['name']}: ${spec['key_env']} is not set")
        return value.strip()
    path = Path(spec["key_file"])
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"ledger {spec['name']}: cannot read its key file {path}: "
                         f"{exc.strerror}") from None


def build_ledger(home: Home, spec: dict[str, Any]) -> Any:
    """The producer-side client of one configured ledger."""
    kind = spec["type"]
    if kind == "local":
        from anchoring._internal.ledgers.local import LocalLedger

        return LocalLedger(home.log())
    if kind == "witness":
        from anchoring._internal.ledgers.witness_client import WitnessLedger

        log = home.log()
        return WitnessLedger(spec["name"], spec["url"], Verifier.from_vkey(spec["vkey"]),
                             log.consistency_proof)
    if kind == "ethereum":
        from anchoring._internal.ledgers.ethereum_client import EthereumLedger

        return EthereumLedger(spec["name"], spec["rpc"], int(spec["chain_id"]),
                              lambda: read_chain_key(spec),
                              confirmations=int(spec.get("confirmations", 1)),
                              to=spec.get("to"))
    if kind == "tsa":
        from anchoring._internal.ledgers.tsa_client import TsaLedger

        return TsaLedger(spec["name"], spec["url"], spec.get("ca_file"))
    raise HomeError(f"unknown ledger type {kind!r}")
