"""The core suite: Merkle tree build, stored-tree proofs, record proofs, the log.

All benchmarks share one input: ``N_LEAVES`` leaves of ``LEAF_BYTES`` bytes,
generated once per run (seeded, so identical across runs) into a scratch
directory. Each leaf is the base64 text of 90 random bytes, i.e. 120 bytes of
ASCII, so that merkletools (which takes ``str`` and hashes its UTF-8 encoding)
hashes exactly the same bytes as everyone else.

Functions named ``task_*`` run inside the measuring child process (see
:mod:`bench.harness`); :func:`run` is the suite and runs in the parent.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import random
import secrets
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench.harness import (
    Context,
    Measurement,
    Spec,
    SuiteReport,
    fmt_bytes,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    machine_line,
    markdown_table,
    measure,
    measure_group,
    now_utc,
    targets_table,
)

NAME = "core"
SEED = 20261129
N_LEAVES = 1_000_000
LEAF_BYTES = 120
N_PROOFS = 10_000
N_RECORD_PROOFS = 10_000
N_LATENCY = 100
N_SINGLE_APPENDS = 2_000
#: pymerkle runs at full size only if the 1/10-size run extrapolates below this.
PYMERKLE_FULL_LIMIT_S = 180.0
PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
ORIGIN = "bench.trialproof.example/log"

# Targets: (key, description, threshold, higher is better)
TARGET_PLAIN = 2.0
TARGET_PYMERKLE = 10.0
TARGET_PROOFS = 20_000.0
TARGET_RECORD_PROOFS = 5_000.0

_T = "bench.core:"

# -- inputs (parent and children) -----------------------------------------------


def leaves_path(out_dir: Path, n: int) -> Path:
    return out_dir / f"leaves-{n}x{LEAF_BYTES}-seed{SEED}.bin"


def ensure_leaves(out_dir: Path, n: int) -> Path:
    """Write the ``n`` leaves (concatenated, fixed width) once; reuse them afterwards."""
    path = leaves_path(out_dir, n)
    if path.exists() and path.stat().st_size == n * LEAF_BYTES:
        return path
    raw = base64.b64encode(random.Random(SEED).randbytes(n * LEAF_BYTES * 3 // 4))
    assert len(raw) == n * LEAF_BYTES
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)
    return path


def _raw(path: str) -> bytes:
    return Path(path).read_bytes()


def _split(raw: bytes) -> list[bytes]:
    return [raw[i : i + LEAF_BYTES] for i in range(0, len(raw), LEAF_BYTES)]


def _arrow(raw: bytes) -> Any:
    """A pyarrow ``binary`` array viewing ``raw`` without a copy (int32 offsets)."""
    import numpy as np
    import pyarrow as pa

    n = len(raw) // LEAF_BYTES
    offsets = np.arange(0, (n + 1) * LEAF_BYTES, LEAF_BYTES, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(raw)]
    )


def plain_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 root with one hashlib call per node, level by level, odd node carried up."""
    sha = hashlib.sha256
    level = [sha(b"\x00" + d).digest() for d in leaves]
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0] if level else sha(b"").digest()


# -- tasks: tree build ---------------------------------------------------------------


def _root_hex(root: Any) -> dict[str, Any]:
    return {"root": root.hex() if isinstance(root, bytes) else str(root)}


def task_build_ours(path: str, form: str) -> Any:
    from anchoring._internal.tree import MerkleTree
    from pipeline.hashing import VectorizedHasher

    raw = _raw(path)
    leaves: Any = _split(raw) if form == "list" else _arrow(raw)
    hasher = VectorizedHasher()
    # Warm-up outside the timing: imports polars/pyarrow and runs the vectorized path once.
    MerkleTree.from_leaf_inputs(leaves[:20_000], hasher)

    def step() -> Any:
        return MerkleTree.from_leaf_inputs(leaves, hasher)

    return step, lambda tree: _root_hex(tree.root())


def task_leaf_level_ours(path: str) -> Any:
    from pipeline.hashing import sha256_many

    leaves = _split(_raw(path))
    sha256_many(b"\x00", leaves[:20_000])

    def step() -> bytes:
        return sha256_many(b"\x00", leaves)

    return step, lambda out: {"bytes": len(out)}


def task_build_plain(path: str) -> Any:
    leaves = _split(_raw(path))
    return (lambda: plain_root(leaves)), _root_hex


def task_build_merkletools(path: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sha3 is not working!": only sha256 is used
        import merkletools

    values = [d.decode("ascii") for d in _split(_raw(path))]

    def step() -> Any:
        tree = merkletools.MerkleTools(hash_type="sha256")
        tree.add_leaf(values, do_hash=True)
        tree.make_tree()
        return tree.get_merkle_root()

    return step, _root_hex


def task_build_pymerkle(path: str, n: int) -> Any:
    from pymerkle import InmemoryTree

    leaves = _split(_raw(path))[:n]

    def step() -> bytes:
        tree = InmemoryTree(algorithm="sha256")  # RFC 9162 mode: 0x00/0x01 prefixes on
        tree.append_entries(leaves)
        return tree.get_root()

    return step, _root_hex


def task_floor(path: str) -> Any:
    raw = _raw(path)
    return (lambda: hashlib.sha256(raw).digest()), _root_hex


def task_write_tree(path: str, tree_path: str) -> Any:
    from anchoring._internal.tree import MerkleTree
    from pipeline.hashing import VectorizedHasher

    tree = MerkleTree.from_leaf_inputs(_split(_raw(path)), VectorizedHasher())

    def step() -> None:
        tree.write(tree_path)

    return step, lambda _: {"file_bytes": os.path.getsize(tree_path), "root": tree.root().hex()}


# -- tasks: proofs from a stored tree ------------------------------------------------


def task_stored_proofs(tree_path: str, count: int, expected_root: str) -> Any:
    from anchoring._internal.tree import MerkleTree
    from anchoring.merkle.verify import verify_inclusion

    start = time.perf_counter()
    tree = MerkleTree.open(tree_path)
    open_seconds = time.perf_counter() - start
    rnd = random.Random(SEED + 1)
    indices = [rnd.randrange(tree.size) for _ in range(count)]
    sample_every = max(1, count // 100)

    def step() -> list[tuple[int, list[bytes]]]:
        samples = []
        for k, i in enumerate(indices):
            proof = tree.inclusion_proof(i)
            if k % sample_every == 0:
                samples.append((i, proof))
        return samples

    def after(samples: list[tuple[int, list[bytes]]]) -> dict[str, Any]:
        root = tree.root()
        assert root.hex() == expected_root, "stored tree has another root"
        for i, proof in samples:
            verify_inclusion(i, tree.size, tree.leaf_hash(i), proof, root)
        return {"open_seconds": open_seconds, "verified_samples": len(samples),
                "proof_hashes": len(samples[0][1]) if samples else 0}

    return step, after


# -- tasks: record proofs ------------------------------------------------------


def _sample_records(rows: int) -> list[dict[str, Any]]:
    # The same shape as tests/trialproof_testkit.py (an SDTM DM-like dataset).
    import datetime as dt

    return [
        {"USUBJID": f"01-701-{1000 + i}", "AGE": 60 + i % 30, "WEIGHT": 70.5 + i / 4,
         "RFSTDTC": (dt.date(2014, 1, 1) + dt.timedelta(days=i % 3650)).isoformat(),
         "SEX": "F" if i % 2 else "M", "ARM": None if i % 5 == 0 else "Placebo"}
        for i in range(rows)
    ]


class _CachedLogProof:
    """All records of one dataset share the manifest's log entry: prove it once."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._cache: dict[tuple[int, int | None], list[bytes]] = {}

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        key = (index, size)
        if key not in self._cache:
            self._cache[key] = self._log.inclusion_proof(index, size)
        return self._cache[key]


def task_build_record_proofs(workdir: str, records: int) -> Any:
    """Set up a real log and dataset, then (measured) build and serialize every record proof."""
    from anchoring._internal.log import TransparencyLog
    from anchoring._internal.tree import MerkleTree
    from anchoring.canonical import canonical_json, leaf_input, record_salt
    from anchoring.manifest import MANIFEST_TYPE, manifest_leaf_input
    from anchoring.note import Signer
    from anchoring.record_proof import build_record_proof
    from pipeline.hashing import VectorizedHasher

    trial, dataset = "CDISCPILOT01", "dm"
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("proofs.db", "proofs.db-wal", "proofs.db-shm"):
        (work / name).unlink(missing_ok=True)
    log = TransparencyLog(f"sqlite:///{work / 'proofs.db'}", ORIGIN)
    signer = Signer.generate("bench.trialproof.example")
    salt_key = hashlib.sha256(b"bench salt key").digest()
    rows = _sample_records(records)
    salts = [record_salt(salt_key, trial, dataset, [r["USUBJID"]], version=1) for r in rows]
    tree = MerkleTree.from_leaf_inputs(
        [leaf_input(s, canonical_json(r)) for s, r in zip(salts, rows, strict=True)],
        VectorizedHasher(),
    )
    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    manifest: dict[str, Any] = {}

    def make(previous: Any) -> bytes:
        manifest.update({
            "type": MANIFEST_TYPE, "trial": trial, "dataset": dataset,
            "version": 1 if previous is None else previous.key_seq + 1,
            "contract": {"name": dataset, "sha256": sha("contract")},
            "source": {"name": f"{dataset}.csv", "sha256": sha("source"), "bytes": 100 * records},
            "records": records, "root": tree.root().hex(),
            "previous": None if previous is None else previous.leaf_hash.hex(),
            "validation": {"success": True, "report_sha256": sha("report")},
            "ingested_at": "2026-11-29T12:00:00Z",
        })
        return manifest_leaf_input(manifest)

    # Other datasets' manifests around ours, so the log proof is a realistic ~10 hashes.
    log.append_many([f"other manifest {i}".encode() for i in range(1000)])
    entry = log.append_keyed(f"{trial}/{dataset}", make)
    log.append_many([f"later manifest {i}".encode() for i in range(24)])
    checkpoint = log.sign_checkpoint(signer)
    prover = _CachedLogProof(log)

    def step() -> list[str]:
        return [
            build_record_proof(
                record=rows[i], salt=salts[i], leaf_index=i, dataset_tree=tree,
                dataset_size=tree.size, manifest=manifest, log=prover,
                log_index=entry.index, checkpoint=checkpoint,
            ).to_json()
            for i in range(records)
        ]

    def after(texts: list[str]) -> dict[str, Any]:
        (work / "record_proofs.json").write_text(json.dumps(texts))
        (work / "vkey.txt").write_text(signer.verifier.vkey)
        first = json.loads(texts[0])
        log.close()
        return {
            "record_proofs": len(texts),
            "mean_proof_bytes": sum(len(t.encode()) for t in texts) / len(texts),
            "dataset_proof_hashes": len(first["dataset_proof"]),
            "log_proof_hashes": len(first["log_proof"]),
            "log_size": first["log_size"],
        }

    return step, after


def _load_record_proofs(workdir: str) -> tuple[list[str], list[Any]]:
    from anchoring.note import Verifier

    work = Path(workdir)
    texts = json.loads((work / "record_proofs.json").read_text())
    return texts, [Verifier.from_vkey((work / "vkey.txt").read_text().strip())]


def _tamper_check(text: str, trusted: list[Any]) -> dict[str, Any]:
    from anchoring.errors import ProofVerificationError
    from anchoring.record_proof import parse_record_proof
    from anchoring.verify import verify_record_proof

    obj = json.loads(text)
    obj["record"]["AGE"] = obj["record"]["AGE"] + 1
    try:
        verify_record_proof(parse_record_proof(json.dumps(obj)), trusted)
    except ProofVerificationError as exc:
        return {"tampered_proof_rejected": True, "rejected_at": exc.step.value}
    raise AssertionError("a tampered record proof verified")


def task_verify_record_proofs(workdir: str, parse: bool) -> Any:
    from anchoring.record_proof import parse_record_proof
    from anchoring.verify import verify_record_proof

    texts, trusted = _load_record_proofs(workdir)
    verify_record_proof(parse_record_proof(texts[0]), trusted)  # warm-up
    if parse:
        def step() -> int:
            for text in texts:
                verify_record_proof(parse_record_proof(text), trusted)
            return len(texts)
    else:
        proofs = [parse_record_proof(text) for text in texts]

        def step() -> int:
            for proof in proofs:
                verify_record_proof(proof, trusted)
            return len(proofs)

    return step, lambda count: {"verified": count, **_tamper_check(texts[0], trusted)}


def task_checkpoint_signatures(workdir: str) -> Any:
    from anchoring.note import open_note, parse_note
    from anchoring.record_proof import parse_record_proof

    texts, trusted = _load_record_proofs(workdir)
    notes = [parse_record_proof(text).checkpoint for text in texts]

    def step() -> int:
        for note in notes:
            open_note(parse_note(note), trusted)
        return len(notes)

    return step, lambda count: {"verified": count}


# -- tasks: the log ----------------------------------------------------------------------


def _fresh_sqlite(db_path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(db_path + suffix).unlink(missing_ok=True)


def task_log_append_many(path: str, url: str, sqlite_path: str | None) -> Any:
    from anchoring._internal.log import TransparencyLog

    if sqlite_path:
        _fresh_sqlite(sqlite_path)
    leaves = _split(_raw(path))
    log = TransparencyLog(url, ORIGIN)
    if log.size():
        raise RuntimeError("the benchmark log is not empty")

    def step() -> list[int]:
        return log.append_many(leaves)

    def after(indices: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {"appended": len(indices), "size": log.size(),
                               "root": log.root().hex()}
        if sqlite_path:
            out["db_bytes"] = sum(os.path.getsize(sqlite_path + s)
                                  for s in ("", "-wal") if os.path.exists(sqlite_path + s))
        log.close()
        return out

    return step, after


def task_log_proof_latency(url: str, kind: str, size: int, count: int) -> Any:
    from anchoring._internal.log import TransparencyLog
    from anchoring.merkle.verify import verify_consistency, verify_inclusion

    log = TransparencyLog(url, ORIGIN)
    root = log.root(size)
    rnd = random.Random(SEED + 2)
    points = [rnd.randrange(size) for _ in range(count)]
    if kind == "inclusion":
        log.inclusion_proof(0, size)  # warm-up: first query, connection pool

        def one(i: int) -> list[bytes]:
            return log.inclusion_proof(i, size)
    else:
        points = [p + 1 for p in points]  # old sizes in [1, size]
        log.consistency_proof(1, size)

        def one(i: int) -> list[bytes]:
            return log.consistency_proof(i, size)

    def step() -> tuple[list[float], list[list[bytes]]]:
        latencies, proofs = [], []
        for p in points:
            start = time.perf_counter()
            proofs.append(one(p))
            latencies.append(time.perf_counter() - start)
        return latencies, proofs

    def after(result: tuple[list[float], list[list[bytes]]]) -> dict[str, Any]:
        latencies, proofs = result
        for p, proof in zip(points, proofs, strict=True):
            if kind == "inclusion":
                verify_inclusion(p, size, log.entry(p).leaf_hash, proof, root)
            else:
                verify_consistency(p, size, log.root(p), root, proof)
        log.close()
        ordered = sorted(latencies)
        return {"median_seconds": statistics.median(latencies),
                "p95_seconds": ordered[int(0.95 * (len(ordered) - 1))],
                "max_seconds": ordered[-1], "verified": len(proofs)}

    return step, after


def task_log_append_single(url: str, count: int, tag: str) -> Any:
    from anchoring._internal.log import TransparencyLog

    log = TransparencyLog(url, ORIGIN)
    before = log.size()
    leaves = [f"single append {tag} {i}".encode().ljust(LEAF_BYTES, b".") for i in range(count)]
    log.append(b"warm-up " + tag.encode())

    def step() -> int:
        for data in leaves:
            log.append(data)
        return len(leaves)

    def after(appended: int) -> dict[str, Any]:
        size = log.size()
        log.close()
        return {"appended": appended, "size_before": before, "size_after": size}

    return step, after


# -- PostgreSQL (parent) --------------------------------------------------------------------


def _pg_create() -> tuple[str | None, str]:
    """Create a fresh database; (url, note). url is None when the server is unreachable."""
    try:
        import psycopg2  # noqa: F401
        from sqlalchemy import create_engine
    except ImportError as exc:
        return None, f"psycopg2 not installed ({exc})"
    name = f"tp_bench_{secrets.token_hex(4)}"
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                               connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
    except Exception as exc:
        return None, f"PostgreSQL at 127.0.0.1:5432 unreachable ({type(exc).__name__})"
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def _pg_drop(name: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


# -- the suite --------------------------------------------------------------------------------

NA = "\u2013"  # the en dash shown for a missing value
X = "\u00d7"  # the multiplication sign


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class _Suite:
    """Runs the measurements (each in fresh processes) and turns them into a report."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.n = ctx.size(N_LEAVES)
        self.n_proofs = ctx.size(N_PROOFS)
        self.n_record_proofs = ctx.size(N_RECORD_PROOFS)
        self.n_single = ctx.size(N_SINGLE_APPENDS)
        self.reps = 2 if ctx.quick else 5  # cheap steps
        self.few = 2 if ctx.quick else 3  # steps of a few seconds
        self.r: dict[str, Measurement] = {}
        self.notes: dict[str, str] = {}
        self.checks: dict[str, bool] = {}
        self.failures: list[str] = []
        self.work = Path(tempfile.mkdtemp(prefix="tp-bench-core-"))
        # Generated once per run into the scratch directory (removed at the end).
        self.path = str(ensure_leaves(self.work, self.n))
        self.ours_root: str | None = None
        self.load_end: list[float] = []

    # -- helpers ----------------------------------------------------------------------

    def m(self, key: str, label: str, target: str, params: dict[str, Any], *, repeats: int,
          timeout: float = 600.0) -> Measurement:
        self.r[key] = measure(label, _T + target, params, repeats=repeats, timeout=timeout,
                              log=self.log)
        return self.r[key]

    def ok(self, key: str) -> bool:
        return key in self.r and self.r[key].ok

    def check(self, name: str, passed: bool, detail: str = "") -> None:
        self.checks[name] = passed
        if not passed:
            self.failures.append(f"{name} {detail}".strip())
            self.log(f"  CHECK FAILED: {name} {detail}")

    # -- 1. tree build ----------------------------------------------------------------------

    def bench_build(self) -> None:
        n, path = self.n, self.path
        self.log(f"[core] 1/4 tree build over {n:,} leaves (runs interleaved)")
        specs = [
            Spec("ours_list", "ours: from_leaf_inputs(list[bytes])", _T + "task_build_ours",
                 {"path": path, "form": "list"}, self.reps),
            Spec("ours_arrow", "ours: from_leaf_inputs(pyarrow binary)", _T + "task_build_ours",
                 {"path": path, "form": "arrow"}, self.reps),
            Spec("ours_leaves", "ours: leaf level only (sha256_many)",
                 _T + "task_leaf_level_ours", {"path": path}, self.reps),
            Spec("plain", "plain hashlib loop", _T + "task_build_plain", {"path": path},
                 self.reps),
            Spec("floor", "one sha256 over all leaf bytes", _T + "task_floor", {"path": path},
                 self.reps),
        ]
        if _installed("merkletools"):
            specs.append(Spec("merkletools", "merkletools 1.0.3", _T + "task_build_merkletools",
                              {"path": path}, self.few))
        else:
            self.notes["merkletools"] = "not installed"
        self.r.update(measure_group(specs, log=self.log))
        if _installed("pymerkle"):
            self._pymerkle()
        else:
            self.notes["pymerkle"] = "not installed"
        self.m("write_tree", "ours: MerkleTree.write (fsync)", "task_write_tree",
               {"path": path, "tree_path": str(self.work / "tree.bin")}, repeats=1)

        if self.ok("ours_list"):
            self.ours_root = self.r["ours_list"].extra.get("root")
        for key in ("ours_arrow", "plain", "pymerkle", "write_tree"):
            if self.ok(key):
                got = self.r[key].extra.get("root")
                self.check(f"root({key}) == root(ours)", got == self.ours_root,
                           f"{got} != {self.ours_root}")
        if self.ok("pymerkle_small"):
            small = self.n // 10
            expected = plain_root(_split(Path(path).read_bytes()[: small * LEAF_BYTES])).hex()
            self.check("root(pymerkle, n/10) == plain root",
                       self.r["pymerkle_small"].extra.get("root") == expected)

    def _pymerkle(self) -> None:
        """n/10 first; the full size only if that extrapolates below the limit."""
        small = max(1, self.n // 10)
        pre = self.m("pymerkle_small", f"pymerkle InmemoryTree ({small:,})",
                     "task_build_pymerkle", {"path": self.path, "n": small}, repeats=1)
        if not pre.ok:
            return
        estimate = pre.best * self.n / small
        if estimate <= PYMERKLE_FULL_LIMIT_S:
            self.m("pymerkle", "pymerkle InmemoryTree", "task_build_pymerkle",
                   {"path": self.path, "n": self.n}, repeats=2 if estimate < 60 else 1,
                   timeout=PYMERKLE_FULL_LIMIT_S * 2)
        else:
            self.notes["pymerkle"] = (f"extrapolated linearly from {small:,} leaves "
                                      f"({fmt_seconds(pre.best)}), which predicted "
                                      f"> {PYMERKLE_FULL_LIMIT_S:.0f} s at full size")

    # -- 2. stored-tree proofs ----------------------------------------------------------------

    def bench_stored_proofs(self) -> None:
        self.log(f"[core] 2/4 {self.n_proofs:,} inclusion proofs from the stored tree")
        if self.ok("write_tree") and self.ours_root:
            self.m("stored_proofs", f"{self.n_proofs:,} proofs, MerkleTree.open (mmap)",
                   "task_stored_proofs",
                   {"tree_path": str(self.work / "tree.bin"), "count": self.n_proofs,
                    "expected_root": self.ours_root}, repeats=self.reps)

    # -- 3. record proofs ---------------------------------------------------------------------

    def bench_record_proofs(self) -> None:
        self.log(f"[core] 3/4 {self.n_record_proofs:,} record proofs")
        workdir = str(self.work / "record_proofs")
        n = self.n_record_proofs
        built = self.m("record_proof_build", f"build + serialize {n:,} record proofs",
                       "task_build_record_proofs", {"workdir": workdir, "records": n},
                       repeats=1)
        if not built.ok:
            return
        self.r.update(measure_group([
            Spec("record_proof_parse_verify", "parse_record_proof + verify_record_proof",
                 _T + "task_verify_record_proofs", {"workdir": workdir, "parse": True}, self.few),
            Spec("record_proof_verify", "verify_record_proof (pre-parsed)",
                 _T + "task_verify_record_proofs", {"workdir": workdir, "parse": False}, self.few),
            Spec("record_proof_signature", "checkpoint Ed25519 check only (open_note)",
                 _T + "task_checkpoint_signatures", {"workdir": workdir}, self.few),
        ], log=self.log))

    # -- 4. the log ------------------------------------------------------------------------------

    def bench_log(self) -> None:
        n = self.n
        self.log(f"[core] 4/4 transparency log: {n:,} appends (SQLite)")
        db = str(self.work / "log.db")
        url = f"sqlite:///{db}"
        appended = self.m("log_append_many", f"SQLite append_many({n:,})",
                          "task_log_append_many",
                          {"path": self.path, "url": url, "sqlite_path": db},
                          repeats=1 if self.ctx.quick else 2)
        if not appended.ok:
            return
        self.check("log root == tree root", appended.extra.get("root") == self.ours_root)
        for kind in ("inclusion", "consistency"):
            self.m(f"log_{kind}", f"SQLite {kind} proof at size {n:,}",
                   "task_log_proof_latency",
                   {"url": url, "kind": kind, "size": n, "count": N_LATENCY}, repeats=self.few)
        self.m("log_append", f"SQLite append() x {self.n_single:,}", "task_log_append_single",
               {"url": url, "count": self.n_single, "tag": "sqlite"}, repeats=self.few)

    def bench_postgres(self) -> None:
        pg_url, name = _pg_create()
        if pg_url is None:
            self.notes["postgres"] = name
            self.log(f"[core] PostgreSQL skipped: {name}")
            return
        n = self.n
        self.log(f"[core] PostgreSQL: {n:,} appends into fresh database {name}")
        try:
            pg = self.m("pg_append_many", f"PostgreSQL append_many({n:,})",
                        "task_log_append_many",
                        {"path": self.path, "url": pg_url, "sqlite_path": None},
                        repeats=1, timeout=300.0)
            if pg.ok:
                self.check("PostgreSQL log root == tree root",
                           pg.extra.get("root") == self.ours_root)
                self.m("pg_inclusion", f"PostgreSQL inclusion proof at size {n:,}",
                       "task_log_proof_latency",
                       {"url": pg_url, "kind": "inclusion", "size": n, "count": N_LATENCY},
                       repeats=self.few)
                self.m("pg_append", f"PostgreSQL append() x {self.n_single:,}",
                       "task_log_append_single",
                       {"url": pg_url, "count": self.n_single, "tag": "pg"}, repeats=1)
            elif pg.error and "no result within" in pg.error:
                self.notes["postgres"] = f"append_many did not finish: {pg.error}"
        finally:
            try:
                _pg_drop(name)
            except Exception as exc:
                self.log(f"[core] could not drop PostgreSQL database {name}: {exc}")

    def run_all(self) -> None:
        try:
            self.bench_build()
            self.bench_stored_proofs()
            self.bench_record_proofs()
            self.bench_log()
            self.bench_postgres()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
        for key, res in self.r.items():
            if res.not_installed:
                self.notes[key] = "not installed"
            elif res.error:
                self.failures.append(f"{res.label}: {res.error}")

    # -- reporting ----------------------------------------------------------------------------

    def runs(self, key: str) -> str:
        return f"best of {len(self.r[key].runs)}"

    @property
    def ours(self) -> float | None:
        return self.r["ours_list"].best if self.ok("ours_list") else None

    def pymerkle_time(self) -> tuple[float | None, bool]:
        """(seconds at full size, extrapolated?)"""
        if self.ok("pymerkle"):
            return self.r["pymerkle"].best, False
        if self.ok("pymerkle_small"):
            return self.r["pymerkle_small"].best * self.n / max(1, self.n // 10), True
        return None, False

    def md_build(self) -> tuple[list[str], dict[str, Any]]:
        ours, n = self.ours, self.n
        lines = [f"### 1. Building a tree over {n:,} leaves of {LEAF_BYTES} bytes", ""]
        threads = self.ctx.machine.get("cpu_count")
        spec = [
            ("ours_list", "**ours** `MerkleTree.from_leaf_inputs(list[bytes])`",
             f"DataFusion on {threads} threads; builds every level (~64 B/leaf kept)"),
            ("ours_arrow", "ours, from a pyarrow `binary` array",
             "zero-copy array over the same bytes"),
            ("ours_leaves", "ours, leaf level only (`sha256_many`)",
             "breakdown: the leaf-hash share of the build"),
            ("plain", "plain Python `hashlib` loop",
             "floor for a naive implementation: one `sha256` call per node, level by level"),
            ("merkletools", "merkletools 1.0.3 (`add_leaf(do_hash=True)`, `make_tree`)",
             "not RFC 9162 (no 0x00/0x01 prefixes), so its root differs by design"),
            ("pymerkle", "pymerkle 7.0.0 `InmemoryTree` (`append_entries`, `get_root`)",
             "RFC 9162 mode (prefixes on)"),
            ("floor", "one `hashlib.sha256` over all leaf bytes",
             f"physical floor, 1 thread ({n * LEAF_BYTES / 1e6:.0f} MB)"),
        ]
        rows: list[list[str]] = []
        table: dict[str, Any] = {}
        for key, label, note in spec:
            if key == "pymerkle" and not self.ok("pymerkle") and self.ok("pymerkle_small"):
                t, _ = self.pymerkle_time()
                assert t is not None
                small = self.r["pymerkle_small"]
                rows.append([label, f"~{fmt_seconds(t)} (**extrapolated**)", NA,
                             fmt_ratio(t / ours) if ours else NA,
                             f"{fmt_bytes(small.peak)} at n/10",
                             f"{note}; {self.notes.get('pymerkle', '')}"])
                table[key] = {"seconds": t, "extrapolated": True}
                continue
            if not self.ok(key):
                why = self.notes.get(key) or (self.r[key].error if key in self.r else "not run")
                rows.append([label, NA, NA, NA, NA, str(why)])
                table[key] = {"status": why}
                continue
            t = self.r[key].best
            rows.append([label, f"{fmt_seconds(t)} ({self.runs(key)})",
                         fmt_seconds(self.r[key].cpu), fmt_ratio(t / ours) if ours else NA,
                         fmt_bytes(self.r[key].peak), note])
            table[key] = {"seconds": t, "cpu_seconds": self.r[key].cpu,
                          "peak_bytes": self.r[key].peak,
                          "ratio_to_ours": t / ours if ours else None}
        lines += [markdown_table(["Implementation", "Time", "CPU", f"Time / ours (>1{X}: ours "
                                  "faster)", "Peak memory", "Notes"], rows), ""]
        if self.ok("write_tree"):
            w = self.r["write_tree"]
            lines += [f"Writing the built tree with `MerkleTree.write` (temp file, fsync, "
                      f"rename) took {fmt_seconds(w.best)}; the file is "
                      f"{fmt_bytes(w.extra.get('file_bytes', 0))}.", ""]
        root_checks = [k for k in self.checks if k.startswith("root(")]
        if root_checks:
            passed = all(self.checks[k] for k in root_checks)
            lines += ["Root check (outside the timing): ours from a list = ours from Arrow = "
                      "plain loop = pymerkle = stored tree: "
                      f"{'**equal**' if passed else '**MISMATCH**'}.", ""]
        return lines, table

    def md_proofs(self) -> tuple[list[str], float | None]:
        lines = [f"### 2. {self.n_proofs:,} random inclusion proofs from a stored "
                 f"{self.n:,}-leaf tree", ""]
        rate = None
        if self.ok("stored_proofs"):
            sp = self.r["stored_proofs"]
            rate = self.n_proofs / sp.best
            row = [f"{self.n_proofs:,} {X} `inclusion_proof` on `MerkleTree.open(path)` "
                   "(fresh process)",
                   f"{fmt_seconds(sp.best)} ({self.runs('stored_proofs')})",
                   fmt_seconds(sp.cpu),
                   f"{fmt_rate(rate, 'proofs')} ({self.n_proofs / sp.cpu:,.0f} per CPU-second)",
                   fmt_bytes(sp.peak),
                   f"`open` itself: {fmt_seconds(sp.extra.get('open_seconds', 0))}; "
                   f"{sp.extra.get('proof_hashes')} hashes per proof; "
                   f"{sp.extra.get('verified_samples')} sampled proofs verified"]
        else:
            error = self.r["stored_proofs"].error if "stored_proofs" in self.r else "not run"
            row = ["stored-tree proofs", NA, NA, NA, NA, str(error)]
        lines += [markdown_table(["Step", "Time", "CPU", "Rate", "Peak memory", "Notes"], [row]),
                  ""]
        return lines, rate

    def md_record_proofs(self) -> tuple[list[str], dict[str, float]]:
        lines = [f"### 3. Verifying {self.n_record_proofs:,} record proofs "
                 "(Ed25519 checkpoint signature included)", ""]
        rows, rates = [], {}
        spec = (
            ("record_proof_parse_verify", "`parse_record_proof(json)` + `verify_record_proof`"),
            ("record_proof_verify", "`verify_record_proof` only (proofs already parsed)"),
            ("record_proof_signature", "breakdown: checkpoint signature only "
             "(`parse_note` + `open_note`)"),
            ("record_proof_build", "setup, for scale: build + serialize the record proofs "
             "(log proof computed once)"),
        )
        for key, label in spec:
            if key not in self.r:
                continue
            res = self.r[key]
            if not res.ok:
                rows.append([label, NA, NA, NA, NA, str(res.error)])
                continue
            rates[key] = self.n_record_proofs / res.best
            rows.append([label, f"{fmt_seconds(res.best)} ({self.runs(key)})",
                         fmt_seconds(res.cpu),
                         f"{fmt_rate(rates[key], 'proofs')} "
                         f"({self.n_record_proofs / res.cpu:,.0f} per CPU-second)",
                         fmt_bytes(res.peak),
                         "a tampered record is rejected"
                         if res.extra.get("tampered_proof_rejected") else ""])
        lines += [markdown_table(["Step", "Time", "CPU", "Rate", "Peak memory", "Notes"], rows),
                  ""]
        if self.ok("record_proof_build"):
            bb = self.r["record_proof_build"].extra
            lines += [f"The dataset: {bb['record_proofs']:,} DM-like records in one dataset "
                      f"version (built like `tests/trialproof_testkit.py`), its manifest in a "
                      f"SQLite log of {bb['log_size']:,} entries, one signed checkpoint. A "
                      f"record proof is {bb['mean_proof_bytes']:,.0f} bytes of JSON on average, "
                      f"with "
                      f"{bb['dataset_proof_hashes']} dataset-proof and "
                      f"{bb['log_proof_hashes']} log-proof hashes.", ""]
        return lines, rates

    def md_log(self) -> list[str]:
        n, k = self.n, self.n_single
        lines = [f"### 4. Transparency log: {n:,} appends, then proofs at size {n:,}", ""]
        spec = (
            ("log_append_many", f"SQLite `append_many` of {n:,} leaves (one call)"),
            ("log_inclusion", f"SQLite `inclusion_proof(i, {n:,})`"),
            ("log_consistency", f"SQLite `consistency_proof(m, {n:,})`"),
            ("log_append", f"SQLite `append` {X} {k:,} (one transaction each)"),
            ("pg_append_many", f"PostgreSQL `append_many` of {n:,} leaves (one call)"),
            ("pg_inclusion", f"PostgreSQL `inclusion_proof(i, {n:,})`"),
            ("pg_append", f"PostgreSQL `append` {X} {k:,} (one transaction each)"),
        )
        rows = []
        for key, label in spec:
            if key not in self.r:
                continue
            res = self.r[key]
            if not res.ok:
                rows.append([label, NA, NA, NA, NA, str(res.error)])
                continue
            timing = f"{fmt_seconds(res.best)} ({self.runs(key)})"
            cpu = fmt_seconds(res.cpu)
            if key.endswith("append_many"):
                db = res.extra.get("db_bytes")
                rows.append([label, timing, cpu, fmt_rate(n / res.best, "leaves"),
                             fmt_bytes(res.peak),
                             "root = tree root" + (f"; file {fmt_bytes(db)} incl. WAL" if db
                                                   else "")])
            elif key.endswith("append"):
                durable = "; SQLite WAL, synchronous=FULL" if key.startswith("log") else ""
                rows.append([label, timing, cpu, fmt_rate(k / res.best, "appends"),
                             fmt_bytes(res.peak),
                             f"{fmt_seconds(res.best / k)} per append{durable}"])
            else:
                median = min(run["extra"]["median_seconds"] for run in res.runs)
                p95 = min(run["extra"]["p95_seconds"] for run in res.runs)
                rows.append([label, f"median {fmt_seconds(median)} of {N_LATENCY} calls "
                             f"(best of {len(res.runs)} processes)", f"{cpu} for all {N_LATENCY}",
                             fmt_rate(1 / median, "proofs"), fmt_bytes(res.peak),
                             f"p95 {fmt_seconds(p95)}; all {N_LATENCY} proofs verified"])
        if "postgres" in self.notes:
            rows.append(["PostgreSQL", NA, NA, NA, NA, f"skipped: {self.notes['postgres']}"])
        lines += [markdown_table(["Step", "Time", "CPU", "Rate", "Peak memory", "Notes"], rows),
                  ""]
        return lines

    def md_targets(self, proofs_rate: float | None,
                   record_proof_rate: float | None) -> tuple[list[str], list[dict[str, Any]]]:
        """Targets are judged on wall time; the CPU view says what an idle machine would do."""
        ours, r = self.ours, self.r
        ours_cpu = r["ours_list"].cpu if self.ok("ours_list") else None
        targets = []
        if ours and self.ok("plain"):
            x = r["plain"].best / ours
            view = NA
            if ours_cpu:
                ceiling = r["plain"].cpu / ours_cpu * (self.ctx.machine.get("nproc") or 1)
                view = (f"ours uses {fmt_ratio(ours_cpu / r['plain'].cpu)} the plain loop's CPU "
                        f"time, so its speed-up can only come from its threads: at most "
                        f"{fmt_ratio(ceiling)} with every CPU free")
            targets.append(_target(f"ours >= 2{X} faster than the plain hashlib loop", x,
                                   TARGET_PLAIN, f"{fmt_ratio(x)} faster", view))
        pm, extrapolated = self.pymerkle_time()
        if ours and pm:
            x = pm / ours
            view = (f"{fmt_ratio(r['pymerkle'].cpu / ours_cpu)} less CPU"
                    if self.ok("pymerkle") and ours_cpu else NA)
            targets.append(_target(f"ours >= 10{X} faster than pymerkle", x, TARGET_PYMERKLE,
                                   f"{fmt_ratio(x)} faster"
                                   + (" (extrapolated)" if extrapolated else ""), view))
        view = (f"{self.n_proofs / r['stored_proofs'].cpu:,.0f} per CPU-second"
                if self.ok("stored_proofs") else NA)
        targets.append(_target("stored-tree proofs >= 20,000/s", proofs_rate, TARGET_PROOFS,
                               fmt_rate(proofs_rate, "proofs") if proofs_rate else NA, view))
        view = (f"{self.n_record_proofs / r['record_proof_parse_verify'].cpu:,.0f} per CPU-second"
                if self.ok("record_proof_parse_verify") else NA)
        targets.append(_target("record proofs, parse + verify >= 5,000/s", record_proof_rate,
                               TARGET_RECORD_PROOFS,
                               fmt_rate(record_proof_rate, "proofs") if record_proof_rate else NA,
                               view))
        lines = ["### Targets", "",
                 "Judged on wall time (best run). The last column is the same measurement seen "
                 "through CPU time, which the background load disturbs much less.", "",
                 targets_table(targets),
                 ""]
        also = []
        if ours and self.ok("floor"):
            also.append(f"ours takes {fmt_ratio(ours / r['floor'].best)} the time of the "
                        "physical floor (one sha256 over all leaf bytes; CPU "
                        f"{fmt_ratio(ours_cpu / r['floor'].cpu) if ours_cpu else NA})")
        if ours and self.ok("ours_arrow"):
            memory = r["ours_arrow"].peak / max(1, r["ours_list"].peak)
            also.append(f"from Arrow, ours takes {fmt_ratio(r['ours_arrow'].best / ours)} "
                        f"the time and {fmt_ratio(memory)} the peak memory it takes from a list")
        if ours_cpu and self.ok("ours_leaves"):
            share = r["ours_leaves"].cpu / ours_cpu
            also.append(f"the leaf level is {share:.0%} of ours' CPU time (list input), the "
                        f"node levels about {1 - share:.0%}")
        if also:
            lines += ["Also: " + "; ".join(also) + ".", ""]
        return lines, targets

    def report(self) -> SuiteReport:
        machine = self.ctx.machine
        start = ", ".join(f"{x:.2f}" for x in machine.get("loadavg_at_start") or [])
        self.load_end = list(os.getloadavg()) if hasattr(os, "getloadavg") else []
        end = ", ".join(f"{x:.2f}" for x in self.load_end)
        lines = [f"_Measured {now_utc()}{' (QUICK: 1/10 sizes)' if self.ctx.quick else ''} on "
                 f"{machine_line(machine)}. Load average (1, 5, 15 min) at start {start}, "
                 f"at end {end}: other jobs shared the {machine.get('nproc')} CPUs, so compare "
                 "the CPU column (user + sys over all threads, least over the runs) when "
                 "wall times look noisy._", ""]
        build, table = self.md_build()
        proofs, proofs_rate = self.md_proofs()
        record_proofs, record_proof_rates = self.md_record_proofs()
        targets_md, targets = self.md_targets(
            proofs_rate, record_proof_rates.get("record_proof_parse_verify"))
        lines += build + proofs + record_proofs + self.md_log() + targets_md
        if self.ctx.quick:
            lines.append("_Quick run: sizes are 1/10 of the real benchmark; "
                         "the targets are indicative only._")
        data = {
            "suite": NAME,
            "quick": self.ctx.quick,
            "generated_at": now_utc(),
            "machine": machine,
            "method": {
                "timing": "time.perf_counter around the step, one step per fresh spawned "
                          "process; best (min) of N runs",
                "memory": "peak RSS growth during the step: /proc/self/clear_refs=5 after setup, "
                          "VmHWM after the step minus VmRSS before it (fallback: ru_maxrss)",
            },
            "sizes": {"leaves": self.n, "leaf_bytes": LEAF_BYTES, "proofs": self.n_proofs,
                      "record_proofs": self.n_record_proofs, "latency_samples": N_LATENCY,
                      "single_appends": self.n_single},
            "benchmarks": {key: res.as_json() for key, res in self.r.items()},
            "tree_build": table,
            "rates": {"stored_proofs_per_s": proofs_rate,
                      "record_proofs_parse_verify_per_s":
                          record_proof_rates.get("record_proof_parse_verify"),
                      "record_proofs_verify_only_per_s":
                          record_proof_rates.get("record_proof_verify")},
            "targets": targets,
            "checks": self.checks,
            "loadavg_at_end": self.load_end,
            "notes": self.notes,
        }
        return SuiteReport(NAME, data, "\n".join(lines).rstrip() + "\n", list(self.failures))


def _target(desc: str, value: float | None, threshold: float, shown: str,
            cpu_view: str) -> dict[str, Any]:
    met = None if value is None else value >= threshold
    return {"target": desc, "value": value, "threshold": threshold, "shown": shown, "met": met,
            "cpu_view": cpu_view}



def run(ctx: Context) -> SuiteReport:
    """The core suite (``python -m bench.run --only core``)."""
    started = time.perf_counter()
    suite = _Suite(ctx)
    ctx.log(f"[core] leaves: {suite.n:,} x {LEAF_BYTES} B (seed {SEED}); scratch {suite.work}")
    inputs_sha = hashlib.sha256(Path(suite.path).read_bytes()).hexdigest()
    suite.run_all()
    report = suite.report()
    report.data["inputs"] = {"file": Path(suite.path).name, "sha256": inputs_sha}
    report.data["duration_seconds"] = time.perf_counter() - started
    ctx.log(f"[core] done in {fmt_seconds(time.perf_counter() - started)}")
    return report
