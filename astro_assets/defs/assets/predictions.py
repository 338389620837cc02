"""``daily_predictions``: every keyword of the day scored by onnxruntime in Spark (``stages.predict``),
with the throughput check of the original one-hour SLA."""

import datetime as dt
import math
import time
from pathlib import Path

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from astro_assets.defs.checks import gates
from astro_assets.defs.daily import DailyRun, DayResult, gated_check_specs, materialize_days, selected
from astro_assets.defs.resources import AstroStorage
from astro_assets.model.registry import ANALYST, published_policy, read_analyst, read_model
from astro_assets.stages.predict import prediction_summary, score_day, score_day_with_analyst
from astro_assets.stages.validation import CheckInputs
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


def daily_predictions_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=DAILY_PREDICTIONS,
        specs=[
            dg.AssetSpec(
                DAILY_PREDICTIONS,
                group_name="bidding",
                kinds={"spark", "onnx", "parquet"},
                deps=[PREPROCESSED_FEATURES, ONNX_MODEL],
                description="Predicted value per click of every keyword of the day, scored by onnxruntime in Spark.",
                partitions_def=partitions_def,
            )
        ],
        partitions_def=partitions_def,
        pool="spark",
        can_subset=True,  # its checks can be left out (history builds select the asset without them)
        check_specs=[
            *gated_check_specs(gates(DAILY_PREDICTIONS), partitions_def),
            dg.AssetCheckSpec(
                SLA_CHECK,
                asset=DAILY_PREDICTIONS,
                description="The measured throughput scores 10M keywords within an hour (the original SLA).",
            ),
        ],
    )
    def daily_predictions(context: dg.AssetExecutionContext, storage: AstroStorage, pyspark: LazyPySparkResource):
        spark = pyspark.spark_session
        layout = storage.layout
        policy = published_policy(layout)
        if policy["policy"] == ANALYST:
            # The gate published the careful analyst: its table of ad-group priors, joined per shard.
            version = policy["version"]
            policy_bytes, score_policy = read_analyst(layout, version), score_day_with_analyst
        else:
            policy_bytes, description = read_model(layout)
            version, score_policy = description["astro.model_version"], score_day
        batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))
        scoring_seconds = 0.0

        def score(day: dt.date, staging: Path) -> DayResult:
            nonlocal scoring_seconds
            started = time.perf_counter()
            rows = score_policy(spark, layout, day, policy_bytes, version, batch_rows, staging)
            scoring_seconds += time.perf_counter() - started
            return DayResult(rows)

        def rate(run: DailyRun) -> float:
            """Rows scored per second of scoring (the checks' time is reported apart)."""
            return run.rows / scoring_seconds if scoring_seconds > 0 else 0.0

        def summary(run: DailyRun) -> dict:
            quantiles, mean = prediction_summary(spark, layout, run.days[-1])
            projected = SLA_KEYWORDS / rate(run) if rate(run) else math.inf
            return {
                "scoring_seconds": dg.MetadataValue.float(round(scoring_seconds, 3)),
                "rows_per_second": dg.MetadataValue.float(round(rate(run), 1)),
                "projected_seconds_for_10m": dg.MetadataValue.float(round(projected, 1)),
                "model_version": version,
                "published_policy": policy["policy"],
                "prediction_p10_p50_p90": dg.MetadataValue.json(quantiles),
                "prediction_mean": dg.MetadataValue.float(mean),
            }

        yield from materialize_days(
            context,
            destination=lambda day: layout.partition_dir(DAILY_PREDICTIONS, day),
            stage=score,
            gates=selected(context, gates(DAILY_PREDICTIONS)),
            check_inputs=lambda day, staging: CheckInputs(spark, layout, day, staged={DAILY_PREDICTIONS: staging}),
            extra=summary,
            after=lambda run: [sla_check_result(run.rows, rate(run))] if SLA_CHECK in selected_names(context) else [],
        )

    return daily_predictions


def selected_names(context: dg.AssetExecutionContext) -> set[str]:
    return {key.name for key in context.selected_asset_check_keys}
