"""``run_backtest``: fit and choose on training and validation days, replay the gate, report on the
test days (the figures ``report`` formats)."""

import time

import numpy as np

from astro_assets.core.bid_rule import BidRule
from astro_assets.model.backtest.fitting import fit_and_choose
from astro_assets.model.backtest.market import Market
from astro_assets.model.backtest.periods import BacktestSetup, periods_of
from astro_assets.model.backtest.replay import (
    BASELINES,
    POLICIES,
    arm,
    arms_at,
    choose_margins,
    observed_profit,
    replay,
)
from astro_assets.model.evaluation import gate


def run_backtest(setup: BacktestSetup, rule: BidRule, log=print) -> dict:
    """Fit, choose on validation (configurations, shrinkage, each policy's target margin from
    ``setup.margins``; ``rule`` gives the bid rule's other settings), replay the gate, report on the
    test days; returns the figures."""
    if not setup.margins:
        raise ValueError("BacktestSetup.margins is empty: at least one target margin must be tried")
    started = time.perf_counter()
    periods = periods_of(setup)
    market = Market(setup.seed, setup.keywords)
    fitted = fit_and_choose(market, setup, periods, log)
    # Validation: every policy at every margin of the grid, each arm in its own closed loop.
    grid = [a for m in setup.margins for a in arms_at(dict.fromkeys(POLICIES, m), rule)]
    validation_rows = replay(market, fitted, periods.validation, grid, log)
    observed = {
        history: observed_profit(market, history, periods.validation, periods.decided_on) for history, *_ in grid
    }
    margin_choice = choose_margins(observed, POLICIES, setup.margins)
    margins = {p: margin_choice[p]["chosen"] for p in POLICIES}
    log("backtest: target margins chosen on validation: " + ", ".join(f"{p} {m:g}" for p, m in margins.items()))
    scores = {p: observed[arm(p, margins[p])] for p in POLICIES}
    decision = gate(
        scores,
        candidate="model",
        champion="champion",
        baselines=BASELINES,
        groups=np.tile(np.arange(setup.keywords), len(periods.validation)),
        margin=setup.gate_margin,
        seed=setup.seed,
    )
    log(f"backtest gate: publish {decision.publish} ({decision.reason})")
    # The test period starts from each policy's own validation-period history at its chosen margin.
    test_rows = replay(market, fitted, periods.test, arms_at(margins, rule), log)

    def total(policy: str, key: str, rows=test_rows) -> float:
        chosen = arm(policy, margins[policy])
        return float(sum(r[key] for r in rows if r["arm"] == chosen))

    per_policy = {}
    for policy in POLICIES:
        cost = total(policy, "cost")
        estimated = total(policy, "estimated")
        per_policy[policy] = {
            "target_margin": margins[policy],
            "profit": total(policy, "profit"),
            "value": total(policy, "value"),
            "cost": cost,
            "clicks": total(policy, "clicks"),
            "wasted_spend": total(policy, "wasted_spend"),
            "bids_above_truth": int(total(policy, "bids_above_truth")),
            "spend_above_truth_share": total(policy, "spend_above_truth") / cost if cost else 0.0,
            "roas": total(policy, "value") / cost if cost else 0.0,
            "paused_per_day": total(policy, "paused") / len(periods.test),
            "mae": total(policy, "abs_error_sum") / estimated if estimated else 0.0,
            "validation_profit": total(policy, "profit", validation_rows),
            "validation_observed_profit": float(scores[policy].sum()),
        }
    published = per_policy[decision.publish]
    figures = {
        "keywords": setup.keywords,
        "seed": setup.seed,
        "days": setup.days,
        "first_day": periods.test[0].isoformat(),
        "last_day": periods.test[-1].isoformat(),
        "test_days": [d.isoformat() for d in periods.test],
        "choice_days": [d.isoformat() for d in periods.choice_days],
        "training_days": [d.isoformat() for d in periods.training],
        "validation_days": [d.isoformat() for d in periods.validation],
        "published_policy": decision.publish,
        "gate_promoted": decision.promote,
        "gate_reason": decision.reason,
        "gate_promoted_a_loser": decision.promote and per_policy["model"]["profit"] < per_policy["champion"]["profit"],
        "model_mae": per_policy["model"]["mae"],
        "champion_mae": per_policy["champion"]["mae"],
        "trailing_mean_mae": per_policy["trailing_mean"]["mae"],
        "gbdt_mae": per_policy["gbdt"]["mae"],
        "analyst_mae": per_policy["analyst"]["mae"],
        "risk_bounded_mae": per_policy["risk_bounded"]["mae"],
        "profit": published["profit"],
        "model_profit": per_policy["model"]["profit"],
        "champion_profit": per_policy["champion"]["profit"],
        "naive_profit": per_policy["trailing_mean"]["profit"],
        "gbdt_profit": per_policy["gbdt"]["profit"],
        "analyst_profit": per_policy["analyst"]["profit"],
        "risk_bounded_profit": per_policy["risk_bounded"]["profit"],
        "risk_bounded_spend_above_truth_share": per_policy["risk_bounded"]["spend_above_truth_share"],
        "roas": published["roas"],
        "wasted_spend": published["wasted_spend"],
        "analyst_wasted_spend": per_policy["analyst"]["wasted_spend"],
        "unprofitable_bids": published["bids_above_truth"],
        "spend_above_truth_share": published["spend_above_truth_share"],
        "clicks": published["clicks"],
        "paused_per_day": published["paused_per_day"],
        "target_margin": published["target_margin"],
        "target_margins": margins,
        "policies": per_policy,
        "choices": {**fitted.choices, "target_margin": margin_choice},
        "model_version": fitted.model_version,
        "champion_version": fitted.champion_version,
        "seconds": round(time.perf_counter() - started, 1),
        "per_day": [{"period": "validation", **r} for r in validation_rows]
        + [{"period": "test", **r} for r in test_rows],
    }
    return figures
