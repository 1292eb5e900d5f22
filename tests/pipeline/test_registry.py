"""The sponsor registry (pipeline.registry): checking entries, the CLI, and what the ingest
tasks call (new deliveries, stage/validate/commit, fsspec URLs, failure notifications)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import yaml
from trialproof_cli import trialproof

from pipeline.errors import ValidationFailed
from pipeline.home import Home
from pipeline.registry import (
    NOTIFICATIONS_FILE,
    RegistryFileError,
    commit_delivery,
    failure_notifier,
    load_registry,
    new_deliveries,
    read_registry,
    resolve_registry,
    stage_delivery,
    validate_delivery,
)
from pipeline.store import Store

ORIGIN = "trials.example.org/log"
REPO = Path(__file__).resolve().parents[2]

CONTRACT = {
    "name": "lb",
    "fields": [
        {"name": "USUBJID", "type": "string", "constraints": {"required": True}},
        {"name": "LBSEQ", "type": "integer", "constraints": {"required": True}},
        {"name": "LBSTRESN", "type": "number", "constraints": {"minimum": 0}},
    ],
    "primaryKey": ["USUBJID", "LBSEQ"],
}


def lb_csv(path: Path, rows: int = 20, bad: bool = False) -> Path:
    values = [float(i) for i in range(rows)]
    if bad:
        values[3] = -1.0  # breaks minimum: 0
    pacsv.write_csv(pa.table({"USUBJID": [f"S{i // 4}" for i in range(rows)],
                              "LBSEQ": [i % 4 + 1 for i in range(rows)],
                              "LBSTRESN": values}), path)
    return path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder with contracts/lb.json and deliveries/lb/."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "lb.json").write_text(json.dumps(CONTRACT))
    (tmp_path / "deliveries" / "lb").mkdir(parents=True)
    return tmp_path


def write(site: Path, datasets: list[Any], **top: Any) -> Path:
    path = site / "registry.yaml"
    path.write_text(yaml.safe_dump({"contracts": ["contracts"], **top, "datasets": datasets}))
    return path


def good(**fields: Any) -> dict[str, Any]:
    return {"trial": "T1", "dataset": "lb", "contract": "lb", "deliveries": "deliveries/lb/*.csv",
            "schedule": "@daily", "owners": ["owner@example.org"], **fields}


# -- checking --------------------------------------------------------------------------


def test_a_valid_entry_resolves_paths_and_defaults(site: Path) -> None:
    path = write(site, [good(notify="qa@example.org")], defaults={"retries": 1})
    entries, problems = load_registry(path)
    assert problems == []
    (entry,) = entries
    assert entry.dag_id == "ingest__T1__lb"
    assert entry.contract_path == site / "contracts" / "lb.json"
    assert entry.deliveries == str(site / "deliveries" / "lb" / "*.csv")
    assert entry.notify == ("qa@example.org",) and entry.owners == ("owner@example.org",)
    assert entry.retries == 1 and entry.airflow_schedule == "@daily"


def test_defaults_fill_entries_and_notify_defaults_to_owners(site: Path) -> None:
    entry = {k: v for k, v in good().items() if k not in ("schedule", "owners")}
    path = write(site, [entry], defaults={"schedule": "0 6 * * 1-5", "owners": "dm@example.org"})
    (loaded,), problems = load_registry(path)
    assert problems == []
    assert loaded.schedule == "0 6 * * 1-5" and loaded.notify == ("dm@example.org",)


@pytest.mark.parametrize(("schedule", "airflow"), [
    ("@hourly", "@hourly"), ("*/5 * * * *", "*/5 * * * *"), ("on-arrival", "@continuous"),
    ("manual", None)])
def test_schedules(site: Path, schedule: str, airflow: str | None) -> None:
    (entry,), problems = load_registry(write(site, [good(schedule=schedule)]))
    assert problems == [] and entry.airflow_schedule == airflow


def test_a_directory_delivery_location_means_every_file_in_it(site: Path) -> None:
    (entry,), _ = load_registry(write(site, [good(deliveries="deliveries/lb/")]))
    assert entry.deliveries == str(site / "deliveries" / "lb" / "*")


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"contract": "nope"}, "contract", "not found"),
    ({"contract": None}, "contract", "is required"),
    ({"schedule": "61 * * * *"}, "schedule", "not a valid 5-field cron"),
    ({"schedule": "* * * * * *"}, "schedule", "not a valid 5-field cron"),
    ({"schedule": "@reboot"}, "schedule", "unknown preset"),
    ({"schedule": 5}, "schedule", "cron expression"),
    ({"deliveries": "missing/*.csv"}, "deliveries", "does not exist"),
    ({"deliveries": "missing-folder"}, "deliveries", "does not exist"),
    ({"deliveries": "nosuchproto://bucket/x/*.csv"}, "deliveries", "unknown storage protocol"),
    ({"dataset": "bad name"}, "dataset", "letters, digits"),
    ({"trial": "../etc"}, "trial", "letters, digits"),
    ({"trial": None}, "trial", "is required"),
    ({"owners": []}, "owners", "non-empty list"),
    ({"owners": None}, "owners", "is required"),
    ({"retries": -1}, "retries", "whole number"),
    ({"shedule": "@daily"}, "shedule", "unknown field"),
])
def test_bad_entries_are_reported_with_their_location(site: Path, fields: dict[str, Any],
                                                      field: str, words: str) -> None:
    entry = {k: v for k, v in {**good(), **fields}.items() if v is not None}
    entries, problems = load_registry(write(site, [good(dataset="ok"), entry]))
    assert [e.dataset for e in entries] == ["ok"]  # the good entry still loads
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.index == 1 and problem.field == field
    assert words in problem.message, problem.message
    assert str(problem).startswith("datasets[1]")
    assert f"field '{field}'" in str(problem)


def test_duplicates_are_reported_and_the_first_is_kept(site: Path) -> None:
    entries, problems = load_registry(write(site, [good(), good(schedule="@hourly")]))
    assert [e.schedule for e in entries] == ["@daily"]
    (problem,) = problems
    assert problem.index == 1 and "duplicate of datasets[0]" in problem.message
    assert "datasets[1] (T1/lb)" in str(problem)


def test_an_entry_that_is_not_a_mapping(site: Path) -> None:
    _, problems = load_registry(write(site, ["just text", good()]))
    assert [p.index for p in problems] == [0]


def test_top_level_problems(site: Path) -> None:
    path = write(site, [good()], anchor={"schedule": "bad"}, audit="daily", extra=1)
    entries, problems = load_registry(path)
    assert len(entries) == 1
    assert {p.field for p in problems} == {"anchor.schedule", "audit", "extra"}


def test_anchor_and_audit_schedules_from_registry_and_env(site: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(site, [], anchor={"schedule": "*/10 * * * *", "on_log_update": True},
                 audit={"notify": ["a@example.org"]})
    registry = read_registry(path)
    assert registry.anchor.schedule == "*/10 * * * *" and registry.anchor.on_log_update
    assert registry.audit.schedule == "@daily" and registry.audit.notify == ("a@example.org",)
    monkeypatch.setenv("TRIALPROOF_ANCHOR_SCHEDULE", "@daily")
    assert read_registry(path).anchor.schedule == "@daily"


@pytest.mark.parametrize(("text", "words"), [
    ("datasets: [\n", "not valid YAML at line"),
    ("- a\n- b\n", "must be a YAML mapping"),
])
def test_a_file_that_is_not_a_registry_raises(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(RegistryFileError, match=words):
        load_registry(path)
    with pytest.raises(RegistryFileError, match="not found"):
        load_registry(tmp_path / "missing.yaml")


def test_registry_path_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRIALPROOF_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_registry(None) == tmp_path / "registry" / "sponsors.yaml"
    monkeypatch.setenv("TRIALPROOF_REGISTRY", str(tmp_path / "x.yaml"))
    assert resolve_registry(None) == tmp_path / "x.yaml"
    assert resolve_registry(tmp_path / "y.yaml") == tmp_path / "y.yaml"


def test_the_example_registry_is_valid() -> None:
    entries, problems = load_registry(REPO / "registry" / "sponsors.yaml")
    assert problems == []
    assert {e.dataset for e in entries} >= {"dm", "ae", "ex"}


# -- CLI -------------------------------------------------------------------------------


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return trialproof("registry", "check", *args, cwd=cwd, env={"TRIALPROOF_REGISTRY": None})


def test_cli_registry_check(site: Path) -> None:
    path = write(site, [good()])
    done = cli("--registry", str(path), cwd=site)
    assert done.returncode == 0, done.stderr
    assert "ingest__T1__lb" in done.stdout

    write(site, [good(), good(dataset="x", schedule="every day"), good(dataset="y",
                                                                      contract="nope")])
    done = cli("--registry", str(path), "--json", cwd=site)
    assert done.returncode == 2
    report = json.loads(done.stdout)
    assert [(p["index"], p["field"]) for p in report["problems"]] == [(1, "schedule"),
                                                                      (2, "contract")]
    assert done.stderr.count("\n") == 1 and "2 problem(s)" in done.stderr

    text = cli("--registry", str(path), cwd=site)
    assert text.returncode == 2
    assert "datasets[1] (T1/x) field 'schedule'" in text.stdout
    assert "datasets[2] (T1/y) field 'contract'" in text.stdout

    (site / "registry.yaml").write_text("datasets: [\n")
    assert cli("--registry", str(path), cwd=site).returncode == 2
    # the default is ./registry/sponsors.yaml
    assert "registry/sponsors.yaml not found" in cli(cwd=site).stderr


# -- what the ingest tasks call ---------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.init(tmp_path / "home", ORIGIN)


def test_new_deliveries_skip_committed_quarantined_duplicate_and_partial(
        site: Path, home: Home) -> None:
    (entry,), _ = load_registry(write(site, [good(deliveries="deliveries/lb")]))
    folder = site / "deliveries" / "lb"
    lb_csv(folder / "a.csv")
    lb_csv(folder / "bad.csv", bad=True)
    (folder / "a-copy.csv").write_bytes((folder / "a.csv").read_bytes())
    (folder / ".hidden.csv").write_text("x")
    (folder / "upload.csv.part").write_text("x")
    found = new_deliveries(home, entry)
    # sorted; a.csv has the same bytes as a-copy.csv; hidden and partial files are ignored
    assert [d["name"] for d in found] == ["a-copy.csv", "bad.csv"]
    assert new_deliveries(home, entry, limit=1) == found[:1]  # the rest wait for the next run
    by_name = {d["name"]: d for d in found}

    committed = []
    for delivery in found:
        staged = stage_delivery(home, delivery)
        assert staged["sha256"] == delivery["sha256"]
        try:
            validated = validate_delivery(home, entry, staged)
        except ValidationFailed as exc:
            assert delivery["name"] == "bad.csv"
            assert Path(exc.report_path).is_file()
            assert (Path(exc.quarantine_path) / "bad.csv").is_file()
            continue
        committed.append(commit_delivery(home, entry, validated))
    (summary,) = committed
    assert summary["status"] == "committed" and summary["version"] == 1
    assert summary["source"]["sha256"] == by_name["a-copy.csv"]["sha256"]
    json.dumps(summary)  # fits in XCom

    assert new_deliveries(home, entry) == []  # committed and quarantined files are not new
    lb_csv(folder / "b.csv", rows=24)
    assert [d["name"] for d in new_deliveries(home, entry)] == ["b.csv"]

    # a retried commit of the same delivery makes no new version
    staged = stage_delivery(home, by_name["a-copy.csv"])
    again = commit_delivery(home, entry, validate_delivery(home, entry, staged))
    assert again["status"] == "unchanged" and again["version"] == 1
    assert len(Store(home.path, home.log()).versions("T1", "lb")) == 1


def test_an_unreadable_delivery_is_quarantined_with_a_report(site: Path, home: Home) -> None:
    (entry,), _ = load_registry(write(site, [good()]))
    path = site / "deliveries" / "lb" / "junk.csv"
    path.write_bytes(b"USUBJID,NOPE\n\x00\x01,2\n")
    (delivery,) = new_deliveries(home, entry)
    staged = stage_delivery(home, delivery)
    with pytest.raises(ValidationFailed, match="quarantined") as caught:
        validate_delivery(home, entry, staged)
    assert Path(caught.value.report_path).name == "report.html"
    report = json.loads((Path(caught.value.quarantine_path) / "report.json").read_text())
    assert report["success"] is False and report["sha256"] == delivery["sha256"]
    assert new_deliveries(home, entry) == []


def test_fsspec_urls_are_listed_hashed_and_downloaded(site: Path, home: Home) -> None:
    import fsspec

    local = lb_csv(site / "remote.csv")
    fs = fsspec.filesystem("memory")
    fs.pipe("/tp-test/lb/remote.csv", local.read_bytes())
    fs.pipe("/tp-test/lb/skip.tmp", b"partial")
    registry = write(site, [good(deliveries="memory://tp-test/lb/")])
    _, (refused,) = load_registry(registry, home.path)  # no protocol is allowed by default
    assert refused.field == "deliveries" and "'memory' is not allowed" in refused.message
    allow(home, protocols=["memory"])
    (entry,), problems = load_registry(registry, home.path)
    assert problems == [] and entry.remote
    try:
        (delivery,) = new_deliveries(home, entry)
        assert delivery["path"].startswith("memory://")
        assert delivery["path"].endswith("/tp-test/lb/remote.csv")
        staged = stage_delivery(home, delivery)
        assert Path(staged["path"]).read_bytes() == local.read_bytes()
        assert not any((home.path / "incoming").iterdir())  # the download is removed
        result = commit_delivery(home, entry, validate_delivery(home, entry, staged))
        assert result["status"] == "committed"
        assert new_deliveries(home, entry) == []
    finally:
        fs.rm("/tp-test", recursive=True)


def allow(home: Home, **deliveries: Any) -> None:
    """Set the deployment's delivery allow-list in the home's config.json."""
    config = json.loads((home.path / "config.json").read_text())
    config["deliveries"] = deliveries
    (home.path / "config.json").write_text(json.dumps(config))


class _TI:
    dag_id = "ingest__T1__lb"
    task_id = "deliver.validate"
    map_index = 0
    run_id = "manual__x"
    try_number = 1


def test_failure_notifier_logs_and_appends_json_lines(site: Path, home: Home,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TRIALPROOF_HOME", str(home.path))
    (entry,), _ = load_registry(write(site, [good(notify=["qa@example.org"])]))
    failure = ValidationFailed("bad.csv failed 1 check(s)", "/q/dir", "/q/dir/report.html")
    try:
        try:
            raise failure
        except ValidationFailed as exc:
            raise RuntimeError(str(exc)) from exc  # as the task wraps it
    except RuntimeError as wrapped:
        context: dict[str, Any] = {"ti": _TI(), "exception": wrapped}
    failure_notifier(entry)(context)
    failure_notifier(job="audit", notify=["audit@example.org"])(
        {"ti": _TI(), "exception": ValueError("audit found 1 problem(s)")})
    lines = [json.loads(x) for x in (home.path / NOTIFICATIONS_FILE).read_text().splitlines()]
    first, second = lines
    assert first["report"] == "/q/dir/report.html" and first["quarantine"] == "/q/dir"
    assert first["notify"] == ["qa@example.org"] and first["owners"] == ["owner@example.org"]
    assert first["dag_id"] == "ingest__T1__lb" and first["trial"] == "T1"
    assert second["job"] == "audit" and second["notify"] == ["audit@example.org"]
    # The log names the report as a URL on Airflow's API server, not a worker's path.
    assert first["report_url"] == "http://localhost:8080/trialproof/quarantine/dir/report.html"
    assert f"open the report: {first['report_url']}" in caplog.text
    assert "qa@example.org" in caplog.text
    failure_notifier(entry)({})  # never raises, even on an empty context


# -- where deliveries may come from ------------------------------------------------------


@pytest.mark.parametrize(("location", "words"), [
    ("/etc/*", "system folder /etc"),
    ("/etc", "system folder /etc"),
    ("/proc/self/*", "system folder /proc"),
    ("../{site}/home/keys/*", "inside the trialproof home"),
    ("home/raw", "inside the trialproof home"),
    ("linked/*", "inside the trialproof home"),
    (".", "would reach into the trialproof home"),
    ("http://169.254.169.254/latest/meta-data/*", "'http' is not allowed"),
    ("ftp://example.org/drop/*.csv", "'ftp' is not allowed"),
    ("github://org:repo@main/data/*", "'github' is not allowed"),
    ("memory://x/*", "'memory' is not allowed"),
    ("file:///etc/*", "system folder /etc"),
])
def test_delivery_locations_outside_the_allow_list_are_errors(
        site: Path, location: str, words: str) -> None:
    home = Home.init(site / "home", ORIGIN)
    (site / "linked").symlink_to(home.path / "keys")
    registry = write(site, [good(dataset="ok"), good(deliveries=location.format(site=site.name))])
    entries, (problem,) = load_registry(registry, home.path)
    assert [e.dataset for e in entries] == ["ok"]
    assert str(problem).startswith("datasets[1] (T1/lb) field 'deliveries': ")
    assert words in problem.message, problem.message
    done = cli("--registry", str(registry), "--home", str(home.path), cwd=site)
    assert done.returncode == 2 and "datasets[1] (T1/lb) field 'deliveries'" in done.stdout


def test_the_deployment_allow_list(site: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = Home.init(site / "home", ORIGIN)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    hidden = site / ".secrets"
    hidden.mkdir()
    registry = write(site, [good(), good(dataset="b", deliveries=str(elsewhere)),
                            good(dataset="c", deliveries=".secrets/*")])
    # default: any local folder outside the home, but not a hidden one
    assert [p.index for p in load_registry(registry, home.path)[1]] == [2]
    allow(home, folders=[str(site / "deliveries")], protocols=["s3"])
    entries, problems = load_registry(registry, home.path)
    assert [e.dataset for e in entries] == ["lb"]
    assert [p.index for p in problems] == [1, 2]
    assert "not in a delivery folder this deployment allows" in problems[0].message
    allow(home, folders=["memory://drops/trialproof"], protocols=["memory"])
    assert "not under a delivery location" in load_registry(write(
        site, [good(deliveries="memory://other/x/*")]), home.path)[1][0].message
    assert load_registry(write(site, [good(deliveries="memory://drops/trialproof/lb/*")]),
                         home.path)[1] == []
    allow(home, folders=["/etc", "/usr"])
    (usr,), (etc,) = load_registry(write(site, [good(deliveries="/etc/*"),
                                                good(dataset="b", deliveries="/usr/share/*")]),
                                   home.path)
    assert "system folder /etc" in etc.message  # never, even when listed
    assert usr.dataset == "b"  # listed by the deployment: allowed
    (site / "home" / "config.json").write_text('{"deliveries": {"protocols": "s3"}}')
    with pytest.raises(RegistryFileError, match=r"deliveries\.protocols must be a list"):
        load_registry(registry, home.path)


def test_the_ingest_tasks_refuse_too(site: Path, home: Home) -> None:
    """Defence in depth: an entry that was checked under another configuration, or files
    placed in an allowed folder, are checked again when the tasks run."""
    from pipeline.registry import RegistryEntry, list_deliveries

    (entry,), _ = load_registry(write(site, [good(deliveries="deliveries/lb")]), home.path)
    folder = site / "deliveries" / "lb"
    lb_csv(folder / "a.csv")
    (folder / "key.csv").symlink_to(home.path / "keys" / "log.skey")
    (folder / "sub").symlink_to(home.path / "keys")
    assert [d["name"] for d in new_deliveries(home, entry)] == ["a.csv"]
    with pytest.raises(Exception, match="symbolic link"):
        stage_delivery(home, {"path": str(folder / "key.csv"), "name": "key.csv"})
    keys = RegistryEntry(**{**entry.__dict__, "deliveries": f"{home.path}/keys/*"})
    with pytest.raises(RegistryFileError, match="inside the trialproof home"):
        list_deliveries(keys, home)
    remote = RegistryEntry(**{**entry.__dict__, "deliveries": "http://169.254.169.254/x/*"})
    with pytest.raises(RegistryFileError, match="'http' is not allowed"):
        new_deliveries(home, remote)
    with pytest.raises(RegistryFileError, match="'http' is not allowed"):
        stage_delivery(home, {"path": "http://169.254.169.254/latest/x", "name": "x"})


# -- YAML that is refused --------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
datasets: *i
"""


@pytest.mark.parametrize(("text", "words"), [
    (BILLION_LAUGHS, "anchors and aliases"),
    ("defaults: &d {schedule: '@daily'}\ndatasets: []\n", "anchors and aliases"),
    ("datasets: []\ndatasets: []\n", "at line 2, column 1: duplicate key 'datasets'"),
    ("datasets:\n  - {trial: A, trial: B}\n", "duplicate key 'trial'"),
    ("datasets: " + "[" * 40 + "]" * 40 + "\n", "nested more than 16 levels"),
    ("datasets: []\n" + "#" * (1 << 20), "larger than 1048576 bytes"),
])
def test_yaml_bombs_duplicates_depth_and_size_are_refused(tmp_path: Path, text: str,
                                                         words: str) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    with pytest.raises(RegistryFileError, match=words):
        read_registry(path)
    done = cli("--registry", str(path), cwd=tmp_path)
    assert done.returncode == 2 and words.rsplit(":", maxsplit=1)[-1].strip() in done.stderr
