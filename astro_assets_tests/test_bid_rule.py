"""The bid rule on cases where the right bid is known, and its invariants for any prediction."""

import csv
import io

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astro_assets.bids import BID_FILE_COLUMNS, BidRule, bid_table, format_money, max_cpc_units, publish_bid_file
from astro_assets.storage import DataLayout

RULE = BidRule(target_margin=0.2, floor=0.05, ceiling=25.0, currency_unit=0.01)


@pytest.mark.parametrize(
    "predicted, cents",
    [
        (1.0, 80),  # 1.00 × 0.8 = 0.80 exactly
        (0.3625, 29),  # 0.29 exactly: stays 0.29
        (0.3624, 28),  # 0.28992 rounds down, never up
        (1.2345, 98),  # 0.9876 -> 0.98
        (100.0, 2500),  # capped at the ceiling
        (0.0625, 5),  # 0.05 exactly: at the floor
        (0.06, 0),  # 0.048 < floor: no bid (raising it to the floor would bid at a loss)
        (0.0, 0),
        (-1.0, 0),
        (float("nan"), 0),
        (float("inf"), 0),
    ],
)
def test_known_bids(predicted, cents):
    assert max_cpc_units(np.array([predicted]), RULE).tolist() == [cents]


def test_money_is_formatted_exactly():
    assert format_money(np.array([5, 98, 2500, 100, 7]), RULE).to_pylist() == ["0.05", "0.98", "25.00", "1.00", "0.07"]


def keywords(predicted: list[float]) -> pa.Table:
    n = len(predicted)
    return pa.table({
        "keyword_id": pa.array(range(1, n + 1), pa.int64()),
        "campaign_name": ["Camp"] * n,
        "ad_group_name": ["Group"] * n,
        "keyword_text": [f"kw {i}" for i in range(n)],
        "match_type": (["EXACT", "PHRASE", "BROAD"] * n)[:n],
        "predicted_value_per_click": pa.array(predicted, pa.float32()),
    })


def test_bid_table_counts_what_it_leaves_out():
    table, counts = bid_table(keywords([1.0, 0.06, float("nan"), 100.0, 2.0]), RULE)
    assert counts == {"keywords": 5, "bids": 3, "left_out_below_floor": 1, "left_out_invalid_prediction": 1,
                      "capped_at_ceiling": 1}
    assert table.column("Max CPC").to_pylist() == ["0.80", "25.00", "1.60"]
    assert table.column("Criterion Type").to_pylist() == ["Exact", "Exact", "Phrase"]
    assert table.column("keyword_id").to_pylist() == [1, 4, 5]


def test_published_csv_has_editor_columns_and_no_staging_left(tmp_path):
    layout = DataLayout(tmp_path)
    import datetime as dt

    day = dt.date(2026, 5, 1)
    publish_bid_file(layout, day, bid_table(keywords([1.0, 2.5]), RULE)[0])
    text = layout.bid_file(day).read_text()
    assert text.splitlines()[0] == ",".join(BID_FILE_COLUMNS)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1:] == [["Camp", "Group", "kw 0", "Exact", "0.80"], ["Camp", "Group", "kw 1", "Phrase", "2.00"]]
    assert sorted(p.name for p in layout.bid_file(day).parent.iterdir()) == ["2026-05-01.csv", "audit"]


rules = st.builds(
    BidRule,
    target_margin=st.floats(0.0, 0.95),
    floor=st.floats(0.01, 5.0),
    ceiling=st.floats(5.0, 1000.0),
    currency_unit=st.sampled_from([0.01, 0.05, 1.0]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=50), rules)
def test_no_bid_above_break_even_or_ceiling_nor_below_floor(predicted, rule):
    predicted = np.array(predicted, dtype=np.float32)
    units = max_cpc_units(predicted, rule)
    bid = units * rule.currency_unit
    placed = units > 0
    # Within MONEY_TOLERANCE (1e-9): a limit a few ulps below a whole cent still bids that cent.
    assert np.all(bid[placed] <= rule.break_even(predicted)[placed] + 1e-9)
    assert np.all(bid[placed] <= rule.ceiling + 1e-9)
    assert np.all(bid[placed] >= rule.floor - 1e-9)
    assert np.all(units >= 0)
