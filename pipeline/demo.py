"""``make demo``: the main job on the embedded defaults, end to end.

1. creates (or reuses) the home ``./.trialproof`` and the Airflow home ``./.airflow``
   (SQLite metadata, the same as ``make airflow``, so the UI shows these runs);
2. registers the pilot trial's protocol and statistical analysis plan
   (``examples/documents/``) and anchors them, before any of its data is ingested;
3. runs the real ingest DAGs of the example registry (``registry/sponsors.yaml``:
   the CDISC pilot trial CDISCPILOT01) and then the anchor DAG, in process with
   ``dag.test()``;
4. writes a record proof and verifies it with nothing but the log's public key;
5. prints what was ingested, when the plans were anchored, the checkpoint, and where
   everything is.

A second run finds nothing new to ingest (deliveries are idempotent by sha256), says
so, and verifies again. Every sensor the demo runs looks once (poke mode, no waiting):
an ``on-arrival`` entry with nothing new is skipped instead of waiting an hour for a
file. The DAG runs happen in a child process of their own, which is stopped (SIGTERM,
then SIGKILL) when the demo is interrupted or runs longer than
``$TRIALPROOF_DEMO_TIMEOUT`` seconds (default 900).

``TRIALPROOF_HOME``, ``AIRFLOW_HOME`` and ``TRIALPROOF_REGISTRY`` choose other places.
"""

from __future__ import annotations

__all__ = [
    "airflow_env",
    "main",
    "run_bounded",
]

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ORIGIN = "trials.example.org/log"
DEMO_DATASET = ("CDISCPILOT01", "dm", {"STUDYID": "CDISCPILOT01", "USUBJID": "01-701-1015"})
#: The planning documents registered before the data: (kind, label, file).
DEMO_DOCUMENTS = (
    ("protocol", "synopsis v1.0", REPO / "examples/documents/CDISCPILOT01/protocol-synopsis.txt"),
    ("sap", "synopsis v1.0", REPO / "examples/documents/CDISCPILOT01/sap-synopsis.txt"),
)
#: Seconds the DAG runs may take before the demo stops them.
DEFAULT_TIMEOUT = 900
#: Seconds between SIGTERM and SIGKILL when the DAG runs are stopped.
KILL_GRACE = 10

# One process for Airflow (it starts once): ``airflow db migrate`` as the CLI runs it, then
# every DAG with dag.test(). Sensors look once: poke mode, timeout 0. With soft_fail (the
# ingest sensor has it) an empty delivery folder skips the run's deliveries instead of
# waiting for the poke timeout.
_RUN_DAGS = """
import json, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
dags_folder = sys.argv[1]
started = time.monotonic()
sys.argv = ["airflow", "db", "migrate"]
from airflow.__main__ import main as airflow_cli
try:
    airflow_cli()
except BaseException as exc:
    print("MIGRATE-FAILED " + json.dumps(f"{type(exc).__name__}: {exc}"), flush=True)
    raise
print(f"  metadata database ready ({time.monotonic() - started:.1f} s)", flush=True)
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.bases.sensor import BaseSensorOperator
bag = DagBag(dag_folder=dags_folder)
errors = {k: v.splitlines()[-1] for k, v in bag.import_errors.items()}
if errors:
    print("IMPORT-ERRORS " + json.dumps(errors))
order = sorted(d for d in bag.dag_ids if d.startswith("ingest__")) + ["anchor"]
results = []
for dag_id in order:
    dag = bag.dags[dag_id]
    for sensor in dag.tasks:
        if isinstance(sensor, BaseSensorOperator):
            sensor.mode, sensor.timeout, sensor.poke_interval = "poke", 0, 1
    started = time.monotonic()
    run = dag.test()
    results.append({"dag_id": dag_id, "state": str(run.state)})
    print(f"  {dag_id}: {run.state} ({time.monotonic() - started:.1f} s)", flush=True)
print("RESULT " + json.dumps(results), flush=True)
"""


def _say(text: str) -> None:
    print(text, flush=True)


def airflow_env(home: Path, airflow_home: Path, registry: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "TRIALPROOF_HOME": str(home),
        "TRIALPROOF_REGISTRY": str(registry),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    return env


def main() -> int:
    from pipeline.home import Home, resolve_home

    started = time.perf_counter()
    home_path = resolve_home(os.environ.get("TRIALPROOF_HOME") or REPO / ".trialproof")
    airflow_home = Path(os.environ.get("AIRFLOW_HOME") or REPO / ".airflow")
    registry = Path(os.environ.get("TRIALPROOF_REGISTRY") or REPO / "registry" / "sponsors.yaml")
    home = Home.open(home_path) if (home_path / "config.json").exists() else Home.init(
        home_path, ORIGIN)
    _say(f"trialproof home: {home.path}\nlog public key (vkey): {home.verifier.vkey}")
    _preregister(home)
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home.path, airflow_home, registry)

    before = _holdings(home)
    _say("preparing Airflow's metadata database (SQLite), then running the ingest DAGs and "
         "the anchor DAG with dag.test() ...")
    timeout = float(os.environ.get("TRIALPROOF_DEMO_TIMEOUT") or DEFAULT_TIMEOUT)
    returncode, lines, errors = run_bounded(
        [sys.executable, "-c", _RUN_DAGS, str(REPO / "dags")], env, timeout)
    result_line = next((ln for ln in lines if ln.startswith("RESULT ")), None)
    if returncode != 0 or result_line is None:
        _say("\n".join(lines)[-3000:] + errors[-3000:])
        if returncode is None:
            _say("the DAG runs timed out and were stopped")
        elif any(line.startswith("MIGRATE-FAILED ") for line in lines):
            _say("airflow db migrate failed")
        else:
            _say("the DAG runs failed")
        return 1
    states = json.loads(result_line[len("RESULT "):])
    failed = [r["dag_id"] for r in states if r["state"] != "success"]
    home = Home.open(home.path)
    if _holdings(home) == before:
        _say("nothing new to ingest: every delivery is already committed (or quarantined), "
             "and the log has not grown")

    return _summarize(home, airflow_home, registry, failed, started)


def _preregister(home: Any) -> None:
    """Register the trial's protocol and SAP and anchor them, before its data arrives.
    Registering the same bytes again is a no-op, so a second run changes nothing."""
    from pipeline.anchor import anchor
    from pipeline.preregistration import register_document

    trial = DEMO_DATASET[0]
    size = home.log().size()
    for kind, label, path in DEMO_DOCUMENTS:
        document = register_document(home, trial, kind, label, path)
        _say(f"registered the {kind} of {trial}: log entry {document.log_index}, "
             f"sha256 {document.sha256[:16]}…")
    if home.log().size() > size:
        result = anchor(home)
        if result is not None:
            _say(f"anchored the plans at log size {result.size}, before any data")


def _preregistration_summary(home: Any) -> None:
    from pipeline.anchor import anchored
    from pipeline.preregistration import document_entries, proven_time

    trial = DEMO_DATASET[0]
    store = home.store()
    first_data = min((v.log_index for t, d in store.datasets() if t == trial
                      for v in store.versions(t, d)), default=None)
    first_data_anchor = next((s for s in anchored(home)
                              if first_data is not None and s > first_data), None)
    _say(f"\npre-registered (anchored before the data of {trial}):")
    for document in document_entries(home, trial):
        proven = proven_time(home, document.log_index)
        # An anchoring at size s covers log entries below s: one at a size no larger than
        # the first data version's index happened before that version was logged.
        first = proven is not None and (first_data is None
                                        or proven.anchored_size <= first_data)
        _say(f"  {document.entry['kind']} {document.entry['label']!r}: log entry "
             f"{document.log_index}, "
             + (f"first anchored {proven} at size {proven.anchored_size}" if proven
                else "not anchored yet")
             + (" -- before the first data version" if first else ""))
    if first_data is not None:
        _say(f"  first data version of {trial}: log entry {first_data}, anchored at size "
             f"{first_data_anchor if first_data_anchor is not None else '(not yet)'}")


def _holdings(home: Any) -> tuple[int, dict[tuple[str, str], int], int]:
    """(log size, versions per dataset, quarantined deliveries): what a run can add."""

    store = home.store()
    quarantine = home.path / "quarantine"
    rejected = len(list(quarantine.iterdir())) if quarantine.is_dir() else 0
    versions = {(t, d): len(store.versions(t, d)) for t, d in store.datasets()}
    return store.log.size(), versions, rejected


def run_bounded(command: list[str], env: dict[str, str], timeout: float
                ) -> tuple[int | None, list[str], str]:
    """Run ``command`` in its own process group, echoing its progress lines; stop the whole
    group (SIGTERM, then SIGKILL) on timeout, Ctrl-C or SIGTERM to the demo.
    Returns (exit status or None when stopped, stdout lines, the end of stderr)."""
    lines: list[str] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
        child = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                                 stderr=stderr, text=True, start_new_session=True)
        stopped = threading.Event()

        def stop() -> None:
            stopped.set()
            _stop_group(child)

        timer = threading.Timer(timeout, stop)
        timer.daemon = True
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        timer.start()
        try:
            assert child.stdout is not None
            for raw in child.stdout:
                line = raw.rstrip("\n")
                lines.append(line)
                if line.startswith(("  ", "IMPORT-ERRORS")):
                    _say(line)
            child.wait()
        finally:
            timer.cancel()
            signal.signal(signal.SIGTERM, previous)
            if child.poll() is None:
                _stop_group(child)
        stderr.seek(0)
        errors = stderr.read()[-3000:]
    return (None if stopped.is_set() else child.returncode), lines, errors


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _stop_group(child: subprocess.Popen[str]) -> None:
    """SIGTERM the child's process group, and SIGKILL it if it has not gone in time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(KILL_GRACE)
            return
        except subprocess.TimeoutExpired:
            continue


def _summarize(home: object, airflow_home: Path, registry: Path, failed: list[str],
               started: float) -> int:
    from anchoring.verify import verify_record_proof
    from pipeline.anchor import anchored
    from pipeline.fsutil import write_text_durably
    from pipeline.home import Home
    from pipeline.prove import prove_record

    assert isinstance(home, Home)
    store = home.store()
    _say("\ningested (trial/dataset: versions, records, root):")
    for trial, dataset in store.datasets():
        versions = store.versions(trial, dataset)
        latest = versions[-1]
        _say(f"  {trial}/{dataset}: v{latest.version} of {len(versions)}, "
             f"{latest.manifest['records']} records, root {latest.manifest['root'][:16]}…, "
             f"report {latest.path / 'report.html'}")
    quarantine = home.path / "quarantine"
    rejected = sorted(quarantine.iterdir()) if quarantine.is_dir() else []
    if rejected:
        _say(f"  quarantined deliveries: {len(rejected)} in {quarantine}")

    _preregistration_summary(home)

    trial, dataset, key = DEMO_DATASET
    proof = prove_record(home, trial, dataset, key={k: str(v) for k, v in key.items()})
    out = home.path / "demo" / "proof.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_durably(out, proof.to_json())
    verify_record_proof(proof, [home.verifier])
    anchors = anchored(home)
    _say(f"\ncheckpoint (signed, C2SP tlog-checkpoint):\n{proof.checkpoint.rstrip()}")
    _say(f"\nanchored sizes (local ledger): {anchors or 'none yet'}")
    _say(f"record proof: {out} ({trial}/{dataset} "
         f"{', '.join(f'{k}={v}' for k, v in key.items())}) -- verified")
    _say(f"verify it yourself:  .venv/bin/trialproof verify {out} --vkey '{home.verifier.vkey}'")
    _say(f"audit everything:    .venv/bin/trialproof audit --home {home.path}")
    _say(f"Airflow UI:          make airflow  (then http://localhost:8080, user admin; "
         f"password in {airflow_home}/simple_auth_manager_passwords.json.generated)")
    _say(f"registry:            {registry}")
    _say(f"done in {time.perf_counter() - started:.0f} s")
    if failed:
        _say(f"FAILED DAG runs: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
