"""Durable file writes: temporary file, fsync, rename (docs/architecture.md)."""

from __future__ import annotations

__all__ = [
    "copy_durably",
    "durable_replace",
    "fsync_dir",
    "is_within",
    "remove_stale_temp_files",
    "sha256_file",
    "symlinked_component",
    "write_bytes_durably",
    "write_text_durably",
]

import fcntl
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

#: A temporary file or folder this old, whose writer holds no lock on it, was left by a crash.
STALE_AFTER_SECONDS = 60.0
# ".<name>.<pid>.tmp": the pid of the process that writes it.
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.tmp$")


def fsync_dir(path: Path) -> None:
    """Make a rename or new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def durable_replace(path: Path) -> Iterator[BinaryIO]:
    """Write ``path`` whole or not at all: the caller writes the file this yields, a
    temporary ``.<name>.<pid>.tmp`` beside ``path``, under an ``flock`` (so that
    :func:`remove_stale_temp_files` leaves it alone while this process lives). When the
    block ends it is fsynced, renamed over ``path`` and the rename made durable. If the
    block raises (a full disk, a check that failed), no temporary file is left."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            fcntl.flock(out.fileno(), fcntl.LOCK_EX)
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_durably(path: Path, data: bytes) -> None:
    with durable_replace(path) as out:
        out.write(data)


class _SourceChanged(Exception):
    pass


def copy_durably(source: BinaryIO, path: Path, sha256: str) -> bool:
    """Copy ``source`` to ``path`` with :func:`durable_replace` when what it reads hashes
    to the hex SHA-256 ``sha256``. Otherwise, the source having changed since it was
    hashed, write nothing and return False."""
    try:
        with durable_replace(path) as out:
            digest = hashlib.sha256()
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != sha256:
                raise _SourceChanged
    except _SourceChanged:
        return False
    return True


def write_text_durably(path: Path, text: str) -> None:
    write_bytes_durably(path, text.encode("utf-8"))


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex SHA-256, size in bytes) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or below it (both taken as they are: resolve first)."""
    return path == folder or folder in path.parents


def symlinked_component(path: Path) -> Path | None:
    """The first component of the absolute ``path`` that is a symbolic link, or None."""
    current = Path(path.anchor)
    for part in path.parts[1:]:
        current = current / part
        if current.is_symlink():
            return current
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _unlocked(path: Path) -> bool:
    """Nobody holds an ``flock`` on ``path`` (a writer keeps one while it writes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Remove the ``.<name>.<pid>.tmp`` files and folders in ``folder`` that a crashed or
    killed writer left behind; return them.

    A writer holds an ``flock`` on its temporary file, which the kernel drops when it dies:
    a locked file is never touched. An unlocked one goes when its process is gone, or,
    since the pid may belong to another host sharing the folder, when it is old. A
    temporary folder holds no lock: it goes when it is old.
    """
    removed: list[Path] = []
    try:
        candidates = [entry for entry in os.scandir(folder) if _TEMP_NAME.match(entry.name)]
    except FileNotFoundError:
        return removed
    for entry in candidates:
        path = Path(entry.path)
        match = _TEMP_NAME.match(entry.name)
        assert match is not None
        try:
            age = time.time() - path.lstat().st_mtime
        except FileNotFoundError:
            continue
        if _pid_alive(int(match.group(1))) and age < STALE_AFTER_SECONDS:
            continue
        if entry.is_dir(follow_symlinks=False):
            if age < STALE_AFTER_SECONDS:  # folders hold no lock: only age tells
                continue
            shutil.rmtree(path, ignore_errors=True)
        elif _unlocked(path):
            path.unlink(missing_ok=True)
        else:
            continue
        removed.append(path)
    return removed
