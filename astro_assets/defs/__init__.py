"""Dagster only: the assets, checks, jobs, schedules and resources of the ``astro_assets`` code location,
built from the settings by :func:`build_definitions`."""

import dagster as dg

from astro_assets.defs.assets.backtest import backtest
from astro_assets.defs.assets.bids import bid_file_asset
from astro_assets.defs.assets.features import preprocessed_features_asset
from astro_assets.defs.assets.model import onnx_model, trained_model_asset
from astro_assets.defs.assets.predictions import daily_predictions_asset
from astro_assets.defs.assets.raw import raw_features_asset
from astro_assets.defs.assets.upload import bid_upload_asset, bid_upload_checks, bid_upload_job_and_schedule
from astro_assets.defs.automation import automation_sensor, with_automation
from astro_assets.defs.catalog import apply_catalog
from astro_assets.defs.freshness import freshness_checks, freshness_sensor
from astro_assets.defs.google_ads import google_ads_configured, google_ads_resources
from astro_assets.defs.jobs import build_jobs
from astro_assets.defs.partitions import daily_partitions
from astro_assets.defs.resources import build_resources
from astro_assets.defs.sensors import ALERT_RESOURCE, alert_channels, reports_sensor, run_failure_alert_sensor
from astro_assets.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The code location for ``settings``: the platform's six assets, and the backtest beside them
    (materialised on demand, in no job)."""
    partitions = daily_partitions(settings.start_date, settings.account_timezone)
    assets = [
        raw_features_asset(partitions),
        preprocessed_features_asset(partitions),
        trained_model_asset(settings.training_rows),
        onnx_model,
        daily_predictions_asset(partitions),
        bid_file_asset(partitions),
        # After bid_file, in no job and not automated: its own job and schedule once the API is configured.
        bid_upload_asset(partitions),
        backtest,
    ]
    # Owners, tags, code versions, column schemas, and the late-data automation conditions, on every asset.
    assets = with_automation(apply_catalog(assets))
    jobs, schedules = build_jobs(partitions, settings.daily_run_hour)
    deadlines = freshness_checks(partitions, settings.daily_run_hour)
    if google_ads_configured():
        upload_job, upload_schedule = bid_upload_job_and_schedule((settings.daily_run_hour + 2) % 24)
        jobs, schedules = [*jobs, upload_job], [*schedules, upload_schedule]
    return dg.Definitions(
        assets=assets,
        asset_checks=[*deadlines, *bid_upload_checks(partitions)],
        jobs=jobs,
        schedules=schedules,
        sensors=[
            reports_sensor(partitions),
            run_failure_alert_sensor,
            freshness_sensor(deadlines),
            automation_sensor(settings.automation),
        ],
        # google_ads_resources: `google_ads`, and `keyword_source` when ASTRO_KEYWORD_SOURCE=google_ads_api.
        resources={**build_resources(settings), ALERT_RESOURCE: alert_channels(), **google_ads_resources(settings)},
        # One process per run: its steps share one Spark session (one JVM) instead of starting one each.
        executor=dg.in_process_executor,
    )
