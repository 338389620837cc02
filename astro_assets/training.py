"""Stage 3, ``trained_model``: a GRU on each keyword's [T, F] history, predicting the next day's
conversion value per click, trained on CPU in PyTorch.

The model must earn its place: on the held-out day it is compared with two baselines on the same
lagged features, the keyword's trailing mean value per click and gradient-boosted trees (XGBoost),
and it is marked for promotion to ``onnx_model`` only when its click-weighted squared error beats the
trailing mean's by ``TrainingConfig.promotion_margin`` (``promotion``).

The standard scaler is fitted here, on the training window only, and stored as buffers of the model
itself: training and prediction apply the very same scaling (it is the first node of the ONNX graph,
and its parameters are in the ONNX metadata).
"""

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pyarrow as pa
import torch
import xgboost as xgb
from dagster_pyspark import PySparkResource
from pyspark.sql import SparkSession
from torch import nn

from astro_assets.features import LAGS, N_FEATURES
from astro_assets.plots import line_plot_markdown, scatter_plot_markdown
from astro_assets.preprocess import MissingHistoryError, read_partition
from astro_assets.resources import AstroStorage, KeywordSource
from astro_assets.scoring import features_matrix
from astro_assets.storage import DataLayout, publishing_dir, publishing_file

HOLDOUT_BATCH_ROWS = 2048


class ValuePerClickModel(nn.Module):
    """Standardise, run a GRU over the T days, map the last state to a value per click >= 0."""

    def __init__(self, n_features: int, hidden_size: int, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.gru = nn.GRU(n_features, hidden_size, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scaled = (features - self.mean) / self.std
        _, last = self.gru(scaled)
        return nn.functional.softplus(self.head(last[-1])).squeeze(-1)


@dataclass
class TrainingSet:
    """Lagged features with the next day's observed value per click (rows with clicks only)."""

    features: np.ndarray  # [N, T, F] float32
    target: np.ndarray  # [N] value per click on the next day
    clicks: np.ndarray  # [N] clicks on the next day (the weight of the target)
    trailing_value_per_click: np.ndarray  # [N] the trailing-mean baseline's prediction

    def __len__(self) -> int:
        return len(self.target)

    def concat(self, other: "TrainingSet") -> "TrainingSet":
        return TrainingSet(
            *(np.concatenate([a, b]) for a, b in zip(self.astuple(), other.astuple(), strict=True))
        )

    def astuple(self) -> tuple[np.ndarray, ...]:
        return (self.features, self.target, self.clicks, self.trailing_value_per_click)


@dataclass(frozen=True)
class TrainingWindow:
    """Feature days whose next day is the target; the last pair is held out for evaluation."""

    train_days: list[dt.date]
    holdout_day: dt.date

    @classmethod
    def ending(cls, end: dt.date, training_days: int) -> "TrainingWindow":
        holdout = end - dt.timedelta(days=1)
        train = [holdout - dt.timedelta(days=training_days - i) for i in range(training_days)]
        return cls(train, holdout)

    @property
    def feature_days(self) -> list[dt.date]:
        return [*self.train_days, self.holdout_day]


def features_array(table: pa.Table, column: str = "features") -> np.ndarray:
    """The list<float> feature column of a table as a [rows, T, F] float32 array."""
    return features_matrix(table.column(column), LAGS, N_FEATURES)


def labelled_set(features: pa.Table, next_day_raw: pa.Table) -> TrainingSet:
    """Day-D features joined with day D+1's observed value per click (keywords with clicks and a known
    conversion value that day), ordered by keyword id."""
    clicks = next_day_raw.column("clicks").to_numpy(zero_copy_only=False).astype(np.float64)
    value = next_day_raw.column("conversion_value").to_numpy(zero_copy_only=False).astype(np.float64)
    labelled = (clicks > 0) & ~np.isnan(value)
    target_ids = next_day_raw.column("keyword_id").to_numpy()[labelled]
    ids = features.column("keyword_id").to_numpy()
    _, rows, target_rows = np.intersect1d(ids, target_ids, assume_unique=True, return_indices=True)
    trailing = features.column("trailing_value_per_click").to_numpy(zero_copy_only=False)
    return TrainingSet(
        features=features_array(features)[rows],
        target=(value[labelled] / clicks[labelled])[target_rows].astype(np.float32),
        clicks=clicks[labelled][target_rows].astype(np.float32),
        trailing_value_per_click=trailing[rows].astype(np.float32),
    )


def concat_sets(parts: list[TrainingSet]) -> TrainingSet:
    if not parts:
        raise MissingHistoryError("no training days")
    result = parts[0]
    for part in parts[1:]:
        result = result.concat(part)
    return result


def load_training_set(spark: SparkSession, layout: DataLayout, days: list[dt.date]) -> TrainingSet:
    parts = []
    for day in days:
        next_day = day + dt.timedelta(days=1)
        raw_path = layout.partition_dir("raw_features", next_day)
        if not (raw_path / "_SUCCESS").exists():
            raise MissingHistoryError(f"raw_features has no partition for {next_day} (the target of {day})")
        features = read_partition(spark, layout, "preprocessed_features", day).select(
            "keyword_id", "features", "trailing_value_per_click"
        ).toArrow()
        raw = spark.read.parquet(str(raw_path)).select("keyword_id", "clicks", "conversion_value").toArrow()
        parts.append(labelled_set(features, raw))
    return concat_sets(parts)


def fit_scaler(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over every row and day of the training window."""
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass(frozen=True)
class TrainingParams:
    epochs: int = 12
    hidden_size: int = 32
    batch_size: int = 1024
    learning_rate: float = 3e-3
    seed: int = 42


def train(data: TrainingSet, params: TrainingParams, log=print) -> tuple[ValuePerClickModel, list[float]]:
    """Fit the model with click-weighted MSE (an estimate of the expected value per click).

    Deterministic for a given seed and data: fixed torch seed, a seeded shuffling generator and a
    fixed thread count.
    """
    torch.manual_seed(params.seed)
    torch.set_num_threads(2)
    mean, std = fit_scaler(data.features)
    model = ValuePerClickModel(N_FEATURES, params.hidden_size, mean, std)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    # One cycle: warm up to the learning rate, then anneal to ~0 (steadier final weights than a flat
    # rate: measured MAE vs truth 0.45 against 0.50 at 20,000 keywords).
    batches = max(1, -(-len(data) // params.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=params.learning_rate, total_steps=max(1, params.epochs * batches)
    )
    x = torch.tensor(data.features)
    y = torch.tensor(data.target)
    w = torch.tensor(data.clicks)
    generator = torch.Generator().manual_seed(params.seed)
    losses: list[float] = []
    for epoch in range(params.epochs):
        order = torch.randperm(len(y), generator=generator)
        total, weight = 0.0, 0.0
        model.train()
        for start in range(0, len(order), params.batch_size):
            idx = order[start : start + params.batch_size]
            prediction = model(x[idx])
            loss = (w[idx] * (prediction - y[idx]) ** 2).sum() / w[idx].sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * float(w[idx].sum())
            weight += float(w[idx].sum())
        losses.append(total / weight)
        log(f"epoch {epoch + 1}/{params.epochs}: click-weighted MSE {losses[-1]:.4f}")
    model.eval()
    return model, losses


def predict(model: ValuePerClickModel, features: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
    with torch.no_grad():
        parts = [
            model(torch.tensor(features[i : i + batch_size])).numpy()
            for i in range(0, len(features), batch_size)
        ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


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
        {"objective": "reg:squarederror", "tree_method": "hist", "max_depth": params.max_depth,
         "eta": params.learning_rate, "nthread": 2, "seed": params.seed},
        matrix, num_boost_round=params.rounds,
    )


def predict_gbdt(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    matrix = xgb.DMatrix(features.reshape(len(features), -1), nthread=2)
    return np.maximum(booster.predict(matrix), 0.0).astype(np.float32)


#: The ways of predicting next day's value per click that are compared: the model and its baselines.
PREDICTORS = ("model", "trailing_mean", "gbdt")


def evaluate(predictions: dict[str, np.ndarray], data: TrainingSet) -> dict[str, float]:
    """Each predictor's error on the same rows against the observed next-day value per click: MAE,
    and absolute and squared error weighted by clicks (days with many clicks measure the value best)."""
    metrics = {}
    for name, prediction in predictions.items():
        error = np.abs(np.asarray(prediction, dtype=np.float64) - data.target)
        metrics[f"{name}_mae"] = float(error.mean())
        metrics[f"{name}_click_weighted_mae"] = float(np.average(error, weights=data.clicks))
        metrics[f"{name}_click_weighted_mse"] = float(np.average(error**2, weights=data.clicks))
    return metrics


def truth_errors(predictions: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, float]:
    """Each predictor's MAE against the true expected value per click, where the source knows it."""
    return {
        f"{name}_mae_vs_expected": float(np.mean(np.abs(np.asarray(prediction, np.float64) - truth)))
        for name, prediction in predictions.items()
    }


def comparison_table(metrics: dict[str, float]) -> str:
    """The predictors side by side (Markdown), one row each, one column per error measure."""
    measures = [("mae", "MAE"), ("click_weighted_mae", "click-weighted MAE"),
                ("click_weighted_mse", "click-weighted MSE"), ("mae_vs_expected", "MAE vs expected")]
    shown = [(key, label) for key, label in measures if f"model_{key}" in metrics]
    lines = ["| predictor | " + " | ".join(label for _, label in shown) + " |",
             "|---" * (len(shown) + 1) + "|"]
    for name in PREDICTORS:
        if f"{name}_{shown[0][0]}" in metrics:
            lines.append(f"| {name} | " + " | ".join(f"{metrics[f'{name}_{key}']:.4f}" for key, _ in shown) + " |")
    return "\n".join(lines)


def promotion(metrics: dict[str, float], margin: float) -> tuple[bool, str]:
    """Whether the model may replace the published one: its click-weighted squared error on the
    held-out day must be at most (1 − margin) × the trailing mean's.

    Squared error, because the model estimates an expected value and squared error is the score an
    expected value minimises; absolute error against one day's observed values rewards their median,
    which for a keyword with few clicks is often 0 (measured at 100,000 keywords: by click-weighted
    MAE the trailing mean looked better, 1.614 vs 1.642, while against the true value the model was
    3.3 times closer)."""
    model, baseline = metrics["model_click_weighted_mse"], metrics["trailing_mean_click_weighted_mse"]
    limit = (1.0 - margin) * baseline
    if np.isfinite(model) and model <= limit:
        return True, (f"click-weighted MSE {model:.4f} <= (1 - {margin}) x trailing mean's {baseline:.4f} "
                      f"= {limit:.4f}")
    return False, (f"click-weighted MSE {model:.4f} does not beat the trailing mean's {baseline:.4f} by "
                   f"the promotion margin {margin} (needs <= {limit:.4f})")


def model_version(model: ValuePerClickModel, end: dt.date) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return f"{end.strftime('%Y%m%d')}-{digest.hexdigest()[:10]}"


def save_trained_model(layout: DataLayout, version: str, model: ValuePerClickModel, params: TrainingParams,
                       holdout: TrainingSet, record: dict) -> None:
    """Publish ``trained_model/<version>/`` (weights, description, a held-out batch) and point
    ``trained_model/latest.json`` at it."""
    with publishing_dir(layout.trained_model_dir() / version) as staging:
        staging.mkdir(parents=True)
        torch.save(
            {"state_dict": model.state_dict(), "hidden_size": params.hidden_size, "n_features": N_FEATURES},
            staging / "model.pt",
        )
        rows = min(HOLDOUT_BATCH_ROWS, len(holdout))
        np.save(staging / "holdout_features.npy", holdout.features[:rows])
        (staging / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    with publishing_file(layout.trained_model_dir() / "latest.json") as tmp:
        tmp.write_text(json.dumps({"version": version}))


def load_trained_model(layout: DataLayout, version: str | None = None) -> tuple[str, ValuePerClickModel, dict, np.ndarray]:
    """The published model (the latest unless ``version`` is given), its record and held-out batch."""
    base = layout.trained_model_dir()
    if version is None:
        pointer = base / "latest.json"
        if not pointer.exists():
            raise FileNotFoundError(f"no trained model at {base}: materialize trained_model first")
        version = json.loads(pointer.read_text())["version"]
    folder = base / version
    saved = torch.load(folder / "model.pt", weights_only=True)
    state = saved["state_dict"]
    model = ValuePerClickModel(saved["n_features"], saved["hidden_size"], state["mean"].numpy(), state["std"].numpy())
    model.load_state_dict(state)
    model.eval()
    record = json.loads((folder / "training.json").read_text())
    return version, model, record, np.load(folder / "holdout_features.npy")


class TrainingConfig(dg.Config):
    """Launch-time settings of a training run (editable in the launchpad)."""

    end_date: str = ""  # last day whose raw report is a target; default: newest raw_features day
    training_days: int = 7
    epochs: int = 12
    hidden_size: int = 32
    batch_size: int = 1024
    learning_rate: float = 3e-3
    seed: int = 42
    #: The model is promoted to onnx_model only if its click-weighted MSE on the held-out day is at
    #: most (1 - promotion_margin) x the trailing mean's.
    promotion_margin: float = 0.05
    gbdt_rounds: int = 120


def resolve_end_date(config: TrainingConfig, layout: DataLayout) -> dt.date:
    if config.end_date:
        return dt.date.fromisoformat(config.end_date)
    days = layout.existing_days("raw_features")
    if not days:
        raise MissingHistoryError(f"no raw_features partitions under {layout.asset_dir('raw_features')}")
    return days[-1]


@dg.asset(
    group_name="model",
    kinds={"pytorch", "spark"},
    pool="spark",
    deps=["preprocessed_features", "raw_features"],
    description="GRU over each keyword's lagged features, predicting next day's value per click.",
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    storage: AstroStorage,
    pyspark: PySparkResource,
    keyword_source: KeywordSource,
) -> dg.MaterializeResult:
    layout = storage.layout
    end = resolve_end_date(config, layout)
    window = TrainingWindow.ending(end, config.training_days)
    present = set(layout.existing_days("preprocessed_features"))
    missing = [d.isoformat() for d in window.feature_days if d not in present]
    if missing:
        raise MissingHistoryError(
            f"training up to {end} needs preprocessed_features for {window.feature_days[0]} .. "
            f"{window.holdout_day}; missing {len(missing)}: {', '.join(missing)}. Backfill them first."
        )
    spark = pyspark.spark_session
    started = time.perf_counter()
    train_set = load_training_set(spark, layout, window.train_days)
    holdout = load_training_set(spark, layout, [window.holdout_day])
    loaded = time.perf_counter()
    params = TrainingParams(config.epochs, config.hidden_size, config.batch_size, config.learning_rate, config.seed)
    context.log.info(f"training on {len(train_set):,} rows from {len(window.train_days)} days")
    model, losses = train(train_set, params, log=context.log.info)
    booster = fit_gbdt(train_set, GbdtParams(rounds=config.gbdt_rounds, seed=config.seed))
    held_out = {"model": predict(model, holdout.features), "trailing_mean": holdout.trailing_value_per_click,
                "gbdt": predict_gbdt(booster, holdout.features)}
    metrics = evaluate(held_out, holdout)
    truth = keyword_source.expected_value_per_click(end)
    if truth is not None:
        # Every keyword scored on the held-out day, against what its next click is really worth.
        scored = read_partition(spark, layout, "preprocessed_features", window.holdout_day).toArrow()
        features = features_array(scored)
        metrics |= truth_errors(
            {"model": predict(model, features), "trailing_mean": scored.column("trailing_value_per_click").to_numpy(),
             "gbdt": predict_gbdt(booster, features)},
            truth(scored.column("keyword_id").to_numpy()),
        )
    promote, reason = promotion(metrics, config.promotion_margin)
    (context.log.info if promote else context.log.warning)(f"promotion: {'yes' if promote else 'no'}, {reason}")
    version = model_version(model, end)
    record = {
        "version": version,
        "end_date": end.isoformat(),
        "train_days": [d.isoformat() for d in window.train_days],
        "holdout_day": window.holdout_day.isoformat(),
        "training_rows": len(train_set),
        "holdout_rows": len(holdout),
        "epochs": params.epochs,
        "loss_per_epoch": losses,
        "params": params.__dict__,
        "promote": promote,
        "promotion_reason": reason,
        **metrics,
    }
    save_trained_model(layout, version, model, params, holdout, record)
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "training_rows": dg.MetadataValue.int(len(train_set)),
            "holdout_day": window.holdout_day.isoformat(),
            "holdout_rows": dg.MetadataValue.int(len(holdout)),
            "epochs": dg.MetadataValue.int(params.epochs),
            "loss_per_epoch": dg.MetadataValue.json([round(v, 5) for v in losses]),
            **{k: dg.MetadataValue.float(round(v, 5)) for k, v in metrics.items()},
            "promote": dg.MetadataValue.bool(promote),
            "promotion_reason": reason,
            "comparison": dg.MetadataValue.md(comparison_table(metrics)),
            "load_seconds": dg.MetadataValue.float(round(loaded - started, 2)),
            "train_seconds": dg.MetadataValue.float(round(time.perf_counter() - loaded, 2)),
            "loss_curve": dg.MetadataValue.md(
                line_plot_markdown({"training loss": losses}, "epoch", "click-weighted MSE", "Training loss")
            ),
            "predicted_vs_actual": dg.MetadataValue.md(
                scatter_plot_markdown(holdout.target, held_out["model"], holdout.clicks,
                                      "observed value per click", "predicted",
                                      f"Held-out day {window.holdout_day + dt.timedelta(days=1)}")
            ),
        }
    )
