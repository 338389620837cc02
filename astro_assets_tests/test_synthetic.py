"""The embedded synthetic account behaves like a real one, and each day is reproducible on its own."""

import datetime as dt

import numpy as np
import pyarrow.compute as pc

from astro_assets.sources import synthetic

SEED, KEYWORDS = 5, 20_000
MONDAY = dt.date(2026, 6, 1)


def report(day: dt.date):
    return synthetic.keyword_report(SEED, KEYWORDS, day)


def test_same_seed_and_day_give_the_same_rows_and_each_day_stands_alone():
    day = MONDAY + dt.timedelta(days=3)
    first = report(day)
    synthetic.release_blocks()  # forget the cached population and names: the day is drawn again
    report(MONDAY)  # another day drawn in between changes nothing
    assert report(day).equals(first)
    assert not synthetic.keyword_report(SEED + 1, KEYWORDS, day).equals(first)


def test_impressions_are_long_tailed():
    impressions = np.sort(report(MONDAY).column("impressions").to_numpy())[::-1]
    top_decile = impressions[: len(impressions) // 10].sum() / impressions.sum()
    assert top_decile > 0.5  # a few keywords have most impressions
    assert np.median(impressions) < impressions.mean() / 3  # most have few


def test_click_through_rate_depends_on_match_type_and_quality():
    table = report(MONDAY)
    impressions = table.column("impressions").to_numpy().astype(float)
    clicks = table.column("clicks").to_numpy()
    match = np.asarray(table.column("match_type").to_pylist())
    ctr = {m: clicks[match == m].sum() / impressions[match == m].sum() for m in ("EXACT", "PHRASE", "BROAD")}
    assert ctr["EXACT"] > ctr["PHRASE"] > ctr["BROAD"]
    quality = table.column("quality_score").to_numpy(zero_copy_only=False)
    high, low = quality >= 7, quality <= 4
    assert clicks[high].sum() / impressions[high].sum() > 1.3 * clicks[low].sum() / impressions[low].sum()


def test_weekly_seasonality_and_slow_trends_in_the_truth():
    weekday = report(MONDAY).column("impressions").to_numpy().sum()
    sunday = report(MONDAY + dt.timedelta(days=6)).column("impressions").to_numpy().sum()
    assert sunday < 0.85 * weekday
    value = [synthetic.expected_value_per_click(SEED, KEYWORDS, MONDAY + dt.timedelta(days=d)) for d in (0, 7, 63)]
    assert np.corrcoef(value[0], value[1])[0, 1] > 0.99  # same weekday a week later: nearly the same
    drift = np.abs(np.log(value[2] / value[0]))
    assert np.median(drift) > 0.03  # nine weeks on, values have moved


def test_keywords_are_launched_and_paused_and_missing_values_are_null():
    pop = synthetic.keyword_population(SEED, KEYWORDS)
    day = MONDAY
    days_since = (day - synthetic.EPOCH).days
    present = set(report(day).column("keyword_id").to_pylist())
    not_launched = pop.keyword_id[pop.launch_day > days_since]
    assert len(not_launched) > 0.01 * KEYWORDS and present.isdisjoint(not_launched.tolist())
    active = synthetic.active(SEED, KEYWORDS, day)
    paused = pop.keyword_id[(pop.launch_day <= days_since) & ~active]
    assert 0.01 * KEYWORDS < len(paused) < 0.06 * KEYWORDS
    assert present.isdisjoint(paused.tolist())
    # A pause lasts the week: the same keywords are inactive all week, and back the next.
    launched = pop.launch_day <= days_since
    assert np.array_equal(active, synthetic.active(SEED, KEYWORDS, day + dt.timedelta(days=6)) & launched)
    assert not np.array_equal(active, synthetic.active(SEED, KEYWORDS, day + dt.timedelta(days=7)) & launched)
    table = report(day)
    missing_value = table.column("conversion_value").null_count / table.num_rows
    assert 0.03 < missing_value < 0.07
    assert pc.min(table.column("impressions")).as_py() > 0  # a real report has no zero-impression rows


def test_the_account_reports_what_the_truth_implies():
    """Over many keyword-days, conversion value per click averages the true expected value per
    click (outages aside), and cost per click the average clearing price below the account's bid."""
    clicks = value = cost = expected = market = 0.0
    for offset in range(3):
        day = MONDAY + dt.timedelta(days=offset)
        table = report(day)
        index = synthetic.population_index(
            SEED, KEYWORDS, table.column("ad_group_id").to_numpy(), table.column("keyword_id").to_numpy()
        )
        c = table.column("clicks").to_numpy().astype(float)
        known = ~np.isnan(table.column("conversion_value").to_numpy(zero_copy_only=False).astype(float))
        clicks += c[known].sum()
        value += np.nansum(table.column("conversion_value").to_numpy(zero_copy_only=False).astype(float))
        expected += (c * synthetic.expected_value_per_click(SEED, KEYWORDS, day)[index])[known].sum()
        cost += table.column("cost_micros").to_numpy().sum() / 1e6
        bid = synthetic.account_bid(SEED, KEYWORDS, day)
        price = synthetic.market_cpc(SEED, KEYWORDS, day)
        average_cpc = synthetic.expected_spend(bid, price) / synthetic.won_share(bid, price)
        market += (c * average_cpc[index]).sum()
    assert abs(value / expected - 1) < 0.08  # a tracking outage loses a campaign's day now and then
    assert abs(cost / market - 1) < 0.03
