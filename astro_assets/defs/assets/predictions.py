"""``daily_predictions``: every keyword of the day scored by onnxruntime in Spark (``stages.predict``),
with the throughput check of the original one-hour SLA."""

import datetime as dt
import math

import dagster as dg
from dagster_pyspark import PySparkResource

from astro_assets.defs.daily import DailyRun, DayResult, materialize_days
from astro_assets.defs.resources import AstroStorage
from astro_assets.model.registry import read_model
from astro_assets.stages.predict import prediction_summary, write_predictions
from astro_assets.storage import DAILY_PREDICTIONS, ONNX_MODEL, PREPROCESSED_FEATURES

SLA_KEYWORDS = 10_000_000
SLA_SECONDS = 3600.0
SLA_CHECK = "daily_predictions_projects_10m_within_an_hour"
#: Below this many rows the fixed cost of starting tasks dominates the rate: the projection is not made.
SLA_MIN_ROWS = 100_000


def sla_check_result(rows: int, rows_per_second: float) -> dg.AssetCheckResult:
    """WARN when the measured rate projects 10M predictions to more than an hour.

    Below ``SLA_MIN_ROWS`` rows the fixed cost of starting tasks dominates the rate, so the projection
    says nothing about 10M: the check passes and says it was not evaluated.
    """
    projected = SLA_KEYWORDS / rows_per_second if rows_per_second > 0 else math.inf
    evaluated = rows >= SLA_MIN_ROWS
    return dg.AssetCheckResult(
        check_name=SLA_CHECK,
        passed=projected <= SLA_SECONDS if evaluated else True,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "evaluated": evaluated,
            "rows": dg.MetadataValue.int(rows),
            "rows_per_second": dg.MetadataValue.float(round(rows_per_second, 1)),
            "projected_seconds_for_10m": dg.MetadataValue.float(round(projected, 1)),
            "sla_seconds": dg.MetadataValue.float(SLA_SECONDS),
        },
    )


def _rate(run: DailyRun) -> float:
    return run.rows / run.seconds if run.seconds > 0 else 0.0


def daily_predictions_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=DAILY_PREDICTIONS,
        partitions_def=partitions_def,
        group_name="bidding",
        kinds={"spark", "onnx", "parquet"},
        pool="spark",
        deps=[PREPROCESSED_FEATURES, ONNX_MODEL],
        description="Predicted value per click of every keyword of the day, scored by onnxruntime in Spark.",
        check_specs=[
            dg.AssetCheckSpec(
                SLA_CHECK,
                asset=DAILY_PREDICTIONS,
                description="The measured throughput scores 10M keywords within an hour (the original SLA).",
            )
        ],
    )
    def daily_predictions(
        context: dg.AssetExecutionContext, storage: AstroStorage, pyspark: PySparkResource
    ) -> dg.MaterializeResult:
        spark = pyspark.spark_session
        layout = storage.layout
        model_bytes, description = read_model(layout)
        version = description["astro.model_version"]
        batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))

        def score_day(day: dt.date) -> DayResult:
            rows = write_predictions(spark, layout, day, model_bytes, version, batch_rows)
            return DayResult(rows, str(layout.partition_dir(DAILY_PREDICTIONS, day)))

        def summary(run: DailyRun) -> dict:
            quantiles, mean = prediction_summary(spark, layout, run.days[-1])
            projected = SLA_KEYWORDS / _rate(run) if _rate(run) else math.inf
            return {
                "projected_seconds_for_10m": dg.MetadataValue.float(round(projected, 1)),
                "model_version": version,
                "prediction_p10_p50_p90": dg.MetadataValue.json(quantiles),
                "prediction_mean": dg.MetadataValue.float(mean),
            }

        return materialize_days(
            context, score_day, extra=summary, check_results=lambda run: [sla_check_result(run.rows, _rate(run))]
        )

    return daily_predictions
