"""The FastAPI app (docs/architecture.md): public read-only routes, C2SP tlog-tiles,
sponsor routes behind bearer tokens, and the web page.

Errors become HTTP statuses in :func:`pipeline.server.errors.status_for` and
nowhere else; every error body is ``{"error": message}``.
"""

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "ServerConfig",
    "UploadCap",
    "app_from_environment",
    "create_app",
    "home_of",
    "sponsor",
]

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from anchoring.checkpoint import Checkpoint, TlogProof
from anchoring.errors import AnchoringError
from anchoring.note import parse_note
from pipeline.errors import PipelineError, StoreError, UsageError
from pipeline.home import Home
from pipeline.server.catalog import Catalog, anchored_sizes, anchoring
from pipeline.server.errors import ApiError, status_for
from pipeline.server.tiles import entry_bundle, parse_tile_path, remembered_tile, tile_hashes
from pipeline.server.tokens import Token, TokenStore
from pipeline.store import SALT_COLUMN, VersionInfo, check_name

#: Full and partial tiles never change (C2SP tlog-tiles); the checkpoint does.
IMMUTABLE = "public, max-age=31536000, immutable"
CHECKPOINT_CACHE = "public, max-age=10"
DEFAULT_MAX_UPLOAD_BYTES = 1 << 30
#: Room for the multipart framing around an upload's bytes.
MULTIPART_SLACK = 64 << 10
_DELIVERY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")

ErrorBody = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad request: a parameter of the wrong type or form", **ErrorBody},
    404: {"description": "not found", **ErrorBody},
}
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    401: {"description": "missing or wrong token", **ErrorBody},
    403: {"description": "the token is for another trial", **ErrorBody},
}


class UploadCap:
    """Refuse an oversized delivery upload from its Content-Length, before its body is read
    (and spooled to disk by the multipart parser). A plain ASGI middleware: no cost for
    other requests."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"].endswith("/deliveries")):
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.limit + MULTIPART_SLACK:
                response = JSONResponse(
                    {"error": f"the delivery is larger than {self.limit} bytes"},
                    status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class ServerConfig:
    home_path: Path
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    registry: Path | None = None


def create_app(
    home_path: Path, *, max_upload_bytes: int | None = None, registry: Path | None = None
) -> FastAPI:
    """The app over the home at ``home_path``. It keeps no state of its own: what it caches
    (the opened log, parts of committed versions) never changes once written."""
    Home.open(home_path)  # fail at start, not at the first request
    limit = max_upload_bytes
    if limit is None:
        limit = int(os.environ.get("TRIALPROOF_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES))
    config = ServerConfig(home_path, limit, registry)
    from fastapi_offline import FastAPIOffline

    # The docs UI's scripts and styles are served by the app itself, so /docs works offline.
    app = FastAPIOffline(
        title="trialproof",
        version="1",
        description="Tamper-evident clinical-trial datasets: versions, record proofs, "
        "downloads and the transparency log as C2SP tlog-tiles.",
    )
    app.state.config = config

    @app.exception_handler(Exception)
    async def _any_error(_request: Request, exc: Exception) -> JSONResponse:
        status = status_for(exc)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, RequestValidationError):
            message = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                for e in exc.errors())
        if status >= 500:
            message = f"internal error ({type(exc).__name__})"
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)

    app.add_middleware(UploadCap, limit=config.max_upload_bytes)

    # Expected errors are answered without reaching the server's error log.
    for kind in (ApiError, PipelineError, AnchoringError, RequestValidationError):
        app.add_exception_handler(kind, _any_error)
    _log_routes(app)
    _catalog_routes(app)
    _version_routes(app)
    _verifier_route(app)
    from pipeline.server.preregistration import preregistration_routes

    preregistration_routes(app, _home_dependency)
    _sponsor_routes(app)
    from pipeline.server.page import page_routes

    page_routes(app)
    return app


def home_of(request: Request) -> Home:
    """The app's home, opened once per worker process (its log holds a connection pool)."""
    home: Home | None = getattr(request.app.state, "home", None)
    if home is None:
        config: ServerConfig = request.app.state.config
        home = request.app.state.home = Home.open(config.home_path)
    return home


async def _home_dependency(request: Request) -> Home:
    # Async, so that FastAPI resolves it on the event loop, not in its thread pool.
    return home_of(request)


HomeDep = Annotated[Home, Depends(_home_dependency)]


async def _catalog_dependency(home: HomeDep) -> Catalog:
    return Catalog(home)


CatalogDep = Annotated[Catalog, Depends(_catalog_dependency)]


def _version(catalog: Catalog, trial: str, dataset: str, v: int) -> VersionInfo:
    info = catalog.version(trial, dataset, v)
    if not info.path.is_dir():
        raise StoreError(f"{trial}/{dataset} v{v}: its files are missing")
    return info


def _log_routes(app: FastAPI) -> None:
    """The transparency log: checkpoint, tiles (C2SP tlog-tiles), keys, proofs, anchors."""

    @app.get("/checkpoint", response_class=Response, responses={
        200: {"content": {"text/plain": {}}}, 404: _ERRORS[404]})
    async def checkpoint(catalog: CatalogDep) -> Response:
        """The latest anchored checkpoint (C2SP tlog-checkpoint), with its cosignatures."""
        note = catalog.latest_anchored_checkpoint()
        if note is None:
            raise ApiError(404, "no checkpoint has been anchored yet")
        return Response(note, media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": CHECKPOINT_CACHE})

    @app.get("/tile/entries/{index:path}", response_class=Response, responses={
        200: {"content": {"application/octet-stream": {}}}, 404: _ERRORS[404]})
    async def entries_tile(index: str, home: HomeDep) -> Response:
        """An entry bundle (C2SP tlog-tiles): uint16-length-prefixed log entries."""
        tile = parse_tile_path(index)
        data = remembered_tile(home.log(), None, tile)
        if data is None:
            data = await run_in_threadpool(entry_bundle, home.log(), tile)
        return Response(data, media_type="application/octet-stream",
                        headers={"Cache-Control": IMMUTABLE})

    @app.get("/tile/{level}/{index:path}", response_class=Response, responses={
        200: {"content": {"application/octet-stream": {}}}, 404: _ERRORS[404]})
    async def hash_tile(level: str, index: str, home: HomeDep) -> Response:
        """A Merkle tile (C2SP tlog-tiles): up to 256 hashes of tree level 8·L."""
        if not level.isdigit() or str(int(level)) != level:
            raise ApiError(404, f"no tile level {level!r}")
        tile = parse_tile_path(index)
        data = remembered_tile(home.log(), int(level), tile)
        if data is None:
            data = await run_in_threadpool(tile_hashes, home.log(), int(level), tile)
        return Response(data, media_type="application/octet-stream",
                        headers={"Cache-Control": IMMUTABLE})

    @app.get("/api/v1/vkeys")
    def vkeys(home: HomeDep) -> dict[str, Any]:
        """The log's vkey and the configured witnesses' vkeys (C2SP signed-note)."""
        witnesses = []
        for w in home.config.get("witnesses", []):
            vkey = w.get("vkey") if isinstance(w, dict) else w
            if isinstance(vkey, str):
                witnesses.append(vkey)
        return {"origin": home.origin, "log": home.verifier.vkey, "witnesses": witnesses}

    @app.get("/api/v1/consistency", responses=_ERRORS)
    def consistency(
        home: HomeDep,
        from_size: Annotated[int, Query(alias="from", ge=1)],
        to_size: Annotated[int, Query(alias="to", ge=1)],
    ) -> dict[str, Any]:
        """An RFC 9162 §2.1.4 consistency proof between two log sizes (hex hashes)."""
        log = home.log()
        size = log.size()
        if not from_size <= to_size <= size:
            raise UsageError(f"need 0 < from <= to <= log size {size}; got {from_size}, {to_size}")
        return {
            "from": from_size,
            "to": to_size,
            "from_root": log.root(from_size).hex(),
            "to_root": log.root(to_size).hex(),
            "proof": [h.hex() for h in log.consistency_proof(from_size, to_size)],
        }

    @app.get("/api/v1/anchors")
    def anchors(catalog: CatalogDep) -> dict[str, Any]:
        """Every anchoring, oldest first, with its receipts; and the log's size now."""
        return {"log_size": catalog.home.log().size(), "anchors": catalog.anchors()}


#: Where a dataset's routes start.
_DATASET_PATH = "/api/v1/trials/{trial}/datasets/{dataset}"


def _catalog_routes(app: FastAPI) -> None:
    """What is committed: trials, their datasets, each dataset's versions and their diff."""

    @app.get("/api/v1/trials")
    def trials(catalog: CatalogDep) -> dict[str, Any]:
        """Every trial with a committed dataset version, a registered document or a
        logged registry record."""
        from pipeline.preregistration import registered_trials

        held = catalog.datasets()
        for trial in registered_trials(catalog.home):
            held.setdefault(trial, [])
        return {"trials": [{"trial": t, "datasets": d} for t, d in sorted(held.items())]}

    @app.get("/api/v1/trials/{trial}/datasets", responses=_ERRORS)
    def datasets(trial: str, catalog: CatalogDep) -> dict[str, Any]:
        """A trial's datasets."""
        return {"trial": trial, "datasets": catalog.trial_datasets(trial)}

    @app.get(f"{_DATASET_PATH}/versions", responses=_ERRORS)
    def versions(trial: str, dataset: str, catalog: CatalogDep) -> dict[str, Any]:
        """A dataset's versions, oldest first."""
        infos = catalog.versions(trial, dataset)
        return {"trial": trial, "dataset": dataset,
                "versions": [catalog.version_summary(i) for i in infos]}

    @app.get(f"{_DATASET_PATH}/diff", responses=_ERRORS)
    def diff(
        trial: str,
        dataset: str,
        catalog: CatalogDep,
        from_version: Annotated[int, Query(alias="from", ge=1)],
        to_version: Annotated[int, Query(alias="to", ge=1)],
        limit: Annotated[int, Query(ge=0, le=100_000)] = 1000,
    ) -> dict[str, Any]:
        """Records added, removed and changed between two versions, by primary key."""
        from pipeline.diff import diff_versions

        for v in (from_version, to_version):
            _version(catalog, trial, dataset, v)
        result = diff_versions(catalog.store, trial, dataset, from_version, to_version)
        return {"trial": trial, "dataset": dataset, "from": result.from_version,
                "to": result.to_version, "key": list(result.key), **result.summary(),
                "changes": result.entries(limit)}


def _version_routes(app: FastAPI) -> None:
    """One dataset version: its details, report, contract, proofs, bundle and records."""
    base = f"{_DATASET_PATH}/versions/{{v}}"

    @app.get(base, responses=_ERRORS)
    def version(trial: str, dataset: str, v: int, catalog: CatalogDep) -> dict[str, Any]:
        """A version: manifest, record count, log index, validation result, anchor states."""
        return catalog.version_detail(catalog.version(trial, dataset, v))

    @app.get(f"{base}/report", responses=_ERRORS)
    def report(trial: str, dataset: str, v: int, catalog: CatalogDep) -> dict[str, Any]:
        """The version's validation report (JSON)."""
        return catalog.report(_version(catalog, trial, dataset, v))

    @app.get(f"{base}/report.html", response_class=HTMLResponse,
             responses=_ERRORS)
    def report_html(trial: str, dataset: str, v: int, catalog: CatalogDep) -> FileResponse:
        """The version's validation report (HTML)."""
        info = _version(catalog, trial, dataset, v)
        return FileResponse(catalog.version_file(info, "report.html"), media_type="text/html")

    @app.get(f"{base}/contract", responses=_ERRORS)
    def contract(trial: str, dataset: str, v: int, catalog: CatalogDep) -> dict[str, Any]:
        """The contract the version was committed under (its JCS hash is in the manifest)."""
        info = _version(catalog, trial, dataset, v)
        descriptor: dict[str, Any] = json.loads(
            catalog.version_file(info, "contract.json").read_bytes())
        return descriptor

    @app.get(f"{base}/proof", responses=_ERRORS, response_class=JSONResponse)
    async def proof(
        trial: str,
        dataset: str,
        v: int,
        catalog: CatalogDep,
        index: Annotated[int | None, Query(ge=0)] = None,
        key: Annotated[str | None, Query(description="COL=VALUE[,COL=VALUE...]")] = None,
    ) -> JSONResponse:
        """A record proof (docs/formats.md §8) by leaf index or by primary key."""
        from pipeline.cli import _parse_key
        from pipeline.server.proofs import is_warm, prove_from_cache

        if (index is None) == (key is None):
            raise UsageError("give exactly one of index and key")
        info = _version(catalog, trial, dataset, v)
        if index is not None and index >= info.manifest["records"]:
            raise ApiError(404, f"no record {index}: the version has "
                                f"{info.manifest['records']} records")
        wanted = _parse_key(key) if key is not None else None
        if is_warm(info, index):
            # Its row group is decoded: a fraction of a millisecond of CPU, so build it on
            # the event loop rather than pay a thread hand-off.
            record_proof = prove_from_cache(catalog.home, info, index=index)
        else:
            record_proof = await run_in_threadpool(
                prove_from_cache, catalog.home, info, index=index, key=wanted)
        return JSONResponse(record_proof.to_json_object())

    @app.get(f"{base}/bundle", responses=_ERRORS)
    def bundle(trial: str, dataset: str, v: int, catalog: CatalogDep) -> dict[str, Any]:
        """The manifest, its contract and a log inclusion proof against a signed checkpoint
        (also as a C2SP tlog-proof): what a download is checked against."""
        from pipeline.prove import checkpoint_for

        info = _version(catalog, trial, dataset, v)
        note, anchors = checkpoint_for(catalog.home, info.log_index, sizes=anchored_sizes,
                                       read=anchoring)
        size = Checkpoint.from_body(parse_note(note).text).size
        log_proof = catalog.home.log().inclusion_proof(info.log_index, size)
        return {
            "manifest": info.manifest,
            "contract": json.loads(catalog.version_file(info, "contract.json").read_bytes()),
            "log_index": info.log_index,
            "log_size": size,
            "log_proof": [h.hex() for h in log_proof],
            "checkpoint": note,
            "tlog_proof": TlogProof(info.log_index, tuple(log_proof), note).serialize(),
            "anchors": list(anchors),
        }

    @app.get(f"{base}/records", response_class=Response, responses={
        200: {"content": {"application/vnd.apache.parquet": {}, "text/csv": {}}}, **_ERRORS})
    def records(
        trial: str,
        dataset: str,
        v: int,
        catalog: CatalogDep,
        format: Annotated[str, Query(pattern="^(parquet|csv)$")] = "parquet",
    ) -> Response:
        """The version's records in leaf order with their salts (``_salt``), streamed."""
        info = _version(catalog, trial, dataset, v)
        path = catalog.version_file(info, "records.parquet")
        name = f"{trial}-{dataset}-v{v}"
        if format == "parquet":
            return FileResponse(path, media_type="application/vnd.apache.parquet",
                                filename=f"{name}.parquet")
        return StreamingResponse(_csv_rows(path), media_type="text/csv",
                                 headers={"Content-Disposition":
                                          f'attachment; filename="{name}.csv"'})



def _verifier_route(app: FastAPI) -> None:
    """The offline verifier, as one file to download."""

    @app.get("/verifier.py", response_class=Response, responses={
        200: {"content": {"text/x-python": {}}}})
    def verifier() -> Response:
        """The single-file record-proof verifier (standard library and ``cryptography``)."""
        from pipeline.verifier_file import verifier_source

        return Response(verifier_source(), media_type="text/x-python; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="verifier.py"'})


def _csv_rows(path: Path) -> Iterator[bytes]:
    """The records file as CSV, batch by batch, with the salt as hex."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from pipeline.download import hex_salts

    parquet = pq.ParquetFile(path)
    first = True
    for batch in parquet.iter_batches(batch_size=65_536):
        index = batch.schema.get_field_index(SALT_COLUMN)
        table = pa.Table.from_batches([batch])
        table = table.set_column(index, SALT_COLUMN, hex_salts(batch.column(index)))
        out = io.BytesIO()
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=first))
        first = False
        yield out.getvalue()


_bearer = HTTPBearer(auto_error=False)


def sponsor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Token:
    """The token presented as ``Authorization: Bearer``; 401 when missing or unknown."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "a sponsor bearer token is required")
    config: ServerConfig = request.app.state.config
    token = TokenStore(config.home_path).find(credentials.credentials)
    if token is None:
        raise ApiError(401, "unknown or revoked token")
    return token


SponsorDep = Annotated[Token, Depends(sponsor)]


def _sponsor_routes(app: FastAPI) -> None:
    @app.post("/api/v1/trials/{trial}/datasets/{dataset}/deliveries", status_code=201,
              responses={**_AUTH_ERRORS, 409: {"description": "name taken", **ErrorBody},
                         413: {"description": "too large", **ErrorBody}})
    async def upload(trial: str, dataset: str, file: UploadFile, token: SponsorDep,
                     request: Request) -> dict[str, Any]:
        """Upload a delivery into the dataset's delivery folder, for its ingest DAG."""
        from pipeline.server.deliveries import receive_delivery

        if token.trial != trial:
            raise ApiError(403, f"this token is for trial {token.trial!r}, not {trial!r}")
        check_name(trial, "trial")
        check_name(dataset, "dataset")
        name = Path(file.filename or "").name
        if not _DELIVERY_NAME.fullmatch(name):
            raise UsageError("the file name must be letters, digits, '.', '_' or '-'")
        config: ServerConfig = request.app.state.config
        return await receive_delivery(home_of(request), config.registry, trial, dataset, name,
                                      file, config.max_upload_bytes)

    @app.post("/api/v1/anchor", responses=_AUTH_ERRORS)
    def anchor(token: SponsorDep, home: HomeDep) -> dict[str, Any]:
        """Anchor the current checkpoint to the configured ledgers (if the log has grown)."""
        from pipeline.anchor import anchor as run_anchor

        result = run_anchor(home)
        if result is None:
            return {"anchored": False}
        return {"anchored": True, **result.to_json()}




def app_from_environment() -> FastAPI:
    """The app for ``$TRIALPROOF_HOME`` (what each ``trialproof serve`` worker runs)."""
    from pipeline.home import resolve_home

    return create_app(resolve_home(None))
