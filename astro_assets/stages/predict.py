"""``daily_predictions``: every keyword of the day scored by the ONNX model inside Spark.

The model's bytes are broadcast (no shared filesystem needed for the model); each executor's Python
worker builds one onnxruntime session (one thread) and scores whole Arrow batches, one Spark task
per keyword shard (``stages.spark``). Nothing on this path imports torch (an import contract says so).
"""

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from astro_assets.core import analyst_rule, scoring
from astro_assets.stages.spark import run_shard_tasks
from astro_assets.storage import DAILY_PREDICTIONS, PREPROCESSED_FEATURES, DataLayout, publish_partition
from astro_assets.storage.layout import part_file_name


def score_day(
    spark: SparkSession, layout: DataLayout, day: dt.date, model_bytes: bytes, version: str, batch_rows: int, out: Path
) -> int:
    """Write the predictions of ``day`` into the folder ``out`` (a staging folder; publishing is the
    caller's): one Spark task per file of preprocessed features (one per keyword shard) scores it Arrow
    batch by Arrow batch; the model's bytes travel as a broadcast. Returns the rows written."""
    digest = hashlib.sha256(model_bytes).hexdigest()
    return _score_shards(
        spark,
        layout,
        day,
        model_bytes,
        out,
        lambda source, target, model: scoring.score_file(source, target, model, digest, version, batch_rows),
    )


def score_day_with_analyst(
    spark: SparkSession, layout: DataLayout, day: dt.date, policy: bytes, version: str, batch_rows: int, out: Path
) -> int:
    """:func:`score_day` when the published policy is the careful analyst: each keyword shard's task
    computes the analyst's value per click from the keyword's window (its features) and the published
    table of ad-group priors (``core.analyst_rule``, broadcast like the model's bytes)."""
    return _score_shards(
        spark,
        layout,
        day,
        policy,
        out,
        lambda source, target, table: analyst_rule.score_file(source, target, table, day, version, batch_rows),
    )


def _score_shards(
    spark: SparkSession,
    layout: DataLayout,
    day: dt.date,
    policy: bytes,
    out: Path,
    score_file: Callable[[str, str, bytes], int],
) -> int:
    """One Spark task per keyword shard of ``day``'s features: ``score_file(features, predictions,
    policy)`` with the policy's bytes broadcast once. Returns the rows written."""
    source = layout.require_published(PREPROCESSED_FEATURES, day)
    files = [str(path) for path in layout.part_files(source)]
    shared = spark.sparkContext.broadcast(policy)
    folder = str(out)

    def score(index: int) -> int:
        return score_file(files[index], f"{folder}/{part_file_name(index)}", shared.value)

    try:
        return sum(run_shard_tasks(spark, range(len(files)), score).values())
    finally:
        shared.unpersist()


def write_predictions(
    spark: SparkSession, layout: DataLayout, day: dt.date, model_bytes: bytes, version: str, batch_rows: int
) -> int:
    """:func:`score_day` published without checks (tests, the benchmark's references)."""
    with publish_partition(layout.partition_dir(DAILY_PREDICTIONS, day)) as staging:
        return score_day(spark, layout, day, model_bytes, version, batch_rows, staging)


def prediction_summary(spark: SparkSession, layout: DataLayout, day: dt.date) -> tuple[list[float], float]:
    """The 10th, 50th and 90th percentiles and the mean of the day's predicted values per click."""
    folder = layout.require_published(DAILY_PREDICTIONS, day)
    stats = (
        spark.read.parquet(str(folder))
        .select(
            F.percentile_approx("predicted_value_per_click", [0.1, 0.5, 0.9]).alias("q"),
            F.avg("predicted_value_per_click"),
        )
        .first()
    )
    return [round(float(v), 4) for v in stats[0]], round(float(stats[1]), 4)
