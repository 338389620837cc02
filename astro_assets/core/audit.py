"""One pass over one Parquet file of a daily partition, counting what the checks assert; and one
Google Ads Editor file of the bid partition read back row by row (``audit_editor_file``).

Each audit of a Parquet file reads it once, batch by batch (bounded memory), and returns totals: rows
and, per rule, how many rows break it; and the keywords the file holds more than once, with the
keyword shards of its rows (``keyword_totals``), so that one row per keyword is checked without a
Spark shuffle when the files hold disjoint shards. An Editor file's audit returns its rows' keyword pairs, bids
and per-rule flags instead: the bid-file checks join them to the predictions before summing. The
driver sums the files' totals and Great Expectations validates the sums (``stages.audits``,
``stages.validation``): every expectation of an asset costs one read of its data, not one Spark job
each. numpy and pyarrow only: the audits run inside Spark tasks on the executors.
"""

import json
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astro_assets.core.bid_rule import PAUSED
from astro_assets.core.editor import EDITOR_MATCH_TYPES, EDITOR_STATUSES, read_editor_file
from astro_assets.core.features import (
    FEATURE_DTYPE,
    FEATURE_VECTOR_LENGTH,
    FEATURES,
    KEYWORD_ATTRIBUTES,
    KEYWORD_PAIR,
    N_FEATURES,
    RAW_COLUMNS,
    feature_rows,
)
from astro_assets.core.lagging import keyword_shard

Totals = dict[str, int]

#: Raw metrics that can never be negative.
NON_NEGATIVE_METRICS = ("impressions", "clicks", "cost_micros", "conversions", "conversion_value")
#: A predicted value per click above this is treated as broken, not as a great keyword.
MAX_PLAUSIBLE_VALUE_PER_CLICK = 10_000.0
AUDIT_BATCH_ROWS = 65_536


def _batches(path: str, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(path).iter_batches(batch_size=AUDIT_BATCH_ROWS, columns=columns)


def _add(totals: Totals, name: str, count) -> None:
    totals[name] = totals.get(name, 0) + int(count)


def _floats(batch: pa.RecordBatch, name: str) -> np.ndarray:
    """A numeric column as float64, nulls as NaN."""
    return batch.column(batch.schema.get_field_index(name)).to_numpy(zero_copy_only=False).astype(np.float64)


def _nan(batch: pa.RecordBatch, name: str) -> int:
    """NaN values that are not nulls (a null is counted as a null, not as NaN)."""
    column = batch.column(batch.schema.get_field_index(name))
    if not pa.types.is_floating(column.type):
        return 0
    return int(pc.sum(pc.is_nan(column)).as_py() or 0)


#: Per-file values of ``keyword_totals`` that are not summed over files: the first and last keyword
#: shard of the file's rows (-1 for a file without rows).
SHARD_BOUNDS = ("first_shard", "last_shard")


class _Pairs:
    """The keyword pairs of a file, gathered batch by batch (16 bytes a row)."""

    def __init__(self, schema: pa.Schema):
        self.present = all(name in schema.names for name in KEYWORD_PAIR)
        self.chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self.nulls = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if not self.present:
            return
        columns = [batch.column(batch.schema.get_field_index(name)) for name in KEYWORD_PAIR]
        valid = np.ones(batch.num_rows, dtype=bool)
        for column in columns:
            if column.null_count:
                valid &= column.is_valid().to_numpy(zero_copy_only=False)
        self.nulls += int((~valid).sum())
        ad_groups, ids = (pc.fill_null(c, 0).to_numpy(zero_copy_only=False).astype(np.int64) for c in columns)
        self.chunks.append((ad_groups[valid], ids[valid]))

    def totals(self, rows: int, shards: int) -> Totals:
        if not self.present:  # an older partition keyed by keyword_id alone: the driver counts with Spark
            return {"keywords_repeated_in_file": 0, "rows_without_pair": rows, "first_shard": -1, "last_shard": -1}
        ad_groups = np.concatenate([a for a, _ in self.chunks]) if self.chunks else np.zeros(0, np.int64)
        ids = np.concatenate([k for _, k in self.chunks]) if self.chunks else np.zeros(0, np.int64)
        return keyword_totals(ad_groups, ids, shards) | {"rows_without_pair": self.nulls}


def keyword_totals(ad_group_ids: np.ndarray, keyword_ids: np.ndarray, shards: int) -> Totals:
    """Keywords (ad group id, keyword id) that appear on more than one row of one file
    (``keywords_repeated_in_file``), and the first and last keyword shard of its rows
    (``core.lagging.keyword_shard`` of ``shards``; -1 without rows). Files that each hold one shard,
    no two the same, cannot share a keyword: the partition's repeated keywords are then the sum of
    the files' (``stages.audits``)."""
    if len(ad_group_ids) == 0:
        return {"keywords_repeated_in_file": 0, "first_shard": -1, "last_shard": -1}
    a, k = ad_group_ids, keyword_ids
    ordered = (a[1:] > a[:-1]) | ((a[1:] == a[:-1]) & (k[1:] >= k[:-1]))
    if not ordered.all():
        order = np.lexsort((k, a))
        a, k = a[order], k[order]
    same = (a[1:] == a[:-1]) & (k[1:] == k[:-1])  # a row that repeats the keyword of the row before
    first_repeat = same & ~np.concatenate([[False], same[:-1]])  # one per keyword with several rows
    shard = keyword_shard(ad_group_ids, keyword_ids, shards)
    return {
        "keywords_repeated_in_file": int(first_repeat.sum()),
        "first_shard": int(shard.min()),
        "last_shard": int(shard.max()),
    }


def audit_raw_file(path: str, shards: int = 1) -> Totals:
    """Rows, nulls and NaN per column, negative metrics, clicks above impressions, conversions above
    clicks (real accounts have them: "every" conversion counting), quality score outside 1..10 and
    impression share outside 0..1, in one raw shard file; its keywords (``keyword_totals``, the
    partition's ``shards``)."""
    totals: Totals = {"rows": 0}
    pairs = _Pairs(pq.ParquetFile(path).schema_arrow)
    for batch in _batches(path, list(dict.fromkeys([*RAW_COLUMNS, *KEYWORD_PAIR]))):
        _add(totals, "rows", batch.num_rows)
        pairs.add(batch)
        for name in RAW_COLUMNS:
            _add(totals, f"null_{name}", batch.column(batch.schema.get_field_index(name)).null_count)
            _add(totals, f"nan_{name}", _nan(batch, name))
        for name in NON_NEGATIVE_METRICS:
            _add(totals, f"negative_{name}", (_floats(batch, name) < 0).sum())
        impressions, clicks, conversions = (_floats(batch, n) for n in ("impressions", "clicks", "conversions"))
        _add(totals, "clicks_above_impressions", (clicks > impressions).sum())
        _add(totals, "conversions_above_clicks", (conversions > clicks).sum())
        quality = _floats(batch, "quality_score")
        _add(totals, "quality_score_outside_1_10", ((quality < 1) | (quality > 10)).sum())
        share = _floats(batch, "search_impression_share")
        _add(totals, "impression_share_outside_0_1", ((share < 0) | (share > 1)).sum())
    return totals | pairs.totals(totals["rows"], shards)


#: Each feature's documented range, in feature order (``features.FEATURES``).
_LOWER = np.array([f.lower for f in FEATURES])
_UPPER = np.array([f.upper for f in FEATURES])


def _feature_arrays(arrays: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The values of a batch's feature arrays, flat in row order (null values as NaN), and each row's
    array length (0 for a null array): the ``features`` column as written (``features.FEATURES_TYPE``:
    fixed-size binary of float32) or as written before it (``list<float>``)."""
    valid = arrays.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_binary(arrays.type):
        width = arrays.type.byte_width // FEATURE_DTYPE.itemsize
        if arrays.type.byte_width % FEATURE_DTYPE.itemsize:  # not float32 values: no value to check
            return np.zeros(0), np.where(valid, -1, 0)
        present = pc.drop_null(arrays)
        return feature_rows(present, width).reshape(-1), np.where(valid, width, 0)
    lengths = pc.fill_null(pc.list_value_length(arrays), 0).to_numpy().astype(np.int64)
    return pc.list_flatten(arrays).to_numpy(zero_copy_only=False), lengths  # null values -> NaN


def _feature_values(values: np.ndarray, lengths: np.ndarray) -> tuple[int, np.ndarray]:
    """Values that are null or NaN, and per feature the values outside the feature's range, of a
    batch's feature arrays (``_feature_arrays``). Full arrays (every one ``FEATURE_VECTOR_LENGTH``
    long: the stage writes nothing else) are compared as one (rows × days, features) block in their
    own float type, and counted per feature only if some value is not within its range; any other
    batch value by value, each value's feature from its position in its array."""
    if (lengths == FEATURE_VECTOR_LENGTH).all():
        block = values.reshape(-1, N_FEATURES)
        if (
            block.dtype.kind == "f"
            and np.array_equal(_LOWER.astype(block.dtype), _LOWER)
            and np.array_equal(_UPPER.astype(block.dtype), _UPPER)
        ):  # the ranges' ends are exact in the stored type: comparing in it is comparing in float64
            lower, upper = _LOWER.astype(block.dtype), _UPPER.astype(block.dtype)
        else:
            block, lower, upper = block.astype(np.float64), _LOWER, _UPPER
        within = (block >= lower) & (block <= upper)  # NaN is within no range
        if within.all():
            return 0, np.zeros(N_FEATURES, dtype=np.int64)
        missing = np.isnan(block)
        return int(missing.sum()), (~within & ~missing).sum(axis=0)
    lengths = np.maximum(lengths, 0)
    flat = values.astype(np.float64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    feature = (np.arange(len(flat)) - np.repeat(starts, lengths)) % N_FEATURES
    outside = (flat < _LOWER[feature]) | (flat > _UPPER[feature])  # NaN compares false: counted as missing
    return int(np.isnan(flat).sum()), np.bincount(feature[outside], minlength=N_FEATURES)


def audit_features_file(path: str, shards: int = 1) -> Totals:
    """Rows; keyword attributes missing; feature arrays missing or of the wrong length; null or NaN
    values in them; values outside each feature's documented range (``features.FEATURES``), per
    feature; trailing value per click missing or negative; negative click counts; its keywords
    (``keyword_totals``, the partition's ``shards``)."""
    totals: Totals = {"rows": 0}
    pairs = _Pairs(pq.ParquetFile(path).schema_arrow)
    columns = list(
        dict.fromkeys([*KEYWORD_PAIR, *KEYWORD_ATTRIBUTES, "features", "trailing_value_per_click", "clicks_in_window"])
    )
    for batch in _batches(path, columns):
        _add(totals, "rows", batch.num_rows)
        pairs.add(batch)
        for name in ("keyword_id", *KEYWORD_ATTRIBUTES):
            _add(totals, "missing_keyword_attributes", batch.column(batch.schema.get_field_index(name)).null_count)
        arrays = batch.column(batch.schema.get_field_index("features"))
        values, lengths = _feature_arrays(arrays)
        _add(totals, "missing_feature_arrays", arrays.null_count)
        _add(totals, "wrong_length_feature_arrays", ((lengths != FEATURE_VECTOR_LENGTH) & arrays.is_valid()).sum())
        missing, outside = _feature_values(values, lengths)
        _add(totals, "missing_feature_values", missing)
        for i, count in enumerate(outside):
            _add(totals, f"out_of_range_{FEATURES[i].name}", count)
        trailing = _floats(batch, "trailing_value_per_click")
        _add(totals, "missing_trailing_value_per_click", np.isnan(trailing).sum())
        _add(totals, "negative_trailing_value_per_click", (trailing < 0).sum())
        _add(totals, "negative_clicks_in_window", (_floats(batch, "clicks_in_window") < 0).sum())
    return totals | pairs.totals(totals["rows"], shards)


def audit_predictions_file(path: str, shards: int = 1) -> Totals:
    """Rows; predictions missing, NaN or infinite, negative, or implausibly large; rows without a
    model version; its keywords (``keyword_totals``, the partition's ``shards``)."""
    totals: Totals = {"rows": 0}
    schema = pq.ParquetFile(path).schema_arrow
    pairs = _Pairs(schema)
    keys = [name for name in KEYWORD_PAIR if name in schema.names]
    for batch in _batches(path, ["predicted_value_per_click", "model_version", *keys]):
        _add(totals, "rows", batch.num_rows)
        pairs.add(batch)
        column = batch.column(0)
        _add(totals, "missing_predictions", column.null_count)
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        _add(totals, "non_finite_predictions", (valid & ~np.isfinite(values)).sum())
        _add(totals, "negative_predictions", (values < 0).sum())
        _add(totals, "implausible_predictions", (values > MAX_PLAUSIBLE_VALUE_PER_CLICK).sum())
        _add(totals, "missing_model_version", batch.column(1).null_count)
    return totals | pairs.totals(totals["rows"], shards)


def file_rows(path: str) -> int:
    """Rows of a Parquet file, from its footer."""
    return pq.ParquetFile(path).metadata.num_rows


#: What a row of a Google Ads Editor file can break, counted per row by ``audit_editor_file``.
EDITOR_ROW_RULES = (
    "rows_without_names",  # Campaign, Ad group or Keyword blank
    "rows_without_ids",  # Campaign ID, Ad group ID or Keyword ID not a whole number
    "unknown_criterion_types",  # not one of Editor's match types
    "unknown_statuses",  # not Enabled, Paused or blank
    "malformed_max_cpc",  # not blank nor a decimal in the currency's format
    "max_cpc_below_floor",
    "max_cpc_above_ceiling",
    "max_cpc_not_positive",
    "serving_without_bid",  # not Paused and no Max CPC: the keyword's live bid would stay
)
_WHOLE_NUMBER = r"^[0-9]{1,18}$"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$"


def _text(rows: pa.Table, column: str) -> pa.ChunkedArray:
    """A column of an Editor file; a column the file lacks reads as blank, as Editor reads it."""
    if column in rows.column_names:
        return rows[column]
    return pa.chunked_array([pa.array([""] * rows.num_rows, pa.string())])


def _flag(array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _editor_rows(
    path: str, money: str, floor: float, ceiling: float, tolerance: float
) -> tuple[dict[str, pa.ChunkedArray], dict[str, np.ndarray]]:
    """One Editor file read as Editor reads it: the keyword pair and Max CPC of each row (nulls where
    not a whole number / not a number), and each row rule's 0/1 flags (``audit_editor_file``)."""
    with open(path, "rb") as handle:
        rows = read_editor_file(handle.read(), path)
    n = rows.num_rows
    names = np.zeros(n, dtype=bool)
    for column in ("Campaign", "Ad group", "Keyword"):
        names |= _flag(pc.equal(_text(rows, column), ""))
    ids: dict[str, pa.ChunkedArray] = {}
    bad_ids = np.zeros(n, dtype=bool)
    for column, name in (("Campaign ID", "campaign_id"), ("Ad group ID", "ad_group_id"), ("Keyword ID", "keyword_id")):
        text = _text(rows, column)
        whole = pc.match_substring_regex(text, _WHOLE_NUMBER)
        bad_ids |= ~_flag(whole)
        ids[name] = pc.cast(pc.if_else(whole, text, pa.scalar(None, pa.string())), pa.int64())
    cpc_text = _text(rows, "Max CPC")
    number = pc.match_substring_regex(cpc_text, _NUMBER)
    max_cpc = pc.cast(pc.if_else(number, cpc_text, pa.scalar(None, pa.string())), pa.float64())
    cpc = max_cpc.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
    status = _text(rows, "Status")
    flags = {
        "rows_without_names": names,
        "rows_without_ids": bad_ids,
        "unknown_criterion_types": ~_flag(
            pc.is_in(_text(rows, "Criterion Type"), value_set=pa.array(list(EDITOR_MATCH_TYPES.values())))
        ),
        "unknown_statuses": ~_flag(pc.is_in(status, value_set=pa.array([*EDITOR_STATUSES.values(), ""]))),
        "malformed_max_cpc": ~_flag(pc.match_substring_regex(cpc_text, money)),
        "max_cpc_below_floor": cpc < floor - tolerance,
        "max_cpc_above_ceiling": cpc > ceiling + tolerance,
        "max_cpc_not_positive": cpc <= 0,
        "serving_without_bid": ~_flag(pc.equal(status, EDITOR_STATUSES[PAUSED])) & np.isnan(cpc),
    }
    return {"ad_group_id": ids["ad_group_id"], "keyword_id": ids["keyword_id"], "max_cpc": max_cpc}, flags


def audit_editor_file(
    path: str, money: str, floor: float, ceiling: float, tolerance: float
) -> Iterator[pa.RecordBatch]:
    """One Google Ads Editor file read back as Editor reads it (``editor.read_editor_file``), row by
    row: the keyword pair (null where an ID is not a whole number), the Max CPC as a number (null
    where blank or not a number), and a 0/1 column per rule of ``EDITOR_ROW_RULES``. ``money``: the
    regular expression of a Max CPC in the currency's format (blank allowed); ``floor``/``ceiling``:
    the bid rule's, compared with ``tolerance`` of slack. The checks join these rows to the day's
    predictions on the pair and sum them (``stages.validation``)."""
    columns, flags = _editor_rows(path, money, floor, ceiling, tolerance)
    columns |= {rule: pa.array(flags[rule].astype(np.int32)) for rule in EDITOR_ROW_RULES}
    yield from pa.table(columns).to_batches(max_chunksize=AUDIT_BATCH_ROWS)


# -- the bid file joined to the predictions shard by shard ------------------------------------------

#: ``shard`` of an Editor row whose keyword pair is not two whole numbers (it can match no prediction).
NO_SHARD = -1
#: ``shard`` of the row carrying one Editor file's row-rule totals (JSON in ``totals``).
FILE_TOTALS = -2
#: The rows ``editor_rows_by_shard`` yields (and the markers the driver adds: a shard, no pair).
EDITOR_SHARD_SCHEMA = pa.schema(
    [
        ("shard", pa.int32()),
        ("ad_group_id", pa.int64()),
        ("keyword_id", pa.int64()),
        ("max_cpc", pa.float64()),
        ("totals", pa.string()),
    ]
)
#: What ``join_shard`` counts per keyword shard.
JOIN_TOTALS = (
    "rows",
    "keywords",
    "bids_above_break_even",
    "rows_not_scored",
    "keywords_without_row",
    "rows_of_removed_keywords",
    "keywords_with_several_rows",
    "keywords_scored_more_than_once",
    "predictions_outside_shard",
)


def editor_rows_by_shard(
    path: str, money: str, floor: float, ceiling: float, tolerance: float, shards: int
) -> Iterator[pa.RecordBatch]:
    """One Editor file reduced to what the join needs: per row its keyword shard (``NO_SHARD`` without
    a whole pair), pair and Max CPC; the row rules of ``EDITOR_ROW_RULES`` summed over the file into
    one more row (``FILE_TOTALS``, JSON), so only three numbers a row cross to Spark's shuffle."""
    columns, flags = _editor_rows(path, money, floor, ceiling, tolerance)
    ad_groups, ids = columns["ad_group_id"], columns["keyword_id"]
    known = _flag(pc.and_(pc.is_valid(ad_groups), pc.is_valid(ids)))
    shard = np.full(len(known), NO_SHARD, dtype=np.int32)
    shard[known] = keyword_shard(
        ad_groups.to_numpy(zero_copy_only=False)[known].astype(np.int64),
        ids.to_numpy(zero_copy_only=False)[known].astype(np.int64),
        shards,
    )
    totals = {rule: int(flags[rule].sum()) for rule in EDITOR_ROW_RULES}
    table = pa.table(
        {
            "shard": pa.array(shard, pa.int32()),
            **columns,
            "totals": pa.nulls(len(known), pa.string()),
        },
        schema=EDITOR_SHARD_SCHEMA,
    )
    yield from table.to_batches(max_chunksize=AUDIT_BATCH_ROWS)
    yield pa.RecordBatch.from_pylist(
        [
            {
                "shard": FILE_TOTALS,
                "ad_group_id": None,
                "keyword_id": None,
                "max_cpc": None,
                "totals": json.dumps(totals),
            }
        ],
        schema=EDITOR_SHARD_SCHEMA,
    )


def join_shard(
    ad_group_ids: np.ndarray,
    keyword_ids: np.ndarray,
    max_cpc: np.ndarray,
    predictions_path: str,
    shard: int,
    shards: int,
    margin: float,
    tolerance: float,
    removed: tuple[np.ndarray, np.ndarray] | None = None,
) -> Totals:
    """The Editor rows of one keyword shard (their pair and Max CPC, NaN where blank) joined row for row
    to that shard's predictions file on the pair: rows; keywords scored; bids above break-even (Max
    CPC above the keyword's lowest predicted value per click × (1 − ``margin``) by more than
    ``tolerance``, or beside a null or NaN prediction); rows of keywords not scored; keywords scored
    without a row, except those ``removed`` (ad group ids, keyword ids: removed in the account, which
    must have none); rows of removed keywords; keywords with several rows; keywords scored more than
    once; and predictions whose keyword is not of this shard (the file is not the shard's: the driver
    then joins in Spark)."""
    table = pq.read_table(predictions_path, columns=[*KEYWORD_PAIR, "predicted_value_per_click"])
    p_groups, p_ids = (table.column(name) for name in KEYWORD_PAIR)
    if p_groups.null_count or p_ids.null_count:
        return {"predictions_outside_shard": table.num_rows}
    p_groups, p_ids = (c.to_numpy().astype(np.int64) for c in (p_groups, p_ids))
    predicted = table.column("predicted_value_per_click").to_numpy().astype(np.float64)  # nulls -> NaN
    outside = int((keyword_shard(p_groups, p_ids, shards) != shard).sum())
    n, m = len(ad_group_ids), len(p_groups)
    r_groups, r_ids = removed if removed is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    mine = keyword_shard(np.asarray(r_groups, np.int64), np.asarray(r_ids, np.int64), shards) == shard
    groups = np.concatenate([ad_group_ids, p_groups, np.asarray(r_groups, np.int64)[mine]])
    ids = np.concatenate([keyword_ids, p_ids, np.asarray(r_ids, np.int64)[mine]])
    order = np.lexsort((ids, groups))
    new = np.ones(len(order), dtype=bool)
    new[1:] = (groups[order][1:] != groups[order][:-1]) | (ids[order][1:] != ids[order][:-1])
    keyword = np.empty(len(order), dtype=np.int64)
    keyword[order] = np.cumsum(new) - 1
    count = int(new.sum())
    rows = np.bincount(keyword[:n], minlength=count)
    scored = np.bincount(keyword[n : n + m], minlength=count)
    gone = np.bincount(keyword[n + m :], minlength=count) > 0  # removed in the account
    invalid = np.bincount(keyword[n : n + m], weights=np.isnan(predicted), minlength=count) > 0
    lowest = np.full(count, np.inf)
    np.minimum.at(lowest, keyword[n : n + m], predicted)  # the lowest break-even where a keyword was scored twice
    row = keyword[:n]
    with np.errstate(invalid="ignore"):
        above = (
            (scored[row] > 0)
            & ~np.isnan(max_cpc)
            & (invalid[row] | (lowest[row] * (1.0 - margin) - max_cpc < -tolerance))
        )
    return {
        "rows": n,
        "keywords": int((scored > 0).sum()),
        "bids_above_break_even": int(above.sum()),
        "rows_not_scored": int(rows[scored == 0].sum()),
        "keywords_without_row": int(((scored > 0) & (rows == 0) & ~gone).sum()),
        "rows_of_removed_keywords": int(rows[gone].sum()),
        "keywords_with_several_rows": int((rows > 1).sum()),
        "keywords_scored_more_than_once": int((scored > 1).sum()),
        "predictions_outside_shard": outside,
    }


def join_shards(
    batches: Iterable[pa.RecordBatch],
    predictions: list[str],
    margin: float,
    tolerance: float,
    removed: tuple[np.ndarray, np.ndarray] | None = None,
) -> Totals:
    """One partition of the Editor rows shuffled by keyword shard (``editor_rows_by_shard``, and a
    marker row per shard: a shard, no pair), each of its shards joined to its predictions file
    (``predictions[shard]``, ``join_shard``, with the keywords ``removed`` in the account), with the
    files' row-rule totals and the rows without a whole pair (they match no prediction) added: the
    partition's totals."""
    table = pa.Table.from_batches(list(batches), schema=EDITOR_SHARD_SCHEMA)
    totals: Totals = {}
    for counts in table.filter(pc.equal(table["shard"], FILE_TOTALS))["totals"].to_pylist():
        for name, value in json.loads(counts).items():
            _add(totals, name, value)
    unpaired = int(pc.sum(pc.equal(table["shard"], NO_SHARD)).as_py() or 0)
    _add(totals, "rows", unpaired)
    _add(totals, "rows_not_scored", unpaired)
    rows = table.filter(pc.greater_equal(table["shard"], 0))
    shard = rows["shard"].to_numpy()
    paired = rows["ad_group_id"].is_valid().to_numpy(zero_copy_only=False)  # a marker row has no pair
    ad_groups = pc.fill_null(rows["ad_group_id"], 0).to_numpy()
    keyword_ids = pc.fill_null(rows["keyword_id"], 0).to_numpy()
    max_cpc = rows["max_cpc"].to_numpy().astype(np.float64)  # nulls -> NaN
    order = np.argsort(shard, kind="stable")
    bounds = np.flatnonzero(np.diff(shard[order])) + 1
    for run in np.split(order, bounds) if len(order) else []:
        s = int(shard[run[0]])
        run = run[paired[run]]
        counts = join_shard(
            ad_groups[run].astype(np.int64),
            keyword_ids[run].astype(np.int64),
            max_cpc[run],
            predictions[s],
            s,
            len(predictions),
            margin,
            tolerance,
            removed,
        )
        for name, value in counts.items():
            _add(totals, name, value)
    return totals
