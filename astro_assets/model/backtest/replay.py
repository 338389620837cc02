"""The closed loop: each policy bids a day from what it knew that morning, the market answers its own
bids (``policy_bids``, ``replay``), and the gate sees what the policy's own reports show
(``observed_profit``). On validation days every policy replays each target margin of the grid (an
``arm``: its own bid history) and keeps the margin whose reports showed the most profit
(``choose_margins``); the blend also replays each weight of its grid at each margin and keeps the
pair that showed the most. The test period replays each policy at its chosen margin (and weight)."""

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

POLICIES = ("model", "champion", "gbdt", "trailing_mean", "analyst", "risk_bounded", "blend")
#: The policies the gate may publish besides the GRU. The blend is one: both its parts are shipped
#: (the GRU's ONNX model and the published analyst table).
BASELINES = ("gbdt", "trailing_mean", "analyst", "risk_bounded", "blend")
#: The policy whose value per click is w × the GRU's + (1 − w) × the careful analyst's.
BLEND = "blend"


def arm(policy: str, margin: float, weight: float | None = None) -> str:
    """The name of ``policy``'s bid history at target margin ``margin`` (e.g. ``model@0.3``), and for the
    blend at GRU weight ``weight`` (``blend[w=0.5]@0.3``)."""
    return f"{policy}@{margin:g}" if weight is None else f"{policy}[w={weight:g}]@{margin:g}"


#: One bidder of a replay: (its bid history in the market, the policy, the rule it bids with, the
#: blend's GRU weight or None).
Arm = tuple[str, str, BidRule, float | None]


def arms_at(margins: dict[str, float], rule: BidRule, weights: dict[str, float] | None = None) -> list[Arm]:
    """Each policy at its margin (``margins``: policy -> target margin), with ``rule``'s other settings;
    ``weights``: the blend's GRU weight (policy -> weight; required for the blend)."""
    weights = weights or {}
    if BLEND in margins and BLEND not in weights:
        raise ValueError("arms_at: the blend needs its GRU weight (weights['blend'])")
    return [(arm(p, m, weights.get(p)), p, replace(rule, target_margin=m), weights.get(p)) for p, m in margins.items()]


def validation_arms(
    policies: tuple[str, ...], margins: tuple[float, ...], blend_weights: tuple[float, ...], rule: BidRule
) -> list[Arm]:
    """Every policy at every margin of the grid, the blend also at every GRU weight of its grid."""
    grid = []
    for m in margins:
        for p in policies:
            for w in blend_weights if p == BLEND else (None,):
                grid.append((arm(p, m, w), p, replace(rule, target_margin=m), w))
    return grid


def blend_values(
    keywords: int,
    gru_index: np.ndarray,
    gru: np.ndarray,
    analyst_index: np.ndarray,
    analyst: np.ndarray,
    analyst_pauses: np.ndarray,
    weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The blend's value per click for the keywords either part estimated (population indices, sorted):
    ``weight`` × the GRU's + (1 − ``weight``) × the analyst's where both did, the one estimate where
    only one did (the analyst's 28-day window reaches keywords the GRU's 7-day features do not); and
    where the analyst pauses (its estimate is below the cheapest cost per click the keyword paid),
    the blend pauses too. Returns (indices, values, paused)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight {weight} must be in [0, 1]")
    has_gru = np.zeros(keywords, dtype=bool)
    has_analyst = np.zeros(keywords, dtype=bool)
    gru_at = np.zeros(keywords)
    analyst_at = np.zeros(keywords)
    paused = np.zeros(keywords, dtype=bool)
    has_gru[gru_index] = True
    gru_at[gru_index] = gru
    has_analyst[analyst_index] = True
    analyst_at[analyst_index] = analyst
    paused[analyst_index] = analyst_pauses
    value = np.where(
        has_gru & has_analyst, weight * gru_at + (1.0 - weight) * analyst_at, np.where(has_gru, gru_at, analyst_at)
    )
    index = np.flatnonzero(has_gru | has_analyst)
    return index, value[index], paused[index]


def policy_bids(
    market: Market,
    fitted: Fitted,
    policy: str,
    day: dt.date,
    rule: BidRule,
    history: str | None = None,
    weight: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``policy``'s bids for ``day`` (population order, currency, 0 = paused) from what it knew that
    morning, with its value per click estimates and the keywords it estimated (population indices).
    ``history`` names its bid history in ``market`` (default: the policy's name).

    As in the account (the bid file sets every scored keyword: a bid, or paused): a keyword the
    policy could not score (no report row in its window) keeps the bid live the day before, the
    account's own bid on the policy's first day. ``weight``: the blend's GRU weight."""
    history = history or policy
    n = market.keywords
    live = market.bids.get(history, {}).get(day - ONE_DAY)
    live = synthetic.account_bid(market.seed, n, day) if live is None else live
    if policy == BLEND:
        if weight is None:
            raise ValueError("policy_bids: the blend needs its GRU weight")
        return _blend_bids(market, fitted, day, rule, history, weight, live)
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


def _blend_bids(
    market: Market, fitted: Fitted, day: dt.date, rule: BidRule, history: str, weight: float, live: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The blend's bids (``blend_values``) from the candidate GRU's prediction on the history's
    features and the careful analyst's estimate from the history's reports, both as known that morning;
    bid through ``max_cpc_units`` like the analyst (the analyst's part already shrinks thin keywords)."""
    params = fitted.analyst
    days = days_ending(day - ONE_DAY, params.lookback_days)
    reports = [market.report(history, d, day) for d in days]
    guess = estimate(reports, [(day - d).days for d in days], fitted.completeness, params)
    analyst_index = (
        synthetic.population_index(market.seed, market.keywords, guess.keys >> 32, guess.keys & 0xFFFF_FFFF)
        if len(guess.keys)
        else np.zeros(0, dtype=np.int64)
    )
    features = market.features(history, day - ONE_DAY)
    gru_index = market.index(features)
    gru = (
        fitted.model.run(None, {INPUT_NAME: features_array(features)})[0].astype(np.float64)
        if features.num_rows
        else np.zeros(0)
    )
    index, value, paused = blend_values(
        market.keywords, gru_index, gru, analyst_index, guess.value_per_click, guess.cannot_earn, weight
    )
    bids = live.copy()
    bids[index] = np.where(paused, 0, max_cpc_units(value, rule)) * rule.currency_unit
    return bids, value, index


def replay(market: Market, fitted: Fitted, days: list[dt.date], arms: list[Arm], log) -> list[dict]:
    """Every arm bids each of ``days`` in turn and the market answers; one row per arm and day (its
    ``policy``, ``arm`` and ``margin``), measured against the truth."""
    rows = []
    for day in days:
        truth = market.truth(day)
        offered = synthetic.clicks_on_offer(market.seed, market.keywords, day)
        market_cpc = synthetic.market_cpc(market.seed, market.keywords, day)
        active = offered > 0
        for history, policy, rule, weight in arms:
            bids, predicted, index = policy_bids(market, fitted, policy, day, rule, history, weight)
            market.bids.setdefault(history, {})[day] = bids
            outcome = truth_outcome(bids, offered, market_cpc, truth)
            metrics = day_metrics({k: v[active] for k, v in outcome.items()}, bids[active])
            metrics["abs_error_sum"] = float(np.abs(predicted - truth[index]).sum())
            metrics["estimated"] = int(len(index))
            row = {"day": day.isoformat(), "policy": policy, "arm": history, "margin": rule.target_margin}
            if weight is not None:
                row["blend_weight"] = weight
            rows.append({**row, **metrics})
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


def choose_margins(
    observed: dict[str, np.ndarray],
    policies: tuple[str, ...],
    margins: tuple[float, ...],
    blend_weights: tuple[float, ...] = (),
) -> dict:
    """Per policy, the margin of ``margins`` whose arm's reports showed the most profit (``observed``:
    arm -> per keyword-day observed profit on validation days; the first of equals), and every total.

    The blend (when in ``policies``): the pair (GRU weight of ``blend_weights``, margin) whose arm
    showed the most, by the same criterion (the first of equals, weights outer); ``weight`` is its
    weight, ``validation_observed_profit`` the margins' totals at that weight, and
    ``validation_observed_profit_by_weight`` every pair's."""
    chosen = {}
    for policy in policies:
        if policy == BLEND:
            pairs = {(w, m): float(observed[arm(policy, m, w)].sum()) for w in blend_weights for m in margins}
            if not pairs:
                raise ValueError("choose_margins: the blend needs at least one weight (blend_weights)")
            weight, best = max(pairs, key=pairs.get)
            chosen[policy] = {
                "chosen": best,
                "weight": weight,
                "validation_observed_profit": {f"{m:g}": pairs[weight, m] for m in margins},
                "validation_observed_profit_by_weight": {
                    f"{w:g}": {f"{m:g}": pairs[w, m] for m in margins} for w in blend_weights
                },
            }
            continue
        totals = {m: float(observed[arm(policy, m)].sum()) for m in margins}
        best = max(margins, key=lambda m: totals[m])
        chosen[policy] = {"chosen": best, "validation_observed_profit": {f"{m:g}": v for m, v in totals.items()}}
    return chosen
