"""Report a wrong sponsor registry as an Airflow import error (shown in the UI).

The ingest DAGs of valid entries still load from ``trialproof_ingest.py``; this
file defines no DAG (the word is here so that Airflow's safe mode parses it)
and fails to import, listing every bad entry with its location, whenever the
registry at ``$TRIALPROOF_REGISTRY`` has problems or cannot be read.
"""

from __future__ import annotations

from pipeline.registry import RegistryFileError, read_registry


class RegistryProblems(Exception):
    """The sponsor registry has entries that were not loaded."""


def _check() -> None:
    try:
        registry = read_registry()
    except RegistryFileError as exc:
        raise RegistryProblems(str(exc)) from None
    if registry.problems:
        lines = "\n".join(f"  - {problem}" for problem in registry.problems)
        raise RegistryProblems(
            f"sponsor registry {registry.path} has {len(registry.problems)} problem(s); "
            f"the entries named here have no ingest DAG until they are fixed:\n{lines}")


_check()
