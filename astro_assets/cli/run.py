"""``make run`` (``astro-run``): materialise the newest complete day end to end on the embedded defaults.

It fills the raw history the lag window (and, without a model, the training window) needs, trains and
exports a model if none exists yet, then runs the day's predictions and bid file with every check,
through a Dagster instance (``DAGSTER_HOME``) so the runs show in the UI afterwards.
"""

import argparse
import datetime as dt
import os
import sys
import time

import dagster as dg

from astro_assets.cli.environment import require_java
from astro_assets.core.calendar import ONE_DAY, account_today, day_range, runs_of_days
from astro_assets.core.features import LAGS
from astro_assets.defs.freshness import FRESHNESS_CHECKS
from astro_assets.defs.jobs import SPARK_TAG
from astro_assets.defs.partitions import range_tags
from astro_assets.model.datasets import TrainingWindow
from astro_assets.model.training import TrainingPlan
from astro_assets.settings import Settings, SettingsError, load_settings
from astro_assets.storage import (
    BID_FILE,
    DAILY_PREDICTIONS,
    ONNX_MODEL,
    PREPROCESSED_FEATURES,
    RAW_FEATURES,
    TRAINED_MODEL,
    DataLayout,
)


def materialize_day(
    day: dt.date, settings: Settings, instance: dg.DagsterInstance, retrain: bool = False, log=print
) -> list[dg.AssetCheckEvaluation]:
    """Materialise ``day`` end to end; returns the evaluations of the checks run on ``day``."""
    from astro_assets.defs import build_definitions  # loads Spark, torch and GX: after the checks

    defs = build_definitions(settings)
    layout = DataLayout(settings.data_dir)
    training_days = TrainingPlan.training_days
    window = TrainingWindow.ending(day, training_days, TrainingPlan.holdout_days)
    # A published policy: model.onnx, or the careful analyst's table (onnx_model may publish either).
    need_model = retrain or not (layout.onnx_model().exists() or layout.published_policy().exists())
    feature_days = [*window.feature_days, day] if need_model else [day]
    raw_days = day_range(feature_days[0] - dt.timedelta(days=LAGS - 1), day)
    everything = [*defs.assets, *(defs.asset_checks or [])]
    evaluations: list[dg.AssetCheckEvaluation] = []

    def run(
        selection: dg.AssetSelection,
        partition: str | None = None,
        config: dict | None = None,
        days: tuple[dt.date, dt.date] | None = None,
    ) -> None:
        run_config = {**(config or {}), "loggers": {"console": {"config": {"log_level": "INFO"}}}}
        result = dg.materialize(
            everything,
            # Freshness checks are the freshness sensor's to evaluate (at their deadline), not a run's.
            selection=selection - FRESHNESS_CHECKS,
            partition_key=partition,
            instance=instance,
            resources=defs.resources,
            run_config=run_config,
            tags={**SPARK_TAG, **(range_tags(*days) if days else {})},
        )
        evaluations.extend(result.get_asset_check_evaluations())

    def history(asset: str, days: list[dt.date], what: str) -> None:
        """The missing ``days`` of ``asset`` without their checks (history, not the day bid from), one
        run per stretch of consecutive days: a run's start-up costs more than a small day's work."""
        for first, last in runs_of_days(days):
            log(f"astro: {what} {first} .. {last} ({(last - first).days + 1} days; each day logged as published)")
            run(dg.AssetSelection.assets(asset).without_checks(), days=(first, last))

    log(f"astro: {settings.keywords:,} keywords, data in {layout.root}, bidding from {day}")
    have = set(layout.existing_days(RAW_FEATURES))
    history(RAW_FEATURES, [d for d in raw_days if d != day and d not in have], "raw history")
    log(f"astro: raw features for {day}")
    run(dg.AssetSelection.assets(RAW_FEATURES), day.isoformat())
    have = set(layout.existing_days(PREPROCESSED_FEATURES))
    history(PREPROCESSED_FEATURES, [d for d in feature_days if d != day and d not in have], "lagged features")
    log(f"astro: lagged features for {day}")
    run(dg.AssetSelection.assets(PREPROCESSED_FEATURES), day.isoformat())
    if need_model:
        held_out = window.held_out_days
        log(
            f"astro: training on {window.train_days[0]} .. {window.train_days[-1]}, "
            f"held out {held_out[0]} .. {held_out[-1]} for the gate"
        )
        config = {"end_date": day.isoformat(), "training_days": training_days}
        run(dg.AssetSelection.assets(TRAINED_MODEL, ONNX_MODEL), config={"ops": {TRAINED_MODEL: {"config": config}}})
    log(f"astro: predictions and bids for {day}")
    run(dg.AssetSelection.assets(DAILY_PREDICTIONS, BID_FILE), day.isoformat())
    return evaluations


def instance_from_env() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="day to bid from (YYYY-MM-DD); default: yesterday in the account's time zone")
    parser.add_argument("--retrain", action="store_true", help="train a new model even if one exists")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        raise SystemExit(f"astro: {error}") from None
    require_java()
    day = dt.date.fromisoformat(args.date) if args.date else account_today(settings.account_timezone) - ONE_DAY
    started = time.perf_counter()
    # Each step with the run's elapsed time: at 10M keywords the history alone takes minutes.
    evaluations = materialize_day(
        day,
        settings,
        instance_from_env(),
        args.retrain,
        log=lambda m: print(f"{m} [{time.perf_counter() - started:.0f} s]", flush=True),
    )
    failed = [e.check_name for e in evaluations if not e.passed]
    print(
        f"astro: {len(evaluations) - len(failed)}/{len(evaluations)} checks passed"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    bids = DataLayout(settings.data_dir).partition_dir(BID_FILE, day)
    print(f"astro: done in {time.perf_counter() - started:.0f} s; Google Ads Editor files: {bids} (see manifest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
