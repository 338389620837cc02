"""The ``astro_assets`` code location: assets, checks, jobs, schedules and resources."""

import dagster as dg

from astro_assets.backtest import backtest
from astro_assets.bids import bid_file
from astro_assets.checks import ALL_CHECKS
from astro_assets.export import onnx_model
from astro_assets.jobs import (
    daily_bid_job,
    daily_bid_schedule,
    daily_checks_job,
    training_job,
    training_schedule,
)
from astro_assets.predict import daily_predictions
from astro_assets.preprocess import preprocessed_features
from astro_assets.raw import raw_features
from astro_assets.resources import build_resources
from astro_assets.settings import load_settings
from astro_assets.training import trained_model

#: The platform's six assets, and the backtest beside them (materialised on demand, in no job).
ASSETS = [raw_features, preprocessed_features, trained_model, onnx_model, daily_predictions, bid_file, backtest]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[daily_bid_job, daily_checks_job, training_job],
    schedules=[daily_bid_schedule, training_schedule],
    resources=build_resources(load_settings()),
    # One process per run: its steps share one Spark session (one JVM) instead of starting one each.
    executor=dg.in_process_executor,
)
