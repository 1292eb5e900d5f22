"""Which optional install a missing package belongs to, for a one-line answer.

``pip install trialproof`` is the verifier alone (the standard library, ``cryptography``
and ``click``). The sponsor side (ingest, the log database, the store, proofs, audit,
the registry) needs ``pip install 'trialproof[pipeline]'``; a PostgreSQL log needs
``[postgres]`` as well, the HTTP server ``[server]``, Ethereum anchoring ``[ethereum]``
and time-stamp checks ``[tsa]`` (pyproject.toml lists every extra).
"""

from __future__ import annotations

__all__ = [
    "EXTRA_OF_PACKAGE",
    "PIPELINE_PACKAGES",
    "MissingExtraError",
    "missing_extra",
    "require_pipeline_extra",
]

import importlib.util

from pipeline.errors import UsageError

#: Top-level import names of the ``pipeline`` extra's packages.
PIPELINE_PACKAGES = frozenset({
    "croniter", "datafusion", "fsspec", "great_expectations", "numpy", "odmlib", "pandas",
    "polars", "pyarrow", "pyreadstat", "rich", "yaml",
})

#: The extra that installs each top-level import name.
EXTRA_OF_PACKAGE: dict[str, str] = {
    **dict.fromkeys(PIPELINE_PACKAGES, "pipeline"),
    "psycopg2": "postgres",
    "asyncpg": "postgres",
    "airflow": "airflow",
    "fastapi": "server",
    "uvicorn": "server",
    "starlette": "server",
    "web3": "ethereum",
    "rfc3161_client": "tsa",
}


class MissingExtraError(UsageError):
    """A command needs a package of an extra that is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"this command needs packages that are not installed ({package}): "
                         f"pip install 'trialproof[{extra}]'")


def missing_extra(exc: BaseException) -> MissingExtraError | None:
    """The extra to install when ``exc`` is an import of one of its packages that failed."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        package = exc.name.split(".")[0]
        if package in EXTRA_OF_PACKAGE:
            return MissingExtraError(package, EXTRA_OF_PACKAGE[package])
    return None


def require_pipeline_extra() -> None:
    """Refuse a sponsor-side step (opening the log, making a home) without the ``pipeline``
    extra. The log itself needs only the standard library, so its import cannot tell;
    this looks the packages up without importing them."""
    for package in sorted(PIPELINE_PACKAGES):
        if importlib.util.find_spec(package) is None:
            raise MissingExtraError(package, "pipeline")
