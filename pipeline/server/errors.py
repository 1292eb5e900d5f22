"""The one place where exceptions become HTTP statuses, with a JSON error body."""

from __future__ import annotations

__all__ = ["ApiError", "status_for"]

from fastapi.exceptions import RequestValidationError

from anchoring.errors import AnchoringError, LogConsistencyError, LogError, VerificationError
from pipeline.errors import (
    ContractError,
    HomeError,
    ReadError,
    StoreError,
    UsageError,
    ValidationFailed,
)


class ApiError(Exception):
    """An error with its own HTTP status: 401, 403, 404, 409, 413 ..."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def status_for(exc: BaseException) -> int:
    """The HTTP status of an exception raised while serving a request."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, RequestValidationError):  # a parameter of the wrong type or form
        return 400
    if isinstance(exc, StoreError):  # unknown trial, dataset, version or record
        return 404
    if isinstance(exc, ValidationFailed):
        return 422
    if isinstance(exc, UsageError | ReadError | ContractError):
        return 400
    if isinstance(exc, HomeError | LogConsistencyError | VerificationError):
        return 500  # the home itself is damaged: the audit says how
    if isinstance(exc, LogError | AnchoringError):
        return 400
    return 500
