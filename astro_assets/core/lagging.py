"""Null replacement and lagging for one shard of keywords, in numpy (runs inside Spark tasks).

Given the raw report rows of the T days of the window (one Arrow table per day, any of them possibly
empty), build one row per keyword seen in the window with its features as a day-major T×F float
array. Imports only numpy, pyarrow and ``core.features``: Spark executors run it without the rest of the
package (``stages.spark`` ships the core modules by value).
"""

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.core.features import (
    FEATURE_NAMES,
    FEATURES_TYPE,
    KEYWORD_ATTRIBUTES,
    LAGS,
    MISSING_IMPRESSION_SHARE,
    N_FEATURES,
    NEUTRAL_QUALITY_SCORE,
    RAW_SCHEMA,
    features_column,
)

PREPROCESSED_SCHEMA = pa.schema(
    [
        ("keyword_id", pa.int64()),
        ("campaign_id", pa.int64()),
        ("campaign_name", pa.string()),
        ("ad_group_id", pa.int64()),
        ("ad_group_name", pa.string()),
        ("keyword_text", pa.string()),
        ("match_type", pa.string()),
        ("features", FEATURES_TYPE),
        ("trailing_value_per_click", pa.float64()),
        ("clicks_in_window", pa.int64()),
    ]
)


#: How a preprocessed shard is written: lz4 (decompresses ~2x faster than snappy, the same size on these
#: floats) and no dictionary for the features, whose values rarely repeat as whole rows.
PREPROCESSED_WRITE_OPTIONS = {
    "compression": "lz4",
    "use_dictionary": [name for name in PREPROCESSED_SCHEMA.names if name != "features"],
}


#: Parquet metadata key of a raw shard file written with :func:`keyword_shard` on the pair of ids
#: (files without it were written by ``keyword_id % shards`` and are read whole and filtered).
SHARD_KEY_METADATA = b"astro.shard_key"
SHARD_KEY = b"ad_group_id,keyword_id"


def keyword_shard(ad_group_ids: np.ndarray, keyword_ids: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each keyword, decided by both ids of its identity (ad group id, criterion id):
    a 64-bit mix of the pair (splitmix64's finaliser), so the same criterion id in several ad groups
    spreads over the shards and consecutive ids fill them evenly. Deterministic everywhere."""
    with np.errstate(over="ignore"):
        h = np.asarray(keyword_ids, dtype=np.int64).view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= np.asarray(ad_group_ids, dtype=np.int64).view(np.uint64)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h % np.uint64(shards)).astype(np.int64)


def keyword_order(table: pa.Table) -> np.ndarray:
    """Row order of ``table`` by its keyword identity (ad_group_id, then keyword_id)."""
    return np.lexsort((table.column("keyword_id").to_numpy(), table.column("ad_group_id").to_numpy()))


def read_keyword_shard(paths: list[str], shard: int, shards: int) -> pa.Table:
    """The rows of keyword shard ``shard`` (of ``shards``) of one raw day, sorted by (ad group id,
    keyword id).

    ``paths`` is that shard's own file when the day was written with ``shards`` shards, or every
    file of the day when it was written with another count or shard key (then they are read whole
    and filtered). The caller (``stages.preprocess``, through ``storage.DataLayout``) decides which.
    """
    if not paths:
        return RAW_SCHEMA.empty_table()
    if len(paths) == 1:
        return pq.read_table(paths[0])
    table = pa.concat_tables(pq.read_table(path) for path in paths)
    ad_groups, ids = table.column("ad_group_id").to_numpy(), table.column("keyword_id").to_numpy()
    table = table.filter(pa.array(keyword_shard(ad_groups, ids, shards) == shard))
    return table.take(pa.array(keyword_order(table)))


def written_by_pair(path: str) -> bool:
    """Whether a raw shard file was written with the (ad group id, keyword id) shard key."""
    metadata = pq.read_schema(path).metadata or {}
    return metadata.get(SHARD_KEY_METADATA) == SHARD_KEY


def build_shard(
    day: dt.date,
    day_paths: list[list[str]],
    shard: int,
    shards: int,
    out_path: str,
    lags: int = LAGS,
    row_group_rows: int = 50_000,
) -> int:
    """Read shard ``shard`` of each raw day of the window (``day_paths[t]``: the files to read for day
    ``t``), build its lagged features, write them to ``out_path`` (Parquet); returns the number of keywords."""
    table = lagged_features(day, [read_keyword_shard(paths, shard, shards) for paths in day_paths], lags)
    pq.write_table(table, out_path, row_group_size=row_group_rows, **PREPROCESSED_WRITE_OPTIONS)
    return table.num_rows


def _keyword_rows(tables: list[pa.Table]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct keywords (ad group id, keyword id) of ``tables``, sorted by the pair, and the
    keyword (row of the output) of every row of the tables in their concatenation order."""
    ad_groups = np.concatenate([t.column("ad_group_id").to_numpy() for t in tables]).astype(np.int64)
    ids = np.concatenate([t.column("keyword_id").to_numpy() for t in tables]).astype(np.int64)
    order = np.lexsort((ids, ad_groups))
    new = np.ones(len(order), dtype=bool)
    new[1:] = (ad_groups[order][1:] != ad_groups[order][:-1]) | (ids[order][1:] != ids[order][:-1])
    keyword = np.empty(len(order), dtype=np.int64)
    keyword[order] = np.cumsum(new) - 1
    return ad_groups[order][new], ids[order][new], keyword


def _column(table: pa.Table, name: str, fill: float) -> np.ndarray:
    """A numeric column as float64 with nulls (and NaN) replaced by ``fill``."""
    values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    return np.where(np.isnan(values), fill, values)


def lagged_features(day: dt.date, tables: list[pa.Table], lags: int = LAGS) -> pa.Table:
    """One row per keyword seen in the window ``day-lags+1 .. day`` (``tables[t]`` is day ``t``); a
    keyword is an (ad group id, keyword id) pair (Google's criterion id is shared by the same text and
    match type across ad groups), and the rows are sorted by the pair.

    Null policy (``features.NULL_POLICY``): a keyword absent on a day has zeros and
    ``row_missing = 1``; a null conversion value becomes conversions × the keyword's value per
    conversion over the window's known days, with ``conversion_value_missing = 1``; a null quality
    score the keyword's window mean (else neutral); a null impression share 0.05.
    """
    if len(tables) != lags:
        raise ValueError(f"expected {lags} daily tables, got {len(tables)}")
    _, ids, keyword_of_row = _keyword_rows(tables)
    k = len(ids)
    shape = (k, lags)
    present = np.zeros(shape, dtype=bool)
    impressions, clicks, cost, conversions = (np.zeros(shape) for _ in range(4))
    value, quality, share = (np.full(shape, np.nan) for _ in range(3))
    latest_row = np.full(k, -1, dtype=np.int64)  # row of the keyword's latest day in the concatenation
    offset = 0
    for t, table in enumerate(tables):
        rows = keyword_of_row[offset : offset + table.num_rows]
        present[rows, t] = True
        impressions[rows, t] = _column(table, "impressions", 0.0)
        clicks[rows, t] = _column(table, "clicks", 0.0)
        cost[rows, t] = _column(table, "cost_micros", 0.0) / 1e6
        conversions[rows, t] = _column(table, "conversions", 0.0)
        value[rows, t] = table.column("conversion_value").to_numpy(zero_copy_only=False).astype(np.float64)
        quality[rows, t] = table.column("quality_score").to_numpy(zero_copy_only=False).astype(np.float64)
        share[rows, t] = table.column("search_impression_share").to_numpy(zero_copy_only=False).astype(np.float64)
        latest_row[rows] = offset + np.arange(table.num_rows)
        offset += table.num_rows

    known = present & ~np.isnan(value)
    known_value = np.where(known, value, 0.0).sum(axis=1)
    known_conversions = np.where(known, conversions, 0.0).sum(axis=1)
    with np.errstate(over="ignore"):
        value_per_conversion = np.divide(known_value, known_conversions, out=np.zeros(k), where=known_conversions > 0)
    value_per_conversion[~np.isfinite(value_per_conversion)] = 0.0  # tiny conversion counts overflow
    value_missing = present & np.isnan(value)
    value = np.where(np.isnan(value), conversions * value_per_conversion[:, None], value)
    quality_known = ~np.isnan(quality)
    quality_count = quality_known.sum(axis=1)
    quality_mean = np.divide(
        np.where(quality_known, quality, 0.0).sum(axis=1),
        quality_count,
        out=np.full(k, NEUTRAL_QUALITY_SCORE * 10),
        where=quality_count > 0,
    )
    quality = np.where(quality_known, quality, quality_mean[:, None]) / 10.0
    share = np.where(np.isnan(share), MISSING_IMPRESSION_SHARE, share)
    # No clamping anywhere: an input outside its physical range (negative counts, more clicks than
    # impressions) shows as an out-of-range or NaN feature, which the blocking checks refuse to publish.
    ctr = np.divide(clicks, impressions, out=np.zeros(shape), where=impressions > 0)
    value_per_click = np.divide(value, clicks, out=np.zeros(shape), where=clicks > 0)
    angle = 2 * math.pi * ((day.weekday() - (lags - 1) + np.arange(lags)) % 7) / 7

    attributes = {
        name: pa.concat_arrays([t.column(name).combine_chunks() for t in tables]).take(pa.array(latest_row))
        if k
        else pa.array([], type=PREPROCESSED_SCHEMA.field(name).type)
        for name in KEYWORD_ATTRIBUTES
    }
    match_type = np.asarray(attributes["match_type"].to_numpy(zero_copy_only=False))
    per_keyword = np.ones(shape)
    columns = {
        "log_impressions": np.log1p(impressions),
        "log_clicks": np.log1p(clicks),
        "log_cost": np.log1p(cost),
        "log_conversions": np.log1p(conversions),
        "log_conversion_value": np.log1p(value),
        "ctr": ctr,
        "log_value_per_click": np.log1p(value_per_click),
        "quality_score": quality,
        "search_impression_share": share,
        "row_missing": (~present).astype(np.float64),
        "conversion_value_missing": value_missing.astype(np.float64),
        "weekday_sin": per_keyword * np.sin(angle),
        "weekday_cos": per_keyword * np.cos(angle),
        "is_exact": per_keyword * (match_type == "EXACT")[:, None],
        "is_phrase": per_keyword * (match_type == "PHRASE")[:, None],
    }
    if tuple(columns) != FEATURE_NAMES:
        raise RuntimeError(f"feature columns {tuple(columns)} out of step with features.FEATURES {FEATURE_NAMES}")
    features = np.empty((k, lags, N_FEATURES), dtype=np.float32)  # day-major: [keyword, day, feature]
    for i, column in enumerate(columns.values()):
        features[:, :, i] = column
    with_clicks = clicks > 0
    days_with_clicks = with_clicks.sum(axis=1)
    trailing = np.divide(
        np.where(with_clicks, value_per_click, 0.0).sum(axis=1),
        days_with_clicks,
        out=np.zeros(k),
        where=days_with_clicks > 0,
    )
    return pa.Table.from_arrays(
        [
            pa.array(ids, type=pa.int64()),
            *attributes.values(),
            features_column(features),
            pa.array(trailing),
            pa.array(clicks.sum(axis=1).astype(np.int64)),
        ],
        schema=PREPROCESSED_SCHEMA,
    )
