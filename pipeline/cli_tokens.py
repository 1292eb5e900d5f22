"""``trialproof tokens``: sponsor bearer tokens for the HTTP API, each scoped to a trial."""

from __future__ import annotations

__all__ = ["tokens"]

import json
from pathlib import Path

import click

from pipeline.home import Home, resolve_home

_home = click.option("--home", "home_dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None,
                     help="trialproof home (default: $TRIALPROOF_HOME, then ./.trialproof)")


@click.group()
def tokens() -> None:
    """Sponsor API tokens: only their SHA-256 hashes are stored."""


@tokens.command("create")
@_home
@click.option("--name", required=True, help="a name for the token, e.g. the sponsor's uploader")
@click.option("--trial", required=True, help="the trial the token may upload to")
def create(home_dir: Path | None, name: str, trial: str) -> None:
    """Create a token and print it once."""
    from pipeline.server.tokens import TokenStore

    home = Home.open(resolve_home(home_dir))
    secret = TokenStore(home.path).create(name, trial)
    click.echo(f"token {name} for trial {trial} (shown once; only its hash is kept):", err=True)
    click.echo(secret)


@tokens.command("list")
@_home
@click.option("--json", "as_json", is_flag=True, help="print JSON for machines")
def list_tokens(home_dir: Path | None, as_json: bool) -> None:
    """List tokens: name, trial and creation time (never the token)."""
    from pipeline.server.tokens import TokenStore

    home = Home.open(resolve_home(home_dir))
    rows = [{"name": t.name, "trial": t.trial, "created_at": t.created_at}
            for t in TokenStore(home.path).tokens()]
    if as_json:
        click.echo(json.dumps({"tokens": rows}, indent=2))
    else:
        click.echo("\n".join(f"{r['name']}  {r['trial']}  {r['created_at']}" for r in rows)
                   or "no tokens")


@tokens.command("revoke")
@_home
@click.argument("name")
def revoke(home_dir: Path | None, name: str) -> None:
    """Revoke a token by name."""
    from pipeline.server.tokens import TokenStore

    home = Home.open(resolve_home(home_dir))
    TokenStore(home.path).revoke(name)
    click.echo(f"revoked {name}")
