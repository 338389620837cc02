"""Declarative automation: a late re-ingest of a raw day (late conversions) brings what depends on it
up to date by itself.

Each daily asset after ``raw_features`` carries :func:`late_data_condition`: a partition is requested
when one of its upstream partitions was updated (or is requested on the same evaluation), within the
last :data:`LATE_DAYS` days, once none of its upstream partitions is missing or in progress.
Dagster's ``AutomationCondition.eager()`` is the same but looks at the latest partition only, which
misses exactly this case: a re-ingested day D feeds the features of D..D+6 (the lag window's
``TimeWindowPartitionMapping``), then their predictions and bids, all in the past. Because a
dependency that "will be requested" counts as updated, one evaluation requests the whole chain
(features, predictions, bids of the affected days). A new ``onnx_model`` does not re-score history
(it is ignored: the next daily run uses it). A daily run that materialises raw, features, predictions
and bids together triggers nothing (Dagster ignores a parent updated by a run that also updated the
child).

The conditions are evaluated by :data:`AUTOMATION_SENSOR`, which starts off like the schedules:
``ASTRO_AUTOMATION=on`` starts it on, or turn it on in the UI (Automation) with ``dagster dev`` running
(its daemon evaluates the sensor every :data:`EVALUATION_SECONDS`).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from astro_assets.defs.jobs import SPARK_TAG
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, ONNX_MODEL, PREPROCESSED_FEATURES

AUTOMATION_SENSOR = "late_data_automation_sensor"
#: How far back a re-ingested day still updates what depends on it: Google Ads credits conversions to
#: the click's day for up to 30 days (the default conversion window), so late figures arrive that long.
LATE_DAYS = 30
EVALUATION_SECONDS = 60
#: The assets that follow a raw day.
AUTOMATED_ASSETS = (PREPROCESSED_FEATURES, DAILY_PREDICTIONS, BID_FILE)


def late_data_condition() -> dg.AutomationCondition:
    return (
        dg.AutomationCondition.in_latest_time_window(dt.timedelta(days=LATE_DAYS))
        & dg.AutomationCondition.any_deps_updated().ignore(dg.AssetSelection.assets(ONNX_MODEL)).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"late data: upstream day updated in the last {LATE_DAYS} days")


def with_automation(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """``assets`` with :func:`late_data_condition` on each of :data:`AUTOMATED_ASSETS`."""
    condition = late_data_condition()

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key.to_user_string() in AUTOMATED_ASSETS:
            return spec.replace_attributes(automation_condition=condition)
        return spec

    return [asset.map_asset_specs(apply) for asset in assets]


def automation_sensor(enabled: bool) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the daily assets' conditions; running from the start only when ``enabled``
    (``ASTRO_AUTOMATION``). Its runs carry the Spark tag, so the instance runs them one at a time."""
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=dg.AssetSelection.assets(*AUTOMATED_ASSETS),
        run_tags=SPARK_TAG,
        default_status=dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=EVALUATION_SECONDS,
        description=f"Re-ingested raw days bring features, predictions and bids of the last {LATE_DAYS} days "
        "up to date (late conversions).",
    )
