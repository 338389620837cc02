"""The careful analyst's table (``core.analyst_rule``) from one day of preprocessed features: one Spark
task per keyword shard sums the shard's window per (ad group, day) into a small Parquet file, the
driver adds them up (an ad group spans shards) and computes the ad groups' priors and the outage
campaign-days. Nothing but those sums leaves the executors."""

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from astro_assets.core import analyst_rule
from astro_assets.model.analyst import AnalystParams
from astro_assets.stages.spark import run_shard_tasks
from astro_assets.storage import PREPROCESSED_FEATURES, DataLayout

#: Shards' cells read and added to the running sum at a time (``analyst_table``).
COMBINE_SHARDS = 4


def analyst_table(
    spark: SparkSession, layout: DataLayout, day: dt.date, version: str, params: AnalystParams, folder: Path
) -> pa.Table:
    """The careful analyst of the window of feature day ``day`` (the table ``onnx_model`` publishes
    when the gate picks the analyst); ``folder`` holds the shards' sums while it runs."""
    files = [str(path) for path in layout.part_files(layout.require_published(PREPROCESSED_FEATURES, day))]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    target = str(folder)

    def cells(index: int) -> int:
        shard = analyst_rule.shard_cells(files[index])
        pq.write_table(pa.table(shard), f"{target}/cells-{index:05d}.parquet")
        return len(shard["lag"])

    try:
        run_shard_tasks(spark, range(len(files)), cells)
        # Added to a running sum a few shards at a time: every shard's cells at once are ad groups ×
        # days × shards (at 10M keywords 43M cells, ~8 GB on the driver while combined), the sum only
        # ad groups × days. The same sums to the bit: each cell's values are added in shard order.
        paths = sorted(folder.glob("cells-*.parquet"))
        combined = None
        for start in range(0, max(1, len(paths)), COMBINE_SHARDS):
            parts = [
                {k: t.column(k).to_numpy() for k in t.column_names}
                for t in (pq.read_table(path) for path in paths[start : start + COMBINE_SHARDS])
            ]
            combined = analyst_rule.combine_cells(parts if combined is None else [combined, *parts])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return analyst_rule.policy_table(
        combined,
        day,
        version,
        params.prior_clicks,
        params.min_clicks_to_pause,
        params.outage_expected_conversions,
    )
