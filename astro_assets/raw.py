"""Stage 1, ``raw_features``: one day of the Google Ads keyword report per partition, as Parquet."""

import datetime as dt
import time

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.features import RAW_COLUMNS
from astro_assets.lagging import shard_file_name
from astro_assets.partitions import daily_partition_def, days_in
from astro_assets.resources import AstroStorage, KeywordSource
from astro_assets.storage import DataLayout, publishing_dir, shard_count

RAW_SCHEMA = pa.schema(
    [
        ("campaign_id", pa.int64()),
        ("campaign_name", pa.string()),
        ("ad_group_id", pa.int64()),
        ("ad_group_name", pa.string()),
        ("keyword_id", pa.int64()),
        ("keyword_text", pa.string()),
        ("match_type", pa.string()),
        ("impressions", pa.int64()),
        ("clicks", pa.int64()),
        ("cost_micros", pa.int64()),
        ("conversions", pa.float64()),
        ("conversion_value", pa.float64()),
        ("quality_score", pa.int64()),
        ("search_impression_share", pa.float64()),
    ]
)
assert tuple(RAW_SCHEMA.names) == RAW_COLUMNS


def write_raw_partition(layout: DataLayout, day: dt.date, table: pa.Table) -> None:
    """Publish one day of the report atomically as ``raw_features/date=YYYY-MM-DD/``, split into
    keyword shards (``keyword_id % shards``), each sorted by keyword id, so that preprocessing reads
    one shard of every day of the window in one task, without a shuffle."""
    table = table.select(list(RAW_COLUMNS)).cast(RAW_SCHEMA)
    shards = shard_count(table.num_rows)
    ids = table.column("keyword_id").to_numpy()
    shard = ids % shards
    order = np.lexsort((ids, shard))
    table = table.take(pa.array(order))
    bounds = np.searchsorted(shard[order], np.arange(shards + 1))
    with publishing_dir(layout.partition_dir("raw_features", day)) as staging:
        staging.mkdir(parents=True)
        for s in range(shards):
            part = table.slice(bounds[s], bounds[s + 1] - bounds[s])
            pq.write_table(part, staging / shard_file_name(s, shards), compression="zstd")
        (staging / "_SUCCESS").touch()


def null_counts(table: pa.Table) -> dict[str, int]:
    return {name: table.column(name).null_count for name in table.column_names}


@dg.asset(
    partitions_def=daily_partition_def,
    group_name="keywords",
    kinds={"python", "parquet"},
    description="One row per keyword per day: the Google Ads keyword performance report.",
)
def raw_features(
    context: dg.AssetExecutionContext, storage: AstroStorage, keyword_source: KeywordSource
) -> dg.MaterializeResult:
    started = time.perf_counter()
    rows = 0
    nulls: dict[str, int] = {}
    for day in days_in(context.partition_time_window):
        table = keyword_source.keyword_report(day)
        write_raw_partition(storage.layout, day, table)
        rows += table.num_rows
        for column, count in null_counts(table).items():
            nulls[column] = nulls.get(column, 0) + count
        context.log.info(f"raw_features {day}: {table.num_rows:,} keyword rows")
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(rows),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "nulls_per_column": dg.MetadataValue.json(nulls),
            "path": dg.MetadataValue.path(str(storage.layout.asset_dir("raw_features"))),
        }
    )
