"""The Great Expectations suites behind the asset checks, and the one way they are run.

GX 1.x is called directly with an ephemeral context (``dagster-ge`` requires GX < 1.0). Each suite
is a function from :class:`CheckInputs` (Spark, the layout, the bid rule, the day) to a
:class:`Suite`: the Spark frame to validate, its expectations, and counts to show beside them.
``defs.checks`` turns each into a Dagster asset check.
"""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from astro_assets.core import lagging
from astro_assets.core.bid_rule import BidRule
from astro_assets.core.features import FEATURE_VECTOR_LENGTH, FEATURES, KEYWORD_ATTRIBUTES, RAW_COLUMNS
from astro_assets.stages.bids import EDITOR_MATCH_TYPES
from astro_assets.stages.spark import map_files
from astro_assets.storage import (
    DAILY_PREDICTIONS,
    PREPROCESSED_FEATURES,
    RAW_FEATURES,
    DataLayout,
    MissingPartitionError,
)

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

    def unexpected(self, expectation: str, column: str | None = None) -> int:
        return sum(
            r["unexpected_count"] or 0
            for r in self.results
            if r["expectation"] == expectation and (column is None or r["column"] == column)
        )

    def table_markdown(self) -> str:
        lines = [
            "| expectation | column | passed | unexpected | unexpected % | observed |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.results:
            lines.append(
                f"| {r['expectation']} | {r['column']} | {'yes' if r['success'] else '**no**'} | "
                f"{r['unexpected_count']} | {r['unexpected_percent']} | {r['observed_value']} |"
            )
        return "\n".join(lines)


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


@dataclass(frozen=True)
class CheckInputs:
    """What a suite may read: Spark, the stored partitions, the bid rule and the day checked."""

    spark: SparkSession
    layout: DataLayout
    day: dt.date
    rule: BidRule = field(default_factory=BidRule)

    def read(self, asset: str) -> DataFrame:
        """The day's published partition of ``asset`` as a Spark frame."""
        return self.spark.read.parquet(str(self.layout.require_published(asset, self.day)))


@dataclass(frozen=True)
class Suite:
    """A frame, the expectations it must meet, and counts to show with the results."""

    frame: DataFrame
    expectations: list[gxe.Expectation]
    counts: dict[str, int] = field(default_factory=dict)


def run_suite(
    name: str, suite: Callable[[CheckInputs], Suite], inputs: CheckInputs
) -> tuple[Validation, dict[str, int]]:
    built = suite(inputs)
    return validate(built.frame, name, built.expectations), built.counts


# -- raw_features ---------------------------------------------------------------------------------


def raw_nulls_within_tolerance(inputs: CheckInputs) -> Suite:
    return Suite(
        inputs.read(RAW_FEATURES),
        [
            gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1.0 - tolerance)
            for column, tolerance in RAW_NULL_TOLERANCE.items()
        ],
    )


def raw_metrics_are_consistent(inputs: CheckInputs) -> Suite:
    return Suite(
        inputs.read(RAW_FEATURES),
        [
            *[
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0)
                for c in ("impressions", "clicks", "cost_micros", "conversions", "conversion_value")
            ],
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="impressions", column_B="clicks", or_equal=True),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="clicks", column_B="conversions", or_equal=True),
            gxe.ExpectColumnValuesToBeBetween(column="quality_score", min_value=1, max_value=10),
            gxe.ExpectColumnValuesToBeBetween(column="search_impression_share", min_value=0, max_value=1),
            gxe.ExpectColumnValuesToBeUnique(column="keyword_id"),
        ],
    )


# -- preprocessed_features --------------------------------------------------------------------------


def feature_audit(spark: SparkSession, layout: DataLayout, folder: Path, with_attributes: bool = True) -> DataFrame:
    """The preprocessed partition at ``folder`` with its feature arrays replaced by per-row counts
    (``lagging.audit_features``: present, length, null/NaN values, values out of range), computed
    with numpy in one Spark task per file; the arrays never cross into the JVM."""
    files = [str(path) for path in layout.parquet_files(folder)]
    if not files:
        raise MissingPartitionError(f"no Parquet files in {folder}")
    lower = np.array([f.lower for f in FEATURES])
    upper = np.array([f.upper for f in FEATURES])
    schema = AUDIT_DDL if with_attributes else NUMERIC_AUDIT_DDL
    return map_files(spark, files, lambda path: lagging.audit_file(path, lower, upper, with_attributes), schema)


def _audit(inputs: CheckInputs, with_attributes: bool) -> DataFrame:
    folder = inputs.layout.require_published(PREPROCESSED_FEATURES, inputs.day)
    return feature_audit(inputs.spark, inputs.layout, folder, with_attributes)


def preprocessed_no_nulls(inputs: CheckInputs) -> Suite:
    return Suite(
        _audit(inputs, with_attributes=True),
        [
            *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("keyword_id", *KEYWORD_ATTRIBUTES)],
            gxe.ExpectColumnValuesToBeInSet(column="features_present", value_set=[True]),
            gxe.ExpectColumnValuesToBeBetween(column="missing_feature_values", min_value=0, max_value=0),
            gxe.ExpectColumnValuesToBeBetween(
                column="feature_values", min_value=FEATURE_VECTOR_LENGTH, max_value=FEATURE_VECTOR_LENGTH
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="trailing_value_per_click"),
        ],
    )


def preprocessed_within_range(inputs: CheckInputs) -> Suite:
    return Suite(
        _audit(inputs, with_attributes=False),
        [
            gxe.ExpectColumnValuesToBeBetween(column="out_of_range_feature_values", min_value=0, max_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="trailing_value_per_click", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="clicks_in_window", min_value=0),
        ],
    )


def preprocessed_one_row_per_keyword(inputs: CheckInputs) -> Suite:
    return Suite(
        inputs.read(PREPROCESSED_FEATURES).select("keyword_id"), [gxe.ExpectColumnValuesToBeUnique(column="keyword_id")]
    )


# -- daily_predictions ------------------------------------------------------------------------------


def predictions_finite_and_non_negative(inputs: CheckInputs) -> Suite:
    return Suite(
        inputs.read(DAILY_PREDICTIONS),
        [
            gxe.ExpectColumnValuesToNotBeNull(column="predicted_value_per_click"),
            # Spark orders NaN above every number, so the upper bound also catches NaN and +inf.
            gxe.ExpectColumnValuesToBeBetween(
                column="predicted_value_per_click", min_value=0, max_value=MAX_PLAUSIBLE_VALUE_PER_CLICK
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="model_version"),
        ],
    )


def predictions_one_row_per_keyword(inputs: CheckInputs) -> Suite:
    expected = inputs.read(PREPROCESSED_FEATURES).count()
    return Suite(
        inputs.read(DAILY_PREDICTIONS).select("keyword_id"),
        [
            gxe.ExpectColumnValuesToBeUnique(column="keyword_id"),
            gxe.ExpectTableRowCountToEqual(value=expected),
        ],
        {"keywords_expected": expected},
    )


# -- bid_file -------------------------------------------------------------------------------------


def read_bid_file(inputs: CheckInputs) -> DataFrame:
    path = inputs.layout.bid_file(inputs.day)
    if not path.exists():
        raise MissingPartitionError(f"no bid file for {inputs.day} at {path}")
    return (
        inputs.spark.read.option("header", True).csv(str(path)).withColumn("max_cpc", F.col("Max CPC").cast("double"))
    )


def bids_within_floor_and_ceiling(inputs: CheckInputs) -> Suite:
    rule = inputs.rule
    return Suite(
        read_bid_file(inputs),
        [
            *[
                gxe.ExpectColumnValuesToNotBeNull(column=c)
                for c in ("Campaign", "Ad group", "Keyword", "Criterion Type")
            ],
            gxe.ExpectColumnValuesToBeInSet(column="Criterion Type", value_set=list(EDITOR_MATCH_TYPES.values())),
            gxe.ExpectColumnValuesToNotBeNull(column="max_cpc"),
            gxe.ExpectColumnValuesToBeBetween(
                column="max_cpc", min_value=rule.floor - MONEY_TOLERANCE, max_value=rule.ceiling + MONEY_TOLERANCE
            ),
            gxe.ExpectColumnValuesToBeBetween(column="max_cpc", min_value=0, strict_min=True),
        ],
    )


def bids_never_above_break_even(inputs: CheckInputs) -> Suite:
    csv_rows = read_bid_file(inputs).count()
    folder = inputs.layout.bid_audit_dir(inputs.day)
    audit = inputs.spark.read.parquet(str(folder)).withColumn(
        "headroom",
        F.col("predicted_value_per_click").cast("double") * F.lit(1.0 - inputs.rule.target_margin) - F.col("max_cpc"),
    )
    return Suite(
        audit,
        [
            gxe.ExpectColumnValuesToBeBetween(column="headroom", min_value=-MONEY_TOLERANCE),
            gxe.ExpectTableRowCountToEqual(value=csv_rows),
        ],
        {"csv_rows": csv_rows},
    )
