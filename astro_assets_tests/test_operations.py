"""Operating Astro on a real Dagster instance (temporary DAGSTER_HOME): the reports sensor, the freshness
deadlines, the run-failure alert, the late-data automation, the catalog (code versions, column schemas)
and the `dg` CLI."""

import dataclasses
import datetime as dt
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from dagster._core.test_utils import freeze_time  # the instance's clock (Dagster's own test helper)

from astro_assets.core.features import RAW_SCHEMA, raw_schema
from astro_assets.core.lagging import PREPROCESSED_SCHEMA
from astro_assets.core.scoring import PREDICTION_SCHEMA
from astro_assets.defs import build_definitions
from astro_assets.defs.automation import AUTOMATION_SENSOR, LATE_DAYS
from astro_assets.defs.catalog import COLUMN_SCHEMA, model_versions_of_day, stage_code_versions
from astro_assets.defs.freshness import FRESHNESS_CHECK, FRESHNESS_SENSOR, deadline_cron, freshness_checks
from astro_assets.defs.jobs import SPARK_TAG
from astro_assets.defs.resources import GoogleAdsReportFolder, build_resources
from astro_assets.defs.sensors import (
    ALERT_TAG,
    REPORT_FILE_TAG,
    REPORTS_SENSOR,
    RUN_FAILURE_SENSOR,
    alert_channels,
    run_failure_alert_sensor,
)
from astro_assets.settings import load_settings
from astro_assets.sources import synthetic
from astro_assets.sources.report_index import ReportIndex
from astro_assets.storage import DataLayout, publish_partition
from astro_assets.storage.layout import part_file_name
from astro_assets.storage.raw import write_raw_partition

ROOT = Path(__file__).resolve().parents[1]
API_REPORT = Path(__file__).parent / "data" / "google_ads_api_keyword_view.csv"
START = "2026-01-01"


def astro_defs(tmp_path: Path, **changes) -> dg.Definitions:
    fields = {"data_dir": str(tmp_path / "data"), "start_date": START, "reports_dir": None, **changes}
    settings = dataclasses.replace(load_settings(), **fields)
    return build_definitions(settings)


def api_report(*days: str) -> str:
    """The API-named keyword report of the test data, its two days renamed to ``days``."""
    text = API_REPORT.read_text(encoding="utf-8")
    return text.replace("2026-11-22,", f"{days[0]},").replace("2026-11-23,", f"{days[1]},")


# -- the reports sensor -----------------------------------------------------------------------------


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, defs: dg.Definitions, cursor: str | None):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    ) as context:
        return sensor.evaluate_tick(context)


def test_a_new_report_launches_its_days_once_and_a_refused_one_is_a_skipped_tick(tmp_path, dagster_instance):
    folder = tmp_path / "reports"
    folder.mkdir()
    defs = astro_defs(tmp_path, reports_dir=str(folder))
    sensor = defs.resolve_sensor_def(REPORTS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED

    first = tick(sensor, dagster_instance, defs, None)
    assert not first.run_requests and "no new or changed report" in first.skip_message

    (folder / "week47.csv").write_text(api_report("2026-11-20", "2026-11-21"), encoding="utf-8")
    launched = tick(sensor, dagster_instance, defs, first.cursor)
    assert [r.partition_key for r in launched.run_requests] == ["2026-11-20", "2026-11-21"]
    assert all(r.asset_selection == [dg.AssetKey("raw_features")] for r in launched.run_requests)
    assert all(r.tags[REPORT_FILE_TAG] == "week47.csv" for r in launched.run_requests)
    keys = [r.run_key for r in launched.run_requests]
    assert len(set(keys)) == 2

    # Nothing new: skipped. The same bytes under a fresh cursor give the same run keys, which Dagster
    # refuses to launch twice for this sensor.
    again = tick(sensor, dagster_instance, defs, launched.cursor)
    assert not again.run_requests and again.skip_message
    assert [r.run_key for r in tick(sensor, dagster_instance, defs, None).run_requests] == keys

    # The launched runs materialise exactly those days, from the folder, through the instance.
    job = defs.resolve_implicit_global_asset_job_def()
    for request in launched.run_requests:
        result = job.execute_in_process(
            instance=dagster_instance,
            partition_key=request.partition_key,
            asset_selection=request.asset_selection,
            tags=request.tags,
        )
        assert result.success
    assert DataLayout(tmp_path / "data").existing_days("raw_features") == [dt.date(2026, 11, 20), dt.date(2026, 11, 21)]

    # Late conversions: the same file re-downloaded with a changed figure launches its days again.
    changed = (folder / "week47.csv").read_text(encoding="utf-8").replace(",1234,56,", ",1234,57,", 1)
    (folder / "week47.csv").write_text(changed, encoding="utf-8")
    relaunched = tick(sensor, dagster_instance, defs, again.cursor)
    assert [r.partition_key for r in relaunched.run_requests] == ["2026-11-20", "2026-11-21"]
    assert not {r.run_key for r in relaunched.run_requests} & set(keys)

    # A refused file (clicks above impressions) and an unreadable one: a skipped tick with the ingest's message.
    bad = api_report("2026-11-18", "2026-11-19").replace(",1234,56,", ",12,56,", 1)
    (folder / "broken.csv").write_text(bad, encoding="utf-8")
    (folder / "binary.parquet").write_bytes(b"\x00\x01 not parquet")
    refused = tick(sensor, dagster_instance, defs, relaunched.cursor)
    assert not refused.run_requests
    assert (
        f"{folder / 'broken.csv'}: columns 'metrics.clicks' > 'metrics.impressions' in 1 rows" in refused.skip_message
    )
    assert str(folder / "binary.parquet") in refused.skip_message
    # Refused once: not re-read every tick, only when its bytes change.
    assert "no new or changed report" in tick(sensor, dagster_instance, defs, refused.cursor).skip_message


def test_the_sensor_skips_without_a_reports_folder(tmp_path, dagster_instance):
    defs = astro_defs(tmp_path)
    result = tick(defs.resolve_sensor_def(REPORTS_SENSOR), dagster_instance, defs, None)
    assert not result.run_requests and "ASTRO_REPORTS_DIR is not set" in result.skip_message


def test_the_folder_source_reads_only_the_files_of_the_day(tmp_path, dagster_instance):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.csv").write_text(api_report("2026-11-18", "2026-11-19"), encoding="utf-8")
    (folder / "b.csv").write_text(api_report("2026-11-20", "2026-11-21"), encoding="utf-8")
    index = ReportIndex()
    files, refused = index.files_for_day(folder, dt.date(2026, 11, 20), dt.date.max, dt.date.min)
    assert (files, refused) == ([str(folder / "b.csv")], [])
    assert {e.path.name: e.days for e in index.folder(folder, dt.date.max, dt.date.min)} == {
        "a.csv": (dt.date(2026, 11, 18), dt.date(2026, 11, 19)),
        "b.csv": (dt.date(2026, 11, 20), dt.date(2026, 11, 21)),
    }
    # The day's table is the day's rows of its file alone.
    table = GoogleAdsReportFolder(folder=str(folder)).keyword_report(dt.date(2026, 11, 20))
    # RAW_SCHEMA plus the keyword status the API report carries (ad_group_criterion.status)
    assert table.num_rows == 4 and table.schema.equals(raw_schema(["keyword_status"]))


# -- freshness ------------------------------------------------------------------------------------


def freshness_results(defs: dg.Definitions, instance: dg.DagsterInstance, now: dt.datetime) -> dict:
    checks = dg.AssetSelection.checks(
        *(dg.AssetCheckKey(dg.AssetKey(a), FRESHNESS_CHECK) for a in ("raw_features", "bid_file"))
    )
    job_defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job("freshness", selection=checks)]))
    with freeze_time(now):
        result = job_defs.resolve_job_def("freshness").execute_in_process(instance=instance)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def materialized(instance: dg.DagsterInstance, asset: str, day: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=day))


def test_bid_file_fails_its_freshness_check_once_the_deadline_passes(tmp_path, dagster_instance):
    defs = astro_defs(tmp_path, daily_run_hour=6, account_timezone="UTC")
    for asset in ("raw_features", "bid_file"):
        materialized(dagster_instance, asset, "2026-11-24")
    # 08:59 on the 26th (UTC, the partitions' zone): the last deadline was the 25th at 09:00, which
    # expected the 24th: fresh.
    before = freshness_results(defs, dagster_instance, dt.datetime(2026, 11, 26, 8, 59, tzinfo=dt.UTC))
    assert before["bid_file"].passed
    # 09:01: the deadline of the 26th has passed and the 25th has no bid file: overdue.
    after = freshness_results(defs, dagster_instance, dt.datetime(2026, 11, 26, 9, 1, tzinfo=dt.UTC))
    assert not after["bid_file"].passed and after["bid_file"].severity == dg.AssetCheckSeverity.ERROR
    assert "We expected partition 2026-11-25" in after["bid_file"].description
    assert not after["raw_features"].passed and after["raw_features"].severity == dg.AssetCheckSeverity.WARN
    materialized(dagster_instance, "bid_file", "2026-11-25")
    late = freshness_results(defs, dagster_instance, dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC))
    assert late["bid_file"].passed

    # The freshness sensor (off by default) asks for the checks once a deadline has passed.
    sensor = defs.resolve_sensor_def(FRESHNESS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    with freeze_time(dt.datetime(2026, 11, 27, 9, 1, tzinfo=dt.UTC)):
        with dg.build_sensor_context(instance=dagster_instance, definitions=defs) as context:
            requests = sensor.evaluate_tick(context).run_requests
    requested = {k.asset_key.to_user_string() for r in requests for k in r.asset_check_keys or []}
    assert "bid_file" in requested


def test_the_deadline_is_in_the_accounts_time_zone(tmp_path, dagster_instance):
    partitions = dg.DailyPartitionsDefinition(start_date=START, timezone="America/Los_Angeles")
    specs = [dg.AssetSpec(name, partitions_def=partitions) for name in ("raw_features", "bid_file")]
    defs = dg.Definitions(assets=specs, asset_checks=freshness_checks(partitions))
    materialized(dagster_instance, "bid_file", "2026-11-24")
    assert deadline_cron(6, 3) == "0 9 * * *"  # the bid file 3 hours after the default 06:00 run
    # 16:59 UTC is 08:59 in Los Angeles: the 26th's deadline has not passed there yet.
    assert freshness_results(defs, dagster_instance, dt.datetime(2026, 11, 26, 16, 59, tzinfo=dt.UTC))[
        "bid_file"
    ].passed
    assert not freshness_results(defs, dagster_instance, dt.datetime(2026, 11, 26, 17, 1, tzinfo=dt.UTC))[
        "bid_file"
    ].passed


# -- the run-failure alert --------------------------------------------------------------------------


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_a_failed_run_records_an_alert_and_posts_to_slack(tmp_path, dagster_instance, monkeypatch):
    empty = tmp_path / "reports"
    empty.mkdir()
    job = astro_defs(tmp_path, reports_dir=str(empty)).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=dagster_instance,
        partition_key="2026-11-24",
        asset_selection=[dg.AssetKey("raw_features")],
        raise_on_error=False,
    )
    assert not result.success
    run = dagster_instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)

    server = http.server.HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Webhook.received.clear()
    monkeypatch.setenv("ASTRO_ALERT_SLACK_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hooks/astro")
    try:
        channels = alert_channels()
        assert channels.channels() == ["slack"]
        context = dg.build_run_status_sensor_context(
            sensor_name=RUN_FAILURE_SENSOR,
            dagster_event=failure,
            dagster_instance=dagster_instance,
            dagster_run=run,
            resources={"alerts": channels},
        ).for_run_failure()
        run_failure_alert_sensor(context)
    finally:
        server.shutdown()
    tags = dagster_instance.get_run_by_id(run.run_id).tags
    assert tags[ALERT_TAG] == "failed"
    assert tags[f"{ALERT_TAG}_channels"] == "slack: sent"
    (message,) = _Webhook.received
    assert f"Run {run.run_id}" in message["text"] and "for 2026-11-24 failed" in message["text"]
    assert "no report has rows for 2026-11-24" in message["text"]


class _SmtpRelay(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib to hand over one message: the commands it sends, and the
    message as received."""

    messages: list[bytes] = []

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 127.0.0.1 test relay")
        while line := self.rfile.readline():
            command = line.decode().strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.reply("250 127.0.0.1")
            elif command.startswith(("MAIL", "RCPT", "RSET", "NOOP")):
                self.reply("250 OK")
            elif command == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                body = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body += chunk
                type(self).messages.append(body)
                self.reply("250 queued")
            elif command == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


def test_the_email_channel_sends_the_alert_through_smtp(monkeypatch):
    relay = socketserver.TCPServer(("127.0.0.1", 0), _SmtpRelay)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    _SmtpRelay.messages.clear()
    monkeypatch.setenv("ASTRO_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ASTRO_ALERT_SMTP_PORT", str(relay.server_address[1]))
    monkeypatch.setenv("ASTRO_ALERT_EMAIL_FROM", "astro@example.com")
    monkeypatch.setenv("ASTRO_ALERT_EMAIL_TO", "ads-team@example.com")
    monkeypatch.delenv("ASTRO_ALERT_SLACK_WEBHOOK_URL", raising=False)
    try:
        with dg.build_resources({"alerts": alert_channels()}) as resources:  # EnvVar resolved as in a run
            channels = resources.alerts
            assert channels.channels() == ["email"]
            assert channels.send("Astro: daily_bid_job failed", "Run r1 failed: boom") == {"email": "sent"}
    finally:
        relay.shutdown()
        relay.server_close()
    (message,) = _SmtpRelay.messages
    assert b"Subject: Astro: daily_bid_job failed" in message and b"To: ads-team@example.com" in message
    assert b"Run r1 failed: boom" in message


def test_without_alert_variables_only_the_log_and_the_tag(tmp_path, monkeypatch):
    for variable in ("ASTRO_ALERT_SLACK_WEBHOOK_URL", "ASTRO_ALERT_SMTP_HOST", "ASTRO_ALERT_EMAIL_TO"):
        monkeypatch.delenv(variable, raising=False)
    assert alert_channels().channels() == []
    defs = astro_defs(tmp_path)
    assert defs.resolve_sensor_def(RUN_FAILURE_SENSOR).default_status == dg.DefaultSensorStatus.STOPPED


# -- declarative automation -----------------------------------------------------------------------

DAILY = ("raw_features", "preprocessed_features", "daily_predictions", "bid_file")


def test_a_reingested_raw_day_brings_its_dependents_up_to_date(tmp_path, dagster_instance):
    defs = astro_defs(tmp_path)
    assert defs.resolve_sensor_def(AUTOMATION_SENSOR).default_status == dg.DefaultSensorStatus.STOPPED
    assert defs.resolve_sensor_def(AUTOMATION_SENSOR).run_tags == SPARK_TAG  # queued one at a time
    assert astro_defs(tmp_path, automation=True).resolve_sensor_def(AUTOMATION_SENSOR).default_status == (
        dg.DefaultSensorStatus.RUNNING
    )
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    days = [(dt.date(2026, 10, 1) + dt.timedelta(days=i)).isoformat() for i in range(50)]  # to 2026-11-19
    dagster_instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="onnx_model"))
    for asset in DAILY:
        for day in days:
            materialized(dagster_instance, asset, day)
    selection = dg.AssetSelection.assets(*DAILY)
    settled = dg.evaluate_automation_conditions(defs, dagster_instance, selection, evaluation_time=now)
    assert settled.total_requested == 0  # everything up to date: nothing to do

    materialized(dagster_instance, "raw_features", "2026-11-10")  # a late re-ingest of one day
    result = dg.evaluate_automation_conditions(
        defs, dagster_instance, selection, evaluation_time=now, cursor=settled.cursor
    )
    affected = {(dt.date(2026, 11, 10) + dt.timedelta(days=i)).isoformat() for i in range(7)}  # D .. D+6
    for asset in ("preprocessed_features", "daily_predictions", "bid_file"):
        assert result.get_requested_partitions(dg.AssetKey(asset)) == affected, asset
    assert result.get_requested_partitions(dg.AssetKey("raw_features")) == set()

    # Requested once: the next evaluation (runs still to come) asks for nothing more.
    again = dg.evaluate_automation_conditions(
        defs, dagster_instance, selection, evaluation_time=now, cursor=result.cursor
    )
    assert again.total_requested == 0

    # A day older than the late-data window changes nothing downstream.
    old = (now.date() - dt.timedelta(days=LATE_DAYS + 8)).isoformat()
    materialized(dagster_instance, "raw_features", old)
    stale = dg.evaluate_automation_conditions(
        defs, dagster_instance, selection, evaluation_time=now, cursor=again.cursor
    )
    assert stale.total_requested == 0

    # A new model does not re-score history.
    dagster_instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="onnx_model"))
    model = dg.evaluate_automation_conditions(
        defs, dagster_instance, selection, evaluation_time=now, cursor=stale.cursor
    )
    assert model.total_requested == 0


# -- the catalog ------------------------------------------------------------------------------------


def test_code_version_follows_the_stage_code(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "astro_assets", copy / "astro_assets", ignore=shutil.ignore_patterns("__pycache__"))
    original = stage_code_versions(copy)
    assert original == stage_code_versions()  # the copy is the code Dagster loads
    defs = build_definitions(load_settings())
    graph = defs.resolve_asset_graph()
    for asset, version in original.items():
        assert graph.get(dg.AssetKey(asset)).code_version == version

    preprocess = copy / "astro_assets" / "stages" / "preprocess.py"
    source = preprocess.read_text(encoding="utf-8")
    # A comment, a new docstring and blank lines are not code.
    preprocess.write_text('"""Reworded."""\n# a comment\n\n' + source.split('"""', 2)[2], encoding="utf-8")
    assert stage_code_versions(copy) == original
    # A change of code is.
    preprocess.write_text(source + "\n\nEXTRA_NULL_TOLERANCE = 0.1\n", encoding="utf-8")
    changed = stage_code_versions(copy)
    assert changed["preprocessed_features"] != original["preprocessed_features"]
    assert {a for a in original if changed[a] != original[a]} == {"preprocessed_features"}
    # So is a change in the core code the stage runs.
    lagging = copy / "astro_assets" / "core" / "lagging.py"
    lagging.write_text(lagging.read_text(encoding="utf-8") + "\n\nSOMETHING = 1\n", encoding="utf-8")
    assert stage_code_versions(copy)["preprocessed_features"] not in (
        original["preprocessed_features"],
        changed["preprocessed_features"],
    )


def test_parquet_assets_carry_their_column_schema_and_the_catalog(tmp_path):
    graph = astro_defs(tmp_path).resolve_asset_graph()
    for asset, schema in (
        ("raw_features", RAW_SCHEMA),
        ("preprocessed_features", PREPROCESSED_SCHEMA),
        ("daily_predictions", PREDICTION_SCHEMA),
    ):
        node = graph.get(dg.AssetKey(asset))
        columns = node.metadata[COLUMN_SCHEMA].schema.columns
        assert [(c.name, c.type) for c in columns] == [(f.name, str(f.type)) for f in schema], asset
        assert node.owners and node.tags["astro/cadence"] == "daily"
    for key in graph.get_all_asset_keys():  # every asset, including ones added later, is in the catalog
        node = graph.get(key)
        assert node.owners and node.tags.get("astro/stage") and node.code_version, key.to_user_string()
    # The schema is what a partition really holds: a raw day written by the storage code.
    layout = DataLayout(tmp_path / "data")
    write_raw_partition(layout, dt.date(2026, 11, 20), synthetic.keyword_report(7, 300, dt.date(2026, 11, 20)))
    written = pq.read_schema(next(layout.partition_dir("raw_features", dt.date(2026, 11, 20)).glob("*.parquet")))
    columns = graph.get(dg.AssetKey("raw_features")).metadata[COLUMN_SCHEMA].schema.columns
    assert [c.name for c in columns] == written.names


# -- the dg CLI ----------------------------------------------------------------------------------------


def test_dg_checks_and_lists_the_definitions(tmp_path):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "VIRTUAL_ENV": str(Path(sys.executable).parents[1]),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dg_cli = str(Path(sys.executable).with_name("dg"))
    check = subprocess.run([dg_cli, "check", "defs"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "All definitions loaded successfully" in check.stdout + check.stderr
    listed = subprocess.run(
        [dg_cli, "list", "defs", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    for name in ("bid_file", REPORTS_SENSOR, RUN_FAILURE_SENSOR, FRESHNESS_SENSOR, AUTOMATION_SENSOR):
        assert name in out, name


def test_the_model_version_is_read_back_from_the_days_predictions(tmp_path):
    layout = DataLayout(tmp_path / "data")
    day = dt.date(2026, 11, 20)

    def predictions(*versions: str) -> pa.Table:
        n = len(versions)
        return pa.table(
            {
                "ad_group_id": pa.array(range(n), pa.int64()),
                "keyword_id": pa.array(range(n), pa.int64()),
                "predicted_value_per_click": pa.array([0.5] * n, pa.float32()),
                "model_version": pa.array(versions, pa.string()),
            },
            schema=PREDICTION_SCHEMA,
        )

    with publish_partition(layout.partition_dir("daily_predictions", day)) as staging:
        pq.write_table(predictions("20261116-abc", "20261116-abc"), staging / part_file_name(0))
        pq.write_table(predictions("20261116-abc"), staging / part_file_name(1))
    assert model_versions_of_day(layout, day) == ["20261116-abc"]
    with publish_partition(layout.partition_dir("daily_predictions", day)) as staging:  # a model changed mid-day
        pq.write_table(predictions("20261116-abc", "20261123-def"), staging / part_file_name(0))
    assert model_versions_of_day(layout, day) == ["20261116-abc", "20261123-def"]


def test_resources_read_their_environment_variables_through_envvar(tmp_path, monkeypatch):
    """A value from the environment is configured as dg.EnvVar (the launchpad and the resource view name the
    variable); a default, or a value set in code that differs from the environment, stays a plain value."""
    monkeypatch.setenv("ASTRO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASTRO_KEYWORDS", "5_000")
    monkeypatch.delenv("ASTRO_SEED", raising=False)
    resources = build_resources(load_settings())
    storage, source = resources["storage"], resources["keyword_source"]
    assert isinstance(storage.data_dir, dg.EnvVar) and storage.data_dir.env_var_name == "ASTRO_DATA_DIR"
    assert isinstance(source.keywords, type(dg.EnvVar.int("ASTRO_KEYWORDS")))  # an IntEnvVar
    assert source.keywords.name == "ASTRO_KEYWORDS" and source.seed == 7  # ASTRO_SEED unset: the default
    with dg.build_resources({"storage": storage, "keyword_source": source}) as resolved:
        assert (resolved.storage.data_dir, resolved.keyword_source.keywords) == (str(tmp_path / "data"), 5000)
        assert resolved.keyword_source.seed == 7
    elsewhere = build_resources(dataclasses.replace(load_settings(), data_dir=str(tmp_path / "other")))
    assert elsewhere["storage"].data_dir == str(tmp_path / "other")
    assert not isinstance(elsewhere["storage"].data_dir, dg.EnvVar)
