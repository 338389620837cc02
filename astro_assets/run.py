"""``make run``: materialise the newest complete day end to end on the embedded defaults.

It fills the raw history the lag window (and, without a model, the training window) needs, trains and
exports a model if none exists yet, then runs the day's predictions and bid file with every check,
through a Dagster instance (``DAGSTER_HOME``) so the runs show in the UI afterwards.
"""

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import time

import dagster as dg

from astro_assets.features import LAGS
from astro_assets.settings import SettingsError, load_settings
from astro_assets.storage import DataLayout
from astro_assets.training import TrainingWindow

TRAINING_DAYS = 7


def require_java() -> None:
    """Spark needs Java 17 or 21: stop with a clear message when it is missing."""
    java = shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin")) if os.environ.get("JAVA_HOME") \
        else shutil.which("java")
    if java is None:
        raise SystemExit(
            "astro: Java was not found. Spark needs Java 17 or 21: install it (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    version = out.split('"')[1] if '"' in out else out
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if major not in (17, 21):
        raise SystemExit(f"astro: Spark needs Java 17 or 21, found {version!r} at {java}; install 17 or 21.")


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def materialize_day(day: dt.date, settings, instance: dg.DagsterInstance, retrain: bool = False,
                    log=print) -> list[dg.AssetCheckEvaluation]:
    """Materialise ``day`` end to end; returns the evaluations of the checks run on ``day``."""
    from astro_assets.definitions import ASSETS, defs  # loads Spark, torch and GX: after the checks

    layout = DataLayout(settings.data_dir)
    need_model = retrain or not layout.onnx_model().exists()
    feature_days = days(day - dt.timedelta(days=TRAINING_DAYS + 1), day) if need_model else [day]
    raw_days = days(feature_days[0] - dt.timedelta(days=LAGS - 1), day)
    everything = [*ASSETS, *(defs.asset_checks or [])]
    evaluations: list[dg.AssetCheckEvaluation] = []

    def run(selection: dg.AssetSelection, partition: str | None = None, config: dict | None = None) -> None:
        run_config = {**(config or {}), "loggers": {"console": {"config": {"log_level": "INFO"}}}}
        result = dg.materialize(everything, selection=selection, partition_key=partition, instance=instance,
                                resources=defs.resources, run_config=run_config, tags={"astro/spark": "true"})
        evaluations.extend(result.get_asset_check_evaluations())

    log(f"astro: {settings.keywords:,} keywords, data in {layout.root}, bidding from {day}")
    have = set(layout.existing_days("raw_features"))
    history = [d for d in raw_days if d != day and d not in have]
    for i, d in enumerate(history, 1):
        log(f"astro: raw history {i}/{len(history)}: {d}")
        run(dg.AssetSelection.assets("raw_features").without_checks(), d.isoformat())
    log(f"astro: raw features for {day}")
    run(dg.AssetSelection.assets("raw_features"), day.isoformat())
    have = set(layout.existing_days("preprocessed_features"))
    history = [d for d in feature_days if d != day and d not in have]
    for i, d in enumerate(history, 1):
        log(f"astro: lagged features {i}/{len(history)}: {d}")
        run(dg.AssetSelection.assets("preprocessed_features").without_checks(), d.isoformat())
    log(f"astro: lagged features for {day}")
    run(dg.AssetSelection.assets("preprocessed_features"), day.isoformat())
    if need_model:
        window = TrainingWindow.ending(day, TRAINING_DAYS)
        log(f"astro: training on {window.train_days[0]} .. {window.train_days[-1]}, held out {window.holdout_day}")
        config = {"end_date": day.isoformat(), "training_days": TRAINING_DAYS}
        run(dg.AssetSelection.assets("trained_model", "onnx_model"), config={"ops": {"trained_model": {"config": config}}})
    log(f"astro: predictions and bids for {day}")
    run(dg.AssetSelection.assets("daily_predictions", "bid_file"), day.isoformat())
    return evaluations


def instance_from_env() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="day to bid from (YYYY-MM-DD); default: yesterday, UTC")
    parser.add_argument("--retrain", action="store_true", help="train a new model even if one exists")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        raise SystemExit(f"astro: {error}") from None
    require_java()
    day = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    started = time.perf_counter()
    evaluations = materialize_day(day, settings, instance_from_env(), args.retrain, log=lambda m: print(m, flush=True))
    failed = [e.check_name for e in evaluations if not e.passed]
    print(f"astro: {len(evaluations) - len(failed)}/{len(evaluations)} checks passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    print(f"astro: done in {time.perf_counter() - started:.0f} s; bid file: {DataLayout(settings.data_dir).bid_file(day)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
