"""Writing one day of the keyword report as a ``raw_features`` partition, in keyword shards."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.core.features import RAW_COLUMNS, RAW_SCHEMA
from astro_assets.storage.layout import RAW_FEATURES, DataLayout, shard_count, shard_file_name
from astro_assets.storage.publish import publish_partition


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
    with publish_partition(layout.partition_dir(RAW_FEATURES, day)) as staging:
        for s in range(shards):
            part = table.slice(bounds[s], bounds[s + 1] - bounds[s])
            pq.write_table(part, staging / shard_file_name(s, shards), compression="zstd")


def null_counts(table: pa.Table) -> dict[str, int]:
    return {name: table.column(name).null_count for name in table.column_names}
