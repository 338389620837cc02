"""The checks of the daily partitions, fast: one pass over the data, Great Expectations on the totals.

Each suite reads its partition once (``core.audit``, one Spark task per file, numpy per batch), sums
the files' counts on the driver, and hands GX a one-row frame of totals and shares: GX validates and
reports every rule (observed value = the count), without running a Spark job per expectation. One
Spark aggregation per asset counts keywords that appear twice. The suites read the partition being
published from its staging folder (``CheckInputs.staged``): write, audit, then publish.
"""

from pyspark.sql import functions as F

from astro_assets.core import audit
from astro_assets.core.bid_rule import KEYWORD_PAIR
from astro_assets.core.features import FEATURES, RAW_COLUMNS
from astro_assets.stages.spark import sum_file_totals
from astro_assets.stages.validation import CheckInputs, Suite, at_most, totals_frame
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


def _duplicate_keywords(inputs: CheckInputs, asset: str) -> int:
    """Keywords (ad group, criterion) with more than one row in the day's partition of ``asset``."""
    frame = inputs.read(asset)
    key = [c for c in KEYWORD_PAIR if c in frame.columns]
    return frame.groupBy(*key).count().where(F.col("count") > 1).count()


def _share(totals: dict[str, int], name: str) -> float:
    return totals.get(name, 0) / totals["rows"] if totals.get("rows") else 0.0


# -- raw_features ---------------------------------------------------------------------------------


def raw_totals(inputs: CheckInputs) -> dict[str, int]:
    return inputs.once(
        "raw_totals", lambda: sum_file_totals(inputs.spark, _files(inputs, RAW_FEATURES), audit.audit_raw_file)
    )


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
    totals["duplicate_keywords"] = _duplicate_keywords(inputs, RAW_FEATURES)
    rules = (*RAW_RULES, "duplicate_keywords")
    return Suite(
        totals_frame({r: totals.get(r, 0) for r in rules}),
        [at_most(r) for r in rules],
        {"rows": totals.get("rows", 0)},
    )


# -- preprocessed_features --------------------------------------------------------------------------


def features_totals(inputs: CheckInputs) -> dict[str, int]:
    return inputs.once(
        "features_totals",
        lambda: sum_file_totals(inputs.spark, _files(inputs, PREPROCESSED_FEATURES), audit.audit_features_file),
    )


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
    duplicates = _duplicate_keywords(inputs, PREPROCESSED_FEATURES)
    return Suite(totals_frame({"duplicate_keywords": duplicates}), [at_most("duplicate_keywords")])


# -- daily_predictions ------------------------------------------------------------------------------

PREDICTION_RULES = (
    "missing_predictions",
    "non_finite_predictions",
    "negative_predictions",
    "implausible_predictions",
    "missing_model_version",
)


def predictions_finite_and_non_negative(inputs: CheckInputs) -> Suite:
    totals = sum_file_totals(inputs.spark, _files(inputs, DAILY_PREDICTIONS), audit.audit_predictions_file)
    return Suite(
        totals_frame({r: totals.get(r, 0) for r in PREDICTION_RULES}),
        [at_most(r) for r in PREDICTION_RULES],
        {"rows": totals.get("rows", 0)},
    )


def predictions_one_row_per_keyword(inputs: CheckInputs) -> Suite:
    """As many predictions as keywords in the day's features, none twice."""
    expected = sum(audit.file_rows(path) for path in _files(inputs, PREPROCESSED_FEATURES))
    scored = sum(audit.file_rows(path) for path in _files(inputs, DAILY_PREDICTIONS))
    duplicates = _duplicate_keywords(inputs, DAILY_PREDICTIONS)
    frame = totals_frame({"duplicate_keywords": duplicates, "keywords_not_scored": abs(expected - scored)})
    return Suite(
        frame,
        [at_most("duplicate_keywords"), at_most("keywords_not_scored")],
        {"keywords_expected": expected, "rows": scored},
    )
