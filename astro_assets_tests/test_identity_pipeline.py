"""One criterion in two ad groups, through the whole daily chain on real Spark: raw shards -> lagged features
-> ONNX predictions -> the bid partition. Each (ad group, criterion) is one keyword everywhere: one row of
features, one prediction, one bid row; the uniqueness checks (Great Expectations on the stored partitions)
pass on the pair."""

import datetime as dt

import pyarrow.parquet as pq
import pytest

from astro_assets.cli.bench import small_model
from astro_assets.core.bid_rule import BidRule
from astro_assets.core.calendar import lag_window
from astro_assets.core.features import LAGS
from astro_assets.sources import synthetic
from astro_assets.stages import audits
from astro_assets.stages import validation as v
from astro_assets.stages.bids import build_bid_partition
from astro_assets.stages.predict import write_predictions
from astro_assets.stages.preprocess import write_preprocessed
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, DataLayout
from astro_assets.storage.publish import publish_partition
from astro_assets.storage.raw import write_raw_partition
from astro_assets_tests.conftest import loopback_spark

SEED, KEYWORDS = 7, 3_000
DAY = dt.date(2026, 6, 10)
PAIR = ["ad_group_id", "keyword_id"]


@pytest.fixture(scope="module")
def spark():
    return loopback_spark("local[2]")


def test_a_criterion_in_two_ad_groups_is_two_keywords_with_two_bids(spark, tmp_path):
    layout = DataLayout(tmp_path)
    for day in lag_window(DAY, LAGS):
        write_raw_partition(layout, day, synthetic.keyword_report(SEED, KEYWORDS, day))
    keywords = write_preprocessed(spark, layout, DAY)
    rows = write_predictions(spark, layout, DAY, small_model(SEED), "test-model", 1_000)
    assert rows == keywords

    features = pq.read_table(layout.partition_dir(PREPROCESSED_FEATURES, DAY)).to_pandas()
    predictions = pq.read_table(layout.partition_dir(DAILY_PREDICTIONS, DAY)).to_pandas()
    assert not features.duplicated(PAIR).any() and not predictions.duplicated(PAIR).any()
    shared = features[features.duplicated("keyword_id", keep=False)]
    assert len(shared) > 0.02 * len(features)  # the synthetic account repeats criteria across ad groups
    joined = shared.merge(predictions, on=PAIR, how="left", validate="one_to_one")
    assert joined.predicted_value_per_click.notna().all()

    with publish_partition(layout.partition_dir(BID_FILE, DAY)) as staging:
        bid_day = build_bid_partition(layout, DAY, BidRule(), staging)
    bids = pq.read_table(layout.bid_keywords_file(layout.partition_dir(BID_FILE, DAY))).to_pandas()
    assert len(bids) == bid_day.rows == keywords and not bids.duplicated(PAIR).any()
    both = bids.merge(shared[PAIR], on=PAIR)
    assert len(both) == len(shared)  # every ad group's copy of a shared criterion has its own row
    assert both.groupby("keyword_id").ad_group_id.nunique().min() >= 2

    inputs = v.CheckInputs(spark, layout, DAY)
    for name, suite in (
        ("preprocessed_features_one_row_per_keyword", audits.preprocessed_one_row_per_keyword),
        ("daily_predictions_one_row_per_keyword", audits.predictions_one_row_per_keyword),
        ("raw_features_metrics_are_consistent", audits.raw_metrics_are_consistent),
    ):
        validation, _ = v.run_suite(name, suite, inputs)
        assert validation.success, (name, validation.results)
