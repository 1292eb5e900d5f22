"""``trialproof ledger ...`` and ``trialproof anchors``: where checkpoints are anchored, and how
each anchoring stands on each ledger (pending, confirmed, or failed with the reason)."""

from __future__ import annotations

__all__ = ["anchors_command", "ledger"]

import json
from pathlib import Path
from typing import Any

import click

from pipeline.cli import _emit, _open_home, home_option, json_option


@click.group()
def ledger() -> None:
    """The ledgers checkpoints are anchored to (the local ledger is on unless removed)."""


@ledger.group("add")
def ledger_add() -> None:
    """Add an external ledger to the home's config."""


def _added(home_dir: Path | None, spec: dict[str, Any]) -> None:
    from pipeline.ledger_config import add_ledger

    added = add_ledger(_open_home(home_dir), spec)
    click.echo(f"added {added['type']} ledger {added['name']}")


@ledger_add.command("ethereum")
@home_option
@click.option("--name", required=True, help="a name for this ledger")
@click.option("--rpc", required=True, help="the node's JSON-RPC URL")
@click.option("--chain-id", type=int, required=True, help="the chain ID anchoring must use")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="file holding the sender's private key (hex)")
@click.option("--key-env", default=None,
              help="environment variable holding the sender's private key (instead of a file)")
@click.option("--confirmations", type=int, default=1, show_default=True,
              help="blocks on top before an anchoring is confirmed")
@click.option("--to", "to_address", default=None,
              help="recipient address (default: the sender itself; no contract is needed)")
def add_ethereum(home_dir: Path | None, name: str, rpc: str, chain_id: int,
                 key_file: Path | None, key_env: str | None, confirmations: int,
                 to_address: str | None) -> None:
    """Anchor to an EVM chain over JSON-RPC: one transaction per anchoring."""
    _added(home_dir, {"name": name, "type": "ethereum", "rpc": rpc, "chain_id": chain_id,
                      "key_file": str(key_file) if key_file else None, "key_env": key_env,
                      "confirmations": confirmations, "to": to_address})


@ledger_add.command("witness")
@home_option
@click.option("--name", required=True, help="a name for this ledger")
@click.option("--url", required=True, help="the witness's URL prefix (before /add-checkpoint)")
@click.option("--vkey", required=True, help="the witness's cosigning vkey")
def add_witness(home_dir: Path | None, name: str, url: str, vkey: str) -> None:
    """Have a C2SP tlog-witness cosign each checkpoint."""
    _added(home_dir, {"name": name, "type": "witness", "url": url, "vkey": vkey})


@ledger_add.command("tsa")
@home_option
@click.option("--name", required=True, help="a name for this ledger")
@click.option("--url", required=True, help="the time-stamping authority's URL")
@click.option("--ca-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PEM file of the CA the TSA's certificate must chain to")
def add_tsa(home_dir: Path | None, name: str, url: str, ca_file: Path | None) -> None:
    """Have an RFC 3161 time-stamping authority time-stamp each checkpoint."""
    _added(home_dir, {"name": name, "type": "tsa", "url": url,
                      "ca_file": str(ca_file) if ca_file else None})


def _describe(spec: dict[str, Any]) -> str:
    kind = spec["type"]
    if kind == "ethereum":
        key = f"key file {spec['key_file']}" if spec.get("key_file") else f"${spec['key_env']}"
        return (f"{spec['rpc']} chain {spec['chain_id']}, {spec.get('confirmations', 1)} "
                f"confirmation(s), {key}")
    if kind == "witness":
        return f"{spec['url']} {spec['vkey']}"
    if kind == "tsa":
        return f"{spec['url']}" + (f" CA {spec['ca_file']}" if spec.get("ca_file") else "")
    return "embedded in the log database (not independent)"


@ledger.command("list")
@home_option
@json_option
def ledger_list(home_dir: Path | None, as_json: bool) -> None:
    """List the configured ledgers."""
    from pipeline.ledger_config import ledger_specs

    specs = ledger_specs(_open_home(home_dir))
    text = "\n".join(f"{s['name']:<16} {s['type']:<9} {_describe(s)}" for s in specs)
    _emit(as_json, {"ledgers": specs}, text or "no ledger is configured")


@ledger.command("remove")
@home_option
@click.argument("name")
def ledger_remove(home_dir: Path | None, name: str) -> None:
    """Stop anchoring to a ledger (its receipts so far are kept)."""
    from pipeline.ledger_config import remove_ledger

    remove_ledger(_open_home(home_dir), name)
    click.echo(f"removed ledger {name}")


@click.command("anchors")
@home_option
@json_option
def anchors_command(home_dir: Path | None, as_json: bool) -> None:
    """List every anchoring with each ledger's state: pending, confirmed or failed."""
    from pipeline.anchor_ledgers import anchorings

    rows = anchorings(_open_home(home_dir))
    if as_json:
        click.echo(json.dumps({"anchorings": rows}, indent=2))
        return
    lines = []
    for row in rows:
        stamped = f", time-stamped {row['proven_time']}" if row["proven_time"] else ""
        lines.append(f"size {row['size']}  root {row['root'][:16]}…  "
                     f"{row['signatures']} signature(s) on the checkpoint{stamped}")
        for name, state in row["ledgers"].items():
            reason = f": {state['reason']}" if state.get("reason") else ""
            lines.append(f"  {name:<16} {state['type']:<9} {state['state']}{reason}")
    click.echo("\n".join(lines) or "nothing anchored yet")
