"""The synthetic market has consequences: prices that do not follow the advertiser's value, keywords
that lose money at any bid, traffic that answers the bid, conversions that arrive late, shocks — and
no reported figure that is a near-copy of the truth."""

import datetime as dt

import numpy as np
import pytest

from astro_assets.core.calendar import ONE_DAY, lag_window
from astro_assets.core.features import FEATURE_NAMES, LAGS
from astro_assets.core.lagging import lagged_features
from astro_assets.model.datasets import features_array
from astro_assets.model.evaluation import truth_outcome
from astro_assets.sources import synthetic

SEED, KEYWORDS = 5, 20_000
DAY = dt.date(2026, 6, 10)  # a Wednesday


def index_of(table):
    return synthetic.population_index(
        SEED, KEYWORDS, table.column("ad_group_id").to_numpy(), table.column("keyword_id").to_numpy()
    )


def test_competitor_prices_follow_the_advertisers_value_only_modestly():
    correlations = []
    for offset in range(0, 28, 4):
        day = DAY + dt.timedelta(days=offset)
        live = synthetic.active(SEED, KEYWORDS, day)
        truth = synthetic.expected_value_per_click(SEED, KEYWORDS, day)[live]
        market = synthetic.market_cpc(SEED, KEYWORDS, day)[live]
        correlations.append(np.corrcoef(np.log(market), np.log(truth))[0, 1])
    assert 0.2 < min(correlations) and max(correlations) < 0.6  # documented: about 0.4


def test_a_fifth_to_two_fifths_of_keyword_days_lose_money_at_any_bid():
    shares = []
    for offset in range(7):
        day = DAY + dt.timedelta(days=offset)
        live = synthetic.active(SEED, KEYWORDS, day)
        truth = synthetic.expected_value_per_click(SEED, KEYWORDS, day)
        market = synthetic.market_cpc(SEED, KEYWORDS, day)
        losing = live & (truth < synthetic.reserve_price(market))
        shares.append(losing.sum() / live.sum())
        offered = synthetic.clicks_on_offer(SEED, KEYWORDS, day)
        for factor in (0.5, 1.0, 1.5, 3.0, 10.0):  # any bid, relative to the keyword's market price
            outcome = truth_outcome(market * factor, offered, market, truth)
            assert np.all(outcome["profit"][losing] <= 1e-9)
            assert outcome["clicks"][losing].sum() == 0 or outcome["profit"][losing].sum() < 0
        # ... while a bid at the true value never loses on the others.
        fair = truth_outcome(np.where(losing, 0.0, truth), offered, market, truth)
        assert np.all(fair["profit"] >= -1e-9) and fair["wasted_spend"].sum() == pytest.approx(0.0, abs=1e-6)
    assert 0.2 <= np.mean(shares) <= 0.4  # over a week (weekends convert less: more of them lose)
    assert 0.1 <= min(shares) and max(shares) <= 0.5


def test_impressions_clicks_and_cost_answer_the_bid():
    market = synthetic.market_cpc(SEED, KEYWORDS, DAY)
    low, high = (synthetic.keyword_report(SEED, KEYWORDS, DAY, bids=market * f) for f in (0.9, 2.0))
    assert high.num_rows > low.num_rows
    for column in ("impressions", "clicks", "cost_micros"):
        assert high.column(column).to_numpy().sum() > 1.2 * low.column(column).to_numpy().sum(), column
    share = {
        name: np.nanmean(t.column("search_impression_share").to_numpy(zero_copy_only=False).astype(float))
        for name, t in (("low", low), ("high", high))
    }
    assert share["high"] > share["low"] + 0.2
    for factor, table in ((0.9, low), (2.0, high)):  # a click never costs more than the bid
        clicks = table.column("clicks").to_numpy()
        bid = (market * factor)[index_of(table)]
        assert np.all(table.column("cost_micros").to_numpy() / 1e6 <= clicks * bid + 1e-6)
    # Paused (bid 0) or below the reserve: the keyword does not show at all.
    bids = market * 2.0
    bids[:100] = 0.0
    bids[100:200] = synthetic.reserve_price(market[100:200]) * 0.99
    shown = set(index_of(synthetic.keyword_report(SEED, KEYWORDS, DAY, bids=bids)).tolist())
    assert shown.isdisjoint(range(200))


def test_the_raw_source_reflects_the_accounts_own_historical_bids_a_series_drawn_per_keyword():
    bids = synthetic.account_bid(SEED, KEYWORDS, DAY)
    assert synthetic.keyword_report(SEED, KEYWORDS, DAY).equals(
        synthetic.keyword_report(SEED, KEYWORDS, DAY, bids=bids)
    )
    monday = DAY - dt.timedelta(days=DAY.weekday())
    same_week = [synthetic.account_bid(SEED, KEYWORDS, monday + dt.timedelta(days=d)) for d in range(7)]
    assert all(np.array_equal(same_week[0], b) for b in same_week)  # revised weekly
    assert not np.array_equal(same_week[0], synthetic.account_bid(SEED, KEYWORDS, monday + dt.timedelta(days=7)))
    truth = synthetic.expected_value_per_click(SEED, KEYWORDS, DAY)
    assert np.corrcoef(np.log(bids), np.log(truth))[0, 1] < 0.6  # set by ad group: a rough guess at best


def test_conversions_arrive_late_and_a_day_completes_on_later_downloads():
    complete = synthetic.keyword_report(SEED, KEYWORDS, DAY)
    downloads = {
        age: synthetic.keyword_report(SEED, KEYWORDS, DAY, reported_on=DAY + dt.timedelta(days=age))
        for age in (1, 2, 4, 9)
    }
    total = complete.column("conversions").to_numpy().sum()
    arrived = {age: t.column("conversions").to_numpy() for age, t in downloads.items()}
    expected_share = np.cumsum(synthetic.LAG_PROFILE)
    for age in (1, 2, 4):
        assert arrived[age].sum() / total == pytest.approx(expected_share[age - 1], abs=0.04)
    assert np.all(arrived[1] <= arrived[2]) and np.all(arrived[2] <= arrived[4])  # only ever more
    assert np.array_equal(arrived[9], complete.column("conversions").to_numpy())
    for table in downloads.values():  # everything but the conversions is the same download to download
        for column in ("keyword_id", "clicks", "cost_micros", "impressions"):
            assert table.column(column).equals(complete.column(column))
    with pytest.raises(ValueError, match="reported the morning after"):
        synthetic.keyword_report(SEED, KEYWORDS, DAY, reported_on=DAY)


def test_shocks_a_tracking_outage_a_price_jump_and_a_seasonal_peak():
    days = [DAY + dt.timedelta(days=d) for d in range(40)]
    outages = [(d, synthetic.outage_campaign(SEED, KEYWORDS, d)) for d in days]
    day, campaign = next((d, c) for d, c in outages if c is not None)
    assert 3 <= sum(c is not None for _, c in outages) <= 20
    table = synthetic.keyword_report(SEED, KEYWORDS, day)
    in_campaign = table.column("campaign_id").to_numpy() == 1_000 + campaign
    clicks = table.column("clicks").to_numpy()
    conversions = table.column("conversions").to_numpy()
    assert clicks[in_campaign].sum() > 50 and conversions[in_campaign].sum() == 0
    assert conversions[~in_campaign].sum() > 0

    quarter = [synthetic.EPOCH + dt.timedelta(days=91 + d) for d in range(91)]  # the second quarter of 91 days
    jumps = np.array([synthetic.price_jump(SEED, KEYWORDS, d) for d in quarter])  # [day, keyword]
    jumped = (jumps > 1).any(axis=0)
    assert 0.2 < jumped.mean() < 0.8 and set(np.unique(jumps)) == {1.0, synthetic.PRICE_JUMP_FACTOR}
    runs = np.diff(np.vstack([np.zeros(KEYWORDS), jumps > 1, np.zeros(KEYWORDS)]).astype(int), axis=0)
    assert np.all((runs == 1).sum(axis=0)[jumped] == 1)  # one jump per quarter, in one piece ...
    assert np.all((jumps > 1).sum(axis=0)[jumped] == synthetic.PRICE_JUMP_DAYS)  # ... lasting a week
    first = np.argmax(jumps > 1, axis=0)[jumped][0]
    keyword = np.flatnonzero(jumped)[0]
    before, during = (synthetic.market_cpc(SEED, KEYWORDS, quarter[first + k])[keyword] for k in (-1, 0))
    assert during / before > 1.2

    peak, week_before = dt.date(2026, 11, 25), dt.date(2026, 11, 18)
    assert synthetic.in_peak(peak) and not synthetic.in_peak(week_before)
    ratio = synthetic.expected_value_per_click(SEED, KEYWORDS, peak) / synthetic.expected_value_per_click(
        SEED, KEYWORDS, week_before
    )
    assert np.median(ratio) > 1.15
    assert (
        synthetic.impressions_on_offer(SEED, KEYWORDS, peak).sum()
        > 1.2 * synthetic.impressions_on_offer(SEED, KEYWORDS, week_before).sum()
    )


def test_no_feature_is_a_near_copy_of_the_truth():
    """The window's features (as downloaded the next morning) against the next day's true value per
    click, per keyword: every feature's window mean, and the cost per click the issue found at 0.95."""
    evening = DAY
    morning = evening + ONE_DAY
    tables = [synthetic.keyword_report(SEED, KEYWORDS, d, reported_on=morning) for d in lag_window(evening, LAGS)]
    features = lagged_features(evening, tables)
    x = features_array(features)
    index = index_of(features)
    truth = np.log(synthetic.expected_value_per_click(SEED, KEYWORDS, morning)[index])
    clicked = x[:, :, FEATURE_NAMES.index("log_clicks")].sum(axis=1) > 0
    worst = {}
    for i, name in enumerate(FEATURE_NAMES):
        mean = x[clicked, :, i].mean(axis=1)
        if mean.std() > 0:
            worst[name] = abs(np.corrcoef(mean, truth[clicked])[0, 1])
    assert max(worst.values()) < 0.7, worst
    clicks = np.expm1(x[:, :, FEATURE_NAMES.index("log_clicks")]).sum(axis=1)
    cost = np.expm1(x[:, :, FEATURE_NAMES.index("log_cost")]).sum(axis=1)
    cpc = np.log(cost[clicks > 0] / clicks[clicks > 0])
    assert abs(np.corrcoef(cpc, truth[clicks > 0])[0, 1]) < 0.6
