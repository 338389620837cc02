"""The closed loop: each policy bids a day from what it knew that morning, the market answers its own
bids (``policy_bids``, ``replay``), and the gate sees what the policy's own reports show
(``observed_profit``). On validation days every policy replays each target margin of the grid (an
``arm``: its own bid history) and keeps the margin whose reports showed the most profit
(``choose_margins``); the test period replays each policy at its chosen margin."""

import datetime as dt
from dataclasses import replace

import numpy as np

from astro_assets.core.bid_rule import BidRule, guarded_bid_units, max_cpc_units
from astro_assets.core.calendar import ONE_DAY, days_ending
from astro_assets.model.analyst import analyst_bid_units, estimate, risk_bounded_bid_units, risk_bounded_estimate
from astro_assets.model.backtest.fitting import Fitted
from astro_assets.model.backtest.market import Market
from astro_assets.model.baselines import predict_gbdt
from astro_assets.model.datasets import features_array
from astro_assets.model.evaluation import day_metrics, truth_outcome
from astro_assets.model.export import INPUT_NAME
from astro_assets.sources import synthetic

POLICIES = ("model", "champion", "gbdt", "trailing_mean", "analyst", "risk_bounded")
BASELINES = ("gbdt", "trailing_mean", "analyst", "risk_bounded")


def arm(policy: str, margin: float) -> str:
    """The name of ``policy``'s bid history at target margin ``margin`` (e.g. ``model@0.3``)."""
    return f"{policy}@{margin:g}"


#: One bidder of a replay: (its bid history in the market, the policy, the rule it bids with).
Arm = tuple[str, str, BidRule]


def arms_at(margins: dict[str, float], rule: BidRule) -> list[Arm]:
    """Each policy at its margin (``margins``: policy -> target margin), with ``rule``'s other settings."""
    return [(arm(p, m), p, replace(rule, target_margin=m)) for p, m in margins.items()]


def policy_bids(
    market: Market, fitted: Fitted, policy: str, day: dt.date, rule: BidRule, history: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``policy``'s bids for ``day`` (population order, currency, 0 = paused) from what it knew that
    morning, with its value per click estimates and the keywords it estimated (population indices).
    ``history`` names its bid history in ``market`` (default: the policy's name).

    As in the account (the bid file sets every scored keyword: a bid, or paused): a keyword the
    policy could not score (no report row in its window) keeps the bid live the day before, the
    account's own bid on the policy's first day."""
    history = history or policy
    n = market.keywords
    live = market.bids.get(history, {}).get(day - ONE_DAY)
    live = synthetic.account_bid(market.seed, n, day) if live is None else live
    if policy in ("analyst", "risk_bounded"):
        params = fitted.analyst
        days = days_ending(day - ONE_DAY, params.lookback_days)
        reports = [market.report(history, d, day) for d in days]
        ages = [(day - d).days for d in days]
        if policy == "analyst":
            guess = estimate(reports, ages, fitted.completeness, params)
        else:
            guess = risk_bounded_estimate(reports, ages, fitted.completeness, params, fitted.risk_level)
        if len(guess.keys) == 0:
            return live.copy(), np.zeros(0), np.zeros(0, dtype=np.int64)
        index = synthetic.population_index(market.seed, n, guess.keys >> 32, guess.keys & 0xFFFF_FFFF)
        bid_units = analyst_bid_units if policy == "analyst" else risk_bounded_bid_units
        units = bid_units(guess, guess.keys, rule)
        bids = live.copy()
        bids[index] = units * rule.currency_unit
        return bids, guess.value_per_click, index
    features = market.features(history, day - ONE_DAY)
    index = market.index(features)
    if features.num_rows == 0:
        return live.copy(), np.zeros(0), index
    x = features_array(features)
    if policy == "trailing_mean":
        predicted = features.column("trailing_value_per_click").to_numpy()
        units = max_cpc_units(predicted, rule)
    else:
        if policy == "model":
            predicted = fitted.model.run(None, {INPUT_NAME: x})[0].astype(np.float64)
        elif policy == "champion":
            predicted = fitted.champion.run(None, {INPUT_NAME: x})[0].astype(np.float64)
        else:
            predicted = predict_gbdt(fitted.gbdt, x).astype(np.float64)
        yesterday = market.bids.get(history, {}).get(day - ONE_DAY)
        previous = None if yesterday is None else np.rint(yesterday[index] / rule.currency_unit).astype(np.int64)
        units = guarded_bid_units(
            predicted,
            rule,
            clicks=features.column("clicks_in_window").to_numpy(),
            ad_group=features.column("ad_group_id").to_numpy(),
            previous_units=previous,
        ).units
    bids = live.copy()
    bids[index] = units * rule.currency_unit
    return bids, predicted, index


def replay(market: Market, fitted: Fitted, days: list[dt.date], arms: list[Arm], log) -> list[dict]:
    """Every arm bids each of ``days`` in turn and the market answers; one row per arm and day (its
    ``policy``, ``arm`` and ``margin``), measured against the truth."""
    rows = []
    for day in days:
        truth = market.truth(day)
        offered = synthetic.clicks_on_offer(market.seed, market.keywords, day)
        market_cpc = synthetic.market_cpc(market.seed, market.keywords, day)
        active = offered > 0
        for history, policy, rule in arms:
            bids, predicted, index = policy_bids(market, fitted, policy, day, rule, history)
            market.bids.setdefault(history, {})[day] = bids
            outcome = truth_outcome(bids, offered, market_cpc, truth)
            metrics = day_metrics({k: v[active] for k, v in outcome.items()}, bids[active])
            metrics["abs_error_sum"] = float(np.abs(predicted - truth[index]).sum())
            metrics["estimated"] = int(len(index))
            rows.append(
                {"day": day.isoformat(), "policy": policy, "arm": history, "margin": rule.target_margin, **metrics}
            )
        log(f"backtest {day}: " + ", ".join(f"{r['arm']} {r['profit']:,.0f}" for r in rows[-len(arms) :]))
    return rows


def observed_profit(market: Market, history: str, days: list[dt.date], read_on: dt.date) -> np.ndarray:
    """Per keyword (population order) and day, the profit ``history``'s own reports show on ``read_on``
    (conversion value known by then − cost): what the gate and the margin choice can see."""
    rows = []
    for day in days:
        report = market.report(history, day, read_on)
        profit = np.zeros(market.keywords)
        value = np.nan_to_num(report.column("conversion_value").to_numpy(zero_copy_only=False))
        profit[market.index(report)] = value - report.column("cost_micros").to_numpy() / 1e6
        rows.append(profit)
    return np.concatenate(rows)


def choose_margins(observed: dict[str, np.ndarray], policies: tuple[str, ...], margins: tuple[float, ...]) -> dict:
    """Per policy, the margin of ``margins`` whose arm's reports showed the most profit (``observed``:
    arm -> per keyword-day observed profit on validation days; the first of equals), and every total."""
    chosen = {}
    for policy in policies:
        totals = {m: float(observed[arm(policy, m)].sum()) for m in margins}
        best = max(margins, key=lambda m: totals[m])
        chosen[policy] = {"chosen": best, "validation_observed_profit": {f"{m:g}": v for m, v in totals.items()}}
    return chosen
