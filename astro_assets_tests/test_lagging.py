"""Null replacement and lagging on hand-made report rows where the right answer is known."""

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astro_assets.core.features import FEATURE_NAMES, LAGS, MISSING_IMPRESSION_SHARE, N_FEATURES, RAW_SCHEMA
from astro_assets.core.lagging import lagged_features
from astro_assets.model.datasets import features_array

DAY = dt.date(2026, 5, 10)  # a Sunday
F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def report(rows: list[dict]) -> pa.Table:
    defaults = {
        "campaign_id": 1,
        "campaign_name": "C",
        "ad_group_id": 2,
        "ad_group_name": "AG",
        "keyword_text": "kw",
        "match_type": "EXACT",
        "impressions": 100,
        "clicks": 10,
        "cost_micros": 5_000_000,
        "conversions": 1.0,
        "conversion_value": 20.0,
        "quality_score": 7,
        "search_impression_share": 0.5,
    }
    return pa.Table.from_pylist([{**defaults, **row} for row in rows], schema=RAW_SCHEMA)


def window(by_day: dict[int, list[dict]]) -> list[pa.Table]:
    """Tables for t = 0 .. LAGS-1 (t = LAGS-1 is DAY)."""
    return [report(by_day.get(t, [])) for t in range(LAGS)]


def features_of(table: pa.Table, keyword_id: int) -> np.ndarray:
    row = table.column("keyword_id").to_pylist().index(keyword_id)
    return features_array(table)[row]


def test_every_keyword_of_the_window_gets_one_row_with_a_full_array():
    table = lagged_features(DAY, window({0: [{"keyword_id": 5}], 6: [{"keyword_id": 3}, {"keyword_id": 5}]}))
    assert table.column("keyword_id").to_pylist() == [3, 5]
    assert features_array(table).shape == (2, LAGS, N_FEATURES)
    assert not np.isnan(features_array(table)).any()


def test_lags_are_day_major_oldest_first():
    days = {t: [{"keyword_id": 1, "impressions": 10 * (t + 1), "clicks": t}] for t in range(LAGS)}
    x = features_of(lagged_features(DAY, window(days)), 1)
    assert np.allclose(x[:, F["log_impressions"]], np.log1p([10 * (t + 1) for t in range(LAGS)]))
    assert np.allclose(x[:, F["log_clicks"]], np.log1p(list(range(LAGS))))
    # weekday of each lag: DAY is a Sunday (weekday 6), so t=0 is the Monday before
    expected = [2 * math.pi * ((DAY.weekday() - (LAGS - 1) + t) % 7) / 7 for t in range(LAGS)]
    assert np.allclose(x[:, F["weekday_sin"]], np.sin(expected), atol=1e-6)
    assert np.allclose(x[:, F["weekday_cos"]], np.cos(expected), atol=1e-6)


def test_absent_day_is_zeros_with_row_missing():
    x = features_of(lagged_features(DAY, window({6: [{"keyword_id": 1}]})), 1)
    for name in (
        "log_impressions",
        "log_clicks",
        "log_cost",
        "log_conversions",
        "log_conversion_value",
        "ctr",
        "log_value_per_click",
        "conversion_value_missing",
    ):
        assert np.all(x[:6, F[name]] == 0), name
    assert np.all(x[:6, F["row_missing"]] == 1) and x[6, F["row_missing"]] == 0
    assert np.all(x[:, F["is_exact"]] == 1) and np.all(x[:, F["is_phrase"]] == 0)


def test_null_conversion_value_becomes_conversions_times_window_value_per_conversion():
    days = {
        1: [{"keyword_id": 1, "conversions": 2.0, "conversion_value": 30.0}],
        2: [{"keyword_id": 1, "conversions": 1.0, "conversion_value": 30.0}],  # known: 60 / 3 conversions = 20
        6: [{"keyword_id": 1, "conversions": 4.0, "conversion_value": None, "clicks": 8}],
    }
    x = features_of(lagged_features(DAY, window(days)), 1)
    assert x[6, F["conversion_value_missing"]] == 1 and x[1, F["conversion_value_missing"]] == 0
    assert x[6, F["log_conversion_value"]] == pytest.approx(np.log1p(80.0), rel=1e-6)
    assert x[6, F["log_value_per_click"]] == pytest.approx(np.log1p(80.0 / 8), rel=1e-6)


def test_null_conversion_value_without_known_days_becomes_zero():
    x = features_of(lagged_features(DAY, window({6: [{"keyword_id": 1, "conversion_value": None}]})), 1)
    assert x[6, F["log_conversion_value"]] == 0 and x[6, F["conversion_value_missing"]] == 1


def test_null_quality_score_and_impression_share():
    days = {
        3: [{"keyword_id": 1, "quality_score": 4}, {"keyword_id": 2, "quality_score": None}],
        4: [{"keyword_id": 1, "quality_score": 8}],
        6: [
            {"keyword_id": 1, "quality_score": None, "search_impression_share": None},
            {"keyword_id": 2, "quality_score": None},
        ],
    }
    table = lagged_features(DAY, window(days))
    one, two = features_of(table, 1), features_of(table, 2)
    assert one[6, F["quality_score"]] == pytest.approx(0.6)  # mean of 4 and 8, over 10
    assert one[3, F["quality_score"]] == pytest.approx(0.4)
    assert two[6, F["quality_score"]] == pytest.approx(0.5)  # never known: neutral
    assert one[6, F["search_impression_share"]] == pytest.approx(MISSING_IMPRESSION_SHARE)
    assert one[4, F["search_impression_share"]] == pytest.approx(0.5)


def test_trailing_value_per_click_is_the_mean_over_days_with_clicks():
    days = {
        2: [{"keyword_id": 1, "clicks": 10, "conversion_value": 20.0}],  # 2.0 per click
        4: [{"keyword_id": 1, "clicks": 0, "conversion_value": 0.0, "conversions": 0.0}],  # no clicks: ignored
        6: [{"keyword_id": 1, "clicks": 5, "conversion_value": 20.0}],  # 4.0 per click
    }
    table = lagged_features(DAY, window(days))
    assert table.column("trailing_value_per_click").to_pylist() == [pytest.approx(3.0)]
    assert table.column("clicks_in_window").to_pylist() == [15]


def test_attributes_come_from_the_latest_day():
    days = {
        2: [{"keyword_id": 1, "keyword_text": "old", "match_type": "BROAD"}],
        5: [{"keyword_id": 1, "keyword_text": "new", "match_type": "PHRASE"}],
    }
    table = lagged_features(DAY, window(days))
    assert table.column("keyword_text").to_pylist() == ["new"]
    x = features_of(table, 1)
    assert np.all(x[:, F["is_phrase"]] == 1) and np.all(x[:, F["is_exact"]] == 0)


rows = st.fixed_dictionaries(
    {
        "keyword_id": st.integers(1, 30),
        "impressions": st.integers(0, 10_000),
        "clicks": st.integers(0, 100),
        "cost_micros": st.integers(0, 10**9),
        "conversions": st.floats(0, 50),
        "conversion_value": st.none() | st.floats(0, 1e5),
        "quality_score": st.none() | st.integers(1, 10),
        "search_impression_share": st.none() | st.floats(0, 1),
        "match_type": st.sampled_from(["EXACT", "PHRASE", "BROAD"]),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(rows, max_size=12), min_size=LAGS, max_size=LAGS), st.randoms(use_true_random=False))
def test_any_input_gives_no_nulls_and_the_same_rows_in_any_order(days, random):
    days = [list({r["keyword_id"]: r for r in day}.values()) for day in days]  # one row per keyword per day
    tables = [report(day) for day in days]
    shuffled = [report(random.sample(day, len(day))) for day in days]
    table, again = lagged_features(DAY, tables), lagged_features(DAY, shuffled)
    x = features_array(table)
    assert not np.isnan(x).any() and np.isfinite(x).all()
    assert table.equals(again)
    assert table.column("keyword_id").to_pylist() == sorted({r["keyword_id"] for day in days for r in day})
