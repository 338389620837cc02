"""Spark as the scheduler of keyword shards: one task per shard, each reading and writing its own
Parquet file with Arrow, so no row crosses the JVM or a shuffle.

Raw days are stored in keyword shards (``storage.raw.write_raw_partition``); preprocessing and prediction
keep the same shards, one file each, so every stage is a map over shards that scales with the
number of executors. Files are written into the staging folder of the partition being published
(``storage.publish_partition``); on a cluster ``ASTRO_DATA_DIR`` is storage every node sees.
"""

from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
import pyspark.cloudpickle
from pyspark.sql import DataFrame, SparkSession

from astro_assets.core import analyst_rule, audit, editor, features, lagging, scoring, worker

# The executor-side modules travel by value: executors need numpy, pyarrow and onnxruntime only.
for _module in (analyst_rule, audit, editor, features, lagging, scoring, worker):
    pyspark.cloudpickle.register_pickle_by_value(_module)


def run_shard_tasks(spark: SparkSession, shards: Iterable[int], task: Callable[[int], int]) -> dict[int, int]:
    """Run ``task(shard)`` for every shard as its own Spark task; returns rows written per shard.

    ``task`` is shipped to the executors with cloudpickle: it must reach only numpy, pyarrow,
    onnxruntime and modules registered by value.
    """
    shard_ids = list(shards)
    if not shard_ids:
        return {}

    def run(batches):
        worker.reread_zip_archives_only_when_changed()  # for this worker's next tasks
        for batch in batches:
            for index in batch.column(0).to_pylist():
                shard = shard_ids[index]
                yield pa.RecordBatch.from_arrays([pa.array([shard]), pa.array([task(shard)])], names=["shard", "rows"])

    frame = spark.range(0, len(shard_ids), 1, numPartitions=len(shard_ids)).mapInArrow(run, "shard long, rows long")
    return {row.shard: row.rows for row in frame.collect()}


def map_files(
    spark: SparkSession,
    files: list[str],
    read: Callable[[str], Iterator[pa.RecordBatch]],
    schema: str,
    tasks: int | None = None,
) -> DataFrame:
    """A Spark frame of ``read(path)``'s batches over ``files``, one task per file, or ``tasks`` tasks
    each reading a run of consecutive files (many small files: a task costs more than a file)."""

    def run(batches):
        worker.reread_zip_archives_only_when_changed()  # for this worker's next tasks
        for batch in batches:
            for index in batch.column(0).to_pylist():
                yield from read(files[index])

    partitions = max(1, min(len(files), tasks or len(files)))
    return spark.range(0, len(files), 1, numPartitions=partitions).mapInArrow(run, schema)
