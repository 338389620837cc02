"""Stage 2, ``preprocessed_features``: null replacement and lagging, in Spark.

For partition D every keyword seen in the window D-T+1 .. D gets one row whose ``features`` column is
a fixed-size float array of T days × F features (day-major, features in ``features.FEATURE_NAMES``
order). Nulls are replaced by the policy in ``features.NULL_POLICY`` with was-missing indicators
where the gap carries information. Scaling is *not* done here: its parameters are fitted by
``trained_model`` on the training window only and travel inside the ONNX model (its first node and
its metadata), so the day being predicted never influences them and training and prediction cannot
scale differently.
"""


import datetime as dt
import math
import time

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from astro_assets.features import (
    FEATURE_NAMES,
    KEYWORD_ATTRIBUTES,
    LAGS,
    MISSING_IMPRESSION_SHARE,
    NEUTRAL_QUALITY_SCORE,
)
from astro_assets.partitions import daily_partition_def, days_in
from astro_assets.resources import AstroStorage
from astro_assets.storage import DataLayout, publishing_dir

ROWS_PER_OUTPUT_FILE = 500_000


class MissingHistoryError(RuntimeError):
    """Not enough raw days exist to build the lag window (or the training window)."""


def window_days(day: dt.date, lags: int = LAGS) -> list[dt.date]:
    return [day - dt.timedelta(days=lags - 1 - i) for i in range(lags)]


def read_raw_window(spark: SparkSession, layout: DataLayout, days: list[dt.date]) -> DataFrame:
    """The raw report rows of ``days`` with their ``date`` column; refuses a window with gaps."""
    present = set(layout.existing_days("raw_features"))
    missing = [d.isoformat() for d in days if d not in present]
    if missing:
        raise MissingHistoryError(
            f"raw_features has no partition for {', '.join(missing)} under "
            f"{layout.asset_dir('raw_features')}: {len(missing)} of the {len(days)} days needed "
            f"for {days[0]} .. {days[-1]}. Materialize (backfill) raw_features for those days first."
        )
    root = str(layout.asset_dir("raw_features"))
    paths = [str(layout.partition_dir("raw_features", d)) for d in days]
    return spark.read.option("basePath", root).parquet(*paths)


def _log1p(column: Column) -> Column:
    return F.log1p(F.greatest(column.cast("double"), F.lit(0.0)))


def build_features(raw: DataFrame, day: dt.date, lags: int = LAGS) -> DataFrame:
    """Null replacement and lagging for partition ``day`` (pure: Spark frame in, Spark frame out).

    ``raw`` holds the report rows of the window (columns of ``features.RAW_COLUMNS`` plus ``date``).
    """
    spark = raw.sparkSession
    start = day - dt.timedelta(days=lags - 1)
    rows = raw.where((F.col("date") >= F.lit(start)) & (F.col("date") <= F.lit(day))).withColumn(
        "t", F.datediff(F.col("date"), F.lit(start))
    )
    keyword_stats = rows.groupBy("keyword_id").agg(
        F.try_divide(
            F.sum(F.when(F.col("conversion_value").isNotNull(), F.col("conversion_value"))),
            F.sum(F.when(F.col("conversion_value").isNotNull(), F.col("conversions"))),
        ).alias("window_value_per_conversion"),
        F.avg("quality_score").alias("window_quality_score"),
        F.max_by(F.struct(*KEYWORD_ATTRIBUTES), F.col("date")).alias("attributes"),
    )
    grid = keyword_stats.select("keyword_id").crossJoin(spark.range(lags).select(F.col("id").cast("int").alias("t")))
    joined = grid.join(rows.drop("date"), ["keyword_id", "t"], "left").join(keyword_stats, "keyword_id")

    present = F.col("impressions").isNotNull()
    impressions = F.coalesce(F.col("impressions"), F.lit(0))
    clicks = F.coalesce(F.col("clicks"), F.lit(0))
    cost = F.coalesce(F.col("cost_micros"), F.lit(0)) / F.lit(1e6)
    conversions = F.coalesce(F.col("conversions"), F.lit(0.0))
    value_missing = present & F.col("conversion_value").isNull()
    conversion_value = F.when(
        F.col("conversion_value").isNull(),
        conversions * F.coalesce(F.col("window_value_per_conversion"), F.lit(0.0)),
    ).otherwise(F.col("conversion_value"))
    quality = F.coalesce(
        F.col("quality_score") / F.lit(10.0), F.col("window_quality_score") / F.lit(10.0), F.lit(NEUTRAL_QUALITY_SCORE)
    )
    share = F.coalesce(F.col("search_impression_share"), F.lit(MISSING_IMPRESSION_SHARE))
    ctr = F.when(impressions > 0, clicks / impressions).otherwise(F.lit(0.0))
    value_per_click = F.when(clicks > 0, conversion_value / clicks).otherwise(F.lit(0.0))
    weekday_angle = F.lit(2 * math.pi / 7) * ((F.lit(start.weekday()) + F.col("t")) % 7)
    match_type = F.col("attributes.match_type")

    expressions = {
        "log_impressions": _log1p(impressions),
        "log_clicks": _log1p(clicks),
        "log_cost": _log1p(cost),
        "log_conversions": _log1p(conversions),
        "log_conversion_value": _log1p(conversion_value),
        "ctr": F.least(F.greatest(ctr, F.lit(0.0)), F.lit(1.0)),
        "log_value_per_click": _log1p(value_per_click),
        "quality_score": quality,
        "search_impression_share": share,
        "row_missing": F.when(present, 0.0).otherwise(1.0),
        "conversion_value_missing": F.when(value_missing, 1.0).otherwise(0.0),
        "weekday_sin": F.sin(weekday_angle),
        "weekday_cos": F.cos(weekday_angle),
        "is_exact": F.when(match_type == "EXACT", 1.0).otherwise(0.0),
        "is_phrase": F.when(match_type == "PHRASE", 1.0).otherwise(0.0),
    }
    assert tuple(expressions) == FEATURE_NAMES, "feature expressions out of step with features.FEATURES"
    daily = joined.select(
        "keyword_id",
        "t",
        "attributes",
        clicks.alias("clicks"),
        F.when(clicks > 0, value_per_click).alias("day_value_per_click"),
        F.array(*[e.cast("float") for e in expressions.values()]).alias("day_features"),
    )
    lagged = daily.groupBy("keyword_id").agg(
        F.first("attributes").alias("attributes"),
        F.flatten(
            F.transform(F.sort_array(F.collect_list(F.struct("t", "day_features"))), lambda s: s["day_features"])
        ).alias("features"),
        F.coalesce(F.avg("day_value_per_click"), F.lit(0.0)).alias("trailing_value_per_click"),
        F.sum("clicks").cast("long").alias("clicks_in_window"),
    )
    return lagged.select(
        "keyword_id",
        *[F.col(f"attributes.{name}").alias(name) for name in KEYWORD_ATTRIBUTES],
        "features",
        "trailing_value_per_click",
        "clicks_in_window",
    )


def write_partition(frame: DataFrame, layout: DataLayout, asset: str, day: dt.date, rows_hint: int) -> None:
    """Publish a Spark frame as ``<asset>/date=day/``: deterministic files, sorted by keyword."""
    files = max(1, math.ceil(rows_hint / ROWS_PER_OUTPUT_FILE))
    with publishing_dir(layout.partition_dir(asset, day)) as staging:
        (
            frame.repartition(files, "keyword_id")
            .sortWithinPartitions("keyword_id")
            .write.mode("overwrite")
            .parquet(str(staging))
        )


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
        raw = read_raw_window(spark, layout, window_days(day))
        features = build_features(raw, day)
        raw_rows = raw.where(F.col("date") == F.lit(day)).count()
        write_partition(features, layout, "preprocessed_features", day, raw_rows)
        day_rows = read_partition(spark, layout, "preprocessed_features", day).count()
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
