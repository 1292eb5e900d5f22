"""The ``trialproof`` command line: a thin adapter over :mod:`pipeline` and :mod:`anchoring`.

Exit status (mapped in :func:`exit_code_for`, and nowhere else):
0 success; 1 verification failed; 2 usage or input error; 3 internal error.
Every failure prints one line saying what is wrong; no tracebacks.
"""

from __future__ import annotations

__all__ = ["cli", "exit_code_for", "home_option", "json_option", "main"]

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from anchoring.errors import (
    AnchoringError,
    LogConsistencyError,
    ProofVerificationError,
    VerificationError,
)
from anchoring.note import Verifier
from pipeline.cli_progress import stage_progress
from pipeline.errors import AuditFailed, OutcomesChanged, PipelineError, StoreError, UsageError
from pipeline.extras import missing_extra
from pipeline.home import Home, resolve_home

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_VERIFICATION_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


def exit_code_for(exc: BaseException) -> int:
    """The one place where exceptions become exit codes."""
    if isinstance(exc, VerificationError | LogConsistencyError | AuditFailed | OutcomesChanged):
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
@click.option("--key-name", default=None, help="the signing key's name (default: the origin)")
def init(home_dir: Path | None, origin: str, key_name: str | None) -> None:
    """Create a home: the log's Ed25519 signing key, the salt key and the log. Prints the vkey."""
    from pipeline.extras import require_pipeline_extra

    require_pipeline_extra()  # before writing keys

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
    hashes = [h.hex() for h in proof]
    payload = {
        "old_size": old_size,
        "new_size": new,
        "old_root": log.root(old_size).hex(),
        "new_root": log.root(new).hex(),
        "proof": hashes,
    }
    _emit(as_json, payload, "\n".join(hashes))


def _read_vkeys(values: Sequence[str]) -> list[Verifier]:
    from anchoring.verify import read_vkeys

    return read_vkeys(values)


@cli.command()
@click.argument("proof", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vkey", "vkeys", multiple=True, required=True,
              help="a trusted log key (vkey text, or a file of vkeys); repeatable")
@json_option
@click.option("--origin", default=None, help="require the checkpoint's origin to be this one")
@click.option("--require-anchor", "require_anchor", is_flag=False, flag_value="any",
              default=None, metavar="[independent]",
              help="fail unless a receipt was verified; with 'independent', one from a "
                   "ledger other than the local one")
@click.option("--contract", "contract", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="the version's contract, to name the record's key columns")
@click.option("--witness", "witness_vkeys", multiple=True,
              help="a trusted witness's cosigning vkey (text or file); repeatable")
@click.option("--witness-threshold", type=int, default=None,
              help="how many of the --witness keys must have cosigned (default: all)")
@click.option("--online", is_flag=True, help="also check chain receipts on the chain itself")
@click.option("--rpc", "rpc_urls", multiple=True,
              help="JSON-RPC URL for --online (one per chain; its chain ID is asked)")
@click.option("--tsa-ca", "tsa_ca", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="PEM CA file that time-stamp (RFC 3161) receipts must chain to")
def verify(proof: Path | None, vkeys: tuple[str, ...], as_json: bool, origin: str | None,
           require_anchor: str | None, contract: Path | None, witness_vkeys: tuple[str, ...],
           witness_threshold: int | None, online: bool, rpc_urls: tuple[str, ...],
           tsa_ca: Path | None) -> None:
    """Verify a record or entry proof offline. Exit 0 verified, 1 not verified, 2 malformed.

    Prints what was verified: trial, dataset, version, the record's key and leaf hash,
    the checkpoint's origin, and each anchor receipt with what it proves.
    """
    from anchoring.errors import ProofFormatError
    from anchoring.verify import (
        VerifierUsageError,
        anchor_policy_and_proof,
        demands_from_options,
        failure_json,
        render_text,
        result_json,
        verify_file,
    )

    try:
        policy, path = anchor_policy_and_proof(require_anchor,
                                               None if proof is None else str(proof))
        demands = demands_from_options(_read_vkeys(witness_vkeys), witness_threshold, online,
                                       rpc_urls, tsa_ca)
    except VerifierUsageError as exc:
        raise UsageError(str(exc)) from None
    trusted = _read_vkeys(vkeys)
    try:
        result, key_columns = verify_file(path, trusted, origin=origin, require_anchor=policy,
                                          contract=contract, demands=demands)
    except ProofVerificationError as exc:
        if as_json:
            click.echo(json.dumps(failure_json(exc)))
        raise
    except OSError as exc:
        raise UsageError(f"{exc.filename or path}: cannot read: {exc.strerror}") from None
    except ProofFormatError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if as_json:
        click.echo(json.dumps(result_json(result, key_columns), indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(result, key_columns))


def _contract_search(home: Home | None) -> tuple[Path, ...]:
    from pipeline.contract import DEFAULT_CONTRACTS, contract_search_folders

    home_folders = [] if home is None else [home.path / "contracts"]
    return contract_search_folders([*home_folders, Path.cwd() / DEFAULT_CONTRACTS])


@cli.command()
@home_option
@json_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trial", required=True, help="trial identifier, e.g. CDISCPILOT01")
@click.option("--dataset", required=True, help="dataset name, e.g. dm")
@click.option("--contract", "contract_ref", default=None,
              help="contract file, or name under schemas/contracts (default: the contract of "
                   "the dataset's latest version, else its registry entry's, else the "
                   "dataset name)")
@click.option("--dry-run", is_flag=True,
              help="read, validate and write the report; commit nothing (exit 0 valid, 2 not)")
@click.option("--force", is_flag=True,
              help="go on when the data's STUDYID is not --trial, or the trial is not in the "
                   "sponsor registry")
def ingest(home_dir: Path | None, as_json: bool, file: Path, trial: str, dataset: str,
           contract_ref: str | None, dry_run: bool, force: bool) -> None:
    """Validate a delivery against its contract and commit it as the dataset's next version."""
    from pipeline.contract import load_contract
    from pipeline.delivery_contract import delivery_contract
    from pipeline.errors import ReadError
    from pipeline.ingest import ingest as run_ingest
    from pipeline.ingest import unregistered_trial

    home = _open_home(home_dir)
    contract = (load_contract(contract_ref, _contract_search(home)) if contract_ref
                else delivery_contract(home, trial, dataset, _contract_search(home)))
    if not file.is_file():  # before the registry: the most basic problem first
        raise ReadError(f"{file}: no such file")
    unregistered = unregistered_trial(trial)
    if unregistered and not force:
        raise UsageError(f"{unregistered}; register it, or pass --force")
    if unregistered:
        click.echo(f"warning: {unregistered} (--force: going on)", err=True)
    if dry_run:
        _dry_run_ingest(home, as_json, file, trial, dataset, contract, force)
        return
    with stage_progress(f"ingest {file.name}", enabled=not as_json) as progress:
        result = run_ingest(home, file, trial, dataset, contract, progress,
                            on_study_mismatch=lambda problem: _study_mismatch(problem, force))
    payload = result.to_json()
    if result.status == "unchanged":
        text = (f"unchanged: {file.name} is already {trial}/{dataset} v{result.version}, the "
                f"latest version (log entry {result.log_index}); no new version")
    else:
        text = (f"committed {trial}/{dataset} v{result.version}: {result.manifest['records']} "
                f"records, root {result.manifest['root']}, log entry {result.log_index}\n"
                f"report: {payload['reports']['html']}")
        if "same_content_as" in result.manifest:
            text += (f"\nsame bytes as v{result.manifest['same_content_as']}: "
                     "a rollback, committed as a new version")
    _emit(as_json, payload, text)


def _dry_run_ingest(home: Home, as_json: bool, file: Path, trial: str, dataset: str,
                    contract: Any, force: bool) -> None:
    from pipeline.errors import InvalidDelivery
    from pipeline.ingest import dry_run

    with stage_progress(f"dry run {file.name}", enabled=not as_json) as progress:
        result = dry_run(home, file, trial, dataset, contract, progress)
    payload = result.to_json()
    html = payload["reports"]["html"]
    verdict = "valid" if result.valid else "NOT valid"
    _emit(as_json, payload, f"dry run: {file.name} is {verdict} under contract {contract.name}; "
                            f"nothing committed\n{result.summary}\nreport: {html}")
    if not result.valid:
        raise InvalidDelivery(f"{file.name} is not valid under contract {contract.name} "
                              f"(report: {html})")
    if result.study_problem:
        _study_mismatch(result.study_problem, force)


def _study_mismatch(problem: str, force: bool) -> None:
    if not force:
        raise UsageError(f"{problem}; nothing committed (check --trial, or pass --force)")
    click.echo(f"warning: {problem} (--force: going on)", err=True)


@cli.command()
@home_option
@json_option
@click.option("--trial", required=True)
@click.option("--dataset", required=True)
def versions(home_dir: Path | None, as_json: bool, trial: str, dataset: str) -> None:
    """List a dataset's committed versions."""
    home = _open_home(home_dir)
    infos = home.store().versions(trial, dataset)
    if not infos:
        raise StoreError(f"{trial}/{dataset}: no committed version in this home "
                         f"(`trialproof datasets --trial {trial}` lists its datasets)")
    rows = [{"version": i.version, "log_index": i.log_index, "records": i.manifest["records"],
             "root": i.manifest["root"], "source": i.manifest["source"]["name"],
             "source_sha256": i.manifest["source"]["sha256"],
             "ingested_at": i.manifest["ingested_at"],
             "same_content_as": i.manifest.get("same_content_as")} for i in infos]
    text = "\n".join(f"v{r['version']}  log {r['log_index']}  {r['records']} records  "
                     f"root {r['root'][:16]}…  {r['source']}  {r['ingested_at']}"
                     + (f"  (same bytes as v{r['same_content_as']})"
                        if r["same_content_as"] else "") for r in rows)
    _emit(as_json, {"trial": trial, "dataset": dataset, "versions": rows}, text)


@cli.group()
def contracts() -> None:
    """Dataset contracts (Frictionless Table Schema)."""


@contracts.command("from-define")
@click.argument("define", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
def contracts_from_define(define: Path, out_dir: Path) -> None:
    """Write one contract per dataset described in a CDISC define.xml (1.0 or 2.0).

    Prints, per dataset, the deviations from define.xml the contract records (types
    widened, keys changed, codelists dropped) and the columns nothing constrains."""
    from pipeline.define_xml import deviations_by_kind, unconstrained_columns, write_contracts

    for path in write_contracts(define, out_dir):
        descriptor = json.loads(path.read_text(encoding="utf-8"))
        click.echo(str(path))
        grouped = deviations_by_kind(descriptor)
        if not grouped:
            click.echo("  deviations from define.xml: none")
        for kind, lines in grouped.items():
            click.echo(f"  {kind} ({len(lines)}):")
            click.echo("\n".join(f"    - {line}" for line in lines))
        loose = unconstrained_columns(descriptor)
        if loose:
            click.echo(f"  no codelist and no other constraint (pattern or range), so any "
                       f"value of the type and length passes: {', '.join(loose)}")


def _parse_key(text: str) -> dict[str, str]:
    key: dict[str, str] = {}
    for part in text.split(","):
        column, sep, value = part.partition("=")
        if not sep or not column:
            raise UsageError(f"--key expects COL=VALUE[,COL=VALUE...], got {part!r}")
        key[column.strip()] = value
    return key


@cli.command()
@home_option
@click.option("--trial", required=True)
@click.option("--dataset", required=True)
@click.option("--version", "version", type=int, default=None, help="default: the latest")
@click.option("--key", "key_text", default=None, help="COL=VALUE[,COL=VALUE...] of the record")
@click.option("--index", "index", type=int, default=None, help="the record's leaf index")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--tlog-proof", "tlog_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="also write the log part as a C2SP tlog-proof")
def prove(home_dir: Path | None, trial: str, dataset: str, version: int | None,
          key_text: str | None, index: int | None, out: Path, tlog_out: Path | None) -> None:
    """Write a record proof that anyone can verify offline with the log's vkey."""
    from pipeline.arrow_import import import_arrow_without_numpy

    import_arrow_without_numpy()
    from pipeline.fsutil import write_text_durably
    from pipeline.prove import prove_record

    if (key_text is None) == (index is None):
        raise UsageError("give exactly one of --key and --index")
    home = _open_home(home_dir)
    proof = prove_record(home, trial, dataset, version=version,
                         key=_parse_key(key_text) if key_text else None, index=index)
    write_text_durably(out, proof.to_json())
    if tlog_out is not None:
        write_text_durably(tlog_out, proof.tlog_proof())
    click.echo(f"wrote {out}: record {proof.leaf_index} of {trial}/{dataset} "
               f"v{proof.manifest['version']}, log size {proof.log_size}")


#: `diff --values` shows old and new values for at most this many changed records.
DIFF_VALUES_LIMIT = 20


@cli.command()
@home_option
@json_option
@click.option("--trial", required=True)
@click.option("--dataset", required=True)
@click.option("--from", "from_version", type=int, required=True)
@click.option("--to", "to_version", type=int, required=True)
@click.option("--limit", type=int, default=None,
              help="show at most this many changes (default: 50 as text, all as JSON)")
@click.option("--proofs", "proofs_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="write a record proof for each side of every listed change")
@click.option("--values", "show_values", is_flag=True,
              help="show the old and new value of each changed column")
@click.option("--values-limit", type=click.IntRange(min=0), default=DIFF_VALUES_LIMIT,
              show_default=True, help="with --values: show values for at most this many "
              "changed records")
def diff(home_dir: Path | None, as_json: bool, trial: str, dataset: str, from_version: int,
         to_version: int, limit: int | None, proofs_dir: Path | None, show_values: bool,
         values_limit: int) -> None:
    """Records added, removed and changed between two versions, matched by primary key."""
    from pipeline.diff import diff_versions

    home = _open_home(home_dir)
    result = diff_versions(home.store(), trial, dataset, from_version,
                           to_version)
    entries = result.entries(limit if limit is not None else (None if as_json else 50),
                             values=values_limit if show_values else 0)
    if proofs_dir is not None:
        _write_diff_proofs(home, result, entries, proofs_dir)
    payload = {"trial": trial, "dataset": dataset, "from": result.from_version,
               "to": result.to_version, "key": list(result.key), **result.summary(),
               "changes": entries}
    listed_changed = sum(1 for e in entries if e["change"] == "changed")
    values_capped = show_values and listed_changed > values_limit
    if show_values:
        payload |= {"values_limit": values_limit, "values_capped": values_capped}
    lines = [f"{trial}/{dataset} v{result.from_version} -> v{result.to_version}: "
             f"{payload['added']} added, {payload['removed']} removed, "
             f"{payload['changed']} changed"]
    for e in entries:
        key = ", ".join(f"{k}={v}" for k, v in e["key"].items())
        cols = f"  [{', '.join(e['columns'])}]" if e["change"] == "changed" else ""
        lines.append(f"  {e['change']:<8} {key}{cols}")
        lines.extend(f"           {column}: {_shown(v['from'])} -> {_shown(v['to'])}"
                     for column, v in e.get("values", {}).items())
    total = sum(result.summary().values())
    if len(entries) < total:
        lines.append(f"  ... {total - len(entries)} more (use --limit or --json)")
    if values_capped:
        lines.append(f"  values shown for the first {values_limit} of {listed_changed} changed "
                     "records listed (use --values-limit)")
    _emit(as_json, payload, "\n".join(lines))


def _shown(value: Any, width: int = 60) -> str:
    """A value as JSON text (quoted, escaped), cut to ``width`` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _write_diff_proofs(home: Home, result: Any, entries: list[dict[str, Any]],
                       out: Path) -> None:
    from pipeline.fsutil import write_text_durably
    from pipeline.prove import prove_record

    out.mkdir(parents=True, exist_ok=True)
    for n, entry in enumerate(entries):
        for side, version, index in (("from", result.from_version, entry.get("from_index")),
                                     ("to", result.to_version, entry.get("to_index"))):
            if index is None:
                continue
            proof = prove_record(home, result.trial, result.dataset, version=version,
                                 index=index)
            name = f"{n:06d}-{entry['change']}-{side}-v{version}-{index}.json"
            write_text_durably(out / name, proof.to_json())


@cli.command("anchor")
@home_option
@json_option
@click.option("--ledger", "ledger_names", multiple=True,
              help="anchor to this configured ledger only; repeatable (default: all)")
def anchor_command(home_dir: Path | None, as_json: bool, ledger_names: tuple[str, ...]) -> None:
    """Anchor the current checkpoint to the configured ledgers (if the log has grown), and
    retry what is pending."""
    from pipeline.anchor import anchor

    home = _open_home(home_dir)
    result = anchor(home, ledger_names)
    if result is None:
        from pipeline.anchor_ledgers import anchorings

        history = anchorings(home)
        ledgers = history[-1]["ledgers"] if history else {}
        states = ", ".join(f"{name} {state['state']}" for name, state in ledgers.items())
        _emit(as_json, {"anchored": False, "ledgers": ledgers},
              "nothing to anchor: the log has not grown"
              + (f" (last anchoring: {states})" if states else ""))
        return
    states = ", ".join(f"{name} {state['state']}" for name, state in result.ledgers.items())
    _emit(as_json, {"anchored": True, **result.to_json()},
          f"anchored size {result.size} (root {result.root[:16]}…): {states}")


@cli.command("audit")
@home_option
@json_option
@click.option(
    "--trial", default=None, help="only this trial's versions (the log is always checked)",
)
@click.option("--online", is_flag=True, help="also check chain receipts on their chains")
def audit_command(home_dir: Path | None, as_json: bool, trial: str | None, online: bool) -> None:
    """Recompute every root and check the log, checkpoints and receipts. Exit 1 on any finding."""
    from pipeline.audit import audit

    report = audit(_open_home(home_dir), trial, online)
    text = "\n".join([f"audit: {report.versions_checked} versions, log size {report.log_size}, "
                      f"{report.checkpoints_checked} checkpoints, "
                      f"{report.receipts_checked} receipts: "
                      f"{'OK' if report.ok else f'{len(report.findings)} finding(s)'}",
                      *(f"  {f}" for f in report.findings)])
    _emit(as_json, report.to_json(), text)
    if not report.ok:
        raise AuditFailed(f"{len(report.findings)} finding(s); first: {report.findings[0]}")


@cli.group()
def registry() -> None:
    """The sponsor registry: which datasets Airflow ingests, from where, and when."""


@registry.command("check")
@click.option("--registry", "registry_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="registry file (default: $TRIALPROOF_REGISTRY, then ./registry/sponsors.yaml)")
@json_option
@home_option
def registry_check(registry_path: Path | None, as_json: bool, home_dir: Path | None) -> None:
    """Check every entry of the registry. Exit 0 when all are valid, 2 listing each bad one."""
    from pipeline.registry import read_registry

    checked = read_registry(registry_path, home_dir)
    lines = [f"{checked.path}: {len(checked.entries)} valid entr"
             f"{'y' if len(checked.entries) == 1 else 'ies'}, {len(checked.problems)} problem(s)",
             *(f"  ok    {e.dag_id}  ({e.schedule}; {e.deliveries})" for e in checked.entries),
             *(f"  error {p}" for p in checked.problems)]
    _emit(as_json, checked.to_json(), "\n".join(lines))
    if checked.problems:
        raise UsageError(f"registry {checked.path} has {len(checked.problems)} problem(s); "
                         f"first: {checked.problems[0]}")


def _add_prereg_commands() -> None:
    from pipeline import cli_prereg

    for command in (cli_prereg.register, cli_prereg.documents, cli_prereg.prove_document,
                    cli_prereg.prove_entry, cli_prereg.verify_document,
                    cli_prereg.registry_record, cli_prereg.outcomes):
        cli.add_command(command)


_add_prereg_commands()


from pipeline import cli_browse  # noqa: E402  (it builds on the helpers above)

cli.add_command(cli_browse.trials)
cli.add_command(cli_browse.datasets)

from pipeline import cli_download, cli_serve, cli_tokens  # noqa: E402

cli.add_command(cli_serve.serve)
cli.add_command(cli_tokens.tokens)
cli.add_command(cli_download.download)

from pipeline.cli_ledger import anchors_command, ledger  # noqa: E402
from pipeline.cli_witness import witness  # noqa: E402

cli.add_command(ledger)
cli.add_command(anchors_command)
cli.add_command(witness)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ProofVerificationError):
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
    except Exception as exc:
        exc = missing_extra(exc) or exc
        click.echo(f"trialproof: {_one_line(exc)}", err=True)
        sys.exit(exit_code_for(exc))
    sys.exit(EXIT_OK)
