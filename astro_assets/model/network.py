"""The model: a GRU over each keyword's [T, F] history, predicting the next day's conversion value per
click, trained on CPU in PyTorch with click-weighted squared error.

The standard scaler is fitted here, on the training window only, and stored as buffers of the model
itself: training and prediction apply the very same scaling (it is the first node of the ONNX graph,
and its parameters are in the ONNX metadata).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from astro_assets.core.features import N_FEATURES
from astro_assets.model.datasets import TrainingSet

#: torch's intra-op threads for training and prediction. One: the GRU's matrices (a 1,024-row batch,
#: 32 hidden units) are too small to split well, and a second OpenMP thread collapses as soon as another
#: process wants a core (measured on the 2-core machine: 2 threads trained 80k rows/s with the machine
#: otherwise idle, but 4.4-4.6k rows/s with one other busy process, where 1 thread trained 66-71k).
#: The second core is left to the other work: XGBoost, fitted at the same time (``model.training``),
#: Spark tasks, and the held-out day scored two shards at a time (``model.heldout``).
TORCH_THREADS = 1


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside the block (process-wide), then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def fit_scaler(features: np.ndarray, chunk_rows: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over every row and day of the training rows, in two
    passes of ``chunk_rows`` rows (float64 sums): a memory-mapped sample is never copied whole."""
    n_features = features.shape[-1]
    rows = len(features)

    def chunks():
        for start in range(0, rows, chunk_rows):
            yield np.asarray(features[start : start + chunk_rows], dtype=np.float64).reshape(-1, n_features)

    count = max(1, rows * int(np.prod(features.shape[1:-1], dtype=np.int64)))
    mean = sum((c.sum(axis=0) for c in chunks()), np.zeros(n_features)) / count
    variance = sum((((c - mean) ** 2).sum(axis=0) for c in chunks()), np.zeros(n_features)) / count
    std = np.sqrt(variance)
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
    torch.set_num_threads(TORCH_THREADS)
    mean, std = fit_scaler(data.features)
    model = ValuePerClickModel(N_FEATURES, params.hidden_size, mean, std)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    # One cycle: warm up to the learning rate, then anneal to ~0 (steadier final weights than a flat
    # rate: measured MAE vs truth 0.45 against 0.50 at 20,000 keywords).
    batches = max(1, -(-len(data) // params.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=params.learning_rate, total_steps=max(1, params.epochs * batches)
    )
    # Mini-batches are gathered from ``data.features`` as they are needed (a memory-mapped sample is
    # read, never copied whole); the per-row target and weight are small and held in memory.
    y = torch.from_numpy(np.asarray(data.target, dtype=np.float32))
    w = torch.from_numpy(np.asarray(data.loss_weight, dtype=np.float32))
    generator = torch.Generator().manual_seed(params.seed)
    losses: list[float] = []
    for epoch in range(params.epochs):
        started = time.perf_counter()
        order = torch.randperm(len(y), generator=generator)
        total, weight = 0.0, 0.0
        model.train()
        for start in range(0, len(order), params.batch_size):
            # The batch's rows in file order (the loss is a sum over the batch: its order is irrelevant).
            idx = torch.sort(order[start : start + params.batch_size]).values
            x = torch.from_numpy(np.ascontiguousarray(data.features[idx.numpy()], dtype=np.float32))
            prediction = model(x)
            loss = (w[idx] * (prediction - y[idx]) ** 2).sum() / w[idx].sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * float(w[idx].sum())
            weight += float(w[idx].sum())
        losses.append(total / weight)
        seconds = time.perf_counter() - started
        log(
            f"epoch {epoch + 1}/{params.epochs}: click-weighted MSE {losses[-1]:.4f} "
            f"({len(y):,} rows in {seconds:.0f} s, {len(y) / max(seconds, 1e-9):,.0f} rows/s)"
        )
    model.eval()
    return model, losses


#: Rows per forward pass when predicting: small enough that a pass's GRU gates stay in the CPU cache
#: (measured on one thread: 262,144 rows in 1.0-1.2 s of CPU at 2,048-8,192 rows a pass, 2.1 s at
#: 65,536; the predictions are the same to the bit).
PREDICT_BATCH_ROWS = 4_096


def predict(model: ValuePerClickModel, features: np.ndarray, batch_size: int = PREDICT_BATCH_ROWS) -> np.ndarray:
    with torch.no_grad():
        parts = [model(torch.tensor(features[i : i + batch_size])).numpy() for i in range(0, len(features), batch_size)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
