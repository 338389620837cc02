"""The bid rule on cases where the right bid is known, and its invariants for any prediction."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astro_assets.core.bid_rule import (
    BidRule,
    format_money,
    guarded_bid_units,
    keyword_states,
    max_cpc_units,
    previous_units_of,
    shrunk_value,
)
from astro_assets.stages.bids import PAUSES_SCHEMA, PreviousDay, bid_table, editor_rows

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


def keywords(predicted: list[float], ad_group: int = 7) -> pa.Table:
    n = len(predicted)
    return pa.table(
        {
            "ad_group_id": pa.array([ad_group] * n, pa.int64()),
            "keyword_id": pa.array(range(1, n + 1), pa.int64()),
            "campaign_id": pa.array([3] * n, pa.int64()),
            "campaign_name": ["Camp"] * n,
            "ad_group_name": ["Group"] * n,
            "keyword_text": [f"kw {i}" for i in range(n)],
            "match_type": (["EXACT", "PHRASE", "BROAD"] * n)[:n],
            "predicted_value_per_click": pa.array(predicted, pa.float32()),
        }
    )


def test_bid_table_pauses_what_cannot_earn_and_counts_it():
    table, pauses, counts = bid_table(keywords([1.0, 0.06, float("nan"), 100.0, 2.0]), RULE)
    assert table.num_rows == 5  # every scored keyword has its row
    assert table.column("status").to_pylist() == ["ENABLED", "PAUSED", "PAUSED", "ENABLED", "ENABLED"]
    assert table.column("max_cpc_micros").to_pylist() == [800_000, 0, 0, 25_000_000, 1_600_000]
    assert table.column("paused_by_astro").to_pylist() == [False, True, True, False, False]
    assert pauses.column("keyword_id").to_pylist() == [2, 3]
    assert counts["keywords"] == 5 and counts["bids"] == 3 and counts["paused"] == 2
    assert counts["paused_below_floor"] == 1 and counts["paused_invalid_prediction"] == 1
    assert counts["capped_at_ceiling"] == 1 and counts["paused_by_astro_new"] == 2
    rows = editor_rows(table, RULE)
    assert rows.column("Max CPC").to_pylist() == ["0.80", "", "", "25.00", "1.60"]
    assert rows.column("Status").to_pylist() == ["", "Paused", "Paused", "", ""]
    assert rows.column("Criterion Type").to_pylist() == ["Exact", "Phrase", "Broad", "Exact", "Phrase"]
    assert rows.column("Ad group ID").to_pylist() == ["7"] * 5


def test_previous_bids_are_matched_on_the_keyword_pair():
    """The same criterion id in another ad group is another keyword: its bid is not this one's."""
    today = pa.table({"ad_group_id": [1, 2], "keyword_id": [5, 5]})
    before = pa.table({"ad_group_id": [2], "keyword_id": [5], "max_cpc": [1.5]})
    assert previous_units_of(today, before, RULE).tolist() == [0, 150]


def previous(table: pa.Table, pauses: pa.Table | None = None) -> PreviousDay:
    import datetime as dt

    return PreviousDay(dt.date(2026, 4, 30), table, pauses if pauses is not None else PAUSES_SCHEMA.empty_table())


def test_bid_table_applies_yesterdays_bids_by_keyword():
    table = keywords([5.0, 5.0, 5.0])
    yesterday = pa.table(
        {
            "ad_group_id": pa.array([7, 7, 8], pa.int64()),
            "keyword_id": pa.array([3, 1, 2], pa.int64()),
            "max_cpc": [2.0, 3.6, 0.5],
            "max_cpc_micros": pa.array([2_000_000, 3_600_000, 500_000], pa.int64()),
            "status": ["ENABLED"] * 3,
        }
    )
    bids, _, counts = bid_table(table, RULE, previous(yesterday))
    # keyword 2 of ad group 7 had no bid (the 0.50 was ad group 8's): uncapped at 4.00.
    assert editor_rows(bids, RULE).column("Max CPC").to_pylist() == ["4.00", "4.00", "2.50"]  # 3.60 +25% = 4.50
    assert bids.column("max_cpc_before_change_cap").to_pylist() == [4.0, 4.0, 4.0]
    assert counts["lowered_by_change_cap"] == 1
    assert bids.column("changed").to_pylist() == [True, True, True]
    assert counts["keywords_absent_kept"] == 1  # ad group 8's keyword 2: no row today, the account keeps it


@pytest.mark.parametrize(
    "earns, keyword_paused, parent_paused, astro_before, paused, writes_status, paused_by_astro",
    [
        (True, False, False, False, False, False, False),  # a bid, the status left as it is
        (False, False, False, False, True, True, True),  # no bid can earn: Astro pauses it
        (False, False, False, True, True, True, True),  # still cannot earn: stays Astro's pause
        (True, True, False, True, False, True, False),  # Astro's pause (the report shows it) can earn: Enabled
        (True, False, False, True, False, True, False),  # same, report silent about it
        (True, True, False, False, True, False, False),  # a person's pause: a bid, never Enabled
        (False, True, False, False, True, True, False),  # a person's pause that cannot earn: Paused, not Astro's
        (True, False, True, True, True, False, True),  # Astro's pause under a paused ad group: kept, recorded
        (True, False, True, False, False, False, False),  # under a paused ad group: a bid, status untouched
        (False, False, True, False, True, True, True),  # cannot earn under a paused campaign: Astro pauses it
    ],
)
def test_keyword_states(earns, keyword_paused, parent_paused, astro_before, paused, writes_status, paused_by_astro):
    states = keyword_states(
        np.array([earns]), np.array([keyword_paused]), np.array([parent_paused]), np.array([astro_before])
    )
    assert states.paused.tolist() == [paused]
    assert states.writes_status.tolist() == [writes_status]
    assert states.paused_by_astro.tolist() == [paused_by_astro]
    assert states.writes_bid.tolist() == [earns]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=30))
def test_astro_never_enables_what_a_person_paused(rows):
    earns, keyword_paused, parent_paused, before = (np.array(c) for c in zip(*rows, strict=True))
    states = keyword_states(earns, keyword_paused, parent_paused, before)
    enables = states.writes_status & ~states.paused
    person = keyword_paused & ~before
    assert not (enables & (person | parent_paused)).any()  # never Enabled on a person's pause or under one
    assert not (enables & ~before).any()  # Astro enables only its own pauses
    assert not (states.paused_by_astro & person).any()  # a person's pause is never recorded as Astro's
    assert (states.paused | states.writes_bid).all()  # every keyword either has a bid or is paused


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


def test_shrinkage_pulls_thin_evidence_toward_the_ad_group_and_never_up():
    """Ad group A: keywords valued 1.0 (380 clicks), 3.0 and 0.5 (no clicks); its click-weighted mean
    (each keyword weighs clicks + 1) is about 1.0. Ad group B: one keyword alone."""
    predicted = np.array([1.0, 3.0, 0.5, 2.0])
    clicks = np.array([380, 0, 0, 5])
    group = np.array([1, 1, 1, 2])
    value = shrunk_value(predicted, clicks, group, BidRule(0.2, 0.05, 25.0, shrinkage_clicks=20.0))
    mean_a = (1.0 * 381 + 3.0 * 1 + 0.5 * 1) / 383
    assert value[0] == pytest.approx(min(380 / 400 * 1.0 + 20 / 400 * mean_a, 1.0))
    assert value[1] == pytest.approx(mean_a)  # no evidence: the ad group's value
    assert value[2] == pytest.approx(0.5)  # the ad group is worth more, but shrinkage never raises
    assert value[3] == pytest.approx(2.0)  # alone in its group: its own value
    no_shrinkage = BidRule(0.2, 0.05, 25.0, shrinkage_clicks=0.0)
    assert np.allclose(shrunk_value(predicted, clicks, group, no_shrinkage), predicted)


def test_change_cap_limits_the_move_from_yesterdays_bid_but_never_above_break_even():
    rule = BidRule(target_margin=0.2, floor=0.05, ceiling=25.0, max_daily_change=0.25)
    predicted = np.array([5.0, 0.5, 1.0, 1.0, 1.0, 0.05])
    previous = np.array([100, 100, 0, 79, 200, 100])  # cents; 0 = no bid yesterday
    bids = guarded_bid_units(predicted, rule, previous_units=previous)
    # 400 -> capped to +25%; 40 -> cut at most 25%, but 75 > break-even 40: break-even wins;
    # no bid yesterday: uncapped; within the cap: unchanged; 80 < 150 floor of the cap -> limit 80;
    # a prediction that cannot cover the floor: no bid whatever yesterday was.
    assert bids.units.tolist() == [125, 40, 80, 80, 80, 0]
    assert bids.before_change_cap.tolist() == [400, 40, 80, 80, 80, 0]
    assert bids.effects == {"lowered_by_shrinkage": 0, "raised_by_change_cap": 0, "lowered_by_change_cap": 1}
    raised = guarded_bid_units(np.array([1.0]), rule, previous_units=np.array([70])).units
    assert raised.tolist() == [80]  # within +25% of 70 (87): the full break-even bid
    held_up = guarded_bid_units(np.array([10.0]), rule, previous_units=np.array([1000]))
    assert held_up.units.tolist() == [800] and held_up.effects["raised_by_change_cap"] == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True, width=32),
            st.integers(0, 10_000),
            st.integers(0, 3),
            st.integers(0, 5_000),
        ),
        min_size=1,
        max_size=40,
    ),
    rules,
    st.floats(0.01, 2.0),
    st.floats(0.0, 100.0),
)
def test_guardrails_never_bid_above_break_even_and_respect_the_cap(rows, rule, change, prior):
    """For any predictions, evidence, ad groups and yesterday's bids: never above break-even or the
    ceiling, never below the floor, and where yesterday had a bid, the move is within the cap unless
    break-even or the floor forces it."""
    rule = BidRule(rule.target_margin, rule.floor, rule.ceiling, rule.currency_unit, change, prior)
    predicted, clicks, group, previous = (np.array(column) for column in zip(*rows, strict=True))
    predicted = predicted.astype(np.float32)
    bids = guarded_bid_units(predicted, rule, clicks=clicks, ad_group=group, previous_units=previous)
    units = bids.units
    placed = units > 0
    bid = units * rule.currency_unit
    assert np.all(bid[placed] <= rule.break_even(predicted)[placed] + 1e-9)
    assert np.all(bid[placed] <= rule.ceiling + 1e-9)
    assert np.all(bid[placed] >= rule.floor - 1e-9)
    unguarded = max_cpc_units(predicted, rule)
    assert np.all(units <= unguarded)  # the guardrails only ever take away
    both = placed & (previous > 0)
    within = np.abs(units - previous) <= change * previous + 1
    forced = units == unguarded  # break-even (or the ceiling) held the bid below the cap's floor
    assert np.all(within[both] | forced[both])
