"""Asset checks: each one a Great Expectations suite (``stages.validation``) run on the stored day.

One factory (:func:`gx_asset_check`) turns a :class:`CheckSpec` into a Dagster asset check: it reads
the resources, runs the suite, and shows every expectation's counts in the UI. Checks that guard what
is published are blocking with ERROR severity: a failure stops the downstream assets of the same run.
A new check is a suite function and one line in :data:`CHECK_SPECS`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from astro_assets.stages import validation as v
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES, partition_date

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
        v.raw_nulls_within_tolerance,
        "Nulls per column stay within the stated tolerance (conversion value 10%, quality score 30%, "
        "impression share 20%, every other column 0%).",
    ),
    CheckSpec(
        "raw_features_metrics_are_consistent",
        RAW_FEATURES,
        ERROR,
        v.raw_metrics_are_consistent,
        "Metrics are non-negative and consistent (clicks <= impressions, conversions <= clicks), "
        "quality score in 1..10, impression share in 0..1, one row per keyword.",
    ),
    CheckSpec(
        "preprocessed_features_have_no_nulls",
        PREPROCESSED_FEATURES,
        ERROR,
        v.preprocessed_no_nulls,
        "No nulls or NaNs after null replacement: every keyword has its attributes and a full T×F array.",
    ),
    CheckSpec(
        "preprocessed_features_within_range",
        PREPROCESSED_FEATURES,
        ERROR,
        v.preprocessed_within_range,
        "Every feature value lies within its documented range (features.FEATURES), baselines >= 0.",
    ),
    CheckSpec(
        "preprocessed_features_one_row_per_keyword",
        PREPROCESSED_FEATURES,
        ERROR,
        v.preprocessed_one_row_per_keyword,
        "Exactly one row per keyword.",
    ),
    CheckSpec(
        "daily_predictions_are_finite_and_non_negative",
        DAILY_PREDICTIONS,
        ERROR,
        v.predictions_finite_and_non_negative,
        "Every prediction is present, finite and >= 0.",
    ),
    CheckSpec(
        "daily_predictions_one_row_per_keyword",
        DAILY_PREDICTIONS,
        ERROR,
        v.predictions_one_row_per_keyword,
        "One prediction per keyword of the day's preprocessed features: no keyword lost, none twice.",
    ),
    CheckSpec(
        "bid_file_max_cpc_within_floor_and_ceiling",
        BID_FILE,
        ERROR,
        v.bids_within_floor_and_ceiling,
        "Every Max CPC in the uploaded CSV is a number > 0 within the policy's floor and ceiling, and every "
        "row names its campaign, ad group, keyword and match type.",
        uses_bid_policy=True,
    ),
    CheckSpec(
        "bid_file_never_bids_above_break_even",
        BID_FILE,
        ERROR,
        v.bids_never_above_break_even,
        "No bid above predicted value per click × (1 − target margin): every click bought is expected to "
        "earn more than it costs. Checked on the audit table written beside the CSV, row for row.",
        uses_bid_policy=True,
    ),
)


def check_result(
    validation: v.Validation, severity: dg.AssetCheckSeverity, counts: dict[str, int]
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=validation.success,
        severity=severity,
        metadata={
            "rows": dg.MetadataValue.int(validation.rows),
            "failed_expectations": dg.MetadataValue.int(sum(not r["success"] for r in validation.results)),
            "results": dg.MetadataValue.md(validation.table_markdown()),
            "results_json": dg.MetadataValue.json(validation.results),
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
        },
    )


def gx_asset_check(spec: CheckSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetChecksDefinition:
    """The Dagster asset check that runs ``spec.suite`` on the partition's day."""

    @dg.asset_check(
        name=spec.name,
        asset=spec.asset,
        partitions_def=partitions_def,
        blocking=spec.severity == ERROR,
        description=spec.description,
        required_resource_keys={"storage", "pyspark", *(["bid_policy"] if spec.uses_bid_policy else [])},
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        resources = context.resources
        inputs = v.CheckInputs(
            spark=resources.pyspark.spark_session,
            layout=resources.storage.layout,
            day=partition_date(context.partition_key),
            **({"rule": resources.bid_policy.to_rule()} if spec.uses_bid_policy else {}),
        )
        validation, counts = v.run_suite(spec.name, spec.suite, inputs)
        return check_result(validation, spec.severity, counts)

    return _check


def asset_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    return [gx_asset_check(spec, partitions_def) for spec in CHECK_SPECS]
