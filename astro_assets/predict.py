"""Stage 5, ``daily_predictions``: every keyword of the day scored by the ONNX model inside Spark.

The model's bytes are broadcast (no shared filesystem needed); each executor's Python worker builds
one onnxruntime session and scores whole Arrow batches (``mapInArrow``). This module imports no torch.
"""

import hashlib
import json
import math
import time

import dagster as dg
import onnx
import pyspark.cloudpickle
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from astro_assets import scoring
from astro_assets.features import FEATURE_NAMES, LAGS
from astro_assets.partitions import daily_partition_def, days_in
from astro_assets.preprocess import read_partition, write_partition
from astro_assets.resources import AstroStorage, ScoringSettings
from astro_assets.storage import DataLayout

# Executors get the scoring code by value: they need onnxruntime, numpy and pyarrow, not this package.
pyspark.cloudpickle.register_pickle_by_value(scoring)

PREDICTION_SCHEMA = "keyword_id long, predicted_value_per_click float"
SLA_KEYWORDS = 10_000_000
SLA_SECONDS = 3600.0


class ModelMismatchError(ValueError):
    """The ONNX model cannot score these features (corrupt file, other features or lags)."""


def read_model(layout: DataLayout) -> tuple[bytes, dict[str, str]]:
    """The current ONNX model's bytes and its description, refusing a file that cannot score
    today's features."""
    path = layout.onnx_model()
    if not path.exists():
        raise FileNotFoundError(f"no ONNX model at {path}: materialize trained_model and onnx_model first")
    model_bytes = path.read_bytes()
    try:
        proto = onnx.load_from_string(model_bytes)
        onnx.checker.check_model(proto)
    except Exception as error:  # onnx raises several types for a damaged file
        raise ModelMismatchError(f"{path} is not a valid ONNX model ({len(model_bytes)} bytes): {error}") from error
    description = {p.key: p.value for p in proto.metadata_props}
    features = json.loads(description.get("astro.features", "[]"))
    lags = int(description.get("astro.lags", "0"))
    if features != list(FEATURE_NAMES) or lags != LAGS:
        extra = sorted(set(features) - set(FEATURE_NAMES))
        absent = sorted(set(FEATURE_NAMES) - set(features))
        raise ModelMismatchError(
            f"{path} expects {lags} lags of {len(features)} features, preprocessed_features has {LAGS} lags "
            f"of {len(FEATURE_NAMES)}; features only in the model: {extra}, missing from it: {absent}"
        )
    return model_bytes, description


def score_features(features: DataFrame, model_bytes: bytes, rows_per_partition: int, rows: int) -> DataFrame:
    """(keyword_id, predicted_value_per_click) for every row of ``features``, in even partitions."""
    spark = features.sparkSession
    digest = hashlib.sha256(model_bytes).hexdigest()
    model = spark.sparkContext.broadcast(model_bytes)
    partitions = max(spark.sparkContext.defaultParallelism, math.ceil(rows / rows_per_partition))

    def score(batches):
        return scoring.score_batches(batches, model.value, digest)

    return features.select("keyword_id", "features").repartition(partitions).mapInArrow(score, PREDICTION_SCHEMA)


@dg.asset(
    partitions_def=daily_partition_def,
    group_name="bidding",
    kinds={"spark", "onnx", "parquet"},
    pool="spark",
    deps=["preprocessed_features", "onnx_model"],
    description="Predicted value per click of every keyword of the day, scored by onnxruntime in Spark.",
)
def daily_predictions(
    context: dg.AssetExecutionContext, storage: AstroStorage, pyspark: PySparkResource, scoring_settings: ScoringSettings
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    layout = storage.layout
    model_bytes, description = read_model(layout)
    version = description["astro.model_version"]
    rows = 0
    started = time.perf_counter()
    for day in days_in(context.partition_time_window):
        features = read_partition(spark, layout, "preprocessed_features", day)
        count = features.count()
        predictions = score_features(features, model_bytes, scoring_settings.rows_per_partition, count).withColumn(
            "model_version", F.lit(version)
        )
        write_partition(predictions, layout, "daily_predictions", day, count)
        rows += count
        context.log.info(f"daily_predictions {day}: {count:,} keywords scored with {version}")
    seconds = time.perf_counter() - started
    rate = rows / seconds if seconds > 0 else 0.0
    stats = (
        read_partition(spark, layout, "daily_predictions", days_in(context.partition_time_window)[-1])
        .select(F.percentile_approx("predicted_value_per_click", [0.1, 0.5, 0.9]).alias("q"), F.avg("predicted_value_per_click"))
        .first()
    )
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(rows),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "rows_per_second": dg.MetadataValue.float(round(rate, 1)),
            "projected_seconds_for_10m": dg.MetadataValue.float(round(SLA_KEYWORDS / rate, 1) if rate else math.inf),
            "model_version": version,
            "prediction_p10_p50_p90": dg.MetadataValue.json([round(float(v), 4) for v in stats[0]]),
            "prediction_mean": dg.MetadataValue.float(round(float(stats[1]), 4)),
        }
    )
