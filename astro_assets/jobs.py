"""Jobs and schedules: the daily bid cycle each morning, training once a week."""

import dagster as dg

from astro_assets.checks import ALL_CHECKS
from astro_assets.partitions import daily_partition_def

DAILY_ASSETS = ("raw_features", "preprocessed_features", "daily_predictions", "bid_file")
TRAINING_ASSETS = ("trained_model", "onnx_model")
#: Runs carrying this tag are limited by the instance's run queue (dagster_home/dagster.yaml).
SPARK_TAG = {"astro/spark": "true"}

daily_bid_job = dg.define_asset_job(
    "daily_bid_job",
    selection=dg.AssetSelection.assets(*DAILY_ASSETS),
    partitions_def=daily_partition_def,
    tags=SPARK_TAG,
    executor_def=dg.in_process_executor,
    description="One day: raw report -> lagged features -> predictions -> bid file, with every check.",
)

daily_checks_job = dg.define_asset_job(
    "daily_checks_job",
    selection=dg.AssetSelection.checks(*ALL_CHECKS),
    partitions_def=daily_partition_def,
    tags=SPARK_TAG,
    executor_def=dg.in_process_executor,
    description="Every separately defined check on a stored day, nothing materialised (CI, re-checks).",
)

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets(*TRAINING_ASSETS),
    tags=SPARK_TAG,
    executor_def=dg.in_process_executor,
    description="Retrain the GRU on the latest window and publish it as ONNX.",
)

#: Each morning at 06:00 UTC, fill yesterday's partition (the newest complete day).
daily_bid_schedule = dg.build_schedule_from_partitioned_job(daily_bid_job, hour_of_day=6, minute_of_hour=0)

#: Mondays at 04:00 UTC, before the daily run.
training_schedule = dg.ScheduleDefinition(
    name="weekly_training_schedule",
    job=training_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
)
