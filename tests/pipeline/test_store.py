"""The store's crash recovery of directories a commit leaves behind."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest

from pipeline.home import Home
from pipeline.store import _LOCK, ABANDONED_AFTER_SECONDS, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    home = Home.init(tmp_path / "home", "trials.example.org/log")
    return Store(home.path, home.log())


def _new_dir(store: Store, name: str, age: float, lock_file: bool = True) -> Path:
    fresh = store.dataset_dir("T1", "lb") / f".new-{name}"
    fresh.mkdir(parents=True)
    if lock_file:
        (fresh / _LOCK).touch()
    then = time.time() - age
    os.utime(fresh, (then, then))
    return fresh


def test_recover_removes_an_old_unlocked_new_dir(store: Store) -> None:
    old = _new_dir(store, "1-aa", ABANDONED_AFTER_SECONDS + 5)
    no_lock = _new_dir(store, "2-bb", ABANDONED_AFTER_SECONDS + 5, lock_file=False)
    done = store.recover()
    assert not old.exists() and not no_lock.exists()
    assert sorted(done) == [
        "removed abandoned datasets/T1/lb/.new-1-aa",
        "removed abandoned datasets/T1/lb/.new-2-bb",
    ]


def test_recover_keeps_a_young_or_locked_new_dir(store: Store) -> None:
    young = _new_dir(store, "3-cc", 1)
    locked = _new_dir(store, "4-dd", ABANDONED_AFTER_SECONDS + 5)
    fd = os.open(locked / _LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # its owner is alive and about to rename it
        assert store.recover() == []
    finally:
        os.close(fd)
    assert young.is_dir() and locked.is_dir()


def test_staging_dir_leaves_nothing_behind(store: Store) -> None:
    with store.staging_dir("T1", "lb") as staging:
        assert staging.name.startswith(".staging-")
        assert not list(staging.parent.glob(".new-*"))
    assert store.recover() == [f"removed unfinished {staging.relative_to(store.root)}"]
    assert not staging.exists()


def test_a_quarantined_report_is_found_by_its_folder_name_only(store: Store) -> None:
    from pipeline.errors import StoreError

    folder = store.quarantine_dir("T1", "lb", "ab" * 32)
    folder.mkdir(parents=True)
    (folder / "report.html").write_bytes(b"<html>")
    assert store.quarantined_report(folder.name).read_bytes() == b"<html>"
    (store.root / "secret.html").write_text("not a report")
    for wrong in ("..", ".", "", f"{folder.name}/..", "../quarantine/" + folder.name,
                  f".{folder.name}", "T1-lb-" + "cd" * 32):
        with pytest.raises(StoreError):
            store.quarantined_report(wrong)
