"""``trialproof witness ...``: run a C2SP tlog-witness that cosigns a log's checkpoints."""

from __future__ import annotations

__all__ = ["witness"]

from pathlib import Path

import click

_HOME = click.option("--home", "home_dir", type=click.Path(file_okay=False, path_type=Path),
                     required=True, help="the witness's own directory (key and state)")


@click.group()
def witness() -> None:
    """A witness (C2SP tlog-witness): checks each checkpoint extends the last, then cosigns."""


@witness.command("init")
@click.option("--name", required=True, help="the witness's key name, e.g. witness.example.org")
@_HOME
def witness_init(name: str, home_dir: Path) -> None:
    """Create a witness key and its empty state. Prints the witness's vkey."""
    from anchoring._internal.witness_service import init_witness

    signer = init_witness(home_dir.expanduser().resolve(), name)
    click.echo(f"initialized witness {name} in {home_dir}", err=True)
    click.echo(signer.verifier.vkey)


@witness.command("vkey")
@_HOME
def witness_vkey(home_dir: Path) -> None:
    """Print the witness's cosigning vkey."""
    from anchoring._internal.witness_service import load_signer

    click.echo(load_signer(home_dir.expanduser().resolve()).verifier.vkey)


@witness.command("serve")
@_HOME
@click.option("--log", "logs", multiple=True, required=True,
              help="vkey of a log to witness (its name is the log's origin); repeatable")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8420, show_default=True, help="0: any free port")
def witness_serve(home_dir: Path, logs: tuple[str, ...], host: str, port: int) -> None:
    """Serve POST /add-checkpoint. Refuses to start when the witness state is missing."""
    from anchoring._internal.witness_service import serve
    from anchoring.note import Verifier

    keys = [Verifier.from_vkey(v) for v in logs]
    try:
        serve(home_dir.expanduser().resolve(), keys, host, port)
    except KeyboardInterrupt:
        click.echo("witness stopped", err=True)
