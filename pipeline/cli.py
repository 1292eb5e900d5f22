"""The ``trialproof`` command line: a thin adapter over :mod:`pipeline` and :mod:`anchoring`.

Exit status (mapped in :func:`exit_code_for`, and nowhere else):
0 success; 1 verification failed; 2 usage or input error; 3 internal error.
Every failure prints one line saying what is wrong; no tracebacks.
"""

from __future__ import annotations

__all__ = ["cli", "exit_code_for", "main"]

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from anchoring.errors import (
    AnchoringError,
    BundleVerificationError,
    LogConsistencyError,
    VerificationError,
)
from pipeline.errors import PipelineError, UsageError
from pipeline.home import Home, resolve_home

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_VERIFICATION_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def exit_code_for(exc: BaseException) -> int:
    """The one place where exceptions become exit codes."""
    if isinstance(exc, VerificationError | LogConsistencyError):
        return EXIT_VERIFICATION_FAILED
    if isinstance(exc, AnchoringError | PipelineError | click.ClickException | OSError):
        return EXIT_USAGE
    return EXIT_INTERNAL


def home_option(func: F) -> F:
    return click.option(
        "--home",
        "home_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="trialproof home (default: $TRIALPROOF_HOME, then ./.trialproof)",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="print JSON for machines")(func)


def _open_home(home_dir: Path | None) -> Home:
    return Home.open(resolve_home(home_dir))


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(payload, indent=2) if as_json else text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trialproof")
def cli() -> None:
    """trialproof: tamper-evident clinical-trial datasets."""


@cli.command()
@home_option
@click.option("--origin", required=True, help="the log's origin line, e.g. trials.example.org/log")
@click.option("--key-name", default=None, help="name of the log's signing key (default: the origin)")
def init(home_dir: Path | None, origin: str, key_name: str | None) -> None:
    """Create a home: the log's Ed25519 signing key, the salt key and the log. Prints the vkey."""
    path = resolve_home(home_dir)
    home = Home.init(path, origin, key_name)
    click.echo(f"initialized {path}", err=True)
    click.echo(home.verifier.vkey)


@cli.command()
@home_option
def vkey(home_dir: Path | None) -> None:
    """Print the log's public verifier key (C2SP vkey)."""
    click.echo(_open_home(home_dir).verifier.vkey)


@cli.command()
@home_option
def checkpoint(home_dir: Path | None) -> None:
    """Sign (if the log grew) and print the current checkpoint."""
    home = _open_home(home_dir)
    click.echo(home.log().sign_checkpoint(home.signer), nl=False)


@cli.command()
@home_option
@json_option
@click.option("--from", "old_size", type=int, required=True, help="the older tree size")
@click.option("--to", "new_size", type=int, default=None, help="the newer size (default: current)")
def consistency(home_dir: Path | None, as_json: bool, old_size: int, new_size: int | None) -> None:
    """Print an RFC 9162 consistency proof between two log sizes (hex, one hash a line)."""
    log = _open_home(home_dir).log()
    new = log.size() if new_size is None else new_size
    if not 0 < old_size <= new <= log.size():
        raise UsageError(f"need 0 < --from <= --to <= log size {log.size()}; got {old_size}, {new}")
    proof = log.consistency_proof(old_size, new)
    payload = {
        "old_size": old_size,
        "new_size": new,
        "old_root": log.root(old_size).hex(),
        "new_root": log.root(new).hex(),
        "proof": [h.hex() for h in proof],
    }
    _emit(as_json, payload, "\n".join(payload["proof"]) if proof else "")


def _read_vkeys(values: Sequence[str]) -> list[Any]:
    from anchoring.note import Verifier

    verifiers = []
    for value in values:
        path = Path(value)
        lines = [value]
        if "+" not in value and path.is_file():
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        verifiers.extend(Verifier.from_vkey(line) for line in lines)
    return verifiers


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vkey", "vkeys", multiple=True, required=True,
              help="a trusted log key (vkey text, or a file of vkeys); repeatable")
@json_option
def verify(bundle: Path, vkeys: tuple[str, ...], as_json: bool) -> None:
    """Verify a record-proof bundle offline. Exit 0 verified, 1 not verified, 2 malformed."""
    from anchoring.bundle import parse_record_proof
    from anchoring.verify import verify_record_proof

    trusted = _read_vkeys(vkeys)
    try:
        data = bundle.read_bytes()
    except OSError as exc:
        raise UsageError(f"{bundle}: cannot read: {exc.strerror}") from None
    proof = parse_record_proof(data)
    try:
        verify_record_proof(proof, trusted)
    except BundleVerificationError as exc:
        if as_json:
            click.echo(json.dumps({"verified": False, "step": exc.step.value, "reason": exc.reason}))
        raise
    manifest = proof.manifest
    summary = (f"verified: record {proof.leaf_index} of {manifest['trial']}/{manifest['dataset']} "
               f"v{manifest['version']} is in log entry {proof.log_index} at size {proof.log_size}")
    _emit(as_json, {"verified": True, "trial": manifest["trial"], "dataset": manifest["dataset"],
                    "version": manifest["version"], "leaf_index": proof.leaf_index,
                    "log_index": proof.log_index, "log_size": proof.log_size}, summary)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, BundleVerificationError):
        return f"verification failed at step '{exc.step.value}': {exc.reason}"
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if exit_code_for(exc) == EXIT_INTERNAL:
        return f"internal error ({type(exc).__name__}): {text}"
    return text


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the CLI and exit with the status :func:`exit_code_for` assigns."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001  every failure becomes one line and an exit code
        click.echo(f"trialproof: {_one_line(exc)}", err=True)
        sys.exit(exit_code_for(exc))
    sys.exit(EXIT_OK)
