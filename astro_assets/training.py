"""Stage 3, ``trained_model``: a GRU on each keyword's [T, F] history, predicting the next day's
conversion value per click, trained on CPU in PyTorch.

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
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from torch import nn

from astro_assets.features import LAGS, N_FEATURES
from astro_assets.plots import line_plot_markdown
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


def labelled_features(features: DataFrame, next_day_raw: DataFrame) -> DataFrame:
    """Join day-D features with day D+1's observed value per click (keywords with clicks only)."""
    target = next_day_raw.where((F.col("clicks") > 0) & F.col("conversion_value").isNotNull()).select(
        "keyword_id",
        (F.col("conversion_value") / F.col("clicks")).alias("target"),
        F.col("clicks").cast("double").alias("target_clicks"),
    )
    return features.join(target, "keyword_id").select(
        "keyword_id", "features", "target", "target_clicks", "trailing_value_per_click"
    ).orderBy("keyword_id")


def load_training_set(spark: SparkSession, layout: DataLayout, days: list[dt.date]) -> TrainingSet:
    result: TrainingSet | None = None
    for day in days:
        next_day = day + dt.timedelta(days=1)
        raw_path = layout.partition_dir("raw_features", next_day)
        if not (raw_path / "_SUCCESS").exists():
            raise MissingHistoryError(f"raw_features has no partition for {next_day} (the target of {day})")
        table = labelled_features(
            read_partition(spark, layout, "preprocessed_features", day), spark.read.parquet(str(raw_path))
        ).toArrow()
        part = TrainingSet(
            features=features_array(table),
            target=table.column("target").to_numpy().astype(np.float32),
            clicks=table.column("target_clicks").to_numpy().astype(np.float32),
            trailing_value_per_click=table.column("trailing_value_per_click").to_numpy().astype(np.float32),
        )
        result = part if result is None else result.concat(part)
    assert result is not None, "no training days"
    return result


def fit_scaler(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over every row and day of the training window."""
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass(frozen=True)
class TrainingParams:
    epochs: int = 8
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


def evaluate(prediction: np.ndarray, data: TrainingSet) -> dict[str, float]:
    """Model and trailing-mean errors on the same rows: MAE, and absolute error weighted by clicks."""
    baseline = data.trailing_value_per_click
    return {
        "model_mae": float(np.mean(np.abs(prediction - data.target))),
        "trailing_mean_mae": float(np.mean(np.abs(baseline - data.target))),
        "model_click_weighted_mae": float(np.average(np.abs(prediction - data.target), weights=data.clicks)),
        "trailing_mean_click_weighted_mae": float(np.average(np.abs(baseline - data.target), weights=data.clicks)),
    }


def truth_errors(prediction: np.ndarray, trailing: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Errors against the true expected value per click, where the source knows it (synthetic)."""
    return {
        "model_mae_vs_expected": float(np.mean(np.abs(prediction - truth))),
        "trailing_mean_mae_vs_expected": float(np.mean(np.abs(trailing - truth))),
    }


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
    epochs: int = 8
    hidden_size: int = 32
    batch_size: int = 1024
    learning_rate: float = 3e-3
    seed: int = 42


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
    metrics = evaluate(predict(model, holdout.features), holdout)
    truth = keyword_source.expected_value_per_click(end)
    if truth is not None:
        # Every keyword scored on the held-out day, against what its next click is really worth.
        scored = read_partition(spark, layout, "preprocessed_features", window.holdout_day).toArrow()
        expected = truth(scored.column("keyword_id").to_numpy())
        metrics |= truth_errors(
            predict(model, features_array(scored)), scored.column("trailing_value_per_click").to_numpy(), expected
        )
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
            "load_seconds": dg.MetadataValue.float(round(loaded - started, 2)),
            "train_seconds": dg.MetadataValue.float(round(time.perf_counter() - loaded, 2)),
            "loss_curve": dg.MetadataValue.md(
                line_plot_markdown({"training loss": losses}, "epoch", "click-weighted MSE", "Training loss")
            ),
        }
    )
