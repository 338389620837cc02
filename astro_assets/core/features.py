"""The model's inputs, in one place: the lag length T, the per-day feature list, the null policy.

Training (``model``), prediction (``stages.predict``), the checks and the ONNX metadata all read these
names, so the order of features can never differ between the model that was trained and the one
that scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: Days of history per keyword fed to the model (the lag window, day D-T+1 .. D).
LAGS = 7


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    lower: float  # physical range after null replacement, asserted by a check
    upper: float


FEATURES: tuple[Feature, ...] = (
    Feature("log_impressions", "log1p(impressions); 0 on a day the keyword is absent", 0.0, 25.0),
    Feature("log_clicks", "log1p(clicks)", 0.0, 25.0),
    Feature("log_cost", "log1p(cost in account currency)", 0.0, 25.0),
    Feature("log_conversions", "log1p(conversions)", 0.0, 25.0),
    Feature("log_conversion_value", "log1p(conversion value, imputed when missing)", 0.0, 25.0),
    Feature("ctr", "clicks / impressions; 0 without impressions", 0.0, 1.0),
    Feature("log_value_per_click", "log1p(conversion value / clicks); 0 without clicks", 0.0, 25.0),
    Feature("quality_score", "quality score / 10; keyword's window mean, else 0.5, when missing", 0.0, 1.0),
    Feature("search_impression_share", "share of eligible impressions; 0.05 ('< 10%') when missing", 0.0, 1.0),
    Feature("row_missing", "1 when the report has no row for the keyword that day", 0.0, 1.0),
    Feature("conversion_value_missing", "1 when conversion value was null and imputed", 0.0, 1.0),
    Feature("weekday_sin", "sin(2π·weekday/7) of the day", -1.0, 1.0),
    Feature("weekday_cos", "cos(2π·weekday/7) of the day", -1.0, 1.0),
    Feature("is_exact", "match type is exact", 0.0, 1.0),
    Feature("is_phrase", "match type is phrase", 0.0, 1.0),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
FEATURE_VECTOR_LENGTH = LAGS * N_FEATURES

#: How a keyword's T×F features are stored in ``preprocessed_features``: float32, little-endian,
#: day-major, as one fixed-size binary value (Parquet FIXED_LEN_BYTE_ARRAY, written with lz4 and no
#: dictionary: ``lagging.PREPROCESSED_WRITE_OPTIONS``). Reading it is a copy; the ``list<float>`` the
#: partitions had before decodes a repetition and a definition level per value, and took ~25 % of a
#: shard's scoring time (README "Benchmark"). Partitions written as ``list<float>`` are still read.
FEATURE_DTYPE = np.dtype("<f4")
FEATURES_TYPE = pa.binary(FEATURE_VECTOR_LENGTH * FEATURE_DTYPE.itemsize)


def features_column(matrix: np.ndarray) -> pa.FixedSizeBinaryArray:
    """A [rows, T, F] (or [rows, T×F]) array as the ``features`` column (``FEATURES_TYPE``)."""
    values = np.ascontiguousarray(matrix, dtype=FEATURE_DTYPE)
    if values.size != len(values) * FEATURE_VECTOR_LENGTH:
        raise ValueError(f"{values.shape[1:]} values per row; the features column holds {FEATURE_VECTOR_LENGTH}")
    return pa.FixedSizeBinaryArray.from_buffers(FEATURES_TYPE, len(values), [None, pa.py_buffer(values)])


def feature_rows(values: pa.Array | pa.ChunkedArray, width: int) -> np.ndarray:
    """The ``features`` column as a [rows, width] float32 array: a fixed-size binary column is viewed
    in place (read-only; a chunked column is combined first), a ``list<float>`` one (partitions written
    before ``FEATURES_TYPE``) flattened. Raises ``ValueError`` on a null array or a row of another length."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        raise ValueError(f"features column has {values.null_count} null arrays")
    if pa.types.is_fixed_size_binary(values.type):
        if values.type.byte_width != width * FEATURE_DTYPE.itemsize:
            raise ValueError(
                f"features column holds {values.type.byte_width // FEATURE_DTYPE.itemsize} values per row; "
                f"{width} expected"
            )
        flat = np.frombuffer(
            values.buffers()[1],
            dtype=FEATURE_DTYPE,
            count=len(values) * width,
            offset=values.offset * values.type.byte_width,
        )
    else:
        flat = values.flatten().to_numpy(zero_copy_only=False)
        if flat.size != len(values) * width:
            raise ValueError(
                f"features column holds {flat.size} values for {len(values)} rows; {width} expected per row"
            )
    return flat.astype(np.float32, copy=False).reshape(len(values), width)


#: Value used for a missing search impression share: Google reports "< 10%" for low shares.
MISSING_IMPRESSION_SHARE = 0.05
#: Neutral quality score (scaled to 0..1) when a keyword has none in its window.
NEUTRAL_QUALITY_SCORE = 0.5

#: What happens to a null in each raw column before features are built (README "Null policy").
NULL_POLICY: dict[str, str] = {
    "impressions": "0 (a keyword absent from the day's report had no traffic); row_missing = 1",
    "clicks": "0; row_missing = 1 when the whole row is absent",
    "cost_micros": "0",
    "conversions": "0",
    "conversion_value": "conversions × the keyword's mean value per conversion over the window "
    "(0 if it has none); conversion_value_missing = 1",
    "quality_score": "the keyword's mean quality score over the window, else neutral 5/10",
    "search_impression_share": f"{MISSING_IMPRESSION_SHARE} (Google's '< 10%')",
}

#: The schema of every raw_features partition (Google Ads keyword report fields).
#: A keyword's identity, as Google Ads identifies it: the criterion id of the same text and match type
#: is shared across ad groups, so a keyword is the pair (ad group id, criterion id). Legacy tables
#: without ``ad_group_id`` are matched on ``keyword_id`` alone.
KEYWORD_PAIR = ("ad_group_id", "keyword_id")

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
RAW_COLUMNS: tuple[str, ...] = tuple(RAW_SCHEMA.names)

#: Optional raw_features columns (strings, the Google Ads API's names ENABLED / PAUSED / REMOVED): the
#: status the report gives the keyword, its ad group and its campaign. Not model inputs: the bid file
#: reads them from the day's partition, when present, so that Astro never enables what a person paused.
STATUS_COLUMNS: tuple[str, ...] = ("keyword_status", "ad_group_status", "campaign_status")


def raw_schema(names: list[str] | tuple[str, ...]) -> pa.Schema:
    """The schema of a raw partition whose table has the columns ``names``: :data:`RAW_SCHEMA`, then
    those of :data:`STATUS_COLUMNS` among ``names`` as nullable strings, in that order (a day without
    status columns has exactly RAW_SCHEMA, so its bytes and content hash are what they were)."""
    statuses = [pa.field(c, pa.string()) for c in STATUS_COLUMNS if c in names]
    return pa.schema([*RAW_SCHEMA, *statuses])


#: Keyword attributes carried from raw to preprocessed features (and on to the bid file).
KEYWORD_ATTRIBUTES: tuple[str, ...] = (
    "campaign_id",
    "campaign_name",
    "ad_group_id",
    "ad_group_name",
    "keyword_text",
    "match_type",
)

MATCH_TYPES: tuple[str, ...] = ("EXACT", "PHRASE", "BROAD")
