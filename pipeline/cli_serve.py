"""``trialproof serve``: the HTTP API and web page over a home (docs/architecture.md)."""

from __future__ import annotations

__all__ = ["serve"]

from pathlib import Path

import click

from pipeline.home import resolve_home


@click.command()
@click.option("--home", "home_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="trialproof home (default: $TRIALPROOF_HOME, then ./.trialproof)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="worker processes (each serves the same home)")
@click.option("--max-upload-bytes", type=click.IntRange(1), default=None,
              help="largest delivery upload (default: $TRIALPROOF_MAX_UPLOAD_BYTES, then 1 GiB)")
@click.option("--registry", "registry_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="sponsor registry for uploads (default: $TRIALPROOF_REGISTRY)")
def serve(home_dir: Path | None, host: str, port: int, workers: int,
          max_upload_bytes: int | None, registry_path: Path | None) -> None:
    """Serve the public API, C2SP tiles, sponsor uploads and the web page."""
    import os

    import uvicorn

    from pipeline.home import Home

    path = resolve_home(home_dir)
    Home.open(path)
    # Worker processes build their own app from the environment (uvicorn's factory mode).
    os.environ["TRIALPROOF_HOME"] = str(path)
    if max_upload_bytes is not None:
        os.environ["TRIALPROOF_MAX_UPLOAD_BYTES"] = str(max_upload_bytes)
    if registry_path is not None:
        os.environ["TRIALPROOF_REGISTRY"] = str(registry_path.resolve())
    _check_free(host, port)
    click.echo(f"serving {path} on http://{host}:{port} with {workers} worker(s)", err=True)
    uvicorn.run("pipeline.server.app:app_from_environment", factory=True, host=host, port=port,
                workers=workers, log_level="warning", access_log=False)


def _check_free(host: str, port: int) -> None:
    """Refuse, in one line, an address that cannot be bound, before saying it is served."""
    import socket

    from pipeline.errors import UsageError

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
