"""``preprocessed_features``: null replacement and lagging, one Spark task per keyword shard.

For day D every keyword seen in the window D-T+1 .. D gets one row whose ``features`` column is a
fixed-size float array of T days × F features (day-major, features in ``features.FEATURE_NAMES``
order). Nulls are replaced by the policy in ``features.NULL_POLICY`` with was-missing indicators where
the gap carries information. Raw days are stored in keyword shards, so each Spark task builds one
shard's rows from that shard of the T days (``core.lagging``): no shuffle of T days of rows. Scaling
is *not* done here: its parameters are fitted by ``trained_model`` on the training window only and
travel inside the ONNX model (its first node and its metadata), so the day being predicted never
influences them and training and prediction cannot scale differently.
"""

import datetime as dt
from pathlib import Path

from pyspark.sql import SparkSession

from astro_assets.core import lagging
from astro_assets.core.calendar import lag_window
from astro_assets.core.features import LAGS
from astro_assets.stages.spark import run_shard_tasks
from astro_assets.storage import PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout, publish_partition
from astro_assets.storage.layout import part_file_name


def _shard_paths(layout: DataLayout, day: dt.date, shard: int, shards: int) -> list[str]:
    """The raw files to read for one keyword shard of ``day``: its own file, or every file of the day
    when the day was written with another shard count or with the older ``keyword_id`` shard key
    (``core.lagging`` then filters them by the pair)."""
    paths = layout.raw_shard_paths(day, shard, shards)
    every = [str(path) for _, path in layout.shard_files(layout.partition_dir(RAW_FEATURES, day)).values()]
    if len(paths) <= 1 and every and not lagging.written_by_pair(every[0]):
        return every
    return paths


def build_features(spark: SparkSession, layout: DataLayout, day: dt.date, out: Path, lags: int = LAGS) -> int:
    """Write the preprocessed features of ``day`` into the folder ``out`` (a staging folder; publishing
    is the caller's): one Spark task per keyword shard reads that shard of each raw day in the window
    and writes its rows (``lagging.build_shard``); no shuffle. A keyword is the pair (ad group id,
    keyword id). Returns the number of keywords."""
    days = lag_window(day, lags)
    layout.require_days(RAW_FEATURES, days, f"the lagged features of {day}")
    shards = layout.raw_shards(day)
    sources = {shard: [_shard_paths(layout, d, shard, shards) for d in days] for shard in range(shards)}
    folder = str(out)

    def build(shard: int) -> int:
        return lagging.build_shard(day, sources[shard], shard, shards, f"{folder}/{part_file_name(shard)}", lags)

    return sum(run_shard_tasks(spark, range(shards), build).values())


def write_preprocessed(spark: SparkSession, layout: DataLayout, day: dt.date, lags: int = LAGS) -> int:
    """:func:`build_features` published without checks (history builds, tests)."""
    with publish_partition(layout.partition_dir(PREPROCESSED_FEATURES, day)) as staging:
        return build_features(spark, layout, day, staging, lags)
