"""The one way Great Expectations runs (``validate``, ``run_suite``), what a suite may read
(``CheckInputs``), and the bid-file suites (the daily partitions' suites are in ``stages.audits``).

GX 1.x is called directly with an ephemeral context (``dagster-ge`` requires GX < 1.0). Each suite
is a function from :class:`CheckInputs` (Spark, the layout, the bid rule, the day) to a
:class:`Suite`: the Spark frame to validate, its expectations, and counts to show beside them.
``defs.checks`` turns each into a Dagster asset check.
"""

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from astro_assets.core.bid_rule import KEYWORD_PAIR, PAUSED, BidRule
from astro_assets.stages.bids import EDITOR_MATCH_TYPES, EDITOR_STATUSES, read_editor_files
from astro_assets.storage import (
    BID_FILE,
    DAILY_PREDICTIONS,
    DataLayout,
)

logging.getLogger("great_expectations").setLevel(logging.WARNING)


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


def validate(frame: DataFrame | pd.DataFrame, name: str, expectations: list[gxe.Expectation]) -> Validation:
    """Run ``expectations`` on a frame with an ephemeral GX context: a Spark frame (cached for the
    validation, memory spilling to disk, so the partition is read once and not once per metric), or a
    small pandas frame of audit totals (``stages.audits``)."""
    if isinstance(frame, pd.DataFrame):
        return _validate(frame, name, expectations, len(frame))
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows = frame.count()
        return _validate(frame, name, expectations, rows)
    finally:
        frame.unpersist()


def _validate(frame, name: str, expectations: list[gxe.Expectation], rows: int) -> Validation:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas if isinstance(frame, pd.DataFrame) else context.data_sources.add_spark
    batch = source(f"{name}_source").add_dataframe_asset(name).add_batch_definition_whole_dataframe(f"{name}_batch")
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
    """What a suite may read: Spark, the partitions, the bid rule and the day checked. ``staged``
    maps an asset to the staging folder of the partition about to be published (write-audit-publish:
    the checks read what would be published); every other asset is read as published."""

    spark: SparkSession
    layout: DataLayout
    day: dt.date
    rule: BidRule = field(default_factory=BidRule)
    staged: Mapping[str, Path] = field(default_factory=dict)

    def folder(self, asset: str) -> Path:
        """The day's folder of ``asset``: the staged one if it is being published, else the published one."""
        return self.staged.get(asset) or self.layout.require_published(asset, self.day)

    def read(self, asset: str) -> DataFrame:
        """The day's partition of ``asset`` (staged or published) as a Spark frame."""
        return self.spark.read.parquet(str(self.folder(asset)))


@dataclass(frozen=True)
class Suite:
    """A frame, the expectations it must meet, and counts to show with the results."""

    frame: DataFrame | pd.DataFrame
    expectations: list[gxe.Expectation]
    counts: dict[str, int] = field(default_factory=dict)


def run_suite(
    name: str, suite: Callable[[CheckInputs], Suite], inputs: CheckInputs
) -> tuple[Validation, dict[str, int]]:
    built = suite(inputs)
    return validate(built.frame, name, built.expectations), built.counts


# -- bid_file -------------------------------------------------------------------------------------


def read_bid_file(inputs: CheckInputs) -> DataFrame:
    """The day's Google Ads Editor files (every keyword) read back as Editor reads them
    (``stages.bids.read_editor_files``: UTF-16, tab-separated, the header row), as a Spark frame with
    the IDs as numbers (``campaign_id``, ``ad_group_id``, ``keyword_id``; null where a cell is not a
    whole number) and ``max_cpc`` (null where the row writes no bid)."""
    folder = inputs.folder(BID_FILE)
    rows = read_editor_files(inputs.layout, folder, "bids")
    frame = inputs.spark.createDataFrame(rows)  # from Arrow: no pandas copy of the rows
    for column, name in EDITOR_ID_COLUMNS.items():
        frame = frame.withColumn(name, F.when(F.col(column).rlike(r"^[0-9]+$"), F.col(column).cast("long")))
    return frame.withColumn("max_cpc", F.when(F.col("Max CPC") != "", F.col("Max CPC").cast("double")))


#: Editor's ID columns and the names the checks give them as numbers.
EDITOR_ID_COLUMNS = {"Campaign ID": "campaign_id", "Ad group ID": "ad_group_id", "Keyword ID": "keyword_id"}


def _prediction_keys(predictions: DataFrame) -> list[str]:
    """The keyword's identity in the predictions: the pair, or keyword_id alone in older partitions."""
    return [k for k in KEYWORD_PAIR if k in predictions.columns]


def bids_within_floor_and_ceiling(inputs: CheckInputs) -> Suite:
    rule = inputs.rule
    decimals = max(0, int(round(-np.log10(rule.currency_unit))))
    money = rf"^([0-9]+\.[0-9]{{{decimals}}})?$" if decimals else r"^[0-9]*$"
    return Suite(
        read_bid_file(inputs),
        [
            *[
                gxe.ExpectColumnValuesToNotBeNull(column=c)
                for c in ("Campaign", "Ad group", "Keyword", "Criterion Type", *EDITOR_ID_COLUMNS.values())
            ],
            gxe.ExpectColumnValuesToBeInSet(column="Criterion Type", value_set=list(EDITOR_MATCH_TYPES.values())),
            gxe.ExpectColumnValuesToBeInSet(column="Status", value_set=[*EDITOR_STATUSES.values(), ""]),
            gxe.ExpectColumnValuesToMatchRegex(column="Max CPC", regex=money),
            gxe.ExpectColumnValuesToBeBetween(
                column="max_cpc", min_value=rule.floor - MONEY_TOLERANCE, max_value=rule.ceiling + MONEY_TOLERANCE
            ),
            gxe.ExpectColumnValuesToBeBetween(column="max_cpc", min_value=0, strict_min=True),
        ],
    )


def bids_never_above_break_even(inputs: CheckInputs) -> Suite:
    """Row for row, on the Editor files as Editor reads them, joined to the predictions by keyword:
    no Max CPC above predicted value per click × (1 − margin), and no row that leaves a keyword
    serving (its Status is not Paused) without a Max CPC, which would leave its live bid in place."""
    rows = read_bid_file(inputs)
    predictions = inputs.read(DAILY_PREDICTIONS)
    keys = _prediction_keys(predictions)
    joined = rows.join(predictions.select(*keys, "predicted_value_per_click"), on=keys, how="left")
    frame = joined.withColumn(
        "headroom",
        F.col("predicted_value_per_click").cast("double") * F.lit(1.0 - inputs.rule.target_margin) - F.col("max_cpc"),
    ).withColumn(
        "serving_without_bid",
        F.when((F.col("Status") != EDITOR_STATUSES[PAUSED]) & F.col("max_cpc").isNull(), 1).otherwise(0),
    )
    return Suite(
        frame,
        [
            gxe.ExpectColumnValuesToNotBeNull(column="predicted_value_per_click"),
            gxe.ExpectColumnValuesToBeBetween(column="headroom", min_value=-MONEY_TOLERANCE),
            gxe.ExpectColumnValuesToBeBetween(column="serving_without_bid", min_value=0, max_value=0),
        ],
    )


def bids_one_row_per_keyword(inputs: CheckInputs) -> Suite:
    """Every keyword of the day's predictions has exactly one row in the Editor files, and every row is
    a keyword of the day (matched on the pair)."""
    predictions = inputs.read(DAILY_PREDICTIONS)
    keys = _prediction_keys(predictions)
    rows = read_bid_file(inputs)
    editor_rows = rows.count()
    per_keyword = rows.groupBy(*keys).agg(F.count(F.lit(1)).alias("rows_in_files"))
    scored = predictions.groupBy(*keys).agg(F.count(F.lit(1)).alias("scored"))
    frame = scored.join(per_keyword, on=keys, how="full_outer").fillna(0, subset=["rows_in_files", "scored"])
    return Suite(
        frame,
        [
            gxe.ExpectColumnValuesToBeBetween(column="rows_in_files", min_value=1, max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="scored", min_value=1, max_value=1),
        ],
        {"editor_rows": editor_rows},
    )
