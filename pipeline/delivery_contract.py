"""Which contract checks a delivery when the caller names none.

A later delivery of a dataset is checked against the contract of the dataset's latest
version; a first delivery against its registry entry's contract; otherwise against the
contract named like the dataset.
"""

from __future__ import annotations

__all__ = ["delivery_contract"]

from pathlib import Path

from pipeline.contract import (
    Contract,
    contract_files,
    load_contract,
    parse_contract,
    read_json_file,
)
from pipeline.errors import ContractError
from pipeline.home import Home
from pipeline.store import VersionInfo


def delivery_contract(home: Home, trial: str, dataset: str,
                      search: tuple[Path, ...]) -> Contract:
    """The contract for the next delivery of ``trial``/``dataset`` (see the module)."""
    versions = home.store().versions(trial, dataset)
    if versions:
        return _version_contract(versions[-1], search)
    entry_contract = _registry_contract(trial, dataset)
    if entry_contract is not None:
        return load_contract(entry_contract)
    return load_contract(dataset, search)


def _version_contract(info: VersionInfo, search: tuple[Path, ...]) -> Contract:
    """The contract ``info`` was committed under: its file in ``search`` when one has the
    same SHA-256 (so an expectation suite beside it applies again), else the copy kept
    with the version."""
    committed = info.manifest["contract"]
    for path in contract_files(str(committed["name"]), search):
        try:
            candidate = load_contract(path)
        except ContractError:
            continue
        if candidate.sha256 == committed["sha256"]:
            return candidate
    kept = info.path / "contract.json"
    try:
        return parse_contract(read_json_file(kept, str(kept)), str(kept), base=info.path)
    except ContractError as exc:
        raise ContractError(f"{info.manifest['trial']}/{info.manifest['dataset']} "
                            f"v{info.version} was committed under contract "
                            f"{committed['name']!r}, which is no longer found unchanged "
                            f"({exc}); name one with --contract") from None


def _registry_contract(trial: str, dataset: str) -> Path | None:
    """The contract file of the registry entry for ``trial``/``dataset``, if the registry
    ($TRIALPROOF_REGISTRY, else ./registry/sponsors.yaml) exists and has a valid one."""
    from pipeline.registry import read_registry, resolve_registry

    if not resolve_registry().is_file():
        return None
    for entry in read_registry().entries:
        if (entry.trial, entry.dataset) == (trial, dataset):
            return entry.contract_path
    return None
