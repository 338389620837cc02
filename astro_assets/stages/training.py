"""``trained_model``: read the training window's partitions and run one training (``model.training``).

The window's feature days and their next-day raw reports are read through Spark, the candidate is
trained, compared and described by ``model.training.train_candidate``, then saved as a version of
``trained_model`` (``model.checkpoint``).
"""

import datetime as dt
from collections.abc import Callable

import numpy as np
from pyspark.sql import SparkSession

from astro_assets.core.calendar import ONE_DAY
from astro_assets.model.checkpoint import model_version, save_trained_model
from astro_assets.model.datasets import TrainingSet, TrainingWindow, concat_sets, labelled_set
from astro_assets.model.training import TrainedCandidate, TrainingPlan, train_candidate
from astro_assets.storage import PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout, MissingPartitionError


def load_training_set(spark: SparkSession, layout: DataLayout, days: list[dt.date]) -> TrainingSet:
    """Each feature day of ``days`` labelled with its next day's observed value per click."""
    parts = []
    for day in days:
        next_day = day + ONE_DAY
        features = (
            spark.read.parquet(str(layout.require_published(PREPROCESSED_FEATURES, day)))
            .select("keyword_id", "features", "trailing_value_per_click")
            .toArrow()
        )
        raw_path = layout.require_published(RAW_FEATURES, next_day)
        raw = spark.read.parquet(str(raw_path)).select("keyword_id", "clicks", "conversion_value").toArrow()
        parts.append(labelled_set(features, raw))
    return concat_sets(parts)


def resolve_end_date(end_date: dt.date | None, layout: DataLayout) -> dt.date:
    """The last day whose raw report is a target: ``end_date``, else the newest raw_features day."""
    if end_date is not None:
        return end_date
    days = layout.existing_days(RAW_FEATURES)
    if not days:
        raise MissingPartitionError(f"no raw_features partitions under {layout.asset_dir(RAW_FEATURES)}")
    return days[-1]


def train_on_window(
    spark: SparkSession,
    layout: DataLayout,
    end: dt.date,
    plan: TrainingPlan,
    truth: Callable[[np.ndarray], np.ndarray] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[TrainingWindow, TrainingSet, TrainedCandidate]:
    """Train on the ``plan.training_days`` feature days before the held-out day ending at ``end``,
    save the candidate as a ``trained_model`` version and return it with its window and held-out set."""
    window = TrainingWindow.ending(end, plan.training_days)
    layout.require_days(PREPROCESSED_FEATURES, window.feature_days, f"training up to {end}")
    train_set = load_training_set(spark, layout, window.train_days)
    holdout = load_training_set(spark, layout, [window.holdout_day])
    scored = None
    if truth is not None:
        scored = spark.read.parquet(str(layout.require_published(PREPROCESSED_FEATURES, window.holdout_day))).toArrow()
    candidate = train_candidate(
        window,
        end,
        train_set,
        holdout,
        plan,
        lambda model: model_version(model, end),
        scored_holdout=scored,
        truth=truth,
        log=log,
    )
    save_trained_model(layout, candidate.version, candidate.model, plan.network, holdout, candidate.record)
    return window, holdout, candidate
