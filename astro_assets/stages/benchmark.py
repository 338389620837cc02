"""What ``astro-bench`` measures besides the Dagster cycle, as plain functions on Spark: Astro's own
scoring (``stages.predict.score_day``, the code path of ``daily_predictions``), Spark's
``predict_batch_udf`` and the naive way on the same features and model, and the disk a day takes.
The onnxruntime bound is ``model.throughput``; the memory sampler is ``stages.memory``.
"""

import datetime as dt
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from astro_assets.core.features import FEATURE_DTYPE, LAGS, N_FEATURES
from astro_assets.model.datasets import features_array
from astro_assets.stages.predict import score_day
from astro_assets.storage import PREPROCESSED_FEATURES, DataLayout


def disk_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``, a file with several names (a hard link: the bid file's
    ``changes-…`` files where a whole campaign group changed) counted once: the disk it takes."""
    sizes = {(s.st_dev, s.st_ino): s.st_size for s in (p.stat() for p in folder.rglob("*") if p.is_file())}
    return sum(sizes.values())


# -- the measured paths ---------------------------------------------------------------------------


def astro_rate(
    spark: SparkSession, layout: DataLayout, day: dt.date, model_bytes: bytes, batch_rows: int, scratch: Path
) -> float:
    """Rows per second of Astro's scoring of ``day`` (``score_day``, timed as ``daily_predictions`` times
    it), written into a scratch folder."""
    out = scratch / "astro_predictions"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.perf_counter()
    rows = score_day(spark, layout, day, model_bytes, "benchmark", batch_rows, out)
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return rows / seconds


def predict_batch_udf_rate(
    spark: SparkSession, layout: DataLayout, day: dt.date, model_bytes: bytes, batch_rows: int, scratch: Path
) -> float:
    """Spark's own way: ``pyspark.ml.functions.predict_batch_udf`` with the same model and batch size,
    reading the same features and writing Parquet like Astro."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import FloatType

    model = spark.sparkContext.broadcast(model_bytes)

    def make_predict_fn():
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model.value, options, providers=["CPUExecutionProvider"])

        def predict(inputs: np.ndarray) -> np.ndarray:
            # Spark hands the binary features column (features.FEATURES_TYPE) over as bytes objects:
            # one join and one view make the batch's [rows, T, F] array.
            features = np.frombuffer(b"".join(inputs), dtype=FEATURE_DTYPE).reshape(-1, LAGS, N_FEATURES)
            return session.run(None, {"features": features})[0]

        return predict

    udf = predict_batch_udf(make_predict_fn, return_type=FloatType(), batch_size=batch_rows)
    frame = spark.read.parquet(str(layout.require_published(PREPROCESSED_FEATURES, day)))
    rows = frame.count()
    out = scratch / "udf_predictions"
    try:
        started = time.perf_counter()
        scored = frame.select("ad_group_id", "keyword_id", udf("features").alias("predicted_value_per_click"))
        scored.write.mode("overwrite").parquet(str(out))
        return rows / (time.perf_counter() - started)
    finally:
        model.unpersist()
        shutil.rmtree(out, ignore_errors=True)


def naive_rate(
    spark: SparkSession, layout: DataLayout, day: dt.date, model_bytes: bytes, rows: int
) -> tuple[float, int]:
    """The talk's naive way: the model loaded for every row, on a sample of at most ``rows`` rows.
    Returns rows per second over the rows really scored, and that count."""
    model = spark.sparkContext.broadcast(model_bytes)

    def per_row(row):
        import onnxruntime as ort

        session = ort.InferenceSession(model.value, providers=["CPUExecutionProvider"])
        features = np.frombuffer(row.features, dtype=FEATURE_DTYPE).reshape(1, LAGS, N_FEATURES)
        return row.keyword_id, float(session.run(None, {"features": features})[0][0])

    features = spark.read.parquet(str(layout.require_published(PREPROCESSED_FEATURES, day)))
    sample = features.limit(rows).repartition(2).cache()
    try:
        sample.count()
        started = time.perf_counter()
        scored = sample.rdd.map(per_row).count()
        return scored / (time.perf_counter() - started), scored
    finally:
        sample.unpersist()
        model.unpersist()


def features_in_memory(layout: DataLayout, day: dt.date, rows: int) -> np.ndarray:
    """The first ``rows`` keywords' features of ``day`` (files in order) as a [rows, T, F] float32 array:
    the bound's input, read without holding more than one file beyond it."""
    parts, held = [], 0
    for path in layout.part_files(layout.require_published(PREPROCESSED_FEATURES, day)):
        table = pq.read_table(path, columns=["features"])
        parts.append(features_array(table.slice(0, rows - held)))
        held += len(parts[-1])
        if held >= rows:
            break
    return np.ascontiguousarray(np.concatenate(parts))
