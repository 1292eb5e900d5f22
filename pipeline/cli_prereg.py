"""``trialproof`` commands for pre-registration: planning documents, registry records and
the outcome-switching check. Exit codes come from :func:`pipeline.cli.exit_code_for`."""

from __future__ import annotations

__all__ = [
    "documents",
    "outcomes",
    "prove_document",
    "prove_entry",
    "register",
    "registry_record",
    "verify_document",
]

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from anchoring.merkle.hasher import is_hex_hash
from pipeline.errors import OutcomesChanged, UsageError

if TYPE_CHECKING:
    from pipeline.outcomes import OutcomeFinding



def _home(home_dir: Path | None) -> Any:
    from pipeline.home import Home, resolve_home

    return Home.open(resolve_home(home_dir))


def _home_option(func: Any) -> Any:
    return click.option(
        "--home", "home_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="trialproof home (default: $TRIALPROOF_HOME, then ./.trialproof)",
    )(func)


def _json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="print JSON for machines")(func)


def _emit(as_json: bool, payload: Any, text: str) -> None:
    click.echo(json.dumps(payload, indent=2) if as_json else text)


def _write_proof(out: Path, proof: dict[str, Any]) -> None:
    from pipeline.fsutil import write_text_durably

    write_text_durably(out, json.dumps(proof, indent=2, ensure_ascii=False) + "\n")


@click.command()
@_home_option
@_json_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trial", required=True, help="trial identifier, e.g. CDISCPILOT01")
@click.option("--kind", required=True, help="protocol, sap, icf, dmp, csr or other")
@click.option("--label", required=True, help='what this version is, e.g. "v2.0 amendment 1"')
def register(home_dir: Path | None, as_json: bool, file: Path, trial: str, kind: str,
             label: str) -> None:
    """Register a planning document: keep it by sha256 and append it to the log."""
    from pipeline.preregistration import register_document

    if not file.exists():
        raise UsageError(f"{file}: no such file")
    document = register_document(_home(home_dir), trial, kind, label, file)
    text = (f"registered {document.entry['kind']} {document.entry['label']!r} of {trial} "
            f"(sha256 {document.sha256}) as log entry {document.log_index}; "
            "it is anchored with the next anchoring")
    _emit(as_json, document.to_json(), text)


@click.command()
@_home_option
@_json_option
@click.option("--trial", required=True)
def documents(home_dir: Path | None, as_json: bool, trial: str) -> None:
    """List a trial's registered documents with their earliest proven time."""
    from pipeline.preregistration import document_entries, proven_time

    home = _home(home_dir)
    rows = [(d, proven_time(home, d.log_index)) for d in document_entries(home, trial)]
    lines = [
        f"{d.log_index:>6}  {d.entry['kind']:<8} {d.entry['label']}  {d.entry['name']}  "
        f"sha256 {d.sha256[:16]}…  "
        + (f"first anchored {p}" if p is not None else "not yet anchored")
        for d, p in rows
    ]
    _emit(as_json, [d.to_json(p) for d, p in rows],
          "\n".join(lines) if lines else f"no documents registered for {trial}")


def _check_sha256(value: str) -> str:
    value = value.strip().lower()
    if not is_hex_hash(value):
        raise UsageError("--sha256 must be 64 hex digits")
    return value


@click.command("prove-document")
@_home_option
@click.option("--trial", required=True)
@click.option("--sha256", "sha256", required=True, help="the document's SHA-256 (hex)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def prove_document(home_dir: Path | None, trial: str, sha256: str, out: Path) -> None:
    """Write an entry proof for a registered document; it verifies offline."""
    from pipeline.preregistration import entry_proof, find_document

    home = _home(home_dir)
    document = find_document(home, trial, _check_sha256(sha256))
    _write_proof(out, entry_proof(home, document.log_index))
    click.echo(f"wrote the entry proof of log entry {document.log_index} to {out}", err=True)


@click.command("prove-entry")
@_home_option
@click.option("--log-index", "log_index", type=int, required=True, help="the entry's log index")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def prove_entry(home_dir: Path | None, log_index: int, out: Path) -> None:
    """Write an entry proof for any log entry (a document or a registry record)."""
    from pipeline.preregistration import entry_proof

    home = _home(home_dir)
    size = home.log().size()
    if not 0 <= log_index < size:
        raise UsageError(f"--log-index must be between 0 and {size - 1}")
    _write_proof(out, entry_proof(home, log_index))
    click.echo(f"wrote the entry proof of log entry {log_index} to {out}", err=True)


def _fetch_proof(url: str, sha256: str) -> bytes:
    import urllib.error
    import urllib.request

    from pipeline.registry_watch import check_base_url

    try:
        base = check_base_url(url)
    except ValueError as exc:
        raise UsageError(f"--url: {exc}") from None
    address = f"{base}/api/v1/documents/{sha256}/proof"
    try:
        with urllib.request.urlopen(address, timeout=30) as response:
            data: bytes = response.read(16 << 20)
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise UsageError(f"{base} knows no document with sha256 {sha256[:16]}…") from None
        raise UsageError(f"{base} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise UsageError(f"{base} cannot be reached: {getattr(exc, 'reason', exc)}") from None


@click.command("verify-document")
@_json_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--vkey", "vkeys", multiple=True, required=True,
              help="a trusted log key (vkey text, or a file of vkeys); repeatable")
@click.option("--url", default=None, help="the log's public API, to find the document's proof")
@click.option("--proof", "proof_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="an entry proof file instead of --url")
def verify_document(as_json: bool, file: Path, vkeys: tuple[str, ...], url: str | None,
                    proof_file: Path | None) -> None:
    """Prove that a document in hand was registered, and say when it was first anchored."""
    from anchoring.verify import read_vkeys
    from pipeline.document_proof import verify_document_proof

    if (url is None) == (proof_file is None):
        raise UsageError("give exactly one of --url or --proof")
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror}") from None
    if proof_file is not None:
        try:
            data = proof_file.read_bytes()
        except OSError as exc:
            raise UsageError(f"{proof_file}: cannot read: {exc.strerror}") from None
    else:
        assert url is not None
        data = _fetch_proof(url, digest)
    result = verify_document_proof(data, digest, read_vkeys(vkeys))
    entry = result["entry"]
    when = result["first_anchored"]
    when_text = "not anchored in this proof" if when is None else (
        f"first anchored {when['time']} ({when['ledger']}"
        + ("" if when["independent"] else ", local ledger: not independent") + ")")
    _emit(as_json, result,
          f"verified: {file.name} is the {entry['kind']} {entry['label']!r} of {entry['trial']}, "
          f"registered {entry['registered_at']} as log entry {result['log_index']}; {when_text}")


@click.group("registry-record")
def registry_record() -> None:
    """Registry records (ClinicalTrials.gov API v2) logged as they change."""


@registry_record.command("add")
@_home_option
@_json_option
@click.option("--trial", required=True)
@click.option("--registry", "registry_name", default="clinicaltrials.gov", show_default=True)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def registry_record_add(home_dir: Path | None, as_json: bool, trial: str, registry_name: str,
                        file: Path) -> None:
    """Log a study record from a file if it changed since the study's last logged one."""
    from pipeline.preregistration import add_registry_record

    try:
        record = json.loads(file.read_bytes())
    except OSError as exc:
        raise UsageError(f"{file}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise UsageError(f"{file}: not JSON") from None
    if not isinstance(record, dict):
        raise UsageError(f"{file}: not a study record (a JSON object)")
    logged = add_registry_record(_home(home_dir), trial, record, registry=registry_name)
    if logged is None:
        _emit(as_json, {"changed": False}, f"{file.name}: unchanged since the last logged record")
        return
    _emit(as_json, {"changed": True, **logged.to_json()},
          f"logged {logged.entry['study_id']} (updated {logged.entry['last_update']}) "
          f"as log entry {logged.log_index}")


@click.group()
def outcomes() -> None:
    """Outcome-switching checks over the logged registry records."""


@outcomes.command("check")
@_home_option
@_json_option
@click.option("--trial", required=True)
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="also write a readable HTML report here")
@click.option("--baseline", "baseline_index", type=int, default=None,
              help="log index of the registration to compare against (default: the earliest)")
def outcomes_check(home_dir: Path | None, as_json: bool, trial: str, html_out: Path | None,
                   baseline_index: int | None) -> None:
    """Compare registered outcomes with later registrations and reported results.
    Exit 0 when nothing changed, 1 when an outcome was added, removed, moved or changed."""
    from pipeline.outcome_check import check_outcomes, render_html

    report = check_outcomes(_home(home_dir), trial, baseline_index)
    if html_out is not None:
        from pipeline.fsutil import write_text_durably

        write_text_durably(html_out, render_html(report))
    lines = []
    for study in report.studies:
        if not study.comparisons:
            lines.append(f"{study.study_id}: only one record is logged, with no results "
                         "section: nothing to compare yet")
        for comparison in study.comparisons:
            lines.append(f"{study.study_id}: baseline {comparison.baseline.cite()} vs "
                         f"{comparison.against} {comparison.other.cite()}: "
                         f"{len(comparison.discrepancies)} discrepancies")
            lines.extend(_finding_line(f) for f in comparison.discrepancies)
    verdict = ("no outcome switching found" if report.ok
               else f"{report.discrepancies} outcome discrepancies found")
    _emit(as_json, report.to_json(), "\n".join([*lines, verdict]))
    if not report.ok:
        raise OutcomesChanged(verdict)


def _finding_line(finding: OutcomeFinding) -> str:
    outcome = finding.before or finding.after
    assert outcome is not None
    changes = f" ({', '.join(finding.changes)})" if finding.changes else ""
    return f"  {finding.status}{changes}: {outcome.role} {outcome.measure[:80]}"
