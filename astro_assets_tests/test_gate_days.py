"""The platform's gate judges several held-out days: the window holds out its last days (history
unchanged), the gate's rows are a bounded uniform sample of each held-out day with each row's keyword
(the bootstrap resamples keywords, with all their days) and each day's careful analyst from that
day's own window; one good day does not promote; "keep the champion" and "publish the baseline" hold
over several days."""

import datetime as dt

import numpy as np
import pyarrow.parquet as pq
import pytest

from astro_assets.core.analyst_rule import analyst_values
from astro_assets.core.calendar import day_range, lag_window
from astro_assets.core.features import LAGS
from astro_assets.core.lagging import lagged_features
from astro_assets.model.analyst import AnalystParams
from astro_assets.model.baselines import GbdtParams
from astro_assets.model.datasets import TrainingWindow, concat_sets, labelled_set
from astro_assets.model.evaluation import gate
from astro_assets.model.network import TrainingParams
from astro_assets.model.training import TrainingPlan, train_candidate
from astro_assets.sources import synthetic
from astro_assets_tests.conftest import loopback_spark

SEED, KEYWORDS = 5, 1_500
END = dt.date(2026, 5, 12)
TINY = TrainingParams(epochs=1, hidden_size=8)


def test_the_window_holds_out_its_last_days_on_top_of_the_training_days():
    one = TrainingWindow.ending(END, 7)
    three = TrainingWindow.ending(END, 7, holdout_days=3)
    assert one.held_out_days == [END - dt.timedelta(days=1)] and len(one.train_days) == 7
    assert three.held_out_days == day_range(END - dt.timedelta(days=3), END - dt.timedelta(days=1))
    assert three.holdout_day == END - dt.timedelta(days=1) and len(three.train_days) == 7
    # The gate's days do not take training days: the model trains on the same 7 days' length, earlier.
    assert three.feature_days == day_range(END - dt.timedelta(days=10), END - dt.timedelta(days=1))
    assert three.train_days == day_range(END - dt.timedelta(days=10), END - dt.timedelta(days=4))
    assert max(three.train_days) < min(three.held_out_days)
    assert TrainingWindow.ending(END, 1, holdout_days=0).train_days == [END - dt.timedelta(days=2)]  # one held out


def test_one_good_day_does_not_promote_a_candidate_that_loses_on_the_others():
    rng = np.random.default_rng(11)
    keywords, days = 1_000, 3
    base = rng.normal(10.0, 1.0, (days, keywords))
    lead = np.array([[0.6], [-0.35], [-0.35]])  # a lucky first day, worse on the other two
    scores = {
        "model": (base + lead + rng.normal(0, 0.2, (days, keywords))).ravel(),
        "champion": (base + rng.normal(0, 0.2, (days, keywords))).ravel(),
        "trailing_mean": (base - 1.0).ravel(),
    }
    groups = np.tile(np.arange(keywords), days)
    over_days = gate(scores, "model", "champion", ("trailing_mean",), groups=groups)
    assert not over_days.promote and over_days.publish == "champion"
    first_day = gate({k: v[:keywords] for k, v in scores.items()}, "model", "champion", ("trailing_mean",))
    assert first_day.promote  # judged on that day alone it would have replaced production


def _labelled_days(days):
    """Each day's labelled rows (features of D, target D+1) with each row's keyword (ad group id,
    keyword id), in ``labelled_set``'s order (by that pair)."""
    sets, keys = [], []
    for day in days:
        features = lagged_features(day, [synthetic.keyword_report(SEED, KEYWORDS, d) for d in lag_window(day, LAGS)])
        target = synthetic.keyword_report(SEED, KEYWORDS, day + dt.timedelta(days=1))
        sets.append(labelled_set(features, target))
        value = target.column("conversion_value").to_numpy(zero_copy_only=False)
        known = (target.column("clicks").to_numpy() > 0) & ~np.isnan(value)
        pairs = {
            (a, k)
            for a, k in zip(
                target.column("ad_group_id").to_numpy()[known],
                target.column("keyword_id").to_numpy()[known],
                strict=True,
            )
        }
        featured = zip(features.column("ad_group_id").to_numpy(), features.column("keyword_id").to_numpy(), strict=True)
        keys.append(sorted(p for p in featured if p in pairs))
        assert len(keys[-1]) == len(sets[-1])
    _, keyword = np.unique(np.array([p for k in keys for p in k]), axis=0, return_inverse=True)
    return sets, keyword.reshape(-1)


@pytest.fixture(scope="module")
def several_days():
    window = TrainingWindow.ending(END, 3, holdout_days=2)
    sets, keyword = _labelled_days([*window.train_days, *window.held_out_days])
    train = concat_sets(sets[: len(window.train_days)])
    holdout = concat_sets(sets[len(window.train_days) :])
    return window, train, holdout, keyword[len(train) :]


def test_train_candidate_keeps_a_champion_the_candidate_does_not_beat_on_any_held_out_day(several_days):
    window, train, holdout, keyword = several_days
    plan = TrainingPlan(training_days=3, holdout_days=2, network=TINY, gbdt=GbdtParams(rounds=5))
    oracle = holdout.target.astype(np.float64)  # a champion that knows both held-out days
    kept = train_candidate(
        window,
        END,
        train,
        holdout,
        plan,
        lambda _: "v1",
        log=lambda _: None,
        champion=lambda _: oracle,
        holdout_keys=keyword,
    )
    assert not kept.promote and kept.record["publish"] == "champion" and "the champion stays" in kept.reason
    assert kept.record["gate_days"] == [d.isoformat() for d in window.held_out_days] and len(window.gate_days) == 2
    # Keywords with clicks on both days are one keyword to the bootstrap.
    assert len(holdout) > kept.record["gate_keywords"] == len(np.unique(keyword)) > len(holdout) // 2


def test_train_candidate_publishes_the_baseline_that_beats_it_over_the_held_out_days(several_days):
    window, train, holdout, keyword = several_days
    plan = TrainingPlan(training_days=3, holdout_days=2, network=TINY, gbdt=GbdtParams(rounds=5))
    analyst = holdout.target.astype(np.float64) * 1.01  # a baseline that nearly knows both days
    published = train_candidate(
        window,
        END,
        train,
        holdout,
        plan,
        lambda _: "v1",
        log=lambda _: None,
        holdout_keys=keyword,
        baselines={"analyst": analyst},
    )
    assert not published.promote and published.record["publish"] == "analyst" == published.record["best_policy"]
    assert "no champion, so the best baseline analyst is published" in published.reason
    assert published.record["gate"]["analyst"]["lead_lower_bound"] < 0


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    from astro_assets.stages.preprocess import write_preprocessed
    from astro_assets.storage import DataLayout
    from astro_assets.storage.raw import write_raw_partition

    spark = loopback_spark()
    layout = DataLayout(tmp_path_factory.mktemp("gate-days"))
    window = TrainingWindow.ending(END, 3, holdout_days=3)
    for day in day_range(window.held_out_days[0] - dt.timedelta(days=LAGS - 1), END):
        write_raw_partition(layout, day, synthetic.keyword_report(SEED, KEYWORDS, day))
    for day in window.held_out_days:
        write_preprocessed(spark, layout, day)
    return spark, layout, window


def test_the_gate_rows_are_a_bounded_sample_of_every_held_out_day_with_each_days_own_analyst(account, tmp_path):
    from astro_assets.model.sampling import KEY_COLUMNS
    from astro_assets.stages.analyst import analyst_table
    from astro_assets.stages.training import gate_rows
    from astro_assets.storage import PREPROCESSED_FEATURES, RAW_FEATURES

    spark, layout, window = account
    days = window.held_out_days
    full = [
        labelled_set(
            pq.read_table(layout.partition_dir(PREPROCESSED_FEATURES, d)),
            pq.read_table(layout.partition_dir(RAW_FEATURES, d + dt.timedelta(days=1))),
        )
        for d in days
    ]
    ad_group, campaign = KEY_COLUMNS.index("ad_group_id"), KEY_COLUMNS.index("campaign_id")
    # Below the bound: every labelled row of every held-out day, oldest day first.
    gate = gate_rows(spark, layout, window, END, 0, tmp_path / "all", log=lambda _: None)
    assert gate.day_rows == [len(f) for f in full] and len(gate.rows) == len(gate.keyword) == len(gate.analyst)
    bounds = np.cumsum([0, *gate.day_rows])
    tables = {d: analyst_table(spark, layout, d, "v", AnalystParams(), tmp_path / f"own-{d}") for d in days}
    for d, f, a, b in zip(days, full, bounds[:-1], bounds[1:], strict=True):
        assert sorted(gate.rows.target[a:b].tolist()) == pytest.approx(sorted(f.target.tolist()))
        keys, x = gate.keys[a:b], gate.rows.features[a:b]
        # Each day's analyst is its own window's ...
        own = analyst_values(tables[d], d, keys[:, ad_group], keys[:, campaign], x)
        assert gate.analyst[a:b] == pytest.approx(own)
        if d != days[-1]:  # ... not the last day's (whose window holds this day's target)
            later = analyst_values(tables[days[-1]], days[-1], keys[:, ad_group], keys[:, campaign], x)
            assert not np.allclose(gate.analyst[a:b], later)
    last = analyst_values(
        gate.analyst_table, days[-1], gate.keys[:, ad_group], gate.keys[:, campaign], gate.rows.features
    )
    assert last == pytest.approx(
        analyst_values(tables[days[-1]], days[-1], gate.keys[:, ad_group], gate.keys[:, campaign], gate.rows.features)
    )
    # A keyword on several days is one group (the bootstrap resamples keywords).
    pairs = [tuple(k) for k in gate.keys[:, [ad_group, KEY_COLUMNS.index("keyword_id")]]]
    assert len(np.unique(gate.keyword)) == len(set(pairs)) < len(pairs)
    assert all(
        gate.keyword[i] == gate.keyword[j]
        for i, j in [(pairs.index(p), len(pairs) - 1 - pairs[::-1].index(p)) for p in set(pairs)]
    )
    # Above the bound: the budget over all the days, an equal share a day.
    few = gate_rows(spark, layout, window, END, 0, tmp_path / "few", log=lambda _: None, budget=300)
    assert few.day_rows == [100, 100, 100] and len(few.rows) == 300 == len(few.keyword) == len(few.analyst)
