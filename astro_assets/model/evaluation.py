"""How predictors and bid policies are compared, and when a candidate may be published.

- ``evaluate``/``truth_errors``: errors of value-per-click predictions (observed, and true where known);
- ``gate``: the promotion gate, a paired bootstrap over keywords (``paired_bootstrap``) against the
  champion and the best baseline, used by ``training.train_candidate`` and replayed by the backtest;
- ``truth_outcome``/``day_metrics``: what bids buy in the synthetic market, measured against the truth.
"""

from dataclasses import dataclass

import numpy as np

from astro_assets.model.datasets import TrainingSet
from astro_assets.sources import synthetic

#: The ways of predicting next day's value per click that are compared: the model and its baselines.
PREDICTORS = ("model", "champion", "trailing_mean", "gbdt", "analyst")


def evaluate(predictions: dict[str, np.ndarray], data: TrainingSet) -> dict[str, float]:
    """Each predictor's error on the same rows against the observed next-day value per click: MAE,
    and absolute and squared error weighted by clicks (days with many clicks measure the value best)."""
    metrics = {}
    for name, prediction in predictions.items():
        error = np.abs(np.asarray(prediction, dtype=np.float64) - data.target)
        metrics[f"{name}_mae"] = float(error.mean())
        metrics[f"{name}_click_weighted_mae"] = float(np.average(error, weights=data.clicks))
        metrics[f"{name}_click_weighted_mse"] = float(np.average(error**2, weights=data.clicks))
    return metrics


def truth_errors(predictions: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, float]:
    """Each predictor's MAE against the true expected value per click, where the source knows it."""
    return {
        f"{name}_mae_vs_expected": float(np.mean(np.abs(np.asarray(prediction, np.float64) - truth)))
        for name, prediction in predictions.items()
    }


def comparison_table(metrics: dict[str, float]) -> str:
    """The predictors side by side (Markdown), one row each, one column per error measure."""
    measures = [
        ("mae", "MAE"),
        ("click_weighted_mae", "click-weighted MAE"),
        ("click_weighted_mse", "click-weighted MSE"),
        ("mae_vs_expected", "MAE vs expected"),
    ]
    shown = [(key, label) for key, label in measures if f"model_{key}" in metrics]
    lines = ["| predictor | " + " | ".join(label for _, label in shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for name in PREDICTORS:
        if f"{name}_{shown[0][0]}" in metrics:
            cells = (f"{metrics[f'{name}_{key}']:.4f}" if f"{name}_{key}" in metrics else "–" for key, _ in shown)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_bootstrap(
    difference: np.ndarray, groups: np.ndarray | None = None, draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """The total of ``difference`` (one entry per keyword-day, candidate minus the other) and the 5th
    percentile of that total when keywords (``groups``: a key per row, default each row its own) are
    resampled with replacement: a lower bound above 0 says the candidate's lead is real, not luck."""
    difference = np.asarray(difference, dtype=np.float64)
    if groups is None:
        per_group = difference
    else:
        _, group = np.unique(np.asarray(groups), return_inverse=True)
        per_group = np.bincount(group, weights=difference)
    total = float(per_group.sum())
    if len(per_group) == 0:
        return total, float("-inf")
    rng = np.random.default_rng(seed)
    totals = np.empty(draws)
    for i in range(draws):
        totals[i] = per_group[rng.integers(0, len(per_group), len(per_group))].sum()
    return total, float(np.quantile(totals, 0.05))


@dataclass(frozen=True)
class GateDecision:
    """What to publish: the candidate (``promote``), the champion (kept), or the best baseline."""

    publish: str
    promote: bool
    best_baseline: str
    reason: str
    comparisons: dict[str, dict[str, float]]  # other policy -> {"lead": total, "lead_lower_bound": 5th pct}


def gate(
    scores: dict[str, np.ndarray],
    candidate: str,
    champion: str | None,
    baselines: tuple[str, ...],
    groups: np.ndarray | None = None,
    margin: float = 0.0,
    seed: int = 0,
) -> GateDecision:
    """The promotion gate. ``scores``: per policy, one score per row (keyword-day, higher is better:
    profit, or minus the click-weighted squared error), the same rows for every policy; ``groups``:
    the keyword of each row (the bootstrap resamples keywords, several held-out days each).

    The candidate is promoted only if its lead over the champion (when there is one) and over the best
    baseline is real: the 5th percentile of the keyword-bootstrapped lead is above ``margin`` × |the
    other's total|. Otherwise the champion stays, unless the best baseline beats it the same way (or
    there is no champion): then the baseline is what should be published, and the decision says so."""
    totals = {name: float(np.sum(values)) for name, values in scores.items()}
    best_baseline = max(baselines, key=lambda name: totals[name])

    def lead(winner: str, other: str) -> dict[str, float]:
        total, lower = paired_bootstrap(scores[winner] - scores[other], groups, seed=seed)
        return {"lead": total, "lead_lower_bound": lower, "needed": margin * abs(totals[other])}

    def real(comparison: dict[str, float]) -> bool:
        return comparison["lead_lower_bound"] > comparison["needed"]

    comparisons = {best_baseline: lead(candidate, best_baseline)}
    if champion is not None:
        comparisons[champion] = lead(candidate, champion)
    if all(real(c) for c in comparisons.values()):
        beaten = " and ".join(
            f"{n} (lead {c['lead']:.4g}, 5th pct {c['lead_lower_bound']:.4g})" for n, c in comparisons.items()
        )
        return GateDecision(candidate, True, best_baseline, f"{candidate} beats {beaten}", comparisons)
    lost = [n for n, c in comparisons.items() if not real(c)]
    why = ", ".join(
        f"its lead over {n} is not real ({comparisons[n]['lead']:.4g}, 5th pct {comparisons[n]['lead_lower_bound']:.4g}"
        f" <= {comparisons[n]['needed']:.4g})"
        for n in lost
    )
    if champion is None:
        return GateDecision(
            best_baseline,
            False,
            best_baseline,
            f"{candidate} not promoted: {why}; no champion, so the best baseline {best_baseline} is published",
            comparisons,
        )
    baseline_vs_champion = lead(best_baseline, champion)
    comparisons[f"{best_baseline}_over_{champion}"] = baseline_vs_champion
    if real(baseline_vs_champion):
        return GateDecision(
            best_baseline,
            False,
            best_baseline,
            f"{candidate} not promoted: {why}; the best baseline "
            f"{best_baseline} beats the champion, so it is published",
            comparisons,
        )
    return GateDecision(
        champion, False, best_baseline, f"{candidate} not promoted: {why}; the champion stays", comparisons
    )


def keyword_squared_errors(prediction: np.ndarray, data: TrainingSet) -> np.ndarray:
    """Minus each held-out row's click-weighted squared error (a score: higher is better)."""
    error = np.asarray(prediction, dtype=np.float64) - data.target
    return -(data.clicks.astype(np.float64) * error**2)


def truth_outcome(
    bid: np.ndarray, offered_clicks: np.ndarray, market: np.ndarray, truth: np.ndarray
) -> dict[str, np.ndarray]:
    """What max CPCs ``bid`` (0 = paused) buy per keyword on one day of the synthetic market, against
    the truth: clicks won, cost, true value, profit, wasted spend (spend on clicks whose price was above
    their true value: cost at the bid minus cost at min(bid, true value)), and whether the bid is above
    the true value per click."""
    bid = np.asarray(bid, dtype=np.float64)
    clicks = offered_clicks * synthetic.won_share(bid, market)
    cost = offered_clicks * synthetic.expected_spend(bid, market)
    worth_paying = offered_clicks * synthetic.expected_spend(np.minimum(bid, truth), market)
    value = clicks * truth
    return {
        "clicks": clicks,
        "cost": cost,
        "value": value,
        "profit": value - cost,
        "wasted_spend": cost - worth_paying,
        "above_truth": (bid > truth) & (bid > 0),
    }


def day_metrics(outcome: dict[str, np.ndarray], bid: np.ndarray) -> dict[str, float]:
    """One policy's day: sums of ``truth_outcome``, bids above the true value (count, share of
    spend), ROAS, bids and paused keywords (no bid: the bid file pauses them)."""
    cost = float(outcome["cost"].sum())
    above = outcome["above_truth"]
    return {
        "clicks": float(outcome["clicks"].sum()),
        "cost": cost,
        "value": float(outcome["value"].sum()),
        "profit": float(outcome["profit"].sum()),
        "wasted_spend": float(outcome["wasted_spend"].sum()),
        "bids_above_truth": int(above.sum()),
        "spend_above_truth": float(outcome["cost"][above].sum()),
        "roas": float(outcome["value"].sum()) / cost if cost > 0 else 0.0,
        "bids": int((np.asarray(bid) > 0).sum()),
        "paused": int((np.asarray(bid) <= 0).sum()),
    }
