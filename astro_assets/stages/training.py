"""``trained_model``: sample the training window where it lies, train on the sample, compare on the
whole held-out day, and save the candidate (``model.training``, ``model.checkpoint``).

Nothing of the window is collected to the driver. The training sample (``model.sampling``) is drawn
by Spark tasks, one per keyword shard and day, that write their rows straight into memory-mapped
arrays under ``DataLayout.training_sample_dir``; torch and XGBoost train from those arrays. The
held-out days are compared twice: the gate (``evaluation.gate``) on a uniform sample of each held-out
day's rows (``HOLDOUT_GATE_ROWS`` over the ``TrainingPlan.holdout_days`` days: ``gate_rows``), and the
reported metrics on every keyword of the last one, streamed per shard by the driver (``model.heldout``).

Memory (README "Training at scale"): each task holds one stratum's keys and one Parquet batch of
features (well under 0.5 GB at ``ROWS_PER_SHARD`` keywords a shard); the driver holds the sample
(``budget`` × 420 bytes of features, memory-mapped, plus 24 bytes a row), XGBoost's copy of it
(about the same again), the gate rows (``HOLDOUT_GATE_ROWS`` × 420 bytes) and one batch of the
held-out day: bounded by the budget, not by the keyword count.
"""

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyspark.cloudpickle
from pyspark.sql import SparkSession

from astro_assets.core.analyst_rule import analyst_values, policy_bytes
from astro_assets.core.calendar import ONE_DAY
from astro_assets.core.features import LAGS, N_FEATURES
from astro_assets.model import sampling
from astro_assets.model.analyst import AnalystParams
from astro_assets.model.checkpoint import model_version, save_trained_model
from astro_assets.model.datasets import TrainingSet, TrainingWindow, concat_sets
from astro_assets.model.heldout import evaluate_day
from astro_assets.model.network import torch_threads
from astro_assets.model.registry import analyst_version
from astro_assets.model.sampling import BY_CLICKS, BY_ROWS, KEY_COLUMNS, SAMPLE_COLUMNS, Stratum
from astro_assets.model.training import TrainedCandidate, TrainingPlan, published_champion, train_candidate
from astro_assets.stages.analyst import analyst_table
from astro_assets.stages.spark import run_shard_tasks
from astro_assets.storage import PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout, MissingPartitionError, publishing_file

# The sampling tasks run on the executors: the module travels by value, like ``core``.
pyspark.cloudpickle.register_pickle_by_value(sampling)

#: Held-out rows the promotion gate compares on, over all the held-out days (a uniform sample of each
#: day's labelled rows, an equal share a day; every row below it). The reported metrics are over the
#: whole last held-out day.
HOLDOUT_GATE_ROWS = 200_000
#: The sample's file of row keys (``draw_sample(keys=True)``).
KEYS_FILE = "keys.npy"


def day_strata(layout: DataLayout, days: list[dt.date]) -> list[Stratum]:
    """Every keyword shard of each feature day of ``days`` with the same shard of its next raw day."""
    strata = []
    for day in days:
        parts = layout.part_files(layout.require_published(PREPROCESSED_FEATURES, day))
        if not parts:
            raise MissingPartitionError(f"no part files in {layout.partition_dir(PREPROCESSED_FEATURES, day)}")
        layout.require_published(RAW_FEATURES, day + ONE_DAY)
        for shard, path in enumerate(parts):
            raw = layout.raw_shard_paths(day + ONE_DAY, shard, len(parts))
            strata.append(Stratum(day.toordinal(), shard, len(parts), str(path), tuple(raw)))
    return strata


def draw_sample(
    spark: SparkSession,
    strata: list[Stratum],
    budget: int,
    seed: int,
    folder: Path,
    by: str = BY_CLICKS,
    log: Callable[[str], None] = print,
    keys: bool = False,
) -> tuple[TrainingSet, dict]:
    """The sample of ``budget`` rows of ``strata`` (``model.sampling``) as a :class:`TrainingSet` over
    memory-mapped files in ``folder``, and its description (rows, labelled rows, seconds). With
    ``keys``, each row's ``sampling.KEY_COLUMNS`` too, in ``folder / KEYS_FILE``."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    # Each first-pass task keeps its stratum's labelled rows in the folder for the second pass.
    labelled = [str(folder / f"labelled-{i:05d}.npy") for i in range(len(strata))]
    counted = run_shard_tasks(spark, range(len(strata)), lambda i: sampling.count_labelled(strata[i], labelled[i]))
    counts = [counted[i] for i in range(len(strata))]
    quotas = sampling.allocate(counts, budget)
    rows = sum(quotas)
    log(
        f"sample: {sum(counts):,} labelled rows in {len(strata)} shard-days; drawing {rows:,} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    features_file, columns_file = str(folder / "features.npy"), str(folder / "columns.npy")
    # Created (sparse) by the driver, filled by the tasks at their offsets.
    for path, shape in ((features_file, (rows, LAGS, N_FEATURES)), (columns_file, (rows, len(SAMPLE_COLUMNS)))):
        np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape).flush()
    keys_file = str(folder / KEYS_FILE) if keys else None
    if keys_file is not None:
        np.lib.format.open_memmap(keys_file, mode="w+", dtype=np.int64, shape=(rows, len(KEY_COLUMNS))).flush()
    offsets = np.concatenate([[0], np.cumsum(quotas)]).tolist()

    def write(i: int) -> int:
        return sampling.write_stratum_sample(
            strata[i], quotas[i], seed, by, features_file, columns_file, offsets[i], keys_file, labelled[i]
        )

    written = run_shard_tasks(spark, [i for i in range(len(strata)) if quotas[i] > 0], write)
    wrong = {i: n for i, n in written.items() if n != quotas[i]}
    if wrong:
        raise RuntimeError(f"sample in {folder}: shard-days {sorted(wrong)} wrote {wrong} rows, not their quotas")
    for path in labelled:
        Path(path).unlink(missing_ok=True)
    columns = np.load(columns_file)
    data = TrainingSet(
        features=np.load(features_file, mmap_mode="r"),
        target=columns[:, 0].copy(),
        clicks=columns[:, 2].copy(),
        trailing_value_per_click=columns[:, 3].copy(),
        weight=columns[:, 1].copy(),
    )
    seconds = time.perf_counter() - started
    log(f"sample: {rows:,} rows written in {seconds:.0f} s")
    description = {
        "rows": rows,
        "labelled_rows": sum(counts),
        "shard_days": len(strata),
        "by": by,
        "seconds": round(seconds, 2),
        "bytes": (folder / "features.npy").stat().st_size + (folder / "columns.npy").stat().st_size,
    }
    return data, description


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
    training_rows: int,
    truth: Callable[[np.ndarray], np.ndarray] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[TrainingWindow, TrainingSet, TrainedCandidate]:
    """Train on a sample of ``training_rows`` rows of the window's training days (``TrainingWindow.ending``:
    the ``plan.training_days`` feature days before the ``plan.holdout_days`` held out before ``end``),
    save the candidate as a ``trained_model`` version and return it with its window and the held-out
    rows the gate compared on (every held-out day's sample)."""
    window = TrainingWindow.ending(end, plan.training_days, plan.holdout_days)
    layout.require_days(PREPROCESSED_FEATURES, window.feature_days, f"training up to {end}")
    folder = layout.training_sample_dir(end)
    shutil.rmtree(folder, ignore_errors=True)
    try:
        seed = plan.network.seed
        train_set, sample = draw_sample(
            spark, day_strata(layout, window.train_days), training_rows, seed, folder / "train", BY_CLICKS, log
        )
        holdout_strata = day_strata(layout, [window.holdout_day])  # the whole-day metrics: the last day
        gate = gate_rows(spark, layout, window, end, seed, folder, log)
        holdout, analyst = gate.rows, gate.analyst_table
        candidate = train_candidate(
            window,
            end,
            train_set,
            holdout,
            plan,
            lambda model: model_version(model, end),
            truth=None,
            log=log,
            whole_day=lambda predictors: _whole_day(holdout_strata, predictors, truth, log),
            champion=published_champion(layout),
            holdout_keys=gate.keyword,
            baselines={"analyst": gate.analyst},
        )
        candidate.record["analyst_version"] = analyst_version(end)
        with publishing_file(layout.trained_analyst_policy(candidate.version)) as tmp:
            tmp.write_bytes(policy_bytes(analyst))
        candidate.record["training_sample"] = {"budget": training_rows, "seed": seed, **sample}
        candidate.record["training_rows"] = len(train_set)
        save_trained_model(layout, candidate.version, candidate.model, plan.network, holdout, candidate.record)
        holdout = TrainingSet(*(np.array(a) for a in holdout.astuple()), weight=np.array(holdout.loss_weight))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return window, holdout, candidate


@dataclass
class GateRows:
    """The rows the gate compares on (``gate_rows``), oldest held-out day first."""

    rows: TrainingSet
    keys: np.ndarray  # [N, len(KEY_COLUMNS)] each row's ad group, keyword and campaign ids
    keyword: np.ndarray  # [N] each row's keyword as an index (the bootstrap's groups)
    day_rows: list[int]  # rows of each held-out day
    analyst: np.ndarray  # [N] the careful analyst's prediction, each day's from its own window
    analyst_table: pa.Table  # the last held-out day's analyst: what onnx_model publishes if it wins


def gate_rows(
    spark: SparkSession,
    layout: DataLayout,
    window: TrainingWindow,
    end: dt.date,
    seed: int,
    folder: Path,
    log: Callable[[str], None] = print,
    budget: int = HOLDOUT_GATE_ROWS,
) -> GateRows:
    """The rows the gate compares on: of each held-out day (``window.held_out_days``), a uniform sample
    of its labelled rows (``budget`` over all of them, an equal share a day: the gate's cost does not
    grow with the days or the keywords), with each row's keyword (the bootstrap resamples keywords,
    with all their days) and the careful analyst's prediction from the analyst of that day's own
    window (data up to that day, not its target)."""
    days = window.held_out_days
    per_day = -(-budget // len(days))
    sets, keys, predictions = [], [], []
    for day in days:
        part, _ = draw_sample(
            spark, day_strata(layout, [day]), per_day, seed, folder / f"holdout-{day}", BY_ROWS, log, keys=True
        )
        day_keys = np.load(folder / f"holdout-{day}" / KEYS_FILE)
        analyst = analyst_table(spark, layout, day, analyst_version(end), AnalystParams(), folder / "analyst")
        predictions.append(
            analyst_values(
                analyst,
                day,
                day_keys[:, KEY_COLUMNS.index("ad_group_id")],
                day_keys[:, KEY_COLUMNS.index("campaign_id")],
                part.features,
            )
        )
        sets.append(part)
        keys.append(day_keys)
    every_key = np.concatenate(keys)
    pairs = every_key[:, [KEY_COLUMNS.index("ad_group_id"), KEY_COLUMNS.index("keyword_id")]]
    _, keyword = np.unique(pairs, axis=0, return_inverse=True)
    return GateRows(
        concat_sets(sets),
        every_key,
        keyword.reshape(-1),
        [len(part) for part in sets],
        np.concatenate(predictions),
        analyst,
    )


def _whole_day(strata, predictors, truth, log) -> dict[str, float]:
    # Two shards at a time (``heldout.EVALUATION_WORKERS``), so torch predicts on one thread in each.
    with torch_threads(1):
        metrics, counts = evaluate_day(strata, predictors, truth, log)
    return {**metrics, **counts}
