"""Stage 2, ``preprocessed_features``: null replacement and lagging, in Spark.

For partition D every keyword seen in the window D-T+1 .. D gets one row whose ``features`` column is
a fixed-size float array of T days × F features (day-major, features in ``features.FEATURE_NAMES``
order). Nulls are replaced by the policy in ``features.NULL_POLICY`` with was-missing indicators
where the gap carries information. Raw days are stored in keyword shards, so each Spark task builds
one shard's rows from that shard of the T days (``lagging``): no shuffle of T days of rows. Scaling is *not* done here: its parameters are fitted by
``trained_model`` on the training window only and travel inside the ONNX model (its first node and
its metadata), so the day being predicted never influences them and training and prediction cannot
scale differently.
"""


import datetime as dt
import time

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame, SparkSession

from astro_assets import lagging
from astro_assets.features import FEATURE_NAMES, LAGS
from astro_assets.partitions import daily_partition_def, days_in
from astro_assets.resources import AstroStorage
from astro_assets.sharding import run_shard_tasks
from astro_assets.storage import DataLayout, publishing_dir


class MissingHistoryError(RuntimeError):
    """Not enough raw days exist to build the lag window (or the training window)."""


def window_days(day: dt.date, lags: int = LAGS) -> list[dt.date]:
    return [day - dt.timedelta(days=lags - 1 - i) for i in range(lags)]


def write_preprocessed(spark: SparkSession, layout: DataLayout, day: dt.date, lags: int = LAGS) -> int:
    """Publish the preprocessed features of ``day``: one Spark task per keyword shard reads that
    shard of each raw day in the window and writes its rows (``lagging.build_shard``); no shuffle.
    Returns the number of keywords."""
    days = window_days(day, lags)
    present = set(layout.existing_days("raw_features"))
    missing = [d.isoformat() for d in days if d not in present]
    if missing:
        raise MissingHistoryError(
            f"raw_features has no partition for {', '.join(missing)} under "
            f"{layout.asset_dir('raw_features')}: {len(missing)} of the {len(days)} days needed "
            f"for {days[0]} .. {days[-1]}. Materialize (backfill) raw_features for those days first."
        )
    folders = [str(layout.partition_dir("raw_features", d)) for d in days]
    files = lagging.shard_files(folders[-1])
    shards = next(iter(files.values()))[0] if files else 1
    with publishing_dir(layout.partition_dir("preprocessed_features", day)) as staging:
        staging.mkdir(parents=True)
        out = str(staging)

        def build(shard: int) -> int:
            return lagging.build_shard(day, folders, shard, shards, f"{out}/part-{shard:05d}.parquet", lags)

        rows = sum(run_shard_tasks(spark, range(shards), build).values())
        (staging / "_SUCCESS").touch()
    return rows


def read_partition(spark: SparkSession, layout: DataLayout, asset: str, day: dt.date) -> DataFrame:
    path = layout.partition_dir(asset, day)
    if not (path / "_SUCCESS").exists():
        raise MissingHistoryError(f"{asset} has no partition for {day} at {path}; materialize it first.")
    return spark.read.parquet(str(path))


@dg.asset(
    partitions_def=daily_partition_def,
    group_name="keywords",
    kinds={"spark", "parquet"},
    pool="spark",
    deps=[
        dg.AssetDep(
            "raw_features",
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(LAGS - 1), end_offset=0),
        )
    ],
    description=f"Null-replaced features of each keyword's last {LAGS} days as one [T, F] float array.",
)
def preprocessed_features(
    context: dg.AssetExecutionContext, storage: AstroStorage, pyspark: PySparkResource
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    layout = storage.layout
    started = time.perf_counter()
    rows = 0
    for day in days_in(context.partition_time_window):
        day_rows = write_preprocessed(spark, layout, day)
        rows += day_rows
        context.log.info(f"preprocessed_features {day}: {day_rows:,} keywords")
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(rows),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "lags": dg.MetadataValue.int(LAGS),
            "features": dg.MetadataValue.json(list(FEATURE_NAMES)),
            "path": dg.MetadataValue.path(str(layout.asset_dir("preprocessed_features"))),
        }
    )
