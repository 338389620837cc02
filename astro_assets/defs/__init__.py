"""Dagster only: the assets, checks, jobs, schedules and resources of the ``astro_assets`` code location,
built from the settings by :func:`build_definitions`."""

import dagster as dg

from astro_assets.defs.assets.backtest import backtest
from astro_assets.defs.assets.bids import bid_file_asset
from astro_assets.defs.assets.features import preprocessed_features_asset
from astro_assets.defs.assets.model import onnx_model, trained_model
from astro_assets.defs.assets.predictions import daily_predictions_asset
from astro_assets.defs.assets.raw import raw_features_asset
from astro_assets.defs.checks import asset_checks
from astro_assets.defs.jobs import build_jobs
from astro_assets.defs.partitions import daily_partitions
from astro_assets.defs.resources import build_resources
from astro_assets.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The code location for ``settings``: the platform's six assets, and the backtest beside them
    (materialised on demand, in no job)."""
    partitions = daily_partitions(settings.start_date)
    assets = [
        raw_features_asset(partitions),
        preprocessed_features_asset(partitions),
        trained_model,
        onnx_model,
        daily_predictions_asset(partitions),
        bid_file_asset(partitions),
        backtest,
    ]
    checks = asset_checks(partitions)
    jobs, schedules = build_jobs(partitions, checks)
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        resources=build_resources(settings),
        # One process per run: its steps share one Spark session (one JVM) instead of starting one each.
        executor=dg.in_process_executor,
    )
