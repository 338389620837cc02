"""The gradient-boosted trees baseline the GRU must beat (XGBoost on the flattened T×F features),
tuned the way the GRU is: the same small budget of configurations, chosen on the same validation
days, with early stopping on them (``tune_gbdt``)."""

from dataclasses import dataclass, replace

import numpy as np
import torch
import xgboost as xgb

from astro_assets.core.features import FEATURE_NAMES, N_FEATURES
from astro_assets.model.datasets import TrainingSet
from astro_assets.model.registry import TRAILING_MEAN_SUFFIX


@dataclass(frozen=True)
class GbdtParams:
    """The gradient-boosted trees baseline (XGBoost on the flattened T×F features). ``rounds`` is the
    most rounds; with validation data, training stops after ``early_stopping`` rounds without progress."""

    rounds: int = 120
    max_depth: int = 6
    learning_rate: float = 0.1
    seed: int = 42
    early_stopping: int = 20


#: The configurations tried (the GRU gets as many: ``training.NETWORK_GRID``); rounds by early stopping.
GBDT_GRID: tuple[GbdtParams, ...] = (
    GbdtParams(rounds=400, max_depth=4, learning_rate=0.1),
    GbdtParams(rounds=400, max_depth=6, learning_rate=0.1),
    GbdtParams(rounds=400, max_depth=8, learning_rate=0.05),
)


def _matrix(data: TrainingSet, threads: int = 2) -> xgb.DMatrix:
    return xgb.DMatrix(
        data.features.reshape(len(data), -1), label=data.target, weight=data.loss_weight, nthread=threads
    )


def fit_gbdt(
    data: TrainingSet, params: GbdtParams = GbdtParams(), validation: TrainingSet | None = None, threads: int = 2
) -> xgb.Booster:
    """Click-weighted squared error, like the GRU; ``hist`` trees on ``threads`` threads (deterministic,
    and the same trees whatever the thread count: measured equal predictions with 1 and 2). With
    ``validation``, stops when its click-weighted squared error has not improved for
    ``params.early_stopping`` rounds and keeps the best round (``booster.best_iteration``)."""
    settings = {
        "objective": "reg:squarederror",
        "tree_method": "hist",
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "nthread": threads,
        "seed": params.seed,
    }
    if validation is None or len(validation) == 0:
        return xgb.train(settings, _matrix(data, threads), num_boost_round=params.rounds)
    # xgboost.train(evals=..., early_stopping_rounds=...) keeps best_iteration on the booster; the
    # last data set of evals decides (XGBoost Python API docs, "Early Stopping").
    return xgb.train(
        settings,
        _matrix(data, threads),
        num_boost_round=params.rounds,
        evals=[(_matrix(validation, threads), "validation")],
        early_stopping_rounds=params.early_stopping,
        verbose_eval=False,
    )


def predict_gbdt(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    # inplace_predict: no DMatrix copy of the batch (the same predictions at about half the CPU,
    # measured on 65,536 rows); thread-safe for tree boosters since XGBoost 1.4, so the held-out day's
    # shards may be scored at once (https://xgboost.readthedocs.io/en/stable/prediction.html, "Thread Safety").
    best = getattr(booster, "best_iteration", None)
    rounds = (0, best + 1) if best is not None else (0, 0)
    prediction = booster.inplace_predict(np.asarray(features).reshape(len(features), -1), iteration_range=rounds)
    return np.maximum(prediction, 0.0).astype(np.float32)


def weighted_mse(prediction: np.ndarray, data: TrainingSet) -> float:
    """Click-weighted squared error against the observed value per click (the loss both models fit)."""
    error = np.asarray(prediction, dtype=np.float64) - data.target
    return float(np.average(error**2, weights=data.clicks)) if len(data) and data.clicks.sum() > 0 else float("inf")


def tune_gbdt(
    data: TrainingSet, validation: TrainingSet, grid: tuple[GbdtParams, ...] = GBDT_GRID, seed: int = 42
) -> tuple[xgb.Booster, GbdtParams, dict[str, float]]:
    """Each configuration of ``grid`` with early stopping on ``validation``; the one with the lowest
    click-weighted validation MSE, its parameters (``rounds`` = the rounds kept) and every score."""
    best = None
    scores = {}
    for params in grid:
        params = replace(params, seed=seed)
        booster = fit_gbdt(data, params, validation)
        score = weighted_mse(predict_gbdt(booster, validation.features), validation)
        rounds = getattr(booster, "best_iteration", params.rounds - 1) + 1
        scores[f"depth{params.max_depth}_eta{params.learning_rate}_rounds{rounds}"] = score
        if best is None or score < best[0]:
            best = (score, booster, replace(params, rounds=rounds))
    return best[1], best[2], scores


class TrailingMeanModel(torch.nn.Module):
    """The trailing-mean baseline as a model the platform can publish (``model.onnx``) when the gate
    finds it the best policy: each keyword's mean value per click over the days of its window with
    clicks, computed from the features themselves (``log_clicks``, ``log_value_per_click``), so the
    predict path, the checks and the bid file work unchanged. ``mean``/``std`` (0, 1) only fill the
    ONNX description's scaler entry: nothing is scaled."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(N_FEATURES))
        self.register_buffer("std", torch.ones(N_FEATURES))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        clicked = (features[:, :, FEATURE_NAMES.index("log_clicks")] > 0).to(features.dtype)
        # exp(x) - 1, not expm1: opset 17 has no Expm1 (float32 error ~1e-7 relative, measured in test_gate).
        value_per_click = torch.exp(features[:, :, FEATURE_NAMES.index("log_value_per_click")]) - 1.0
        return (value_per_click * clicked).sum(dim=1) / clicked.sum(dim=1).clamp(min=1.0)


def trailing_mean_version(end) -> str:
    """The version of the published trailing-mean baseline trained (nothing to train) up to ``end``."""
    return f"{end.strftime('%Y%m%d')}{TRAILING_MEAN_SUFFIX}"
