"""The comparison on the whole held-out day, streamed: every keyword shard of the day read one
Parquet batch at a time, each predictor run on the batch, the errors summed, the sums turned into the
metrics of ``evaluation.evaluate`` (observed next-day value per click, rows with clicks) and
``evaluation.truth_errors`` (every keyword, against the truth where the source knows it).

Both cores: ``workers`` shards are scored at once, each by its own thread (Parquet decoding, torch,
onnxruntime and XGBoost release the GIL); each shard's sums are kept apart and added in shard order,
so the figures do not depend on which thread finished first.

Memory: per worker, one shard's keys and labels plus one batch of features
(``sampling.FEATURE_BATCH_ROWS`` rows) and its predictions, whatever the keyword count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow.parquet as pq

from astro_assets.core.features import LAGS, N_FEATURES
from astro_assets.core.scoring import features_matrix
from astro_assets.model.sampling import FEATURE_BATCH_ROWS, Stratum, labelled_rows, read_labels

#: A way of predicting: (features [n, T, F], trailing value per click [n]) -> value per click [n].
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: Shards scored at once (the machine's 2 cores; the predictors should then use one thread each).
EVALUATION_WORKERS = 2


class _Sums:
    """Running sums of one predictor's errors."""

    def __init__(self) -> None:
        self.rows = 0
        self.abs = 0.0
        self.clicks = 0.0
        self.click_abs = 0.0
        self.click_squared = 0.0
        self.keywords = 0
        self.truth_abs = 0.0

    def add_observed(self, prediction: np.ndarray, target: np.ndarray, clicks: np.ndarray) -> None:
        error = np.abs(np.asarray(prediction, dtype=np.float64) - target)
        self.rows += len(error)
        self.abs += float(error.sum())
        self.clicks += float(clicks.sum())
        self.click_abs += float((clicks * error).sum())
        self.click_squared += float((clicks * error**2).sum())

    def add_truth(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        self.keywords += len(truth)
        self.truth_abs += float(np.abs(np.asarray(prediction, dtype=np.float64) - truth).sum())

    def add(self, other: _Sums) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


def _score_shard(
    stratum: Stratum, predictors: dict[str, Predictor], truth: Callable[[np.ndarray], np.ndarray] | None
) -> tuple[dict[str, _Sums], int, int]:
    """One shard of the held-out day: each predictor's sums, its keywords and its labelled rows."""
    sums = {name: _Sums() for name in predictors}
    keys = pq.read_table(
        stratum.features_path, columns=["ad_group_id", "keyword_id", "trailing_value_per_click"], use_threads=False
    )
    rows, target, clicks = labelled_rows(keys, read_labels(stratum))
    ids = keys.column("keyword_id").to_numpy()
    trailing = keys.column("trailing_value_per_click").to_numpy(zero_copy_only=False)
    start = 0
    for batch in pq.ParquetFile(stratum.features_path).iter_batches(
        batch_size=FEATURE_BATCH_ROWS, columns=["features"], use_threads=False
    ):
        end = start + batch.num_rows
        features = features_matrix(batch.column(0), LAGS, N_FEATURES)
        lo, hi = np.searchsorted(rows, [start, end])
        local = rows[lo:hi] - start
        expected = truth(ids[start:end]) if truth is not None else None
        for name, predictor in predictors.items():
            prediction = np.asarray(predictor(features, trailing[start:end]), dtype=np.float64)
            sums[name].add_observed(prediction[local], target[lo:hi], clicks[lo:hi])
            if expected is not None:
                sums[name].add_truth(prediction, expected)
        start = end
    return sums, keys.num_rows, len(rows)


def evaluate_day(
    strata: list[Stratum],
    predictors: dict[str, Predictor],
    truth: Callable[[np.ndarray], np.ndarray] | None = None,
    log: Callable[[str], None] = print,
    workers: int = EVALUATION_WORKERS,
) -> tuple[dict[str, float], dict[str, int]]:
    """Each predictor's ``<name>_mae``, ``<name>_click_weighted_mae``, ``<name>_click_weighted_mse``
    over every labelled keyword of the held-out day (``strata``: its shards) and, with ``truth``,
    ``<name>_mae_vs_expected`` over every keyword; and the counts (``holdout_rows``, ``holdout_keywords``).
    ``workers`` shards are scored at once (threads); the predictors must be safe to call from several."""
    sums = {name: _Sums() for name in predictors}
    keywords, labelled, started = 0, 0, time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="heldout") as pool:
        shards = pool.map(lambda stratum: _score_shard(stratum, predictors, truth), strata)
        for i, (shard_sums, shard_keywords, shard_labelled) in enumerate(shards, 1):  # in shard order
            for name, s in shard_sums.items():
                sums[name].add(s)
            keywords += shard_keywords
            labelled += shard_labelled
            log(
                f"held-out day: shard {i}/{len(strata)} scored ({keywords:,} keywords, {labelled:,} with clicks, "
                f"{time.perf_counter() - started:.0f} s)"
            )
    metrics: dict[str, float] = {}
    for name, s in sums.items():
        metrics[f"{name}_mae"] = s.abs / s.rows if s.rows else float("nan")
        metrics[f"{name}_click_weighted_mae"] = s.click_abs / s.clicks if s.clicks else float("nan")
        metrics[f"{name}_click_weighted_mse"] = s.click_squared / s.clicks if s.clicks else float("nan")
        if truth is not None:
            metrics[f"{name}_mae_vs_expected"] = s.truth_abs / s.keywords if s.keywords else float("nan")
    return metrics, {"holdout_rows": labelled, "holdout_keywords": keywords}
