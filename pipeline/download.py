"""Researcher downloads that verify themselves (docs/architecture.md; Formats 5-8).

:func:`download` fetches a version's records (with their salts), its manifest,
contract and a log inclusion proof from a trialproof server, and writes them
only after checking, trusting nothing but the given vkeys:

1. checkpoint signature: the checkpoint is signed by a trusted log key (C2SP signed-note);
2. witness cosignatures: at least K of the given witnesses cosigned it (C2SP tlog-cosignature);
3. consistency: it extends the checkpoint last seen for this origin (RFC 9162 §2.1.4.2);
4. log inclusion: the manifest's leaf is in the checkpoint's tree (RFC 9162 §2.1.3.2);
5. manifest: it is a well-formed manifest of the requested trial, dataset and version;
6. contract: its RFC 8785 hash is the manifest's ``contract.sha256``;
7. records: the contract's columns with a 32-byte ``_salt`` column, ``records`` rows;
8. dataset root: every leaf SHA-256(0x00 || salt || JCS(record)) recomputed, and their
   RFC 9162 root equals the manifest's ``root``.

The latest checkpoint seen per origin is kept under
``$XDG_CONFIG_HOME/trialproof/checkpoints/`` (default ``~/.config``), as a witness would.
"""

from __future__ import annotations

__all__ = ["DownloadFailed", "DownloadResult", "download", "hex_salts", "state_dir"]

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchoring.canonical import canonical_json
from anchoring.checkpoint import Checkpoint, open_checkpoint
from anchoring.errors import AnchoringError, SignatureError, VerificationError
from anchoring.manifest import check_manifest, manifest_leaf_input
from anchoring.merkle.hasher import leaf_hash
from anchoring.merkle.verify import root_from_inclusion_proof, verify_consistency
from anchoring.note import Verifier, open_note, parse_note
from pipeline.errors import UsageError
from pipeline.fsutil import write_bytes_durably, write_text_durably
from pipeline.store import SALT_COLUMN

#: Bytes the records transfer is read in.
_CHUNK = 1 << 20
#: Transfers at least this large get a progress bar.
PROGRESS_FROM_BYTES = 4 << 20

#: ``(bytes so far, total or None)``, called while the records arrive.
TransferProgress = Callable[[int, int | None], None]


class DownloadFailed(VerificationError):
    """A download did not verify; ``step`` names the failing step."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"verification failed at step '{step}': {reason}")


@dataclass(frozen=True)
class DownloadResult:
    trial: str
    dataset: str
    version: int
    records: int
    root: str
    log_index: int
    checkpoint_size: int
    files: tuple[Path, ...]

    def to_json(self) -> dict[str, Any]:
        return {"trial": self.trial, "dataset": self.dataset, "version": self.version,
                "records": self.records, "root": self.root, "log_index": self.log_index,
                "checkpoint_size": self.checkpoint_size, "files": [str(f) for f in self.files]}


def state_dir() -> Path:
    """Where the latest checkpoint per origin is remembered."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "trialproof" / "checkpoints"


class _Server:
    def __init__(self, base_url: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"{base_url!r} is not an http(s) URL")
        self.base = base_url.rstrip("/")

    def open(self, path: str) -> Any:
        try:
            return urllib.request.urlopen(self.base + path, timeout=60)
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                message = exc.reason
            raise UsageError(f"{self.base}{path}: HTTP {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UsageError(f"{self.base}: cannot connect: {reason}") from None

    def json(self, path: str) -> Any:
        with self.open(path) as response:
            try:
                return json.loads(response.read())
            except ValueError:
                raise UsageError(f"{self.base}{path}: the server did not send JSON") from None


def _dataset_path(trial: str, dataset: str) -> str:
    quote = urllib.parse.quote
    return f"/api/v1/trials/{quote(trial, safe='')}/datasets/{quote(dataset, safe='')}"


def _hashes(values: Any, step: str) -> list[bytes]:
    try:
        return [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError):
        raise DownloadFailed(step, "the proof's hashes are not hex") from None


def _check_checkpoint(note: str, trusted: Sequence[Verifier], witnesses: Sequence[Verifier],
                      threshold: int) -> Checkpoint:
    try:
        checkpoint = open_checkpoint(note, trusted)
    except AnchoringError as exc:
        raise DownloadFailed("checkpoint signature", str(exc)) from None
    if threshold:
        try:
            cosigners = len(open_note(parse_note(note), witnesses)[1])
        except SignatureError:
            cosigners = 0
        except AnchoringError as exc:
            raise DownloadFailed("witness cosignatures", str(exc)) from None
        if cosigners < threshold:
            raise DownloadFailed("witness cosignatures",
                                 f"{cosigners} of the given witnesses cosigned the checkpoint; "
                                 f"the policy needs {threshold}")
    return checkpoint


def _remembered_path(origin: str) -> Path:
    return state_dir() / urllib.parse.quote(origin, safe="")


def _check_consistency(server: _Server, checkpoint: Checkpoint, trusted: Sequence[Verifier]
                       ) -> str | None:
    """Check the checkpoint against the one remembered for its origin; return the note to
    remember afterwards (the larger of the two), or None to keep the file as it is."""
    path = _remembered_path(checkpoint.origin)
    try:
        old_note = path.read_text(encoding="utf-8")
        old = open_checkpoint(old_note, trusted, origin=checkpoint.origin)
    except FileNotFoundError:
        return None
    except (OSError, AnchoringError):
        return None  # not readable or not signed by these keys: start again from this one
    smaller, larger = sorted((old, checkpoint), key=lambda c: c.size)
    if smaller.size == larger.size:
        if smaller.root != larger.root:
            raise DownloadFailed("consistency", f"two different roots for size {old.size}: "
                                 "the log forked")
        return old_note
    if smaller.size == 0:
        return old_note if old is larger else None
    proof = server.json(f"/api/v1/consistency?from={smaller.size}&to={larger.size}")
    try:
        verify_consistency(smaller.size, larger.size, smaller.root, larger.root,
                           _hashes(proof.get("proof"), "consistency"))
    except AnchoringError as exc:
        raise DownloadFailed("consistency", f"size {smaller.size} -> {larger.size}: {exc}"
                             ) from None
    return old_note if old is larger else None


def _check_inclusion(bundle: dict[str, Any], checkpoint: Checkpoint) -> dict[str, Any]:
    manifest = bundle.get("manifest")
    if not isinstance(manifest, dict):
        raise DownloadFailed("manifest", "the server sent no manifest")
    try:
        check_manifest(manifest)
        index, size = int(bundle["log_index"]), int(bundle["log_size"])
        root = root_from_inclusion_proof(index, size, leaf_hash(manifest_leaf_input(manifest)),
                                         _hashes(bundle.get("log_proof"), "log inclusion"))
    except (AnchoringError, KeyError, TypeError, ValueError) as exc:
        raise DownloadFailed("log inclusion", str(exc)) from None
    if size != checkpoint.size or root != checkpoint.root:
        raise DownloadFailed("log inclusion", "the manifest is not in the signed checkpoint's tree")
    return manifest


def _check_contract(bundle: dict[str, Any], manifest: dict[str, Any]) -> Any:
    from pipeline.contract import parse_contract

    descriptor = bundle.get("contract")
    if not isinstance(descriptor, dict):
        raise DownloadFailed("contract", "the server sent no contract")
    try:
        digest = hashlib.sha256(canonical_json(descriptor)).hexdigest()
    except AnchoringError as exc:
        raise DownloadFailed("contract", str(exc)) from None
    if digest != manifest["contract"]["sha256"]:
        raise DownloadFailed("contract", "its hash is not the manifest's contract.sha256")
    options = dict(descriptor.get("trialproof") or {})
    options.pop("expectations", None)  # validation only; never part of a leaf
    try:
        return parse_contract({**descriptor, "trialproof": options}, "contract")
    except Exception as exc:
        raise DownloadFailed("contract", str(exc)) from None


def _fetch(server: _Server, path: str, target: Path, progress: TransferProgress | None) -> None:
    with server.open(path) as response, open(target, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        out.flush()
        os.fsync(out.fileno())


def _check_records(path: Path, contract: Any, manifest: dict[str, Any]) -> Any:
    """Read the records, check their shape, recompute every leaf and the root (step 7-8)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from anchoring._internal.tree import MerkleTree
    from pipeline.hashing import VectorizedHasher
    from pipeline.records import canonical_records

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DownloadFailed("records", f"not a readable Parquet file: {exc}") from None
    names = [*contract.field_names, SALT_COLUMN]
    if table.column_names != names:
        raise DownloadFailed("records", f"columns {table.column_names}, expected {names}")
    if table.num_rows != manifest["records"]:
        raise DownloadFailed("records", f"{table.num_rows} rows; the manifest says "
                                        f"{manifest['records']}")
    salts = table.column(SALT_COLUMN).combine_chunks()
    if salts.type != pa.binary(32) and not (
        pa.types.is_binary(salts.type) and pc.all(pc.equal(pc.binary_length(salts), 32)).as_py()
    ):
        raise DownloadFailed("records", "_salt must hold 32 bytes per record")
    try:
        records = canonical_records(table, contract)
    except AnchoringError as exc:
        raise DownloadFailed("dataset root", f"a record cannot be canonicalized: {exc}") from None
    joined = pc.binary_join_element_wise(salts.cast(pa.binary()), records.cast(pa.binary()),
                                         pa.scalar(b"", pa.binary()))
    tree = MerkleTree.from_leaf_inputs(joined, VectorizedHasher()) if len(table) else None
    root = tree.root() if tree is not None else None
    expected = manifest["root"]
    if root is None or root.hex() != expected:
        raise DownloadFailed("dataset root", f"the records give root "
                                             f"{root.hex() if root else '(none)'}, the manifest "
                                             f"says {expected}")
    return table.select(contract.field_names).append_column(
        SALT_COLUMN, salts.cast(pa.binary(32)))


def hex_salts(salts: Any) -> Any:
    """32-byte salts as an Arrow string array of lowercase hex (docs/formats.md §9), for CSV."""
    import binascii

    import pyarrow as pa

    if isinstance(salts, pa.ChunkedArray):
        salts = salts.combine_chunks()
    salts = salts.cast(pa.binary(32))
    data = salts.buffers()[1].to_pybytes()[salts.offset * 32 : (salts.offset + len(salts)) * 32]
    text = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(64), len(salts), [None, pa.py_buffer(binascii.hexlify(data))])
    return text.cast(pa.binary()).cast(pa.string())


def _write_records(table: Any, target: Path, fmt: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        pq.write_table(table, target)
    else:
        index = table.schema.get_field_index(SALT_COLUMN)
        salts = hex_salts(table.column(SALT_COLUMN))
        pacsv.write_csv(table.set_column(index, SALT_COLUMN, salts), target)
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def download(
    base_url: str,
    trial: str,
    dataset: str,
    out_dir: Path,
    trusted: Sequence[Verifier],
    *,
    version: int | None = None,
    witnesses: Sequence[Verifier] = (),
    witness_threshold: int = 0,
    fmt: str = "parquet",
    progress: TransferProgress | None = None,
    stage: Callable[[str], None] = lambda _stage: None,
) -> DownloadResult:
    """Download one version and verify it (module docstring); on any failure, nothing of
    it is left in ``out_dir``."""
    if fmt not in ("parquet", "csv"):
        raise UsageError(f"--format must be parquet or csv, not {fmt!r}")
    if witness_threshold > len(witnesses):
        raise UsageError(f"--witness-threshold {witness_threshold} is more than the "
                         f"{len(witnesses)} witness key(s) given")
    server = _Server(base_url)
    base = _dataset_path(trial, dataset)
    if version is None:
        listed = server.json(f"{base}/versions").get("versions") or []
        if not listed:
            raise UsageError(f"{trial}/{dataset} has no version")
        version = int(listed[-1]["version"])
    stage("manifest")
    bundle = server.json(f"{base}/versions/{version}/bundle")
    note = bundle.get("checkpoint")
    if not isinstance(note, str):
        raise DownloadFailed("checkpoint signature", "the server sent no checkpoint")
    checkpoint = _check_checkpoint(note, trusted, witnesses, witness_threshold)
    manifest = _check_inclusion(bundle, checkpoint)
    if (manifest["trial"], manifest["dataset"], manifest["version"]) != (trial, dataset, version):
        raise DownloadFailed("manifest", f"the manifest is for {manifest['trial']}/"
                                         f"{manifest['dataset']} v{manifest['version']}")
    remember = _check_consistency(server, checkpoint, trusted)
    contract = _check_contract(bundle, manifest)

    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / f".records-{os.getpid()}.parquet.part"
    outputs = (out_dir / f"records.{fmt}", out_dir / "manifest.json", out_dir / "checkpoint.txt")
    try:
        stage("records")
        _fetch(server, f"{base}/versions/{version}/records?format=parquet", partial, progress)
        stage("verify")
        table = _check_records(partial, contract, manifest)
        stage("write")
        _write_records(table, outputs[0], fmt)
        write_bytes_durably(outputs[1], manifest_leaf_input(manifest))
        write_text_durably(outputs[2], note)
    except BaseException:
        for path in outputs:
            path.unlink(missing_ok=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        partial.unlink(missing_ok=True)
    if remember is None:
        target = _remembered_path(checkpoint.origin)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_durably(target, note)
    return DownloadResult(trial, dataset, version, int(manifest["records"]), manifest["root"],
                          int(bundle["log_index"]), checkpoint.size, outputs)
