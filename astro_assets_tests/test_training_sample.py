"""The training sample and the streamed held-out comparison (issue 18: train where the account is).

Real Spark (loopback, 2 cores) whose driver accepts at most 1 MiB of task results: the training
window below is several MiB of features, so any stage that collected it to the driver would fail.
"""

import datetime as dt

import numpy as np
import pyarrow.parquet as pq
import pytest

from astro_assets.core.calendar import day_range
from astro_assets.core.features import LAGS, N_FEATURES
from astro_assets.model.datasets import TrainingSet, TrainingWindow, concat_sets, labelled_set
from astro_assets.model.evaluation import evaluate
from astro_assets.model.heldout import evaluate_day
from astro_assets.model.network import TrainingParams
from astro_assets.model.sampling import BY_CLICKS, allocate, count_labelled, priority_sample, write_stratum_sample
from astro_assets.model.training import TrainingPlan
from astro_assets.sources import synthetic
from astro_assets.stages.preprocess import write_preprocessed
from astro_assets.stages.training import day_strata, draw_sample, train_on_window
from astro_assets.storage import PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout
from astro_assets.storage.raw import write_raw_partition

SEED, KEYWORDS = 13, 3_000
END = dt.date(2026, 3, 20)
TRAINING_DAYS = 3
WINDOW = TrainingWindow.ending(END, TRAINING_DAYS)
MAX_RESULT = "1m"


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:  # the driver's result limit is fixed when its context starts
        active.stop()
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.maxResultSize", MAX_RESULT)
        .getOrCreate()
    )
    assert session.sparkContext.getConf().get("spark.driver.maxResultSize") == MAX_RESULT
    yield session
    session.stop()


@pytest.fixture(scope="module")
def account(spark, tmp_path_factory):
    layout = DataLayout(tmp_path_factory.mktemp("account"))
    feature_days = WINDOW.feature_days
    for day in day_range(feature_days[0] - dt.timedelta(days=LAGS - 1), END):
        write_raw_partition(layout, day, synthetic.keyword_report(SEED, KEYWORDS, day))
    for day in feature_days:
        write_preprocessed(spark, layout, day)
    return layout


def full_labelled(layout: DataLayout, days: list[dt.date]) -> TrainingSet:
    """The labelled rows of ``days`` read whole (what the sample is drawn from)."""
    return concat_sets(
        [
            labelled_set(
                pq.read_table(layout.partition_dir(PREPROCESSED_FEATURES, day)),
                pq.read_table(layout.partition_dir(RAW_FEATURES, day + dt.timedelta(days=1))),
            )
            for day in days
        ]
    )


def test_the_window_is_larger_than_what_the_driver_may_collect(account):
    rows = sum(
        pq.ParquetFile(path).metadata.num_rows
        for day in WINDOW.train_days
        for path in account.part_files(account.partition_dir(PREPROCESSED_FEATURES, day))
    )
    assert rows * LAGS * N_FEATURES * 4 > 2 * 2**20  # its float32 features alone: twice the 1 MiB limit


def test_sample_has_the_budget_unbiased_weights_and_real_rows(spark, account, tmp_path):
    strata = day_strata(account, WINDOW.train_days)
    assert len({s.shard for s in strata}) >= 2 and len(strata) == TRAINING_DAYS * len({s.shard for s in strata})
    full = full_labelled(account, WINDOW.train_days)
    budget = len(full) // 3
    sample, description = draw_sample(spark, strata, budget, 5, tmp_path / "a", BY_CLICKS, log=lambda _: None)
    assert len(sample) == budget == description["rows"]
    assert description["labelled_rows"] == len(full)
    # Each kept row weighs at least its clicks (certain rows exactly their clicks), and the weighted
    # clicks estimate the window's clicks.
    assert np.all(sample.weight >= sample.clicks - 1e-3)
    assert sample.weight.sum() == pytest.approx(full.clicks.sum(), rel=0.05)
    # Every sampled row is a labelled row of the window, features and label together.
    known = {row.tobytes(): (t, c) for row, t, c in zip(full.features, full.target, full.clicks, strict=True)}
    for row, target, clicks in zip(sample.features, sample.target, sample.clicks, strict=True):
        assert known[np.asarray(row).tobytes()] == pytest.approx((target, clicks))
    # Reproducible from the seed; another seed draws other rows.
    again, _ = draw_sample(spark, strata, budget, 5, tmp_path / "b", BY_CLICKS, log=lambda _: None)
    other, _ = draw_sample(spark, strata, budget, 6, tmp_path / "c", BY_CLICKS, log=lambda _: None)
    assert np.array_equal(np.asarray(again.features), np.asarray(sample.features))
    assert np.array_equal(again.weight, sample.weight)
    assert not np.array_equal(np.asarray(other.features), np.asarray(sample.features))
    # A budget above the window takes every row at its clicks.
    whole, _ = draw_sample(spark, strata, 10 * len(full), 5, tmp_path / "d", BY_CLICKS, log=lambda _: None)
    assert len(whole) == len(full) and np.array_equal(whole.weight, whole.clicks)


def test_the_first_pass_hands_its_labelled_rows_to_the_second_and_cleans_up(spark, account, tmp_path):
    """The second pass reads the labelled rows the first pass kept (the same sample as finding them
    again), and the working files are gone once the sample is drawn."""
    strata = day_strata(account, WINDOW.train_days)
    sample, _ = draw_sample(spark, strata, 500, 5, tmp_path / "a", BY_CLICKS, log=lambda _: None)
    assert not list((tmp_path / "a").glob("labelled-*"))
    quotas = allocate([count_labelled(s) for s in strata], 500)
    offsets = np.concatenate([[0], np.cumsum(quotas)])
    features = tmp_path / "f.npy"
    columns = tmp_path / "c.npy"
    np.lib.format.open_memmap(features, mode="w+", dtype=np.float32, shape=(500, LAGS, N_FEATURES)).flush()
    np.lib.format.open_memmap(columns, mode="w+", dtype=np.float32, shape=(500, 4)).flush()
    for i, stratum in enumerate(strata):  # no first-pass file: the rows are found again
        write_stratum_sample(stratum, quotas[i], 5, BY_CLICKS, str(features), str(columns), int(offsets[i]))
    assert np.array_equal(np.load(features), np.asarray(sample.features))
    assert np.array_equal(np.load(columns)[:, 1], sample.weight)


def test_the_held_out_day_scored_two_shards_at_a_time_equals_one_at_a_time(account):
    strata = day_strata(account, [WINDOW.holdout_day])
    assert len(strata) >= 2
    predictors = {
        "trailing_mean": lambda _, trailing: trailing,
        "last_day": lambda x, _: np.abs(x[:, -1, :]).mean(axis=1),
    }
    one = evaluate_day(strata, predictors, truth=lambda ids: ids % 7 / 3.0, log=lambda _: None, workers=1)
    two = evaluate_day(strata, predictors, truth=lambda ids: ids % 7 / 3.0, log=lambda _: None, workers=2)
    assert one == two
    assert one[1]["holdout_rows"] == len(full_labelled(account, [WINDOW.holdout_day]))


def test_priority_sampling_is_unbiased_for_click_weighted_sums():
    rng = np.random.default_rng(0)
    clicks = np.ceil(rng.lognormal(0.5, 1.2, 400))
    quantity = rng.normal(3.0, 2.0, 400)  # e.g. a squared error per row
    truth = float((clicks * quantity).sum())
    estimates = []
    for seed in range(3000):
        kept, weight = priority_sample(clicks, 40, np.random.default_rng(seed))
        assert len(kept) == 40 and np.all(np.diff(kept) > 0)
        estimates.append(float((weight * quantity[kept]).sum()))
    spread = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - truth) < 4 * spread


def test_allocation_is_exact_and_proportional():
    assert allocate([10, 30, 60], 50) == [5, 15, 30]
    quotas = allocate([7, 7, 7], 10)
    assert sum(quotas) == 10 and max(quotas) - min(quotas) <= 1
    assert allocate([3, 4], 100) == [3, 4]


def test_training_on_the_sample_reports_the_whole_held_out_day(spark, account):
    full_holdout = full_labelled(account, [WINDOW.holdout_day])
    plan = TrainingPlan(training_days=TRAINING_DAYS, holdout_days=1, network=TrainingParams(epochs=2))
    budget = len(full_labelled(account, WINDOW.train_days)) // 2
    truth_values = synthetic.expected_value_per_click(SEED, KEYWORDS, END)
    window, gate_rows, candidate = train_on_window(
        spark,
        account,
        END,
        plan,
        budget,
        truth=lambda ids: truth_values[synthetic.keyword_index(ids)],
        log=lambda _: None,
    )
    assert window == WINDOW
    record = candidate.record
    assert record["training_rows"] == budget == record["training_sample"]["rows"]
    assert record["holdout_rows"] == len(full_holdout)
    # The streamed comparison equals the in-memory one over every labelled held-out row.
    expected = evaluate({"trailing_mean": full_holdout.trailing_value_per_click}, full_holdout)
    for key, value in expected.items():
        assert candidate.metrics[key] == pytest.approx(value, rel=1e-5)
    assert np.isfinite(candidate.metrics["model_mae_vs_expected"])
    assert len(gate_rows) == len(full_holdout)  # below HOLDOUT_GATE_ROWS: every held-out row
    assert not account.training_sample_dir(END).exists()  # the working sample is removed
