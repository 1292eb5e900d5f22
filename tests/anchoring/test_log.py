"""The transparency log (anchoring._internal.log) against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool
from trialproof_log_schema import log_checkpoints, log_entries, log_nodes

import anchoring._internal.log.transparency_log as log_module
from anchoring._internal.log import LogEntry, TransparencyLog
from anchoring._internal.tree import MerkleTree
from anchoring.checkpoint import open_checkpoint
from anchoring.errors import LogConsistencyError, LogDatabaseError, LogError
from anchoring.merkle.hasher import EMPTY_ROOT, leaf_hash
from anchoring.merkle.verify import verify_consistency, verify_inclusion
from anchoring.note import Signer

ORIGIN = "trials.example.org/log"
SHARED_KEY = "TRIAL-1/SHARED"


def sqlite_url(tmp_path: Path, name: str = "log.db") -> str:
    return f"sqlite:///{tmp_path / name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def log(url: str) -> Iterator[TransparencyLog]:
    with TransparencyLog(url, ORIGIN) as opened:
        yield opened


def leaves(n: int, tag: str = "m") -> list[bytes]:
    return [json.dumps({"n": i, "tag": tag}, separators=(",", ":")).encode() for i in range(n)]


def row_counts(url: str) -> dict[str, int]:
    """Row counts of every log table, read over an independent connection."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return {
                table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (log_entries, log_nodes, log_checkpoints)
            }
    finally:
        engine.dispose()


def manifest_builder(tag: str) -> Any:
    """A ``build`` callback making a manifest-like leaf with version and previous."""

    def build(previous: LogEntry | None) -> bytes:
        return json.dumps(
            {
                "tag": tag,
                "version": 1 if previous is None else (previous.key_seq or 0) + 1,
                "previous": None if previous is None else previous.leaf_hash.hex(),
            },
            sort_keys=True,
        ).encode()

    return build


def check_against_tree(log: TransparencyLog, data: list[bytes], sizes: range) -> None:
    """Roots and proofs from the log equal MerkleTree's, and verify, for every (index, size)."""
    tree = MerkleTree.from_leaf_inputs(data)
    for size in sizes:
        root = log.root(size)
        assert root == tree.root(size), size
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            assert proof == tree.inclusion_proof(index, size), (index, size)
            verify_inclusion(index, size, leaf_hash(data[index]), proof, root)
        for old in range(1, size + 1):
            proof = log.consistency_proof(old, size)
            assert proof == tree.consistency_proof(old, size), (old, size)
            verify_consistency(old, size, tree.root(old), root, proof)


# -- the tree ----------------------------------------------------------------------


def test_proofs_match_merkle_tree_for_every_size_and_index(tmp_path: Path) -> None:
    data = leaves(70)
    tree = MerkleTree.from_leaf_inputs(data)
    with TransparencyLog(sqlite_url(tmp_path), ORIGIN) as log:
        assert log.size() == 0
        assert log.root() == EMPTY_ROOT
        for i, item in enumerate(data):
            entry = log.append(item)
            assert entry == LogEntry(i, leaf_hash(item), item, None, None)
            assert log.root() == tree.root(i + 1)
        assert log.size() == 70
        check_against_tree(log, data, range(1, 71))
        # Defaults: the current size.
        assert log.inclusion_proof(33) == tree.inclusion_proof(33)
        assert log.consistency_proof(17) == tree.consistency_proof(17)
        assert log.consistency_proof(70) == []


@pytest.mark.postgres
def test_proofs_match_merkle_tree_on_postgres(postgres_url: str) -> None:
    data = leaves(21)
    with TransparencyLog(postgres_url, ORIGIN) as log:
        log.append_many(data[:5])
        for item in data[5:]:
            log.append(item)
        check_against_tree(log, data, range(1, 22))


def test_in_memory_sqlite_works() -> None:
    data = leaves(9)
    with TransparencyLog("sqlite://", ORIGIN) as log:
        log.append_many(data[:4])
        log.append(data[4])
        log.append_many(data[5:])
        check_against_tree(log, data, range(1, 10))


def test_reopening_keeps_entries_and_checks_origin(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    data = leaves(5)
    with TransparencyLog(url, ORIGIN) as log:
        log.append_many(data)
        root = log.root()
    with TransparencyLog(url, ORIGIN) as again:
        assert again.size() == 5
        assert again.root() == root
        assert again.entry(4).leaf_input == data[4]
    with pytest.raises(LogError, match="origin"):
        TransparencyLog(url, "other.example.org/log")


def test_a_damaged_database_raises_log_database_error(tmp_path: Path) -> None:
    """Driver errors are one named LogDatabaseError (exit 2), never a raw driver error."""
    url = sqlite_url(tmp_path)
    with TransparencyLog(url, ORIGIN) as log:
        log.append_many(leaves(40))
    database = tmp_path / "log.db"
    whole = database.read_bytes()
    database.write_bytes(b"garbage, not SQLite" + whole[19:])
    with pytest.raises(LogDatabaseError, match="damaged or unreadable: file is not a database"):
        TransparencyLog(url, ORIGIN)
    database.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(LogDatabaseError, match="damaged"), TransparencyLog(url, ORIGIN) as log:
        list(log.scan())
        log.root()


def test_read_only_log_reads_signs_without_storing_and_refuses_writes(
    url: str, tmp_path: Path
) -> None:
    signer = Signer.generate(ORIGIN)
    with TransparencyLog(url, ORIGIN) as log:
        log.append_many(leaves(5))
        stored = log.sign_checkpoint(signer)
        log.append(b"six")
    before = row_counts(url)
    with TransparencyLog(url, ORIGIN, read_only=True) as log:
        assert log.read_only and log.size() == 6
        assert log.checkpoint_at(5) == stored
        note = log.sign_checkpoint(signer)  # for size 6: signed, not stored
        assert open_checkpoint(note, [signer.verifier], origin=ORIGIN).size == 6
        for write in (lambda: log.append(b"x"), lambda: log.append_many([b"x"]),
                      lambda: log.append_keyed("k", lambda _p: b"x")):
            with pytest.raises(LogDatabaseError, match="read-only"):
                write()
    assert row_counts(url) == before
    with TransparencyLog(url, ORIGIN) as log:
        assert log.sign_checkpoint(signer) == note  # Ed25519 is deterministic
    with pytest.raises(LogDatabaseError):  # a read-only open never creates a log
        TransparencyLog(sqlite_url(tmp_path, "absent.db"), ORIGIN, read_only=True)
    assert not (tmp_path / "absent.db").exists()


def test_preconditions_raise_log_error(log: TransparencyLog) -> None:
    log.append_many(leaves(8))
    for call in (
        lambda: log.entry(8),
        lambda: log.entry(-1),
        lambda: log.root(9),
        lambda: log.root(-1),
        lambda: log.inclusion_proof(8),
        lambda: log.inclusion_proof(-1),
        lambda: log.inclusion_proof(5, 5),
        lambda: log.inclusion_proof(0, 9),
        lambda: log.consistency_proof(0),
        lambda: log.consistency_proof(5, 4),
        lambda: log.consistency_proof(1, 9),
    ):
        with pytest.raises(LogError):
            call()
    with pytest.raises(LogError, match="bytes"):
        log.append("not bytes")  # type: ignore[arg-type]
    with pytest.raises(LogError):
        TransparencyLog("mysql://nobody@127.0.0.1/x", ORIGIN)
    assert log.size() == 8


# -- keyed chains and failed appends ------------------------------------------------


def test_append_keyed_chains_versions_and_previous_hashes(log: TransparencyLog) -> None:
    assert log.latest_for_key("T1/DM") is None
    assert log.entries_for_key("T1/DM") == []
    first = log.append_keyed("T1/DM", manifest_builder("dm"))
    log.append(b"unkeyed")
    other = log.append_keyed("T1/AE", manifest_builder("ae"))
    second = log.append_keyed("T1/DM", manifest_builder("dm"))
    third = log.append_keyed("T1/DM", manifest_builder("dm"))

    assert (first.index, first.key, first.key_seq) == (0, "T1/DM", 1)
    assert (other.index, other.key_seq) == (2, 1)
    assert (second.index, second.key_seq) == (3, 2)
    assert (third.index, third.key_seq) == (4, 3)
    assert json.loads(first.leaf_input) == {"tag": "dm", "version": 1, "previous": None}
    assert json.loads(second.leaf_input)["previous"] == first.leaf_hash.hex()
    assert json.loads(third.leaf_input) == {
        "tag": "dm",
        "version": 3,
        "previous": second.leaf_hash.hex(),
    }
    assert log.entries_for_key("T1/DM") == [first, second, third]
    assert log.latest_for_key("T1/DM") == third
    assert log.latest_for_key("T1/AE") == other
    assert log.entry(3) == second
    assert log.entry(1).key is None
    with pytest.raises(LogError):
        log.append_keyed("", manifest_builder("x"))
    with pytest.raises(LogError):
        log.append_keyed("k" * 1025, manifest_builder("x"))
    assert log.append_many([]) == []
    assert log.size() == 5


def test_build_raising_leaves_no_trace(log: TransparencyLog, url: str) -> None:
    data = leaves(11)
    log.append_many(data[:6])
    log.append_keyed("T1/DM", manifest_builder("dm"))
    log.sign_checkpoint(Signer.generate("log.example"))
    before = (log.size(), log.root(), row_counts(url))
    seen: list[LogEntry | None] = []

    def explode(previous: LogEntry | None) -> bytes:
        seen.append(previous)
        raise RuntimeError("manifest could not be built")

    with pytest.raises(RuntimeError, match="could not be built"):
        log.append_keyed("T1/DM", explode)
    assert seen and seen[0] is not None and seen[0].key_seq == 1
    with pytest.raises(LogError, match="bytes"):
        log.append_keyed("T1/DM", lambda _previous: "a str, not bytes")  # type: ignore[arg-type, return-value]
    assert (log.size(), log.root(), row_counts(url)) == before

    # The log carries on as if nothing happened.
    entry = log.append_keyed("T1/DM", manifest_builder("dm"))
    assert (entry.index, entry.key_seq) == (7, 2)
    all_data = [*data[:6], log.entry(6).leaf_input, entry.leaf_input]
    check_against_tree(log, all_data, range(1, 9))


def test_failed_bulk_append_in_the_middle_leaves_log_consistent(
    log: TransparencyLog, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so several executemany batches are written before the failure.
    monkeypatch.setattr(log_module, "BATCH_ROWS", 4)
    data = leaves(30)
    log.append_many(data[:5])
    before = (log.size(), log.root(), row_counts(url))
    poisoned: list[Any] = [*data[5:20], None, *data[20:]]
    with pytest.raises(LogError, match="bytes"):
        log.append_many(poisoned)
    assert (log.size(), log.root(), row_counts(url)) == before
    assert log.append_many(data[5:]) == list(range(5, 30))
    check_against_tree(log, data, range(1, 31))


# -- checkpoints ---------------------------------------------------------------------


def test_checkpoints_are_idempotent_and_consistent(log: TransparencyLog) -> None:
    signer = Signer.generate("log.example")
    other = Signer.generate("other.example")
    assert log.latest_checkpoint() is None
    assert log.checkpoints() == []
    empty = log.sign_checkpoint(signer)
    assert open_checkpoint(empty, [signer.verifier], ORIGIN).root == EMPTY_ROOT

    data = leaves(40)
    sizes = [1, 2, 3, 7, 8, 13, 32, 40]
    done = 0
    for size in sizes:
        log.append_many(data[done:size])
        done = size
        note = log.sign_checkpoint(signer)
        # Idempotent per size: even another signer gets the stored note back.
        assert log.sign_checkpoint(other) == note
        assert log.checkpoint_at(size) == note
        assert log.latest_checkpoint() == note
        checkpoint = open_checkpoint(note, [signer.verifier], ORIGIN)
        assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (ORIGIN, size, log.root())

    stored = log.checkpoints()
    assert [size for size, _ in stored] == [0, *sizes]
    assert log.checkpoint_at(5) is None
    opened = [open_checkpoint(note, [signer.verifier], ORIGIN) for _, note in stored[1:]]
    for i, old in enumerate(opened):
        for new in opened[i:]:
            proof = log.consistency_proof(old.size, new.size)
            verify_consistency(old.size, new.size, old.root, new.root, proof)


def test_tampering_is_reported_as_log_consistency_error(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with TransparencyLog(url, ORIGIN) as log:
        log.append_many(leaves(10))
        log.sign_checkpoint(Signer.generate("log.example"))
        engine = create_engine(url, poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(text("UPDATE log_entries SET leaf_input = x'00' WHERE idx = 3"))
            conn.execute(text("DELETE FROM log_nodes WHERE level = 1 AND idx = 2"))
            conn.execute(text("UPDATE log_checkpoints SET root = zeroblob(32) WHERE size = 10"))
        engine.dispose()
        with pytest.raises(LogConsistencyError, match="entry 3"):
            log.entry(3)
        with pytest.raises(LogConsistencyError, match=r"\(1, 2\)"):
            log.inclusion_proof(6)
        log.inclusion_proof(1)  # a proof that avoids the missing node still works
        with pytest.raises(LogConsistencyError):
            log.sign_checkpoint(Signer.generate("log.example"))


# -- large logs -----------------------------------------------------------------------


def test_bulk_load_of_100k_gives_fast_correct_proofs(tmp_path: Path) -> None:
    n = 100_003
    data = [b"manifest %d" % i for i in range(n)]
    tree = MerkleTree.from_leaf_inputs(data)
    with TransparencyLog(sqlite_url(tmp_path), ORIGIN) as log:
        # Two bulk loads and single appends: the frontier is reloaded from storage.
        assert log.append_many(data[:65_537]) == list(range(65_537))
        for item in data[65_537:65_540]:
            log.append(item)
        assert log.append_many(data[65_540:]) == list(range(65_540, n))
        assert log.size() == n
        root = log.root()
        assert root == tree.root()
        rng = random.Random(9162)
        for index in [0, 1, 65_535, 65_536, n - 1, *rng.sample(range(n), 40)]:
            size = rng.randint(index + 1, n)
            proof = log.inclusion_proof(index, size)
            assert proof == tree.inclusion_proof(index, size)
            verify_inclusion(index, size, leaf_hash(data[index]), proof, tree.root(size))
        for old in [1, 2, 65_536, 65_537, n - 1, n, *rng.sample(range(1, n), 40)]:
            proof = log.consistency_proof(old)
            assert proof == tree.consistency_proof(old)
            verify_consistency(old, n, tree.root(old), root, proof)


# -- concurrency ------------------------------------------------------------------------


def _append_worker(
    url: str,
    worker: int,
    count: int,
    skey: str,
    *,
    barrier: Any,
    results: Any,
) -> None:
    """One appending process: plain appends, keyed appends to a shared key, checkpoints."""
    try:
        signer = Signer.from_skey(skey)
        with TransparencyLog(url, ORIGIN) as log:  # concurrent first-time table creation
            barrier.wait(timeout=60)
            done: list[tuple[int, bytes]] = []
            for j in range(count):
                if j % 2:
                    entry = log.append_keyed(SHARED_KEY, manifest_builder(f"w{worker}-{j}"))
                else:
                    entry = log.append(b"w%d-%d" % (worker, j))
                done.append((entry.index, entry.leaf_input))
                if j % 50 == 49:
                    log.sign_checkpoint(signer)
            results.put((worker, done, None))
    except BaseException as exc:  # report to the parent instead of dying silently
        results.put((worker, [], repr(exc)))


def _run_appenders(url: str, workers: int, count: int, signer: Signer) -> list[tuple[int, bytes]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=_append_worker,
            args=(url, k, count, signer.skey()),
            kwargs={"barrier": barrier, "results": results},
        )
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    collected: list[tuple[int, bytes]] = []
    errors = []
    for _ in processes:
        _worker, done, error = results.get(timeout=120)
        collected.extend(done)
        if error:
            errors.append(error)
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert not errors, errors
    return collected


def _check_after_concurrent_appends(
    url: str, collected: list[tuple[int, bytes]], total: int, signer: Signer
) -> None:
    with TransparencyLog(url, ORIGIN) as log:
        assert log.size() == total
        indices = sorted(index for index, _ in collected)
        assert indices == list(range(total))  # unique, and nothing skipped
        by_index = dict(collected)
        data = [log.entry(i).leaf_input for i in range(total)]
        assert data == [by_index[i] for i in range(total)]
        assert len(set(data)) == total  # every leaf input exactly once

        # The shared key formed one unbroken chain despite the races.
        chain = log.entries_for_key(SHARED_KEY)
        assert [entry.key_seq for entry in chain] == list(range(1, len(chain) + 1))
        assert len(chain) == total // 2
        previous: LogEntry | None = None
        for entry in chain:
            manifest = json.loads(entry.leaf_input)
            assert manifest["version"] == entry.key_seq
            assert manifest["previous"] == (None if previous is None else previous.leaf_hash.hex())
            previous = entry

        root = log.root()
        assert root == MerkleTree.from_leaf_inputs(data).root()
        stored = log.checkpoints()
        assert stored and stored[-1][0] <= total
        opened = [open_checkpoint(note, [signer.verifier], ORIGIN) for _, note in stored]
        for checkpoint in opened:
            assert checkpoint.root == log.root(checkpoint.size)
        for old, new in itertools.pairwise(opened):
            proof = log.consistency_proof(old.size, new.size)
            verify_consistency(old.size, new.size, old.root, new.root, proof)
        final = open_checkpoint(log.sign_checkpoint(signer), [signer.verifier], ORIGIN)
        verify_consistency(
            opened[-1].size,
            total,
            opened[-1].root,
            final.root,
            log.consistency_proof(opened[-1].size),
        )


@pytest.mark.timeout(180)
def test_concurrent_process_appends_sqlite(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)  # the workers create the database themselves
    signer = Signer.generate("log.example")
    collected = _run_appenders(url, 4, 250, signer)
    _check_after_concurrent_appends(url, collected, 1000, signer)


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_concurrent_process_appends_postgres(postgres_url: str) -> None:
    signer = Signer.generate("log.example")
    collected = _run_appenders(postgres_url, 4, 250, signer)
    _check_after_concurrent_appends(postgres_url, collected, 1000, signer)


def test_concurrent_thread_appends_share_one_instance(url: str) -> None:
    with TransparencyLog(url, ORIGIN) as log:
        got: list[tuple[int, bytes]] = []
        lock = threading.Lock()
        failures: list[BaseException] = []

        def run(worker: int) -> None:
            try:
                for j in range(30):
                    if j % 3 == 0:
                        entry = log.append_keyed(SHARED_KEY, manifest_builder(f"t{worker}"))
                    else:
                        entry = log.append(b"t%d-%d" % (worker, j))
                    with lock:
                        got.append((entry.index, entry.leaf_input))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures
        assert sorted(index for index, _ in got) == list(range(120))
        assert [e.key_seq for e in log.entries_for_key(SHARED_KEY)] == list(range(1, 41))
        data = [leaf for _, leaf in sorted(got)]
        assert log.root() == MerkleTree.from_leaf_inputs(data).root()


def _forked_child(log: TransparencyLog, url: str) -> None:
    # Uses the parent's instance (its pool was dropped at fork) and a new one.
    for j in range(5):
        log.append(b"child-inherited-%d" % j)
    with TransparencyLog(url, ORIGIN) as own:
        own.append_many([b"child-own-%d" % j for j in range(5)])


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs os.fork")
def test_fork_after_engine_creation_does_not_share_connections(url: str) -> None:
    with TransparencyLog(url, ORIGIN) as log:
        log.append_many(leaves(3))
        assert log.size() == 3  # the parent now holds pooled connections
        child = multiprocessing.get_context("fork").Process(target=_forked_child, args=(log, url))
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
        log.append(b"parent-after")  # the parent's pooled connections still work
        assert log.size() == 14
        data = [log.entry(i).leaf_input for i in range(14)]
        assert data[-1] == b"parent-after"
        assert log.root() == MerkleTree.from_leaf_inputs(data).root()
