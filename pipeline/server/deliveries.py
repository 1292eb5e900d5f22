"""Sponsor uploads: a delivery goes through the same staging as ``trialproof ingest``
(``raw/<sha256>``), then into the dataset's delivery folder, where its ingest DAG finds it."""

from __future__ import annotations

__all__ = ["receive_delivery"]

import fnmatch
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from pipeline.fsutil import fsync_dir
from pipeline.home import Home
from pipeline.server.errors import ApiError

_CHUNK = 1 << 20


class _Upload(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


def _delivery_pattern(registry: Path | None, trial: str, dataset: str) -> str:
    from pipeline.registry import is_remote, read_registry

    entries = [e for e in read_registry(registry).entries
               if (e.trial, e.dataset) == (trial, dataset)]
    if not entries:
        raise ApiError(404, f"{trial}/{dataset} is not in the sponsor registry")
    pattern = entries[0].deliveries
    if is_remote(pattern):
        raise ApiError(400, f"{trial}/{dataset} takes deliveries from remote storage, "
                            "not by upload")
    return pattern


def _folder_and_check(pattern: str, name: str) -> Path:
    """The folder the pattern's deliveries live in; 400 if ``name`` would not be picked up."""
    parts = Path(pattern).parts
    magic = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), None)
    if magic is None:
        return Path(pattern)
    folder = Path(*parts[:magic])
    if not fnmatch.fnmatch(str(folder / name), pattern):
        raise ApiError(400, f"the dataset's deliveries are named like {Path(pattern).name}")
    return folder


async def receive_delivery(home: Home, registry: Path | None, trial: str, dataset: str,
                           name: str, upload: _Upload, limit: int) -> dict[str, Any]:
    """Stream the upload to a temporary file (at most ``limit`` bytes), stage it, and put it
    in the delivery folder under ``name``. The same bytes again are a no-op."""
    from pipeline.ingest import stage

    folder = _folder_and_check(_delivery_pattern(registry, trial, dataset), name)
    # The upload is spooled outside the home: staging refuses any file inside one, as a
    # delivery there could be the home's own keys.
    with tempfile.TemporaryDirectory(prefix="trialproof-upload-") as spool:
        tmp = Path(spool) / name
        size = 0
        with open(tmp, "wb") as out:
            while chunk := await upload.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"the delivery is larger than {limit} bytes")
                out.write(chunk)
        if size == 0:
            raise ApiError(400, "the delivery is empty")
        staged = stage(home, tmp)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if target.exists():
        from pipeline.fsutil import sha256_file

        if sha256_file(target)[0] != staged.sha256:
            raise ApiError(409, f"a different delivery named {name} is already waiting")
    else:
        hidden = folder / f".{name}.{os.urandom(4).hex()}.part"
        shutil.copyfile(staged.path, hidden)
        with open(hidden, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(hidden, target)
        fsync_dir(folder)
    return {"trial": trial, "dataset": dataset, "name": name, "sha256": staged.sha256,
            "bytes": staged.size}
