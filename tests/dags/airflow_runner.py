"""Run Airflow in a clean process, for the DAG tests (the caller sets the environment).

    python airflow_runner.py preflight         -> Airflow's in-process execution API loads
    python airflow_runner.py dagbag            -> the DAG ids and import errors of dags/
    python airflow_runner.py dagbags REG...    -> the same under each sponsor registry in turn
    python airflow_runner.py parse FILE...     -> import time and heavy modules of each DAG file
    python airflow_runner.py test DAG [DAG...] -> dag.test() each DAG in turn
    python airflow_runner.py serve             -> answer such commands read from stdin

``serve`` starts Airflow once for many scenarios: each line on stdin is a JSON request
``{"id": ..., "args": [...], "env": {...}}``; the command runs with exactly that
environment (except Airflow's own ``AIRFLOW*`` settings, which are the server's and are
read once), and its output ends with the ``RESULT`` line (or ``FAILED``) and ``END <id>``.

``RUNNER_RETRY_DELAY`` (seconds) replaces every task's retry delay, so that a test sees
the retries without waiting minutes for them.

The result is printed as one JSON line starting with ``RESULT `` (the task logs
go to the same output, before it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from typing import Any

MARK = "RESULT "
FAILED = "FAILED"
END = "END "
HEAVY = ("pandas", "pyarrow", "polars", "datafusion", "great_expectations", "web3", "numpy")


def preflight() -> dict[str, Any]:
    """dag.test() and every worker need Airflow's execution API; some FastAPI releases
    break it (seen: FastAPI >= 0.156.1 with Airflow 3.2.2). The check asks the very
    instance dag.test() uses in this process (built once, on the first request, in
    seconds), so a server's later scenarios do not build it again."""
    import airflow
    import fastapi
    import httpx
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    with httpx.Client(transport=in_process_api_server().transport,
                      base_url="http://in-process.invalid") as client:
        health = client.get("/health")
    if health.status_code != 200:
        raise RuntimeError(f"the in-process execution API answered {health.status_code} to "
                           f"/health: {health.text[:200]}")
    return {"airflow": airflow.__version__, "fastapi": fastapi.__version__}


def parse(files: list[str]) -> dict[str, Any]:
    """Import each DAG file as the DAG processor does (Airflow already imported)."""
    import importlib.util

    import airflow.sdk  # noqa: F401  the processor has Airflow loaded before it parses

    times = {}
    for n, file in enumerate(files):
        spec = importlib.util.spec_from_file_location(f"tp_dag_file_{n}", file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        started = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            error = None
        except Exception as exc:  # the registry-errors file raises by design
            error = f"{type(exc).__name__}: {exc}"
        times[file] = {"seconds": time.perf_counter() - started, "error": error,
                       "heavy": sorted(m for m in HEAVY if m in sys.modules)}
    return {"files": times}


def _bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    # Examples are off through AIRFLOW__CORE__LOAD_EXAMPLES (3.3 dropped include_examples).
    return DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])


def dagbag() -> dict[str, Any]:
    bag = _bag()
    return {"dag_ids": sorted(bag.dag_ids), "import_errors": dict(bag.import_errors)}


def dagbags(registries: list[str]) -> dict[str, Any]:
    """``dagbag`` once per registry, in this one process (Airflow starts once): the DAG
    files read ``$TRIALPROOF_REGISTRY`` each time they are parsed."""
    found = {}
    for registry in registries:
        os.environ["TRIALPROOF_REGISTRY"] = registry
        found[registry] = dagbag()
    return {"bags": found}


def test(dag_ids: list[str]) -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    bag = _bag()
    runs = []
    for dag_id in dag_ids:
        if dag_id not in bag.dags:
            raise SystemExit(f"no DAG {dag_id}; import errors: {bag.import_errors}")
        if os.environ.get("RUNNER_RETRY_DELAY"):
            for task in bag.dags[dag_id].tasks:
                task.retry_delay = timedelta(seconds=float(os.environ["RUNNER_RETRY_DELAY"]))
        started = time.monotonic()
        run = bag.dags[dag_id].test()
        seconds = time.monotonic() - started
        with create_session() as session:
            tis = session.scalars(select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)).all()
            tasks = sorted(({"task_id": ti.task_id, "map_index": ti.map_index,
                             "state": str(ti.state), "label": ti.rendered_map_index,
                             "try_number": ti.try_number} for ti in tis),
                           key=lambda t: (t["task_id"], t["map_index"]))
        runs.append({"dag_id": dag_id, "run_id": run.run_id, "state": str(run.state),
                     "seconds": round(seconds, 2), "tasks": tasks})
    return {"runs": runs}


def command(argv: list[str]) -> dict[str, Any]:
    if argv[:1] == ["preflight"]:
        return preflight()
    if argv[:1] == ["dagbag"]:
        return dagbag()
    if argv[:1] == ["dagbags"]:
        return dagbags(argv[1:])
    if argv[:1] == ["parse"]:
        return parse(argv[1:])
    if argv[:1] == ["test"] and len(argv) > 1:
        return test(argv[1:])
    raise SystemExit(__doc__)


def serve() -> None:
    """Run the requests read from stdin in turn, until it closes; a failed one does not
    end the server."""
    import traceback

    airflow_settings = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW")}
    while line := sys.stdin.readline():
        request = json.loads(line)
        os.environ.clear()
        os.environ.update({k: v for k, v in request["env"].items()
                           if not k.startswith("AIRFLOW")})
        os.environ.update(airflow_settings)
        try:
            result = command(request["args"])
        except (Exception, SystemExit):
            traceback.print_exc()
            sys.stderr.flush()
            print(FAILED, flush=True)
        else:
            sys.stderr.flush()
            print(MARK + json.dumps(result), flush=True)
        print(END + request["id"], flush=True)


def main(argv: list[str]) -> None:
    if argv == ["serve"]:
        serve()
        return
    result = command(argv)
    sys.stdout.flush()
    print(MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
