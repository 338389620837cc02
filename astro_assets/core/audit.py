"""One pass over one Parquet file of a daily partition, counting what the checks assert; and one
Google Ads Editor file of the bid partition read back row by row (``audit_editor_file``).

Each audit of a Parquet file reads it once, batch by batch (bounded memory), and returns totals: rows
and, per rule, how many rows break it. An Editor file's audit returns its rows' keyword pairs, bids
and per-rule flags instead: the bid-file checks join them to the predictions before summing. The
driver sums the files' totals and Great Expectations validates the sums (``stages.audits``,
``stages.validation``): every expectation of an asset costs one read of its data, not one Spark job
each. numpy and pyarrow only: the audits run inside Spark tasks on the executors.
"""

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astro_assets.core.bid_rule import PAUSED
from astro_assets.core.editor import EDITOR_MATCH_TYPES, EDITOR_STATUSES, read_editor_file
from astro_assets.core.features import FEATURE_VECTOR_LENGTH, FEATURES, KEYWORD_ATTRIBUTES, RAW_COLUMNS

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


def audit_raw_file(path: str) -> Totals:
    """Rows, nulls and NaN per column, negative metrics, clicks above impressions, conversions above
    clicks (real accounts have them: "every" conversion counting), quality score outside 1..10 and
    impression share outside 0..1, in one raw shard file."""
    totals: Totals = {"rows": 0}
    for batch in _batches(path, list(RAW_COLUMNS)):
        _add(totals, "rows", batch.num_rows)
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
    return totals


def audit_features_file(path: str) -> Totals:
    """Rows; keyword attributes missing; feature arrays missing or of the wrong length; null or NaN
    values in them; values outside each feature's documented range (``features.FEATURES``), per
    feature; trailing value per click missing or negative; negative click counts."""
    lower = np.array([f.lower for f in FEATURES])
    upper = np.array([f.upper for f in FEATURES])
    totals: Totals = {"rows": 0}
    columns = ["keyword_id", *KEYWORD_ATTRIBUTES, "features", "trailing_value_per_click", "clicks_in_window"]
    for batch in _batches(path, columns):
        _add(totals, "rows", batch.num_rows)
        for name in ("keyword_id", *KEYWORD_ATTRIBUTES):
            _add(totals, "missing_keyword_attributes", batch.column(batch.schema.get_field_index(name)).null_count)
        arrays = batch.column(batch.schema.get_field_index("features"))
        lengths = pc.fill_null(pc.list_value_length(arrays), 0).to_numpy().astype(np.int64)
        _add(totals, "missing_feature_arrays", arrays.null_count)
        _add(totals, "wrong_length_feature_arrays", ((lengths != FEATURE_VECTOR_LENGTH) & arrays.is_valid()).sum())
        values = pc.list_flatten(arrays).to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        feature = (np.arange(len(values)) - np.repeat(starts, lengths)) % len(FEATURES)
        missing = np.isnan(values)
        _add(totals, "missing_feature_values", missing.sum())
        outside = ~missing & ((values < lower[feature]) | (values > upper[feature]))
        for i, count in enumerate(np.bincount(feature[outside], minlength=len(FEATURES))):
            _add(totals, f"out_of_range_{FEATURES[i].name}", count)
        trailing = _floats(batch, "trailing_value_per_click")
        _add(totals, "missing_trailing_value_per_click", np.isnan(trailing).sum())
        _add(totals, "negative_trailing_value_per_click", (trailing < 0).sum())
        _add(totals, "negative_clicks_in_window", (_floats(batch, "clicks_in_window") < 0).sum())
    return totals


def audit_predictions_file(path: str) -> Totals:
    """Rows; predictions missing, NaN or infinite, negative, or implausibly large; rows without a
    model version."""
    totals: Totals = {"rows": 0}
    for batch in _batches(path, ["predicted_value_per_click", "model_version"]):
        _add(totals, "rows", batch.num_rows)
        column = batch.column(0)
        _add(totals, "missing_predictions", column.null_count)
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls -> NaN
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        _add(totals, "non_finite_predictions", (valid & ~np.isfinite(values)).sum())
        _add(totals, "negative_predictions", (values < 0).sum())
        _add(totals, "implausible_predictions", (values > MAX_PLAUSIBLE_VALUE_PER_CLICK).sum())
        _add(totals, "missing_model_version", batch.column(1).null_count)
    return totals


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


def audit_editor_file(
    path: str, money: str, floor: float, ceiling: float, tolerance: float
) -> Iterator[pa.RecordBatch]:
    """One Google Ads Editor file read back as Editor reads it (``editor.read_editor_file``), row by
    row: the keyword pair (null where an ID is not a whole number), the Max CPC as a number (null
    where blank or not a number), and a 0/1 column per rule of ``EDITOR_ROW_RULES``. ``money``: the
    regular expression of a Max CPC in the currency's format (blank allowed); ``floor``/``ceiling``:
    the bid rule's, compared with ``tolerance`` of slack. The checks join these rows to the day's
    predictions on the pair and sum them (``stages.validation``)."""
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
    columns = {"ad_group_id": ids["ad_group_id"], "keyword_id": ids["keyword_id"], "max_cpc": max_cpc}
    columns |= {rule: pa.array(flags[rule].astype(np.int32)) for rule in EDITOR_ROW_RULES}
    yield from pa.table(columns).to_batches(max_chunksize=AUDIT_BATCH_ROWS)
