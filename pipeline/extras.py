"""Which optional install a missing package belongs to, for a one-line answer.

``pip install trialproof`` is the verifier alone (the standard library, ``cryptography``
and ``click``). The sponsor side (ingest, the log database, the store, proofs, audit,
the registry) needs ``pip install 'trialproof[pipeline]'``.
"""

from __future__ import annotations

__all__ = ["PIPELINE_PACKAGES", "MissingExtraError", "missing_extra"]

from pipeline.errors import UsageError

#: Top-level import names of the ``pipeline`` extra's packages (pyproject.toml).
PIPELINE_PACKAGES = frozenset({
    "croniter", "datafusion", "fsspec", "great_expectations", "numpy", "odmlib", "pandas",
    "polars", "pyarrow", "pyreadstat", "rich", "sqlalchemy", "yaml",
})


class MissingExtraError(UsageError):
    """A command needs a package of an extra that is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"this command needs the sponsor-side packages ({package} is not "
                         f"installed): pip install 'trialproof[{extra}]'")


def missing_extra(exc: BaseException) -> MissingExtraError | None:
    """The extra to install when ``exc`` is an import of one of its packages that failed."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        package = exc.name.split(".")[0]
        if package in PIPELINE_PACKAGES:
            return MissingExtraError(package, "pipeline")
    return None
