"""Asset checks: each one a Great Expectations suite (``stages.audits``, ``stages.validation``).

A :class:`CheckSpec` names a check, its asset, its severity and its suite. The daily assets run their
own specs on the staged partition before publishing it (write-audit-publish, ``defs.daily``); the
Dagster UI shows each as a check on the asset, blocking with ERROR severity. A new check is a suite
function and one line in :data:`CHECK_SPECS`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from astro_assets.stages import audits as a
from astro_assets.stages import validation as v
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class CheckSpec:
    name: str
    asset: str
    severity: dg.AssetCheckSeverity
    suite: Callable[[v.CheckInputs], v.Suite]
    description: str
    #: The suite reads the bid rule (the ``bid_policy`` resource).
    uses_bid_policy: bool = False


CHECK_SPECS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "raw_features_nulls_within_tolerance",
        RAW_FEATURES,
        WARN,
        a.raw_nulls_within_tolerance,
        "Nulls per column stay within the stated tolerance (conversion value 10%, quality score 30%, "
        "impression share 20%, every other column 0%).",
    ),
    CheckSpec(
        "raw_features_conversions_rarely_exceed_clicks",
        RAW_FEATURES,
        WARN,
        a.raw_conversions_rarely_exceed_clicks,
        "Rows with more conversions than clicks are counted (Google Ads' 'every' conversion counting makes "
        "some legitimate); more than 2% of the day's rows warns of a tracking fault. Never blocks.",
    ),
    CheckSpec(
        "raw_features_metrics_are_consistent",
        RAW_FEATURES,
        ERROR,
        a.raw_metrics_are_consistent,
        "Metrics are non-negative and not NaN, clicks <= impressions, quality score in 1..10, impression "
        "share in 0..1, one row per keyword (ad group, criterion).",
    ),
    CheckSpec(
        "preprocessed_features_have_no_nulls",
        PREPROCESSED_FEATURES,
        ERROR,
        a.preprocessed_no_nulls,
        "No nulls or NaNs after null replacement: every keyword has its attributes and a full T×F array.",
    ),
    CheckSpec(
        "preprocessed_features_within_range",
        PREPROCESSED_FEATURES,
        ERROR,
        a.preprocessed_within_range,
        "Every feature value lies within its documented range (features.FEATURES), baselines >= 0.",
    ),
    CheckSpec(
        "preprocessed_features_one_row_per_keyword",
        PREPROCESSED_FEATURES,
        ERROR,
        a.preprocessed_one_row_per_keyword,
        "Exactly one row per keyword.",
    ),
    CheckSpec(
        "daily_predictions_are_finite_and_non_negative",
        DAILY_PREDICTIONS,
        ERROR,
        a.predictions_finite_and_non_negative,
        "Every prediction is present, finite and >= 0.",
    ),
    CheckSpec(
        "daily_predictions_one_row_per_keyword",
        DAILY_PREDICTIONS,
        ERROR,
        a.predictions_one_row_per_keyword,
        "One prediction per keyword of the day's preprocessed features: no keyword lost, none twice.",
    ),
    CheckSpec(
        "bid_file_max_cpc_within_floor_and_ceiling",
        BID_FILE,
        ERROR,
        v.bids_within_floor_and_ceiling,
        "In the Editor files as Editor reads them (UTF-16, tab-separated): every Max CPC written is a number "
        "> 0 within the policy's floor and ceiling in the currency's format, every status Enabled, Paused or "
        "blank, and every row names its campaign, ad group and keyword with their IDs, and its match type.",
        uses_bid_policy=True,
    ),
    CheckSpec(
        "bid_file_never_bids_above_break_even",
        BID_FILE,
        ERROR,
        v.bids_never_above_break_even,
        "No bid above predicted value per click × (1 − target margin), and no keyword left serving without "
        "a bid (its live bid would stay): checked on the Editor files as Editor reads them, joined to the "
        "predictions by keyword (ad group id, keyword id), row for row.",
        uses_bid_policy=True,
    ),
    CheckSpec(
        "bid_file_sets_every_keyword_once",
        BID_FILE,
        ERROR,
        v.bids_one_row_per_keyword,
        "Every keyword of the day's predictions has exactly one row in the Editor files (its Max CPC, or "
        "Paused), and every row is a keyword of the day; a keyword the day's report says is removed (itself, "
        "its ad group or campaign) has none: Google Ads accepts no change to a removed keyword.",
    ),
)


def check_result(spec: CheckSpec, validation: v.Validation, counts: dict[str, int]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=spec.name,
        asset_key=spec.asset,
        passed=validation.success,
        severity=spec.severity,
        metadata={
            "rows": dg.MetadataValue.int(validation.rows),
            "failed_expectations": dg.MetadataValue.int(sum(not r["success"] for r in validation.results)),
            "results": dg.MetadataValue.md(validation.table_markdown()),
            "results_json": dg.MetadataValue.json(validation.results),
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
        },
    )


def failure_summary(spec: CheckSpec, validation: v.Validation) -> str:
    """One line: the check and each failed expectation's column with its count (or observed value)."""
    failed = []
    for r in validation.results:
        if not r["success"]:
            count = r["observed_value"] if r["unexpected_count"] is None else r["unexpected_count"]
            failed.append(f"{r['column'] or r['expectation']}={count}")
    return f"{spec.name} ({', '.join(failed)})"


def gates(asset: str) -> tuple[CheckSpec, ...]:
    """The checks an asset runs on its staged partition before publishing it."""
    return tuple(spec for spec in CHECK_SPECS if spec.asset == asset)
