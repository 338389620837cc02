"""The checks' one pass over each partition counts what a Spark grouping or join would count.

The daily partitions are stored one file per keyword shard, and the checks lean on it: keywords that
appear twice are counted inside each file, and the bid file is joined to the predictions shard by
shard. Each test here breaks a real day (raw shards, features and predictions from the stages, the
Editor files from the bid stage; two shards) and compares the fast count with the plain one — Spark's
grouping by keyword, Spark's join of the Editor rows to the predictions — including the data the
fast path must hand back to Spark: a keyword in two files, predictions not stored by shard.
"""

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astro_assets.core import audit
from astro_assets.core.bid_rule import BidRule
from astro_assets.core.calendar import lag_window
from astro_assets.core.features import (
    FEATURE_VECTOR_LENGTH,
    FEATURES,
    KEYWORD_ATTRIBUTES,
    LAGS,
    N_FEATURES,
    features_column,
)
from astro_assets.sources import synthetic
from astro_assets.stages import audits
from astro_assets.stages import validation as v
from astro_assets.stages.bids import build_bid_partition
from astro_assets.stages.predict import write_predictions
from astro_assets.stages.preprocess import write_preprocessed
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout
from astro_assets.storage.publish import publish_partition
from astro_assets.storage.raw import write_raw_partition
from astro_assets_tests.conftest import loopback_spark
from astro_assets_tests.test_bid_file import rewrite

pytestmark = pytest.mark.spark

SEED, KEYWORDS = 11, 1_200
DAY = dt.date(2026, 7, 1)
RULE = BidRule()


@pytest.fixture(scope="module")
def spark():
    return loopback_spark("local[2]")


@pytest.fixture(scope="module")
def day(spark, tmp_path_factory):
    """One real day in two keyword shards: raw, features, predictions (an untrained model) and bids."""
    import torch

    from astro_assets.model.export import export_onnx
    from astro_assets.model.network import ValuePerClickModel

    layout = DataLayout(tmp_path_factory.mktemp("passes"))
    for d in lag_window(DAY, LAGS):
        write_raw_partition(layout, d, synthetic.keyword_report(SEED, KEYWORDS, d))
    write_preprocessed(spark, layout, DAY)
    torch.manual_seed(0)
    model = ValuePerClickModel(N_FEATURES, 8, np.zeros(N_FEATURES), np.ones(N_FEATURES)).eval()
    write_predictions(
        spark, layout, DAY, export_onnx(model, "20260701-test", {"end_date": DAY.isoformat()}), "20260701-test", 1_000
    )
    with publish_partition(layout.partition_dir(BID_FILE, DAY)) as staging:
        build_bid_partition(layout, DAY, RULE, staging, 200)
    return layout


@pytest.fixture
def copy(day, tmp_path):
    """A copy of the day to break."""
    root = tmp_path / "data"
    shutil.copytree(day.root, root)
    return DataLayout(root)


def _files(layout: DataLayout, asset: str) -> list[Path]:
    return layout.parquet_files(layout.partition_dir(asset, DAY))


def _edit(path: Path, edit) -> None:
    pq.write_table(edit(pq.read_table(path)), path)


def _spark_duplicates(spark, layout: DataLayout, asset: str) -> int:
    frame = spark.read.parquet(*[str(p) for p in _files(layout, asset)])
    return frame.groupBy("ad_group_id", "keyword_id").count().where("count > 1").count()


COUNTS = {
    RAW_FEATURES: audit.audit_raw_file,
    PREPROCESSED_FEATURES: audit.audit_features_file,
    DAILY_PREDICTIONS: audit.audit_predictions_file,
}


@pytest.mark.parametrize("asset", list(COUNTS))
def test_keywords_twice_are_counted_in_the_files_or_by_spark(spark, copy, asset):
    files = _files(copy, asset)
    assert len(files) == 2  # two shards
    inputs = v.CheckInputs(spark, copy, DAY)
    per_file = audits.file_totals(inputs, asset, COUNTS[asset])
    assert audits.shards_disjoint(per_file) and audits.summed(per_file)["keywords_repeated_in_file"] == 0

    # Three rows of one keyword and two of another, in one file: two keywords, counted inside the file.
    _edit(files[0], lambda t: pa.concat_tables([t, t.slice(0, 1), t.slice(0, 1), t.slice(5, 1)]))
    per_file = audits.file_totals(v.CheckInputs(spark, copy, DAY), asset, COUNTS[asset])
    assert audits.shards_disjoint(per_file)
    fast = audits._audited(v.CheckInputs(spark, copy, DAY), asset, COUNTS[asset])["duplicate_keywords"]
    assert fast == _spark_duplicates(spark, copy, asset) == 2

    # A keyword of shard 0 also in shard 1's file: the files no longer hold disjoint shards, Spark counts.
    _edit(files[1], lambda t: pa.concat_tables([t, pq.read_table(files[0]).slice(10, 1).select(t.column_names)]))
    staged = copy.root / f".date={DAY}.staging-test"  # a staging folder: Spark skips dot-folders unless named
    shutil.copytree(copy.partition_dir(asset, DAY), staged)
    inputs = v.CheckInputs(spark, copy, DAY, staged={asset: staged})
    assert not audits.shards_disjoint(audits.file_totals(inputs, asset, COUNTS[asset]))
    assert audits._audited(inputs, asset, COUNTS[asset])["duplicate_keywords"] == 3
    assert _spark_duplicates(spark, copy, asset) == 3


def _both_joins(spark, layout: DataLayout) -> tuple[dict, dict]:
    inputs = v.CheckInputs(spark, layout, DAY, RULE)
    by_shard = v._joined_by_shard(inputs, v._prediction_shards(inputs))
    assert by_shard.pop("predictions_outside_shard") == 0
    return by_shard, v._joined_in_spark(inputs)


def test_the_join_by_shard_counts_what_the_join_in_spark_counts(spark, copy):
    clean, in_spark = _both_joins(spark, copy)
    assert clean == in_spark and clean["rows"] == clean["keywords"] > 1_000
    assert all(clean[name] == 0 for name in v.BID_FILE_TOTALS[2:])

    predictions = _files(copy, DAILY_PREDICTIONS)
    scored = pq.read_table(predictions[1])
    nan_keyword = (str(scored["ad_group_id"][0]), str(scored["keyword_id"][0]))
    values = scored["predicted_value_per_click"].to_numpy().copy()
    values[0] = np.nan
    column = scored.schema.get_field_index("predicted_value_per_click")
    _edit(predictions[1], lambda t: t.set_column(column, "predicted_value_per_click", pa.array(values, pa.float32())))
    _edit(predictions[0], lambda t: pa.concat_tables([t, t.slice(3, 1)]))  # a keyword scored twice

    files = v._editor_files(v.CheckInputs(spark, copy, DAY, RULE))
    assert len(files) > 2

    def first_file(rows):
        rows[0] = {**rows[0], "Max CPC": "9.99"}  # above every untrained prediction's break-even
        rows[1] = {**rows[1], "Keyword ID": "12x"}  # not a whole number: a row of no keyword
        for row in rows:
            if (row["Ad group ID"], row["Keyword ID"]) == nan_keyword:
                row["Max CPC"] = "0.50"  # a bid beside a NaN prediction
        return [*rows, rows[2]]  # a keyword twice

    def second_file(rows):
        for row in rows:
            if (row["Ad group ID"], row["Keyword ID"]) == nan_keyword:
                row["Max CPC"] = "0.50"
        return rows[1:]  # a keyword without a row

    for path in files:
        rewrite(Path(path), first_file if path == files[0] else second_file)
    broken, in_spark = _both_joins(spark, copy)
    assert broken == in_spark
    assert broken["rows_without_ids"] == 1 and broken["rows_not_scored"] == 1
    assert broken["keywords_with_several_rows"] >= 1 and broken["keywords_scored_more_than_once"] == 1
    assert broken["keywords_without_row"] >= len(files) - 1 and broken["bids_above_break_even"] >= 2


def test_predictions_not_stored_by_shard_are_joined_in_spark(spark, copy):
    predictions = _files(copy, DAILY_PREDICTIONS)
    moved = pq.read_table(predictions[0]).slice(0, 5)
    _edit(predictions[0], lambda t: t.slice(5))
    _edit(predictions[1], lambda t: pa.concat_tables([t, moved]))  # five keywords of shard 0 in shard 1's file
    inputs = v.CheckInputs(spark, copy, DAY, RULE)
    assert v._joined_by_shard(inputs, v._prediction_shards(inputs))["predictions_outside_shard"] == 5
    totals = v.bid_file_totals(v.CheckInputs(spark, copy, DAY, RULE))
    assert totals == v._joined_in_spark(inputs) and totals["keywords_without_row"] == 0


def _features(values: np.ndarray, kind: pa.DataType | None) -> pa.Table:
    """A preprocessed table of ``values``: its features column as written (``kind`` None:
    ``features.FEATURES_TYPE``) or as a ``list<kind>`` (partitions written before it)."""
    rows = len(values) // FEATURE_VECTOR_LENGTH
    if kind is None:
        arrays = features_column(values.reshape(rows, FEATURE_VECTOR_LENGTH))
    else:
        offsets = pa.array(np.arange(rows + 1) * FEATURE_VECTOR_LENGTH, pa.int32())
        arrays = pa.ListArray.from_arrays(offsets, pa.array(values, kind))
    return pa.table(
        {
            **{name: pa.array(np.arange(rows), pa.int64()) for name in ("ad_group_id", "keyword_id", "campaign_id")},
            **{name: pa.array(["x"] * rows) for name in KEYWORD_ATTRIBUTES if name.endswith(("name", "text", "type"))},
            "features": arrays,
            "trailing_value_per_click": pa.array(np.ones(rows)),
            "clicks_in_window": pa.array(np.ones(rows, np.int64)),
        }
    )


@pytest.mark.parametrize("kind", [None, pa.float32(), pa.float64()], ids=["binary", "list_float", "list_double"])
def test_full_feature_arrays_count_as_array_by_array_does(tmp_path, kind):
    """Whole (days × features) blocks and value-by-value counting agree: the same values are counted
    as blocks, and value by value once a null array joins their batch."""
    rng = np.random.default_rng(3)
    lower = np.tile([f.lower for f in FEATURES], LAGS * 40)
    upper = np.tile([f.upper for f in FEATURES], LAGS * 40)
    values = rng.uniform(lower, upper)
    broken = rng.choice(len(values), 60, replace=False)
    values[broken[:20]] = upper[broken[:20]] + 0.5
    values[broken[20:40]] = lower[broken[20:40]] - 0.5
    values[broken[40:]] = np.nan
    table = _features(values, kind)
    column = table.schema.get_field_index("features")
    null_array = table.slice(0, 1).set_column(column, "features", pa.nulls(1, table["features"].type))
    counts = []
    for i, t in enumerate((table, pa.concat_tables([table, null_array]))):
        pq.write_table(t, tmp_path / f"{i}.parquet")
        counts.append(audit.audit_features_file(str(tmp_path / f"{i}.parquet")))
    outside = np.bincount(broken[:40] % N_FEATURES, minlength=N_FEATURES)
    for count in counts:
        assert count["missing_feature_values"] == 20
        assert [count[f"out_of_range_{f.name}"] for f in FEATURES] == outside.tolist()
    assert counts[0]["missing_feature_arrays"] == 0 and counts[1]["missing_feature_arrays"] == 1


def test_a_shard_without_an_editor_row_still_counts_its_keywords(spark, copy):
    """Every row of shard 1 dropped from the Editor files: its keywords are counted without a row (the
    marker row of each shard brings its predictions file into the join)."""
    from astro_assets.core.lagging import keyword_shard

    inputs = v.CheckInputs(spark, copy, DAY, RULE)
    shard_one = pq.read_table(_files(copy, DAILY_PREDICTIONS)[1]).num_rows

    def keep_shard_zero(rows):
        ids = np.array([[int(r["Ad group ID"]), int(r["Keyword ID"])] for r in rows], dtype=np.int64).reshape(-1, 2)
        return [r for r, s in zip(rows, keyword_shard(ids[:, 0], ids[:, 1], 2), strict=True) if s == 0]

    for path in v._editor_files(inputs):
        rewrite(Path(path), keep_shard_zero)
    by_shard, in_spark = _both_joins(spark, copy)
    assert by_shard == in_spark and by_shard["keywords_without_row"] == shard_one > 0
