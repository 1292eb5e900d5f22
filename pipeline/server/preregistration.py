"""Public routes for pre-registration: a trial's registered documents, its registry-record
history, the outcome check, and entry proofs that verify offline (docs/formats.md §8, §11)."""


__all__ = ["preregistration_routes"]

import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from pipeline.errors import StoreError, UsageError
from pipeline.home import Home
from pipeline.store import check_name

_SHA256 = re.compile(r"[0-9a-f]{64}")
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad request"},
    404: {"description": "not found"},
}


def _sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise UsageError("sha256 must be 64 lowercase hex digits")
    return value


def preregistration_routes(app: FastAPI, home_dependency: Any) -> None:
    """Register the routes; ``home_dependency`` opens the app's home."""
    from pipeline.preregistration import (
        document_entries,
        entry_proof,
        find_document,
        proven_time,
        registered_trials,
        registry_entries,
    )

    HomeDep = Annotated[Home, Depends(home_dependency)]
    base = "/api/v1/trials/{trial}"

    @app.get(f"{base}/documents", responses=_ERRORS)
    def documents(trial: str, home: HomeDep) -> dict[str, Any]:
        check_name(trial, "trial")
        return {"trial": trial, "documents": [
            d.to_json(proven_time(home, d.log_index)) for d in document_entries(home, trial)]}

    @app.get(f"{base}/documents/{{sha256}}/proof", responses=_ERRORS)
    def document_proof(trial: str, sha256: str, home: HomeDep) -> dict[str, Any]:
        document = find_document(home, check_name(trial, "trial"), _sha256(sha256))
        return entry_proof(home, document.log_index)

    @app.get("/api/v1/documents/{sha256}/proof", responses=_ERRORS)
    def any_document_proof(sha256: str, home: HomeDep) -> dict[str, Any]:
        """The entry proof of the first registration of a document, whatever its trial:
        what `trialproof verify-document --url` asks for."""
        digest = _sha256(sha256)
        for trial in registered_trials(home):
            for document in document_entries(home, trial):
                if document.sha256 == digest:
                    return entry_proof(home, document.log_index)
        raise StoreError(f"no document with sha256 {digest[:16]}… is registered")

    @app.get(f"{base}/registry-records", responses=_ERRORS)
    def registry_records(trial: str, home: HomeDep) -> dict[str, Any]:
        check_name(trial, "trial")
        return {"trial": trial, "records": [
            r.to_json(proven_time(home, r.log_index)) for r in registry_entries(home, trial)]}

    @app.get(f"{base}/outcomes", responses=_ERRORS)
    def outcomes(trial: str, home: HomeDep) -> dict[str, Any]:
        from pipeline.outcome_check import check_outcomes

        try:
            return check_outcomes(home, check_name(trial, "trial")).to_json()
        except UsageError as exc:  # nothing logged for the trial yet
            raise StoreError(str(exc)) from None

    @app.get("/api/v1/entries/{index}/proof", responses=_ERRORS)
    def any_entry_proof(index: int, home: HomeDep) -> dict[str, Any]:
        size = home.log().size()
        if not 0 <= index < size:
            raise StoreError(f"no log entry {index}; the log has {size}")
        return entry_proof(home, index)
