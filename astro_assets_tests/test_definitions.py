"""The code location as Dagster and a person see it: assets, checks, jobs, schedules, workspace."""

import datetime as dt
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from astro_assets.definitions import defs
from astro_assets.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_six_assets_and_the_backtest_with_their_checks():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        "raw_features",
        "preprocessed_features",
        "trained_model",
        "onnx_model",
        "daily_predictions",
        "bid_file",
        "bid_upload",
        "backtest",
    }
    # The freshness checks (defs.freshness) are counted by test_operations.py.
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys if k.name != "freshness_check"}
    assert ("bid_file", "bid_file_never_bids_above_break_even") in checks
    assert ("preprocessed_features", "preprocessed_features_have_no_nulls") in checks
    # Every check spec (write-audit-publish, run inside its asset's step), the SLA check, the upload's two.
    from astro_assets.defs.checks import CHECK_SPECS

    specs = {(spec.asset, spec.name) for spec in CHECK_SPECS}
    assert specs <= checks
    assert checks - specs == {
        ("daily_predictions", "daily_predictions_projects_10m_within_an_hour"),
        ("bid_upload", "bid_upload_never_sends_above_break_even"),
        ("bid_upload", "bid_upload_operations_accepted"),
    }
    assert len(specs) == 11
    daily = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is not None}
    assert daily == {"raw_features", "preprocessed_features", "daily_predictions", "bid_file", "bid_upload"}


def test_daily_schedule_fills_yesterday():
    schedule = defs.resolve_schedule_def("daily_bid_job_schedule")
    tick = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-11-23"]
    assert schedule.job_name == "daily_bid_job"


def test_training_schedule_is_weekly():
    schedule = defs.resolve_schedule_def("weekly_training_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 4 * * 1", "UTC")  # Mondays 04:00
    monday = dt.datetime(2026, 11, 30, 4, 0, tzinfo=dt.UTC)
    with dg.build_schedule_context(scheduled_execution_time=monday) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert monday.weekday() == 0 and schedule.job_name == "training_job"
    assert request.partition_key is None  # training is not partitioned: it takes its window from config


def test_workspace_loads_the_code_location(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful for code location astro_assets" in result.stderr + result.stdout


def test_shipped_instance_turns_telemetry_off_and_limits_spark_runs(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster_home" / "dagster.yaml").read_text())
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert instance.telemetry_enabled is False
        config = instance.get_concurrency_config()
        assert {"key": "astro/spark", "value": "true", "limit": 1} in config.run_queue_config.tag_concurrency_limits
        assert config.pool_config.default_pool_limit == 1
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
    finally:
        instance.dispose()


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("ASTRO_KEYWORDS", "lots", "not a whole number"),
        ("ASTRO_KEYWORDS", "-5", "positive"),
        ("ASTRO_SPARK_MASTER", "nowhere", "not a Spark master URL"),
        ("ASTRO_START_DATE", "yesterday", "not a date"),
        ("ASTRO_REPORTS_DIR", "/no/such/folder", "not a folder"),
    ],
)
def test_nonsense_settings_name_the_variable(monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name) as error:
        load_settings()
    assert words in str(error.value)


def test_a_partition_for_a_day_not_over_is_refused(dagster_instance, tmp_path):
    """Today (UTC) is not a partition yet: its report is incomplete until the day ends."""
    from astro_assets.defs.resources import AstroStorage, SyntheticKeywordSource

    daily_partition_def = defs.resolve_job_def("daily_bid_job").partitions_def

    today = dt.datetime.now(dt.UTC).date()
    assert daily_partition_def.get_last_partition_key() == (today - dt.timedelta(days=1)).isoformat()
    with pytest.raises(dg.DagsterUnknownPartitionError, match=today.isoformat()):
        dg.materialize(
            [defs.get_assets_def("raw_features")],
            partition_key=today.isoformat(),
            instance=dagster_instance,
            resources={
                "storage": AstroStorage(data_dir=str(tmp_path / "data")),
                "keyword_source": SyntheticKeywordSource(),
                "pyspark": defs.resources["pyspark"],
            },
        )
    assert not (tmp_path / "data").exists()
