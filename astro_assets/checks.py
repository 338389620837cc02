"""Asset checks: Great Expectations 1.x suites run on the stored partitions, in Spark.

GX is called directly (an ephemeral context per validation); ``dagster-ge`` is not used because it
requires GX < 1.0. Each check is named for the property it asserts and shows its counts in the UI.
Checks that guard what is published are blocking with ERROR severity: a failure stops the downstream
assets of the same run.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
from dagster_pyspark import PySparkResource
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from astro_assets import lagging
from astro_assets.bids import BidRule, audit_dir
from astro_assets.features import FEATURE_VECTOR_LENGTH, FEATURES, KEYWORD_ATTRIBUTES, RAW_COLUMNS
from astro_assets.partitions import daily_partition_def
from astro_assets.preprocess import read_partition
from astro_assets.resources import AstroStorage, BidPolicy
from astro_assets.sharding import map_files
from astro_assets.storage import partition_date

logging.getLogger("great_expectations").setLevel(logging.WARNING)

AUDIT_DDL = from_arrow_schema(lagging.AUDIT_SCHEMA)
NUMERIC_AUDIT_DDL = from_arrow_schema(lagging.NUMERIC_AUDIT_SCHEMA)

#: Share of nulls tolerated per raw column before the null check warns (README "Checks").
RAW_NULL_TOLERANCE: dict[str, float] = {
    **{column: 0.0 for column in RAW_COLUMNS},
    "conversion_value": 0.10,
    "quality_score": 0.30,
    "search_impression_share": 0.20,
}
#: A predicted value per click above this is treated as broken, not as a great keyword.
MAX_PLAUSIBLE_VALUE_PER_CLICK = 10_000.0
#: Slack for comparing a two-decimal bid with a float prediction.
MONEY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Validation:
    success: bool
    rows: int
    results: list[dict]

    def metadata(self) -> dict[str, dg.MetadataValue]:
        lines = ["| expectation | column | passed | unexpected | unexpected % | observed |", "|---|---|---|---|---|---|"]
        for r in self.results:
            lines.append(
                f"| {r['expectation']} | {r['column']} | {'yes' if r['success'] else '**no**'} | "
                f"{r['unexpected_count']} | {r['unexpected_percent']} | {r['observed_value']} |"
            )
        return {
            "rows": dg.MetadataValue.int(self.rows),
            "failed_expectations": dg.MetadataValue.int(sum(not r["success"] for r in self.results)),
            "results": dg.MetadataValue.md("\n".join(lines)),
            "results_json": dg.MetadataValue.json(self.results),
        }

    def unexpected(self, expectation: str, column: str | None = None) -> int:
        return sum(
            r["unexpected_count"] or 0
            for r in self.results
            if r["expectation"] == expectation and (column is None or r["column"] == column)
        )


def validate(frame: DataFrame, name: str, expectations: list[gxe.Expectation]) -> Validation:
    """Run ``expectations`` on a Spark frame with an ephemeral GX context.

    GX computes each expectation's metrics as Spark jobs of their own: the frame is cached for the
    validation (memory, spilling to disk) so the partition is read once, not once per metric.
    """
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows = frame.count()
        return _validate(frame, name, expectations, rows)
    finally:
        frame.unpersist()


def _validate(frame: DataFrame, name: str, expectations: list[gxe.Expectation], rows: int) -> Validation:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_spark(f"{name}_source")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(f"{name}_batch")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
    outcome = definition.run(batch_parameters={"dataframe": frame})
    results = []
    for r in outcome.results:
        kwargs = r.expectation_config.kwargs
        column = kwargs.get("column") or "/".join(filter(None, [kwargs.get("column_A"), kwargs.get("column_B")]))
        percent = r.result.get("unexpected_percent")
        observed = r.result.get("observed_value")
        results.append(
            {
                "expectation": r.expectation_config.type,
                "column": column or "",
                "success": bool(r.success),
                "unexpected_count": r.result.get("unexpected_count"),
                "unexpected_percent": None if percent is None else round(float(percent), 4),
                "observed_value": observed if isinstance(observed, (int, float, str, type(None))) else str(observed),
            }
        )
    return Validation(bool(outcome.success), rows, results)


def check_result(validation: Validation, severity: dg.AssetCheckSeverity, **extra) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=validation.success,
        severity=severity,
        metadata={**validation.metadata(), **{k: dg.MetadataValue.int(v) for k, v in extra.items()}},
    )


# -- raw_features ---------------------------------------------------------------------------------


def raw_null_expectations() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1.0 - tolerance)
        for column, tolerance in RAW_NULL_TOLERANCE.items()
    ]


def raw_metric_expectations() -> list[gxe.Expectation]:
    return [
        *[
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0)
            for c in ("impressions", "clicks", "cost_micros", "conversions", "conversion_value")
        ],
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="impressions", column_B="clicks", or_equal=True),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="clicks", column_B="conversions", or_equal=True),
        gxe.ExpectColumnValuesToBeBetween(column="quality_score", min_value=1, max_value=10),
        gxe.ExpectColumnValuesToBeBetween(column="search_impression_share", min_value=0, max_value=1),
        gxe.ExpectColumnValuesToBeUnique(column="keyword_id"),
    ]


def _raw_day(storage: AstroStorage, pyspark: PySparkResource, partition_key: str) -> DataFrame:
    return read_partition(pyspark.spark_session, storage.layout, "raw_features", partition_date(partition_key))


@dg.asset_check(asset="raw_features", partitions_def=daily_partition_def, description=(
    "Nulls per column stay within the stated tolerance (conversion value 10%, quality score 30%, "
    "impression share 20%, every other column 0%)."))
def raw_features_nulls_within_tolerance(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource
) -> dg.AssetCheckResult:
    frame = _raw_day(storage, pyspark, context.partition_key)
    return check_result(validate(frame, "raw_nulls", raw_null_expectations()), dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset="raw_features", partitions_def=daily_partition_def, blocking=True, description=(
    "Metrics are non-negative and consistent (clicks <= impressions, conversions <= clicks), "
    "quality score in 1..10, impression share in 0..1, one row per keyword."))
def raw_features_metrics_are_consistent(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource
) -> dg.AssetCheckResult:
    frame = _raw_day(storage, pyspark, context.partition_key)
    return check_result(validate(frame, "raw_metrics", raw_metric_expectations()), dg.AssetCheckSeverity.ERROR)


# -- preprocessed_features --------------------------------------------------------------------------


def feature_audit(spark: SparkSession, folder: Path, with_attributes: bool = True) -> DataFrame:
    """The preprocessed partition at ``folder`` with its feature arrays replaced by per-row counts
    (``lagging.audit_features``: present, length, null/NaN values, values out of range), computed
    with numpy in one Spark task per file; the arrays never cross into the JVM."""
    files = [str(path) for path in sorted(folder.glob("*.parquet"))]
    if not files:
        raise FileNotFoundError(f"no Parquet files in {folder}")
    lower = np.array([f.lower for f in FEATURES])
    upper = np.array([f.upper for f in FEATURES])
    schema = AUDIT_DDL if with_attributes else NUMERIC_AUDIT_DDL
    return map_files(spark, files, lambda path: lagging.audit_file(path, lower, upper, with_attributes), schema)


def no_null_expectations() -> list[gxe.Expectation]:
    return [
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("keyword_id", *KEYWORD_ATTRIBUTES)],
        gxe.ExpectColumnValuesToBeInSet(column="features_present", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(column="missing_feature_values", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(
            column="feature_values", min_value=FEATURE_VECTOR_LENGTH, max_value=FEATURE_VECTOR_LENGTH
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="trailing_value_per_click"),
    ]


def range_expectations() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeBetween(column="out_of_range_feature_values", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="trailing_value_per_click", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="clicks_in_window", min_value=0),
    ]


def _preprocessed_day(storage: AstroStorage, pyspark: PySparkResource, partition_key: str,
                      with_attributes: bool = True) -> DataFrame:
    folder = storage.layout.partition_dir("preprocessed_features", partition_date(partition_key))
    if not (folder / "_SUCCESS").exists():
        raise FileNotFoundError(f"preprocessed_features has no partition at {folder}")
    return feature_audit(pyspark.spark_session, folder, with_attributes)


@dg.asset_check(asset="preprocessed_features", partitions_def=daily_partition_def, blocking=True, description=(
    "No nulls or NaNs after null replacement: every keyword has its attributes and a full T×F array."))
def preprocessed_features_have_no_nulls(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource
) -> dg.AssetCheckResult:
    frame = _preprocessed_day(storage, pyspark, context.partition_key)
    return check_result(validate(frame, "preprocessed_nulls", no_null_expectations()), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(asset="preprocessed_features", partitions_def=daily_partition_def, blocking=True, description=(
    "Every feature value lies within its documented range (features.FEATURES), baselines >= 0."))
def preprocessed_features_within_range(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource
) -> dg.AssetCheckResult:
    frame = _preprocessed_day(storage, pyspark, context.partition_key, with_attributes=False)
    return check_result(validate(frame, "preprocessed_range", range_expectations()), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(asset="preprocessed_features", partitions_def=daily_partition_def, blocking=True,
                description="Exactly one row per keyword.")
def preprocessed_features_one_row_per_keyword(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource
) -> dg.AssetCheckResult:
    frame = read_partition(pyspark.spark_session, storage.layout, "preprocessed_features",
                           partition_date(context.partition_key)).select("keyword_id")
    validation = validate(frame, "preprocessed_unique", [gxe.ExpectColumnValuesToBeUnique(column="keyword_id")])
    return check_result(validation, dg.AssetCheckSeverity.ERROR)


# -- daily_predictions ------------------------------------------------------------------------------


@dg.asset_check(asset="daily_predictions", partitions_def=daily_partition_def, blocking=True, description=(
    "Every prediction is present, finite and >= 0."))
def daily_predictions_are_finite_and_non_negative(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource
) -> dg.AssetCheckResult:
    frame = read_partition(pyspark.spark_session, storage.layout, "daily_predictions",
                           partition_date(context.partition_key))
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="predicted_value_per_click"),
        # Spark orders NaN above every number, so the upper bound also catches NaN and +inf.
        gxe.ExpectColumnValuesToBeBetween(
            column="predicted_value_per_click", min_value=0, max_value=MAX_PLAUSIBLE_VALUE_PER_CLICK
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="model_version"),
    ]
    return check_result(validate(frame, "predictions_values", expectations), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(asset="daily_predictions", partitions_def=daily_partition_def, blocking=True, description=(
    "One prediction per keyword of the day's preprocessed features: no keyword lost, none twice."))
def daily_predictions_one_row_per_keyword(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource
) -> dg.AssetCheckResult:
    spark = pyspark.spark_session
    day = partition_date(context.partition_key)
    expected = read_partition(spark, storage.layout, "preprocessed_features", day).count()
    frame = read_partition(spark, storage.layout, "daily_predictions", day).select("keyword_id")
    expectations = [
        gxe.ExpectColumnValuesToBeUnique(column="keyword_id"),
        gxe.ExpectTableRowCountToEqual(value=expected),
    ]
    validation = validate(frame, "predictions_unique", expectations)
    return check_result(validation, dg.AssetCheckSeverity.ERROR, keywords_expected=expected)


# -- bid_file -------------------------------------------------------------------------------------


def read_bid_file(spark, storage: AstroStorage, day: dt.date) -> DataFrame:
    path = storage.layout.bid_file(day)
    if not path.exists():
        raise FileNotFoundError(f"no bid file for {day} at {path}")
    return spark.read.option("header", True).csv(str(path)).withColumn("max_cpc", F.col("Max CPC").cast("double"))


@dg.asset_check(asset="bid_file", partitions_def=daily_partition_def, blocking=True, description=(
    "Every Max CPC in the uploaded CSV is a number > 0 within the policy's floor and ceiling, and every "
    "row names its campaign, ad group, keyword and match type."))
def bid_file_max_cpc_within_floor_and_ceiling(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource, bid_policy: BidPolicy
) -> dg.AssetCheckResult:
    rule = BidRule.from_policy(bid_policy)
    frame = read_bid_file(pyspark.spark_session, storage, partition_date(context.partition_key))
    expectations = [
        *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("Campaign", "Ad group", "Keyword", "Criterion Type")],
        gxe.ExpectColumnValuesToBeInSet(column="Criterion Type", value_set=["Exact", "Phrase", "Broad"]),
        gxe.ExpectColumnValuesToNotBeNull(column="max_cpc"),
        gxe.ExpectColumnValuesToBeBetween(
            column="max_cpc", min_value=rule.floor - MONEY_TOLERANCE, max_value=rule.ceiling + MONEY_TOLERANCE
        ),
        gxe.ExpectColumnValuesToBeBetween(column="max_cpc", min_value=0, strict_min=True),
    ]
    return check_result(validate(frame, "bid_range", expectations), dg.AssetCheckSeverity.ERROR)


@dg.asset_check(asset="bid_file", partitions_def=daily_partition_def, blocking=True, description=(
    "No bid above predicted value per click × (1 − target margin): every click bought is expected to "
    "earn more than it costs. Checked on the audit table written beside the CSV, row for row."))
def bid_file_never_bids_above_break_even(
    context: dg.AssetCheckExecutionContext, storage: AstroStorage, pyspark: PySparkResource, bid_policy: BidPolicy
) -> dg.AssetCheckResult:
    rule = BidRule.from_policy(bid_policy)
    spark = pyspark.spark_session
    day = partition_date(context.partition_key)
    csv_rows = read_bid_file(spark, storage, day).count()
    audit = spark.read.parquet(str(audit_dir(storage.layout, day))).withColumn(
        "headroom",
        F.col("predicted_value_per_click").cast("double") * F.lit(1.0 - rule.target_margin) - F.col("max_cpc"),
    )
    expectations = [
        gxe.ExpectColumnValuesToBeBetween(column="headroom", min_value=-MONEY_TOLERANCE),
        gxe.ExpectTableRowCountToEqual(value=csv_rows),
    ]
    return check_result(validate(audit, "bid_break_even", expectations), dg.AssetCheckSeverity.ERROR, csv_rows=csv_rows)


ALL_CHECKS = [
    raw_features_nulls_within_tolerance,
    raw_features_metrics_are_consistent,
    preprocessed_features_have_no_nulls,
    preprocessed_features_within_range,
    preprocessed_features_one_row_per_keyword,
    daily_predictions_are_finite_and_non_negative,
    daily_predictions_one_row_per_keyword,
    bid_file_max_cpc_within_floor_and_ceiling,
    bid_file_never_bids_above_break_even,
]
