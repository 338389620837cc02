"""Jobs and schedules: the daily bid cycle each morning, training once a week."""

import dagster as dg

from astro_assets.defs.freshness import FRESHNESS_CHECKS
from astro_assets.storage import DAILY_ASSETS, ONNX_MODEL, TRAINED_MODEL

TRAINING_ASSETS = (TRAINED_MODEL, ONNX_MODEL)
#: Runs carrying this tag are limited by the instance's run queue (dagster_home/dagster.yaml).
SPARK_TAG = {"astro/spark": "true"}
DAILY_BID_JOB = "daily_bid_job"
TRAINING_JOB = "training_job"


def build_jobs(
    partitions_def: dg.PartitionsDefinition, daily_run_hour: int = 6
) -> tuple[list, list[dg.ScheduleDefinition]]:
    daily_bid_job = dg.define_asset_job(
        DAILY_BID_JOB,
        selection=dg.AssetSelection.assets(*DAILY_ASSETS) - FRESHNESS_CHECKS,
        partitions_def=partitions_def,
        tags=SPARK_TAG,
        executor_def=dg.in_process_executor,
        description="One day: raw report -> lagged features -> predictions -> bid file, with every check.",
    )
    training_job = dg.define_asset_job(
        TRAINING_JOB,
        selection=dg.AssetSelection.assets(*TRAINING_ASSETS),
        tags=SPARK_TAG,
        executor_def=dg.in_process_executor,
        description="Retrain the GRU on the latest window and publish it as ONNX.",
    )
    #: Each morning at ``daily_run_hour`` (ASTRO_DAILY_RUN_HOUR, default 06:00) in the account's time zone
    #: (the partitions' timezone, ASTRO_ACCOUNT_TIMEZONE), fill yesterday's partition there: the newest
    #: complete day, its statistics settled.
    #: (build_schedule_from_partitioned_job takes the execution time zone from the partitions definition.)
    daily_bid_schedule = dg.build_schedule_from_partitioned_job(
        daily_bid_job, hour_of_day=daily_run_hour, minute_of_hour=0
    )
    #: Mondays at 04:00 UTC, before the daily run.
    training_schedule = dg.ScheduleDefinition(
        name="weekly_training_schedule",
        job=training_job,
        cron_schedule="0 4 * * 1",
        execution_timezone="UTC",
    )
    return [daily_bid_job, training_job], [daily_bid_schedule, training_schedule]
