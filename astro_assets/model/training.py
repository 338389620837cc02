"""One training run, without Dagster or Spark: fit the GRU and the XGBoost baseline on the training
window, compare them with the trailing mean on the held-out day, decide promotion, and describe it.

``stages.training`` reads the window's partitions and calls :func:`train_candidate`; the
``trained_model`` asset wraps that and shows the result.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from astro_assets.model.baselines import GbdtParams, fit_gbdt, predict_gbdt
from astro_assets.model.datasets import TrainingSet, TrainingWindow, features_array
from astro_assets.model.evaluation import evaluate, promotion, truth_errors
from astro_assets.model.network import TrainingParams, ValuePerClickModel, predict, train


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a training run is configured by (the ``trained_model`` run config converts to it)."""

    training_days: int = 7
    network: TrainingParams = field(default_factory=TrainingParams)
    gbdt: GbdtParams = field(default_factory=GbdtParams)
    #: The model is promoted to onnx_model only if its click-weighted MSE on the held-out day is at
    #: most (1 - promotion_margin) x the trailing mean's.
    promotion_margin: float = 0.05


@dataclass
class TrainedCandidate:
    """A trained model with its held-out comparison, its promotion decision and its record."""

    version: str
    model: ValuePerClickModel
    losses: list[float]
    metrics: dict[str, float]
    promote: bool
    reason: str
    holdout_prediction: np.ndarray  # the model's prediction on the held-out rows (with clicks)
    record: dict


def train_candidate(
    window: TrainingWindow,
    end: dt.date,
    train_set: TrainingSet,
    holdout: TrainingSet,
    plan: TrainingPlan,
    version_of: Callable[[ValuePerClickModel], str],
    scored_holdout=None,
    truth: Callable[[np.ndarray], np.ndarray] | None = None,
    log: Callable[[str], None] = print,
) -> TrainedCandidate:
    """Fit, compare and decide. ``scored_holdout`` (every keyword of the held-out day: keyword_id,
    features, trailing_value_per_click) and ``truth`` (keyword ids -> true value per click) add the
    errors against the truth where the source knows it."""
    log(f"training on {len(train_set):,} rows from {len(window.train_days)} days")
    model, losses = train(train_set, plan.network, log=log)
    gbdt_params = plan.gbdt
    booster = fit_gbdt(train_set, gbdt_params)
    held_out = {
        "model": predict(model, holdout.features),
        "trailing_mean": holdout.trailing_value_per_click,
        "gbdt": predict_gbdt(booster, holdout.features),
    }
    metrics = evaluate(held_out, holdout)
    if truth is not None and scored_holdout is not None:
        # Every keyword scored on the held-out day, against what its next click is really worth.
        features = features_array(scored_holdout)
        metrics |= truth_errors(
            {
                "model": predict(model, features),
                "trailing_mean": scored_holdout.column("trailing_value_per_click").to_numpy(),
                "gbdt": predict_gbdt(booster, features),
            },
            truth(scored_holdout.column("keyword_id").to_numpy()),
        )
    promote, reason = promotion(metrics, plan.promotion_margin)
    version = version_of(model)
    record = {
        "version": version,
        "end_date": end.isoformat(),
        "train_days": [d.isoformat() for d in window.train_days],
        "holdout_day": window.holdout_day.isoformat(),
        "training_rows": len(train_set),
        "holdout_rows": len(holdout),
        "epochs": plan.network.epochs,
        "loss_per_epoch": losses,
        "params": asdict(plan.network),
        "promote": promote,
        "promotion_reason": reason,
        **metrics,
    }
    return TrainedCandidate(version, model, losses, metrics, promote, reason, held_out["model"], record)
