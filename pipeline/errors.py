"""Every exception raised by :mod:`pipeline`, as one hierarchy.

::

    PipelineError
    ├── UsageError        a command or argument that cannot be acted on
    ├── HomeError         the trialproof home is missing, incomplete or already exists
    ├── ContractError     a dataset contract or expectation suite is invalid
    ├── ReadError         a delivery cannot be read (names the file and the problem)
    ├── ValidationFailed  a delivery broke its contract and was quarantined
    ├── InvalidDelivery   a dry run found the delivery invalid (nothing was kept)
    ├── StoreError        the version store refused an operation
    ├── AuditFailed       the audit found tampering or corruption
    └── OutcomesChanged   registered outcomes were added, removed, moved or changed
"""

from __future__ import annotations

__all__ = [
    "AuditFailed",
    "ContractError",
    "HomeError",
    "InvalidDelivery",
    "OutcomesChanged",
    "PipelineError",
    "ReadError",
    "StoreError",
    "UsageError",
    "ValidationFailed",
]


class PipelineError(Exception):
    """Base class of every error raised by this package."""


class UsageError(PipelineError):
    """A command or argument that cannot be acted on."""


class HomeError(PipelineError):
    """The trialproof home is missing, incomplete, or already exists."""


class ContractError(PipelineError):
    """A dataset contract or its extra expectation suite is invalid."""


class ReadError(PipelineError):
    """A delivery cannot be read: corrupt, truncated, empty, wrongly encoded, wrong format,
    or with columns the contract does not know. The message names the file and the problem."""


class ValidationFailed(PipelineError):
    """A delivery broke its contract. It was moved to quarantine with its report."""

    def __init__(self, message: str, quarantine_path: str, report_path: str) -> None:
        self.quarantine_path = quarantine_path
        self.report_path = report_path
        super().__init__(message)


class InvalidDelivery(PipelineError):
    """A dry run found the delivery unreadable or in breach of its contract. Nothing was
    committed or quarantined; the report was written all the same."""


class StoreError(PipelineError):
    """The version store refused an operation (unknown trial, dataset or version ...)."""


class AuditFailed(PipelineError):
    """The audit found tampering or corruption; each finding was reported."""


class OutcomesChanged(PipelineError):
    """The outcome check found registered outcomes added, removed, moved or changed."""
