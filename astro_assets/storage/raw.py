"""Writing one day of the keyword report as a ``raw_features`` partition, in keyword shards."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.core.features import raw_schema
from astro_assets.core.lagging import SHARD_KEY, SHARD_KEY_METADATA, keyword_shard
from astro_assets.storage.layout import RAW_FEATURES, DataLayout, shard_count, shard_file_name
from astro_assets.storage.publish import is_published, publish_partition


@dataclass(frozen=True)
class RawWrite:
    """What :func:`write_raw_partition` did with a day: whether its content changed (and so was
    published), and the content hash of the day as stored (the asset's data version)."""

    changed: bool
    content_hash: str


@dataclass
class RawBlocks:
    """A day of the report that comes in blocks, so that no process holds the whole day: each block a
    table of whole ad groups, every pair of a block sorting after every pair of the blocks before it
    (``sources.synthetic`` draws a large account this way). ``expected_rows`` sizes the shards
    (``shard_count``) before the first block is drawn."""

    expected_rows: int
    blocks: Iterator[pa.Table]


class _Unchanged(Exception):
    """The staged day is the published day, byte for byte: abandon the staging folder."""


def content_hash(folder: Path) -> str:
    """SHA-256 of a raw partition's content: its shard files' names and bytes, in name order (the
    shards are the canonical form of the day's table: sorted by shard and keyword, deterministic
    Parquet). File times play no part. A new pyarrow that writes other bytes for the same table makes
    each day count as changed once."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("shard-*.parquet")):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def write_raw_partition(layout: DataLayout, day: dt.date, table: pa.Table | RawBlocks) -> RawWrite:
    """Publish one day of the report atomically as ``raw_features/date=YYYY-MM-DD/``, split into
    keyword shards (``core.lagging.keyword_shard`` of the pair (ad group id, keyword id)), each sorted
    by the pair, so that preprocessing reads one shard of every day of the window in one task,
    without a shuffle.

    A day whose content is unchanged (same shard files, byte for byte: a re-downloaded day whose late
    conversions did not move) is left as it is — files, modification times, folder — and reported
    unchanged; only days whose content changed are replaced."""
    final = layout.partition_dir(RAW_FEATURES, day)
    before = content_hash(final) if is_published(final) else None
    after = ""
    try:
        with publish_partition(final) as staging:
            write_raw(staging, table)
            after = content_hash(staging)
            if after == before:
                raise _Unchanged
    except _Unchanged:
        return RawWrite(changed=False, content_hash=after)
    return RawWrite(changed=True, content_hash=after)


def write_raw_shards(folder: Path, table: pa.Table) -> int:
    """Write one day of the report into ``folder`` (a staging folder: publishing is the caller's) as
    keyword shards, each sorted by the pair; returns the rows written. The report's status columns
    (``core.features.STATUS_COLUMNS``), where the table has them, are kept as strings after the
    ``RAW_SCHEMA`` columns (``core.features.raw_schema``): the bid file reads them so that Astro never
    enables what a person paused. Other columns are dropped."""
    schema = raw_schema(table.column_names)
    table = table.select(schema.names).cast(schema)
    shards = shard_count(table.num_rows)
    ad_groups, ids = table.column("ad_group_id").to_numpy(), table.column("keyword_id").to_numpy()
    shard = keyword_shard(ad_groups, ids, shards)
    order = np.lexsort((ids, ad_groups, shard))
    table = table.take(pa.array(order)).replace_schema_metadata({SHARD_KEY_METADATA: SHARD_KEY})
    bounds = np.searchsorted(shard[order], np.arange(shards + 1))
    for s in range(shards):
        part = table.slice(bounds[s], bounds[s + 1] - bounds[s])
        pq.write_table(part, folder / shard_file_name(s, shards), compression="zstd")
    return table.num_rows


def write_raw(folder: Path, day: pa.Table | RawBlocks) -> tuple[int, dict[str, int]]:
    """Write one day (a table, or ``RawBlocks``) into ``folder`` as keyword shards; returns the rows
    written and the null count of each column."""
    if isinstance(day, pa.Table):
        return write_raw_shards(folder, day), null_counts(day)
    return write_raw_blocks(folder, day.blocks, shard_count(day.expected_rows))


def write_raw_blocks(folder: Path, blocks: Iterator[pa.Table], shards: int) -> tuple[int, dict[str, int]]:
    """Write a day that comes in blocks (``RawBlocks``) into ``folder`` as ``shards`` keyword shards, as
    ``write_raw_shards`` would shard and sort one table, holding one block at a time: each block's rows
    are appended to their shards' files in pair order. Returns the rows written and each column's null
    count. A block whose pairs do not all sort after those already written to a shard is refused (the
    shard would no longer be sorted)."""
    writers: list[pq.ParquetWriter] = []
    last: list[tuple[int, int] | None] = [None] * shards
    rows, nulls = 0, {}
    try:
        for number, table in enumerate(blocks):
            if not writers:
                schema = raw_schema(table.column_names).with_metadata({SHARD_KEY_METADATA: SHARD_KEY})
                writers = [
                    pq.ParquetWriter(folder / shard_file_name(s, shards), schema, compression="zstd")
                    for s in range(shards)
                ]
            table = table.select(schema.names).cast(schema)
            ad_groups, ids = table.column("ad_group_id").to_numpy(), table.column("keyword_id").to_numpy()
            shard = keyword_shard(ad_groups, ids, shards)
            order = np.lexsort((ids, ad_groups, shard))
            bounds = np.searchsorted(shard[order], np.arange(shards + 1))
            for s in range(shards):
                rows_of_shard = order[bounds[s] : bounds[s + 1]]
                if len(rows_of_shard) == 0:
                    continue
                head = int(rows_of_shard[0])
                if last[s] is not None and (int(ad_groups[head]), int(ids[head])) <= last[s]:
                    raise ValueError(
                        f"raw block {number}: its pairs do not all sort after the blocks before it "
                        f"(shard {s}: ({ad_groups[head]}, {ids[head]}) after {last[s]})"
                    )
                writers[s].write_table(table.take(pa.array(rows_of_shard)))
                tail = int(rows_of_shard[-1])
                last[s] = (int(ad_groups[tail]), int(ids[tail]))
            rows += table.num_rows
            for name, count in null_counts(table).items():
                nulls[name] = nulls.get(name, 0) + count
    finally:
        for writer in writers:
            writer.close()
    return rows, nulls


def null_counts(table: pa.Table) -> dict[str, int]:
    return {name: table.column(name).null_count for name in table.column_names}
