"""The checks of the daily partitions, fast: one pass over the data, Great Expectations on the totals.

The suites of an asset share one read of its partition (``CheckInputs.once``): ``core.audit`` counts
each file in numpy inside Spark tasks (a few tasks per core, each a run of files), the driver sums
the files' counts and hands GX a one-row frame of totals and shares: GX validates and reports every
rule (observed value = the count), without running a Spark job per expectation. Keywords that appear
twice are counted in the same pass: within each file, and across files by their keyword shards (files
that each hold one shard, no two the same, cannot share a keyword); only a partition whose files do
not (an older shard key, rows without ids) is grouped by keyword in Spark. The suites read the
partition being published from its staging folder (``CheckInputs.staged``): write, audit, then publish.
"""

import functools
import json
from collections.abc import Callable

import pyarrow as pa
from pyspark.sql import functions as F

from astro_assets.core import audit
from astro_assets.core.features import FEATURES, KEYWORD_PAIR, RAW_COLUMNS
from astro_assets.stages.spark import map_files
from astro_assets.stages.validation import TASKS_PER_CORE, CheckInputs, Suite, at_most, totals_frame
from astro_assets.storage import DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES

#: Share of nulls tolerated per raw column before the null check warns (README "Checks").
RAW_NULL_TOLERANCE: dict[str, float] = {
    **{column: 0.0 for column in RAW_COLUMNS},
    "conversion_value": 0.10,
    "quality_score": 0.30,
    "search_impression_share": 0.20,
}
#: Share of rows with more conversions than clicks above which the raw check warns: Google Ads counts
#: "every" conversion, so a few are legitimate; many point at a tracking fault.
CONVERSIONS_ABOVE_CLICKS_TOLERANCE = 0.02


def _files(inputs: CheckInputs, asset: str) -> list[str]:
    return [str(path) for path in inputs.layout.parquet_files(inputs.folder(asset))]


def _shards(inputs: CheckInputs, asset: str, files: list[str]) -> int:
    """The keyword shards the partition's files were written with: a raw partition's file names say
    it (``shard-SSSSS-of-NNNNN``); the later stages write one file per shard. A wrong count only
    sends the duplicate count to Spark (``_repeated_keywords``)."""
    counts = {count for count, _ in inputs.layout.shard_files(inputs.folder(asset)).values()}
    return counts.pop() if len(counts) == 1 else max(1, len(files))


def file_totals(inputs: CheckInputs, asset: str, count: Callable[..., audit.Totals]) -> list[audit.Totals]:
    """``count(path, shards)`` (a ``core.audit`` function) of every file of the day's partition of
    ``asset``, in Spark tasks (``TASKS_PER_CORE`` per core, each a run of files: a task costs more
    than a small file); only the per-file totals leave the executors."""
    files = _files(inputs, asset)
    if not files:
        return []
    counted = functools.partial(count, shards=_shards(inputs, asset, files))

    def read(path: str):
        yield pa.RecordBatch.from_arrays([pa.array([json.dumps(counted(path))])], names=["totals"])

    tasks = TASKS_PER_CORE * inputs.spark.sparkContext.defaultParallelism
    return [json.loads(row.totals) for row in map_files(inputs.spark, files, read, "totals string", tasks).collect()]


def summed(per_file: list[audit.Totals]) -> audit.Totals:
    """The files' totals added up (the per-file shard bounds aside)."""
    totals: audit.Totals = {}
    for counts in per_file:
        for name, value in counts.items():
            if name not in audit.SHARD_BOUNDS:
                totals[name] = totals.get(name, 0) + value
    return totals


def _repeated_keywords(inputs: CheckInputs, asset: str, per_file: list[audit.Totals]) -> int:
    """Keywords (ad group, criterion) with more than one row in the day's partition of ``asset``: the
    sum of the files' own repeats when every file with rows holds one keyword shard and no two files
    the same one (then no keyword is in two files), else grouped by keyword in Spark."""
    if shards_disjoint(per_file):
        return sum(t.get("keywords_repeated_in_file", 0) for t in per_file)
    return _duplicate_keywords(inputs, asset)


def shards_disjoint(per_file: list[audit.Totals]) -> bool:
    """Every file with rows holds the rows of one keyword shard, no two files the same shard, and every
    row has both ids: then no keyword can be in two files."""
    shards = [(t["first_shard"], t["last_shard"]) for t in per_file if t.get("rows")]
    return (
        all(first == last >= 0 for first, last in shards)
        and len({first for first, _ in shards}) == len(shards)
        and not any(t.get("rows_without_pair") for t in per_file)
    )


def _duplicate_keywords(inputs: CheckInputs, asset: str) -> int:
    """Keywords with more than one row, grouped in Spark (the files are named: Spark skips a folder
    whose name starts with a dot, as a staging folder's does)."""
    frame = inputs.spark.read.parquet(*_files(inputs, asset))
    key = [c for c in KEYWORD_PAIR if c in frame.columns]
    return frame.groupBy(*key).count().where(F.col("count") > 1).count()


def _audited(inputs: CheckInputs, asset: str, count: Callable[..., audit.Totals]) -> audit.Totals:
    """The summed totals of ``asset``'s files with ``duplicate_keywords``, computed once per check run."""

    def compute() -> audit.Totals:
        per_file = file_totals(inputs, asset, count)
        totals = summed(per_file)
        totals["duplicate_keywords"] = _repeated_keywords(inputs, asset, per_file) if per_file else 0
        return totals

    return inputs.once(f"{asset}_totals", compute)


def _share(totals: dict[str, int], name: str) -> float:
    return totals.get(name, 0) / totals["rows"] if totals.get("rows") else 0.0


# -- raw_features ---------------------------------------------------------------------------------


def raw_totals(inputs: CheckInputs) -> dict[str, int]:
    return _audited(inputs, RAW_FEATURES, audit.audit_raw_file)


def raw_nulls_within_tolerance(inputs: CheckInputs) -> Suite:
    """Nulls (and NaN) per column within their tolerated share."""
    totals = raw_totals(inputs)
    shares = {f"null_share_{c}": _share(totals, f"null_{c}") + _share(totals, f"nan_{c}") for c in RAW_COLUMNS}
    expectations = [at_most(f"null_share_{c}", tolerance) for c, tolerance in RAW_NULL_TOLERANCE.items()]
    return Suite(totals_frame(shares), expectations, {"rows": totals.get("rows", 0)})


def raw_conversions_rarely_exceed_clicks(inputs: CheckInputs) -> Suite:
    """Rows with more conversions than clicks are counted; frequent ones (a tracking fault) warn."""
    totals = raw_totals(inputs)
    share = {"conversions_above_clicks_share": _share(totals, "conversions_above_clicks")}
    counts = {"rows": totals.get("rows", 0), "conversions_above_clicks": totals.get("conversions_above_clicks", 0)}
    return Suite(
        totals_frame(share), [at_most("conversions_above_clicks_share", CONVERSIONS_ABOVE_CLICKS_TOLERANCE)], counts
    )


RAW_RULES = (
    *[f"negative_{m}" for m in audit.NON_NEGATIVE_METRICS],
    "clicks_above_impressions",
    "quality_score_outside_1_10",
    "impression_share_outside_0_1",
    *[f"nan_{c}" for c in RAW_COLUMNS],
)


def raw_metrics_are_consistent(inputs: CheckInputs) -> Suite:
    """Metrics non-negative and not NaN, clicks <= impressions, quality score in 1..10, impression
    share in 0..1, one row per keyword."""
    totals = raw_totals(inputs)
    rules = (*RAW_RULES, "duplicate_keywords")
    return Suite(
        totals_frame({r: totals.get(r, 0) for r in rules}),
        [at_most(r) for r in rules],
        {"rows": totals.get("rows", 0)},
    )


# -- preprocessed_features --------------------------------------------------------------------------


def features_totals(inputs: CheckInputs) -> dict[str, int]:
    return _audited(inputs, PREPROCESSED_FEATURES, audit.audit_features_file)


NO_NULL_RULES = (
    "missing_keyword_attributes",
    "missing_feature_arrays",
    "wrong_length_feature_arrays",
    "missing_feature_values",
    "missing_trailing_value_per_click",
)
RANGE_RULES = (
    *[f"out_of_range_{f.name}" for f in FEATURES],
    "negative_trailing_value_per_click",
    "negative_clicks_in_window",
)


def preprocessed_no_nulls(inputs: CheckInputs) -> Suite:
    totals = features_totals(inputs)
    return Suite(
        totals_frame({r: totals.get(r, 0) for r in NO_NULL_RULES}),
        [at_most(r) for r in NO_NULL_RULES],
        {"rows": totals.get("rows", 0)},
    )


def preprocessed_within_range(inputs: CheckInputs) -> Suite:
    """Every feature value within its documented range, per feature. Preprocessing does not clamp:
    an input outside its physical range (negative clicks, clicks above impressions) shows here."""
    totals = features_totals(inputs)
    return Suite(
        totals_frame({r: totals.get(r, 0) for r in RANGE_RULES}),
        [at_most(r) for r in RANGE_RULES],
        {"rows": totals.get("rows", 0)},
    )


def preprocessed_one_row_per_keyword(inputs: CheckInputs) -> Suite:
    duplicates = features_totals(inputs)["duplicate_keywords"]
    return Suite(totals_frame({"duplicate_keywords": duplicates}), [at_most("duplicate_keywords")])


# -- daily_predictions ------------------------------------------------------------------------------

PREDICTION_RULES = (
    "missing_predictions",
    "non_finite_predictions",
    "negative_predictions",
    "implausible_predictions",
    "missing_model_version",
)


def predictions_totals(inputs: CheckInputs) -> dict[str, int]:
    return _audited(inputs, DAILY_PREDICTIONS, audit.audit_predictions_file)


def predictions_finite_and_non_negative(inputs: CheckInputs) -> Suite:
    totals = predictions_totals(inputs)
    return Suite(
        totals_frame({r: totals.get(r, 0) for r in PREDICTION_RULES}),
        [at_most(r) for r in PREDICTION_RULES],
        {"rows": totals.get("rows", 0)},
    )


def predictions_one_row_per_keyword(inputs: CheckInputs) -> Suite:
    """As many predictions as keywords in the day's features, none twice."""
    expected = sum(audit.file_rows(path) for path in _files(inputs, PREPROCESSED_FEATURES))
    totals = predictions_totals(inputs)
    scored, duplicates = totals.get("rows", 0), totals["duplicate_keywords"]
    frame = totals_frame({"duplicate_keywords": duplicates, "keywords_not_scored": abs(expected - scored)})
    return Suite(
        frame,
        [at_most("duplicate_keywords"), at_most("keywords_not_scored")],
        {"keywords_expected": expected, "rows": scored},
    )
