"""The blend policy of the backtest: value per click = w × the candidate GRU's + (1 − w) × the careful
analyst's, pausing what the analyst pauses; w and its margin chosen on validation days only (more test
days change neither), in the tables and the JSON, and the gate may publish it."""

import dataclasses
import datetime as dt

import numpy as np
import pytest

from astro_assets.cli.backtest import combine, seeds_table
from astro_assets.core.bid_rule import BidRule, max_cpc_units
from astro_assets.core.calendar import ONE_DAY, days_ending
from astro_assets.model.analyst import estimate
from astro_assets.model.backtest import (
    BASELINES,
    BLEND,
    POLICIES,
    BacktestSetup,
    Market,
    arm,
    blend_values,
    choose_margins,
    fit_and_choose,
    periods_of,
    policy_bids,
    run_backtest,
    summary_table,
)
from astro_assets.model.baselines import GbdtParams
from astro_assets.model.evaluation import gate
from astro_assets.model.network import TrainingParams

TINY = BacktestSetup(
    keywords=500,
    days=1,
    end=dt.date(2026, 5, 20),
    training_days=2,
    validation_days=8,
    network_grid=(TrainingParams(epochs=1),),
    gbdt_grid=(GbdtParams(rounds=10, max_depth=3),),
    analyst_priors=(20.0,),
    margins=(0.1, 0.3),
    blend_weights=(0.25, 0.75),
    champion_params=TrainingParams(epochs=1),
)
RULE = BidRule()


def test_blend_values_weigh_the_gru_and_the_analyst_and_keep_the_analysts_pauses():
    gru_index, gru = np.array([1, 2, 4]), np.array([2.0, 4.0, 8.0])
    analyst_index, analyst = np.array([0, 2, 4]), np.array([1.0, 1.0, 3.0])
    pauses = np.array([False, False, True])
    index, value, paused = blend_values(6, gru_index, gru, analyst_index, analyst, pauses, 0.25)
    assert index.tolist() == [0, 1, 2, 4]  # either part estimated them; 3 and 5 neither
    assert value.tolist() == [1.0, 2.0, 0.25 * 4.0 + 0.75 * 1.0, 0.25 * 8.0 + 0.75 * 3.0]
    assert paused.tolist() == [False, False, False, True]
    assert blend_values(6, gru_index, gru, analyst_index, analyst, pauses, 1.0)[1].tolist() == [1.0, 2.0, 4.0, 8.0]
    assert blend_values(6, gru_index, gru, analyst_index, analyst, pauses, 0.0)[1].tolist() == [1.0, 2.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="blend weight 1.5"):
        blend_values(6, gru_index, gru, analyst_index, analyst, pauses, 1.5)


def test_the_blends_bids_are_the_weighted_gru_and_analyst_estimates_of_the_same_morning():
    market = Market(TINY.seed, TINY.keywords)
    periods = periods_of(TINY)
    fitted = fit_and_choose(market, TINY, periods, log=lambda _: None)
    day = periods.validation[0]  # no policy has bid yet: all three read the account's own history
    _, gru, gru_index = policy_bids(market, fitted, "model", day, RULE)
    analyst_bids, analyst, analyst_index = policy_bids(market, fitted, "analyst", day, RULE)
    bids, value, index = policy_bids(market, fitted, BLEND, day, RULE, weight=0.25)
    assert set(gru_index) <= set(analyst_index) and len(gru_index) > 100
    np.testing.assert_array_equal(index, np.sort(analyst_index))
    at = {k: i for i, k in enumerate(index)}
    both = np.array([at[k] for k in gru_index])
    np.testing.assert_allclose(value[both], 0.25 * gru + 0.75 * analyst[np.argsort(analyst_index)][both])
    only_analyst = np.setdiff1d(np.arange(len(index)), both)
    np.testing.assert_allclose(value[only_analyst], analyst[np.argsort(analyst_index)][only_analyst])
    # Bids: the break-even rule on the blended value, 0 where the analyst pauses (it bids 0 there too).
    days = days_ending(day - ONE_DAY, fitted.analyst.lookback_days)
    reports = [market.report(None, d, day) for d in days]
    guess = estimate(reports, [(day - d).days for d in days], fitted.completeness, fitted.analyst)
    paused = guess.cannot_earn[np.argsort(analyst_index)]  # population order, as index
    assert paused.any() and not analyst_bids[index][paused].any()
    assert (max_cpc_units(value, RULE)[paused] > 0).any()  # the blend would have bid there: it follows the pause
    expected = np.where(paused, 0, max_cpc_units(value, RULE)) * RULE.currency_unit
    np.testing.assert_allclose(bids[index], expected)
    with pytest.raises(ValueError, match="needs its GRU weight"):
        policy_bids(market, fitted, BLEND, day, RULE)


@pytest.fixture(scope="module")
def figures():
    return run_backtest(TINY, RULE, log=lambda _: None)


def test_the_weight_and_margin_are_chosen_on_validation_and_more_test_days_change_neither(figures):
    choice = figures["choices"]["target_margin"][BLEND]
    by_weight = choice["validation_observed_profit_by_weight"]
    assert set(by_weight) == {"0.25", "0.75"} and all(set(m) == {"0.1", "0.3"} for m in by_weight.values())
    best = max(v for m in by_weight.values() for v in m.values())
    assert by_weight[f"{choice['weight']:g}"][f"{choice['chosen']:g}"] == best
    mine = figures["policies"][BLEND]
    assert (
        (mine["blend_weight"], mine["target_margin"])
        == (choice["weight"], choice["chosen"])
        == (
            figures["blend_weight"],
            figures["target_margins"][BLEND],
        )
    )
    assert mine["validation_observed_profit"] == pytest.approx(best)
    validation = {(r["blend_weight"], r["margin"]) for r in figures["per_day"] if r["policy"] == BLEND}
    assert {(w, m) for w in TINY.blend_weights for m in TINY.margins} <= validation
    test = [r for r in figures["per_day"] if r["period"] == "test" and r["policy"] == BLEND]
    assert [r["arm"] for r in test] == [arm(BLEND, choice["chosen"], choice["weight"])]
    # One more test day, the same validation days: the same choice and totals, other test figures.
    longer = run_backtest(
        dataclasses.replace(TINY, days=2, end=TINY.end + dt.timedelta(days=1)), RULE, log=lambda _: None
    )
    assert longer["validation_days"] == figures["validation_days"] and len(longer["test_days"]) == 2
    assert longer["choices"]["target_margin"][BLEND] == choice
    assert longer["policies"][BLEND]["profit"] != mine["profit"]


def test_the_blend_is_in_the_tables_and_the_json(figures):
    mine = figures["policies"][BLEND]
    assert mine["cost"] > 0 and mine["clicks"] > 0 and 0.0 <= mine["spend_above_truth_share"] <= 1.0
    assert figures["blend_profit"] == mine["profit"] and figures["blend_mae"] == mine["mae"]
    assert figures["blend_spend_above_truth_share"] == mine["spend_above_truth_share"]
    assert f"| {mine['target_margin']:g}, w {mine['blend_weight']:g} |" in summary_table(figures)
    combined = combine([figures, figures | {"seed": figures["seed"] + 1}])
    assert combined["policies"][BLEND]["profit"]["mean"] == pytest.approx(mine["profit"])
    assert combined["blend_profit"] == pytest.approx(mine["profit"])
    assert combined["blend_weights"] == [mine["blend_weight"]] * 2
    assert f"(w {mine['blend_weight']:g} / {mine['blend_weight']:g})" in seeds_table(combined)


def test_the_gate_publishes_the_blend_when_it_is_best():
    assert BLEND in POLICIES and BLEND in BASELINES
    rng = np.random.default_rng(11)
    noise = {p: rng.normal(0.0, 1.0, 600) for p in POLICIES}
    scores = {p: noise[p] + (3.0 if p == BLEND else 0.0) for p in POLICIES}
    decision = gate(scores, "model", "champion", BASELINES, groups=np.tile(np.arange(200), 3), seed=1)
    assert decision.publish == BLEND and not decision.promote
    # ... and not when the analyst is best.
    scores = {p: noise[p] + (3.0 if p == "analyst" else 0.0) for p in POLICIES}
    assert gate(scores, "model", "champion", BASELINES, groups=np.tile(np.arange(200), 3), seed=1).publish == "analyst"


def test_choose_margins_picks_the_blends_best_pair_first_of_equals():
    observed = {arm(BLEND, m, w): np.array([1.0]) for w in (0.25, 0.5) for m in (0.1, 0.3)}
    observed[arm(BLEND, 0.3, 0.5)] = np.array([2.0, 0.5])
    chosen = choose_margins(observed, (BLEND,), (0.1, 0.3), (0.25, 0.5))[BLEND]
    assert (chosen["weight"], chosen["chosen"]) == (0.5, 0.3)
    assert chosen["validation_observed_profit"] == {"0.1": 1.0, "0.3": 2.5}
    observed[arm(BLEND, 0.3, 0.5)] = np.array([1.0])
    assert choose_margins(observed, (BLEND,), (0.1, 0.3), (0.25, 0.5))[BLEND]["weight"] == 0.25
