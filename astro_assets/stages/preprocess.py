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

from pyspark.sql import SparkSession

from astro_assets.core import lagging
from astro_assets.core.calendar import lag_window
from astro_assets.core.features import LAGS
from astro_assets.stages.spark import run_shard_tasks
from astro_assets.storage import PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout, publish_partition
from astro_assets.storage.layout import part_file_name


def write_preprocessed(spark: SparkSession, layout: DataLayout, day: dt.date, lags: int = LAGS) -> int:
    """Publish the preprocessed features of ``day``: one Spark task per keyword shard reads that
    shard of each raw day in the window and writes its rows (``lagging.build_shard``); no shuffle.
    Returns the number of keywords."""
    days = lag_window(day, lags)
    layout.require_days(RAW_FEATURES, days, f"the lagged features of {day}")
    shards = layout.raw_shards(day)
    sources = {shard: [layout.raw_shard_paths(d, shard, shards) for d in days] for shard in range(shards)}
    with publish_partition(layout.partition_dir(PREPROCESSED_FEATURES, day)) as staging:
        out = str(staging)

        def build(shard: int) -> int:
            return lagging.build_shard(day, sources[shard], shard, shards, f"{out}/{part_file_name(shard)}", lags)

        return sum(run_shard_tasks(spark, range(shards), build).values())
