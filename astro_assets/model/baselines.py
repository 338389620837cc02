"""The gradient-boosted trees baseline the GRU must beat (XGBoost on the flattened T×F features)."""

from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from astro_assets.model.datasets import TrainingSet


@dataclass(frozen=True)
class GbdtParams:
    """The gradient-boosted trees baseline (XGBoost on the flattened T×F features)."""

    rounds: int = 120
    max_depth: int = 6
    learning_rate: float = 0.1
    seed: int = 42


def fit_gbdt(data: TrainingSet, params: GbdtParams = GbdtParams()) -> xgb.Booster:
    """Click-weighted squared error, like the GRU; ``hist`` trees on 2 threads (deterministic)."""
    matrix = xgb.DMatrix(data.features.reshape(len(data), -1), label=data.target, weight=data.clicks, nthread=2)
    return xgb.train(
        {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "max_depth": params.max_depth,
            "eta": params.learning_rate,
            "nthread": 2,
            "seed": params.seed,
        },
        matrix,
        num_boost_round=params.rounds,
    )


def predict_gbdt(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    matrix = xgb.DMatrix(features.reshape(len(features), -1), nthread=2)
    return np.maximum(booster.predict(matrix), 0.0).astype(np.float32)


#: The ways of predicting next day's value per click that are compared: the model and its baselines.
