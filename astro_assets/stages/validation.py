"""The one way Great Expectations runs (``validate``, ``run_suite``), what a suite may read
(``CheckInputs``), and the bid-file suites (the daily partitions' suites are in ``stages.audits``).

GX 1.x is called directly with an ephemeral context (``dagster-ge`` requires GX < 1.0). Each suite
is a function from :class:`CheckInputs` (Spark, the layout, the bid rule, the day) to a
:class:`Suite`: the frame to validate (a one-row frame of totals: ``totals_frame``), its
expectations (``at_most``), and counts to show beside them. ``defs.checks`` turns each into a
Dagster asset check.

The bid-file suites read the Editor files as Editor reads them in Spark tasks, join the rows to the
day's predictions on the keyword pair shard by shard (``bid_file_totals``: the predictions are stored
one file per keyword shard, so one shuffle of the Editor rows by shard and a numpy join per shard),
and hand GX the totals: no Spark job per expectation.
"""

import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark import StorageLevel
from pyspark.errors import PythonException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from astro_assets.core import audit, worker
from astro_assets.core.bid_rule import BidRule
from astro_assets.core.features import KEYWORD_PAIR
from astro_assets.stages.bids import removed_on_previous_day, removed_scored_keywords
from astro_assets.stages.spark import map_files
from astro_assets.storage import (
    BID_FILE,
    DAILY_PREDICTIONS,
    DataLayout,
)
from astro_assets.storage.layout import part_file_name

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
    #: Totals already computed for these inputs (``once``): the suites of one asset share one pass.
    _computed: dict[str, dict] = field(default_factory=dict, init=False, repr=False, compare=False)

    def once(self, name: str, compute: Callable[[], dict]) -> dict:
        """``compute()`` the first time ``name`` is asked for, its result after that. The data checked
        does not change between the suites of one check run (an asset's gates share one ``CheckInputs``
        built after its stage wrote the staging folder); data changed after that needs new inputs."""
        if name not in self._computed:
            self._computed[name] = compute()
        return dict(self._computed[name])

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


# -- totals for GX ---------------------------------------------------------------------------------


def totals_frame(totals: Mapping[str, int | float]) -> pd.DataFrame:
    """A one-row frame of audit totals (or shares), for GX to validate."""
    return pd.DataFrame([dict(totals)])


def at_most(column: str, limit: float = 0) -> gxe.Expectation:
    """The total (or share) ``column`` is at most ``limit``; GX reports the observed value."""
    return gxe.ExpectColumnMaxToBeBetween(column=column, min_value=0, max_value=limit)


# -- bid_file -------------------------------------------------------------------------------------

#: The rows ``core.audit.audit_editor_file`` yields, as Spark reads them.
EDITOR_AUDIT_SCHEMA = ", ".join(
    ["ad_group_id long", "keyword_id long", "max_cpc double", *[f"{rule} int" for rule in audit.EDITOR_ROW_RULES]]
)


#: The columns of ``core.audit.EDITOR_SHARD_SCHEMA`` as Spark types.
EDITOR_SHARD_COLUMNS = (
    ("shard", "int"),
    ("ad_group_id", "long"),
    ("keyword_id", "long"),
    ("max_cpc", "double"),
    ("totals", "string"),
)
EDITOR_SHARD_SCHEMA = ", ".join(f"{name} {kind}" for name, kind in EDITOR_SHARD_COLUMNS)

#: Spark tasks per core reading a partition's files for the checks (each a run of consecutive files):
#: a Python task costs more than a small file, and two a core keep both cores busy to the end.
TASKS_PER_CORE = 2


def money_pattern(rule: BidRule) -> str:
    """A Max CPC as the bid file writes it (``core.bid_rule.format_money``), or blank: digits, a dot
    and the currency's decimals."""
    decimals = max(0, int(round(-np.log10(rule.currency_unit))))
    return rf"^([0-9]+\.[0-9]{{{decimals}}})?$" if decimals else r"^[0-9]*$"


def bid_file_totals(inputs: CheckInputs) -> dict[str, int]:
    """The day's Editor files (every keyword) read back as Editor reads them (UTF-16, tab-separated,
    the header row), joined row for row to the day's predictions on the keyword pair (ad_group_id,
    keyword_id), and counted: rows, each row rule of ``core.audit.EDITOR_ROW_RULES``, bids above
    break-even (a Max CPC above predicted value per click × (1 − margin), or beside a null or NaN
    prediction), rows of keywords not scored that day, keywords scored and without a row, keywords
    with several rows, keywords scored more than once, and rows of keywords the day's report says are
    removed (``removed_keywords``: they must have none, and are not counted as keywords without a
    row). Only the totals reach the driver.

    The predictions are stored one file per keyword shard, so the join is made shard by shard
    (``_joined_by_shard``): one Spark shuffle of the Editor rows' pairs and bids, each shard then
    joined to its predictions file in numpy. Predictions stored otherwise (an older partition) are
    joined in Spark (``_joined_in_spark``); both count the same."""
    predictions = _prediction_shards(inputs)
    removed = removed_keywords(inputs)
    totals = None
    if predictions is not None:
        totals = _raising_unreadable(lambda: _joined_by_shard(inputs, predictions, removed))
        if totals.pop("predictions_outside_shard", 0):
            totals = None  # a file holds keywords of other shards: the shard-by-shard join would miss them
    if totals is None:
        totals = _raising_unreadable(lambda: _joined_in_spark(inputs, removed))
    return {name: 0 for name in (*BID_FILE_TOTALS, *audit.EDITOR_ROW_RULES)} | totals


def removed_keywords(inputs: CheckInputs) -> tuple[np.ndarray, np.ndarray]:
    """The keywords (ad group ids, keyword ids) removed in the account as the bid file's inputs say it,
    not the staged bid file: those of the day's scored keywords the day's report (the published
    ``raw_features`` statuses) says are removed, themselves or through their ad group or campaign
    (``stages.bids.removed_in_account``), and those the last published bid day recorded as REMOVED
    (removal is final). Google Ads accepts no change to them, so they must have no Editor row. Read
    file by file and shard by shard (``removed_scored_keywords``); a day without any REMOVED status
    reads the statuses and the previous day's row-group statistics only."""
    parts = [removed_on_previous_day(inputs.layout, inputs.day).select(list(KEYWORD_PAIR))]
    parts.append(removed_scored_keywords(inputs.layout, inputs.day))
    gone = pa.concat_tables([p.cast(parts[0].schema) for p in parts])
    return gone["ad_group_id"].to_numpy().astype(np.int64), gone["keyword_id"].to_numpy().astype(np.int64)


#: What ``bid_file_totals`` counts besides the row rules: the join's counts (``core.audit.JOIN_TOTALS``),
#: less the one that only says which join to use.
BID_FILE_TOTALS = tuple(name for name in audit.JOIN_TOTALS if name != "predictions_outside_shard")


def _raising_unreadable(compute: Callable[[], dict[str, int]]) -> dict[str, int]:
    """``compute()``, a file Editor could not read raised on the driver as its one-line ``ValueError``."""
    try:
        return compute()
    except PythonException as error:
        unreadable = re.search(r"^ValueError: (.+)$", str(error), re.MULTILINE)
        if unreadable is None:
            raise
        raise ValueError(unreadable.group(1)) from None


def _row_rules(rule: BidRule) -> dict:
    """What the Editor rows are checked against (``core.audit``'s row rules): the currency's money
    format, the floor, the ceiling and the rounding tolerance."""
    return {"money": money_pattern(rule), "floor": rule.floor, "ceiling": rule.ceiling, "tolerance": MONEY_TOLERANCE}


def _editor_files(inputs: CheckInputs) -> list[str]:
    return [str(path) for path in inputs.layout.bid_editor_files(inputs.folder(BID_FILE), "bids")]


def _prediction_shards(inputs: CheckInputs) -> list[str] | None:
    """The day's predictions files in shard order when they are one file per keyword shard
    (``part-00000`` .. without a gap) keyed by the pair; else None."""
    folder = inputs.folder(DAILY_PREDICTIONS)
    files = inputs.layout.part_files(folder)
    if not files or [path.name for path in files] != [part_file_name(i) for i in range(len(files))]:
        return None
    if not all(key in pq.read_schema(files[0]).names for key in KEYWORD_PAIR):
        return None
    return [str(path) for path in files]


def _joined_by_shard(
    inputs: CheckInputs, predictions: list[str], removed: tuple[np.ndarray, np.ndarray] | None = None
) -> dict[str, int]:
    """The Editor files read in Spark tasks (``core.audit.editor_rows_by_shard``: per row the keyword
    shard, pair and Max CPC; the row rules summed per file), shuffled by shard with one marker row
    per shard (so a shard without a row still has its keywords counted), and each partition's
    shards joined to their predictions files (``core.audit.join_shards``); the partitions' totals are
    added on the driver. ``predictions_outside_shard`` > 0: a predictions file is not its shard's."""
    rule = inputs.rule
    removed = removed_keywords(inputs) if removed is None else removed
    read = functools.partial(audit.editor_rows_by_shard, **_row_rules(rule), shards=len(predictions))
    tasks = TASKS_PER_CORE * inputs.spark.sparkContext.defaultParallelism
    rows = map_files(inputs.spark, _editor_files(inputs), read, EDITOR_SHARD_SCHEMA, tasks)
    markers = inputs.spark.range(len(predictions)).select(
        F.col("id").cast("int").alias("shard"),
        *[F.lit(None).cast(kind).alias(name) for name, kind in EDITOR_SHARD_COLUMNS[1:]],
    )
    margin, tolerance = rule.target_margin, MONEY_TOLERANCE

    def join(batches):
        worker.reread_zip_archives_only_when_changed()  # as stages.spark's tasks do
        totals = audit.join_shards(batches, predictions, margin, tolerance, removed)
        yield pa.RecordBatch.from_arrays([pa.array([json.dumps(totals)])], names=["totals"])

    shuffled = rows.unionByName(markers).repartition(tasks, "shard")
    totals: dict[str, int] = {}
    for row in shuffled.mapInArrow(join, "totals string").collect():
        for name, value in json.loads(row.totals).items():
            totals[name] = totals.get(name, 0) + value
    return totals


def _joined_in_spark(inputs: CheckInputs, removed: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, int]:
    """``bid_file_totals`` for predictions not stored by keyword shard: the Editor files' rows with
    their row-rule flags (``core.audit.audit_editor_file``) joined to the predictions grouped by pair,
    in Spark, counted in one aggregation."""
    rule = inputs.rule
    files = _editor_files(inputs)
    read = functools.partial(audit.audit_editor_file, **_row_rules(rule))
    # One file per campaign makes hundreds of small files: a few tasks per core, each reading a run of them.
    tasks = TASKS_PER_CORE * inputs.spark.sparkContext.defaultParallelism
    rows = map_files(inputs.spark, files, read, EDITOR_AUDIT_SCHEMA, tasks).withColumn("in_files", F.lit(1))
    predictions = inputs.read(DAILY_PREDICTIONS)
    keys = [k for k in KEYWORD_PAIR if k in predictions.columns]  # the pair, or keyword_id in older partitions
    value = F.col("predicted_value_per_click").cast("double")
    scored = predictions.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("scored"),
        F.min(value).alias("predicted"),  # the lowest break-even where a keyword was scored twice
        F.max(F.when(value.isNull() | F.isnan(value), 1).otherwise(0)).alias("prediction_invalid"),
    )
    joined = rows.join(scored, on=keys, how="full_outer")
    above = (
        F.col("in_files").isNotNull()
        & F.col("scored").isNotNull()
        & F.col("max_cpc").isNotNull()
        & (
            (F.col("prediction_invalid") == 1)
            | (F.col("predicted") * F.lit(1.0 - rule.target_margin) - F.col("max_cpc") < -MONEY_TOLERANCE)
        )
    )
    per_keyword = joined.groupBy(*keys).agg(
        F.coalesce(F.sum("in_files"), F.lit(0)).alias("rows"),
        F.coalesce(F.max("scored"), F.lit(0)).alias("scored"),
        F.sum(F.when(above, 1).otherwise(0)).alias("bids_above_break_even"),
        *[F.sum(rule_name).alias(rule_name) for rule_name in audit.EDITOR_ROW_RULES],
    )
    removed = removed_keywords(inputs) if removed is None else removed
    pairs = [(int(g), int(k)) for g, k in zip(*removed, strict=True)]
    gone = inputs.spark.createDataFrame(pairs, "ad_group_id long, keyword_id long").select(*keys).distinct()
    per_keyword = per_keyword.join(gone.withColumn("removed", F.lit(1)), on=keys, how="left")
    is_removed = F.col("removed").isNotNull()
    pair_known = F.lit(True)
    for key in keys:
        pair_known = pair_known & F.col(key).isNotNull()
    count = lambda condition: F.sum(F.when(condition, 1).otherwise(0))  # noqa: E731
    aggregation = per_keyword.agg(
        F.sum("rows").alias("rows"),
        count(F.col("scored") > 0).alias("keywords"),
        F.sum("bids_above_break_even").alias("bids_above_break_even"),
        F.sum(F.when(F.col("scored") == 0, F.col("rows")).otherwise(0)).alias("rows_not_scored"),
        count((F.col("scored") > 0) & (F.col("rows") == 0) & ~is_removed).alias("keywords_without_row"),
        F.sum(F.when(is_removed, F.col("rows")).otherwise(0)).alias("rows_of_removed_keywords"),
        count(pair_known & (F.col("rows") > 1)).alias("keywords_with_several_rows"),
        count(F.col("scored") > 1).alias("keywords_scored_more_than_once"),
        *[F.sum(rule_name).alias(rule_name) for rule_name in audit.EDITOR_ROW_RULES],
    )
    totals = aggregation.first()
    return {name: int(totals[name] or 0) for name in totals.asDict()}


FLOOR_AND_CEILING_RULES = (
    "rows_without_names",
    "rows_without_ids",
    "unknown_criterion_types",
    "unknown_statuses",
    "malformed_max_cpc",
    "max_cpc_below_floor",
    "max_cpc_above_ceiling",
    "max_cpc_not_positive",
)
BREAK_EVEN_RULES = ("bids_above_break_even", "serving_without_bid", "rows_not_scored")
ONE_ROW_RULES = (
    "keywords_without_row",
    "rows_of_removed_keywords",
    "keywords_with_several_rows",
    "rows_not_scored",
    "keywords_scored_more_than_once",
)


def _bid_suite(inputs: CheckInputs, rules: tuple[str, ...]) -> Suite:
    totals = inputs.once("bid_file_totals", lambda: bid_file_totals(inputs))
    counts = {"rows": totals["rows"], "editor_rows": totals["rows"], "keywords": totals["keywords"]}
    return Suite(totals_frame({r: totals[r] for r in rules}), [at_most(r) for r in rules], counts)


def bids_within_floor_and_ceiling(inputs: CheckInputs) -> Suite:
    """Every row of the Editor files names its campaign, ad group and keyword with whole-number IDs and
    an Editor match type; its Status is Enabled, Paused or blank; its Max CPC is blank or a decimal in
    the currency's format, > 0, within the policy's floor and ceiling."""
    return _bid_suite(inputs, FLOOR_AND_CEILING_RULES)


def bids_never_above_break_even(inputs: CheckInputs) -> Suite:
    """Row for row, on the Editor files as Editor reads them, joined to the predictions by keyword:
    no Max CPC above predicted value per click × (1 − margin) (nor beside a null or NaN
    prediction), no row of a keyword not scored that day, and no row that leaves a keyword serving
    (its Status is not Paused) without a Max CPC, which would leave its live bid in place."""
    return _bid_suite(inputs, BREAK_EVEN_RULES)


def bids_one_row_per_keyword(inputs: CheckInputs) -> Suite:
    """Every keyword of the day's predictions has exactly one row in the Editor files, and every row is
    a keyword of the day (matched on the pair) — except a keyword the day's report says is removed
    (itself, its ad group or campaign: ``removed_keywords``), which Google Ads cannot change and which
    has no row at all."""
    return _bid_suite(inputs, ONE_ROW_RULES)
