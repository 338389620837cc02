"""The backtest (``astro-backtest`` and the ``backtest`` asset): would these bids have made money?

It replays the daily cycle over days of the synthetic account, with the functions the assets use
(the lagged features, the GRU exported to ONNX and scored by onnxruntime, the guarded bid rule), in a
market that answers each policy's own bids (``synthetic.keyword_report(..., bids=...)``): what a
policy bid on day D decides the impressions, clicks and costs in the report it reads on D+1, and
conversions arrive days late (each day is read as downloaded that morning).

Three disjoint periods (``Periods``), oldest first:
- **training**: feature days whose next-day targets train the GRU, XGBoost and the champion (a GRU
  trained a week earlier with the default parameters: the model in production), targets read
  ``label_maturity`` days after they happened;
- **validation**: every choice is made here — the GRU's and XGBoost's configurations (the same
  budget: three each, early stopping for XGBoost), the analyst's shrinkage, and the gate's decision
  of which policy is published, on each policy's own closed-loop days;
- **test**: the figures. The backtest refuses to report on a day any choice used, and says which.

Policies: ``model`` (the candidate GRU, guarded bids), ``champion`` (the GRU in production, guarded),
``gbdt`` (XGBoost, guarded), ``trailing_mean`` (naive: trailing-mean value per click × (1 − margin)),
``analyst`` (``model.analyst``: empirical Bayes, lag-corrected, pauses what cannot earn), and the
``published`` one: the policy the gate chose on validation days. Each is scored against the truth
(``evaluation.truth_outcome``): profit, wasted spend, bids above the true value per click, ROAS,
clicks, paused keywords.
"""

import datetime as dt
import json
import time
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort
import pyarrow as pa

from astro_assets.core.bid_rule import BidRule, guarded_bid_units, max_cpc_units
from astro_assets.core.calendar import ONE_DAY, days_ending, lag_window
from astro_assets.core.features import LAGS
from astro_assets.core.lagging import lagged_features
from astro_assets.model.analyst import AnalystParams, analyst_bid_units, estimate, lag_completeness, table_keys
from astro_assets.model.baselines import GBDT_GRID, GbdtParams, predict_gbdt, tune_gbdt, weighted_mse
from astro_assets.model.checkpoint import model_version
from astro_assets.model.datasets import TrainingSet, concat_sets, features_array, labelled_set
from astro_assets.model.evaluation import day_metrics, gate, truth_outcome
from astro_assets.model.export import INPUT_NAME, export_onnx
from astro_assets.model.network import TrainingParams, train
from astro_assets.model.training import NETWORK_GRID, tune_network
from astro_assets.sources import synthetic
from astro_assets.storage import publishing_file

#: The backtest's defaults: the size the targets are stated for, ending on a fixed day (reproducible).
DEFAULT_KEYWORDS = 20_000
DEFAULT_DAYS = 14
DEFAULT_END = dt.date(2026, 10, 31)
POLICIES = ("model", "champion", "gbdt", "trailing_mean", "analyst")
BASELINES = ("gbdt", "trailing_mean", "analyst")
#: The analyst's shrinkage strengths tried on validation days (its budget: as many as the models').
ANALYST_PRIORS = (5.0, 20.0, 80.0)


class PeriodOverlapError(ValueError):
    """The test period shares days with the days choices were made on."""


@dataclass(frozen=True)
class BacktestSetup:
    keywords: int = DEFAULT_KEYWORDS
    days: int = DEFAULT_DAYS  # test days
    end: dt.date = DEFAULT_END  # the last test day
    seed: int = 7
    training_days: int = 7
    validation_days: int = 14
    #: Targets are read this many days after they happened (97.7% of conversions have arrived).
    label_maturity: int = 7
    #: The last validation day (default: the day before the test period); later ones overlap the test.
    validation_end: dt.date | None = None
    network_grid: tuple[TrainingParams, ...] = NETWORK_GRID
    gbdt_grid: tuple[GbdtParams, ...] = GBDT_GRID
    analyst_priors: tuple[float, ...] = ANALYST_PRIORS
    champion_params: TrainingParams = field(default_factory=TrainingParams)
    #: The gate: the candidate's lead must exceed this share of the other's observed profit (5th pct).
    gate_margin: float = 0.0

    @property
    def held_out_days(self) -> list[dt.date]:
        return days_ending(self.end, self.days)


@dataclass(frozen=True)
class Periods:
    training: list[dt.date]  # feature days; their targets are the next days
    validation: list[dt.date]
    validation_labelled: list[dt.date]  # validation feature days whose targets are mature by the test
    test: list[dt.date]
    decided_on: dt.date  # the morning the choices are made (the first test day)

    @property
    def choice_days(self) -> list[dt.date]:
        """Every day whose outcome or target informed a choice."""
        used = set(self.training) | {d + ONE_DAY for d in self.training}
        used |= set(self.validation) | {d + ONE_DAY for d in self.validation_labelled}
        return sorted(used)


def periods_of(setup: BacktestSetup) -> Periods:
    test = setup.held_out_days
    validation_end = setup.validation_end or test[0] - ONE_DAY
    validation = days_ending(validation_end, setup.validation_days)
    mature = test[0] - dt.timedelta(days=setup.label_maturity)
    labelled = [d for d in validation if d + ONE_DAY <= mature]
    training = days_ending(validation[0] - dt.timedelta(days=setup.label_maturity + 1), setup.training_days)
    periods = Periods(training, validation, labelled, test, test[0])
    overlap = sorted(set(periods.choice_days) & set(test))
    if overlap:
        raise PeriodOverlapError(
            f"refusing to report on {len(overlap)} test day(s) that choices used: "
            f"{', '.join(d.isoformat() for d in overlap)} (choices used {periods.choice_days[0]} .. "
            f"{periods.choice_days[-1]}; test {test[0]} .. {test[-1]})"
        )
    return periods


class Market:
    """The synthetic account as each policy sees it: reports drawn with the policy's own bids on the
    days it bid (the account's historical bids before), read as downloaded on a given morning."""

    def __init__(self, seed: int, keywords: int):
        self.seed, self.keywords = seed, keywords
        self.bids: dict[str, dict[dt.date, np.ndarray]] = {}  # policy -> day -> bids (population order)
        self._complete: dict[tuple[str | None, dt.date], pa.Table] = {}

    def report(self, policy: str | None, day: dt.date, reported_on: dt.date | None) -> pa.Table:
        bids = self.bids.get(policy, {}).get(day) if policy else None
        if reported_on is not None and (reported_on - day).days >= len(synthetic.LAG_PROFILE):
            reported_on = None  # complete by then: the same table, kept once
        if reported_on is not None:
            return synthetic.keyword_report(self.seed, self.keywords, day, reported_on=reported_on, bids=bids)
        key = (policy if bids is not None else None, day)
        if key not in self._complete:
            self._complete[key] = synthetic.keyword_report(self.seed, self.keywords, day, bids=bids)
        return self._complete[key]

    def features(self, policy: str | None, evening: dt.date) -> pa.Table:
        """Lagged features of ``evening`` as known the next morning."""
        morning = evening + ONE_DAY
        return lagged_features(evening, [self.report(policy, d, morning) for d in lag_window(evening, LAGS)])

    def index(self, table: pa.Table) -> np.ndarray:
        return synthetic.population_index(
            self.seed, self.keywords, table.column("ad_group_id").to_numpy(), table.column("keyword_id").to_numpy()
        )

    def labelled(self, days: list[dt.date], read_on: dt.date) -> TrainingSet:
        """Features of each of ``days`` (account history) with the next day's value per click as
        downloaded on ``read_on``."""
        return concat_sets(
            [labelled_set(self.features(None, d), self.report(None, d + ONE_DAY, read_on)) for d in days]
        )

    def truth(self, day: dt.date) -> np.ndarray:
        return synthetic.expected_value_per_click(self.seed, self.keywords, day)


def _onnx(model, end: dt.date) -> tuple[str, ort.InferenceSession]:
    version = model_version(model, end)
    session = ort.InferenceSession(
        export_onnx(model, version, {"end_date": end.isoformat()}), providers=["CPUExecutionProvider"]
    )
    return version, session


@dataclass
class Fitted:
    """Everything chosen before the test period."""

    model: ort.InferenceSession
    model_version: str
    champion: ort.InferenceSession
    champion_version: str
    gbdt: object
    analyst: AnalystParams
    completeness: np.ndarray
    choices: dict


def fit_and_choose(market: Market, setup: BacktestSetup, periods: Periods, log) -> Fitted:
    """Train on the training period; choose configurations on the validation period."""
    trained_on = periods.validation[0]  # targets read this morning (mature by label_maturity)
    data = market.labelled(periods.training, trained_on)
    validation = market.labelled(periods.validation_labelled, periods.decided_on)
    log(
        f"backtest: training on {len(data):,} rows ({periods.training[0]} .. {periods.training[-1]}), "
        f"validating on {len(validation):,} ({periods.validation_labelled[0]} .. {periods.validation_labelled[-1]})"
    )
    model, network, network_scores = tune_network(data, validation, setup.network_grid, log=lambda _: None)
    booster, gbdt_params, gbdt_scores = tune_gbdt(data, validation, setup.gbdt_grid)
    # The champion: the model in production, trained a week earlier with the default parameters.
    week = dt.timedelta(days=7)
    champion_data = market.labelled([d - week for d in periods.training], trained_on - week)
    champion, _ = train(champion_data, setup.champion_params, log=lambda _: None)
    # The analyst measures the conversion lag from re-downloads of training-period days ...
    max_age = len(synthetic.LAG_PROFILE)
    sample_days = periods.training[-5:]
    early, late, ages = [], [], []
    complete = {d: market.report(None, d, trained_on) for d in sample_days}
    for age in range(1, max_age + 1):
        for d in sample_days:
            early.append(market.report(None, d, d + dt.timedelta(days=age)))
            late.append(complete[d])
            ages.append(age)
    completeness = lag_completeness(early, late, ages, max_age)
    # ... and its shrinkage strength on validation targets, like the models.
    errors = {prior: [] for prior in setup.analyst_priors}
    weights = {prior: [] for prior in setup.analyst_priors}
    lookback = max(AnalystParams().lookback_days, 1)
    for d in periods.validation_labelled:
        morning = d + ONE_DAY
        days = days_ending(d, lookback)
        reports = [market.report(None, x, morning) for x in days]
        target = market.report(None, morning, periods.decided_on)
        clicks = target.column("clicks").to_numpy().astype(np.float64)
        value = target.column("conversion_value").to_numpy(zero_copy_only=False)
        known = (clicks > 0) & ~np.isnan(value)
        keys = table_keys(target)[known]
        for prior in setup.analyst_priors:
            guess = estimate(
                reports, [(morning - x).days for x in days], completeness, AnalystParams(prior_clicks=prior)
            )
            at = np.clip(np.searchsorted(guess.keys, keys), 0, max(len(guess.keys) - 1, 0))
            found = guess.keys[at] == keys
            errors[prior].append((guess.value_per_click[at][found] - value[known][found] / clicks[known][found]) ** 2)
            weights[prior].append(clicks[known][found])
    analyst_scores = {
        prior: float(np.average(np.concatenate(errors[prior]), weights=np.concatenate(weights[prior])))
        for prior in setup.analyst_priors
    }
    prior = min(analyst_scores, key=analyst_scores.get)
    model_version_, session = _onnx(model, periods.validation[0])
    champion_version, champion_session = _onnx(champion, periods.validation[0] - week)
    choices = {
        "network": {"chosen": f"epochs {network.epochs}, hidden {network.hidden_size}", **network_scores},
        "gbdt": {
            "chosen": f"depth {gbdt_params.max_depth}, eta {gbdt_params.learning_rate}, rounds {gbdt_params.rounds}",
            **gbdt_scores,
        },
        "analyst_prior_clicks": {"chosen": prior, **{str(k): v for k, v in analyst_scores.items()}},
        "lag_completeness": [round(float(c), 3) for c in completeness],
        "validation_mse": {
            "model": weighted_mse(session.run(None, {INPUT_NAME: validation.features})[0], validation),
            "champion": weighted_mse(champion_session.run(None, {INPUT_NAME: validation.features})[0], validation),
            "gbdt": weighted_mse(predict_gbdt(booster, validation.features), validation),
            "trailing_mean": weighted_mse(validation.trailing_value_per_click, validation),
        },
    }
    log(
        f"backtest: chose network {choices['network']['chosen']}, gbdt {choices['gbdt']['chosen']}, "
        f"analyst prior {prior}"
    )
    return Fitted(
        session,
        model_version_,
        champion_session,
        champion_version,
        booster,
        AnalystParams(prior_clicks=prior),
        completeness,
        choices,
    )


def policy_bids(
    market: Market, fitted: Fitted, policy: str, day: dt.date, rule: BidRule
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``policy``'s bids for ``day`` (population order, currency, 0 = paused) from what it knew that
    morning, with its value per click estimates and the keywords it estimated (population indices).

    As in the account (the bid file sets every scored keyword: a bid, or paused): a keyword the
    policy could not score (no report row in its window) keeps the bid live the day before, the
    account's own bid on the policy's first day."""
    n = market.keywords
    live = market.bids.get(policy, {}).get(day - ONE_DAY)
    live = synthetic.account_bid(market.seed, n, day) if live is None else live
    if policy == "analyst":
        params = fitted.analyst
        days = days_ending(day - ONE_DAY, params.lookback_days)
        reports = [market.report(policy, d, day) for d in days]
        guess = estimate(reports, [(day - d).days for d in days], fitted.completeness, params)
        if len(guess.keys) == 0:
            return live.copy(), np.zeros(0), np.zeros(0, dtype=np.int64)
        index = synthetic.population_index(market.seed, n, guess.keys >> 32, guess.keys & 0xFFFF_FFFF)
        units = analyst_bid_units(guess, guess.keys, rule)
        bids = live.copy()
        bids[index] = units * rule.currency_unit
        return bids, guess.value_per_click, index
    features = market.features(policy, day - ONE_DAY)
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
        yesterday = market.bids.get(policy, {}).get(day - ONE_DAY)
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


def replay(market: Market, fitted: Fitted, days: list[dt.date], rule: BidRule, log) -> list[dict]:
    """Every policy bids each of ``days`` in turn and the market answers; one row per policy and day."""
    rows = []
    for day in days:
        truth = market.truth(day)
        offered = synthetic.clicks_on_offer(market.seed, market.keywords, day)
        market_cpc = synthetic.market_cpc(market.seed, market.keywords, day)
        active = offered > 0
        for policy in POLICIES:
            bids, predicted, index = policy_bids(market, fitted, policy, day, rule)
            market.bids.setdefault(policy, {})[day] = bids
            outcome = truth_outcome(bids, offered, market_cpc, truth)
            metrics = day_metrics({k: v[active] for k, v in outcome.items()}, bids[active])
            metrics["abs_error_sum"] = float(np.abs(predicted - truth[index]).sum())
            metrics["estimated"] = int(len(index))
            rows.append({"day": day.isoformat(), "policy": policy, **metrics})
        log(f"backtest {day}: " + ", ".join(f"{r['policy']} {r['profit']:,.0f}" for r in rows[-len(POLICIES) :]))
    return rows


def observed_profit(market: Market, policy: str, days: list[dt.date], read_on: dt.date) -> np.ndarray:
    """Per keyword (population order) and day, the profit ``policy``'s own reports show on ``read_on``
    (conversion value known by then − cost): what the gate can see."""
    rows = []
    for day in days:
        report = market.report(policy, day, read_on)
        profit = np.zeros(market.keywords)
        value = np.nan_to_num(report.column("conversion_value").to_numpy(zero_copy_only=False))
        profit[market.index(report)] = value - report.column("cost_micros").to_numpy() / 1e6
        rows.append(profit)
    return np.concatenate(rows)


def run_backtest(setup: BacktestSetup, rule: BidRule, log=print) -> dict:
    """Fit, choose on validation, replay the gate, report on the test days; returns the figures."""
    started = time.perf_counter()
    periods = periods_of(setup)
    market = Market(setup.seed, setup.keywords)
    fitted = fit_and_choose(market, setup, periods, log)
    validation_rows = replay(market, fitted, periods.validation, rule, log)
    scores = {p: observed_profit(market, p, periods.validation, periods.decided_on) for p in POLICIES}
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
    # The test period starts from each policy's own validation-period history.
    test_rows = replay(market, fitted, periods.test, rule, log)

    def total(policy: str, key: str, rows=test_rows) -> float:
        return float(sum(r[key] for r in rows if r["policy"] == policy))

    per_policy = {}
    for policy in POLICIES:
        cost = total(policy, "cost")
        estimated = total(policy, "estimated")
        per_policy[policy] = {
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
        "profit": published["profit"],
        "model_profit": per_policy["model"]["profit"],
        "champion_profit": per_policy["champion"]["profit"],
        "naive_profit": per_policy["trailing_mean"]["profit"],
        "gbdt_profit": per_policy["gbdt"]["profit"],
        "analyst_profit": per_policy["analyst"]["profit"],
        "roas": published["roas"],
        "wasted_spend": published["wasted_spend"],
        "analyst_wasted_spend": per_policy["analyst"]["wasted_spend"],
        "unprofitable_bids": published["bids_above_truth"],
        "spend_above_truth_share": published["spend_above_truth_share"],
        "clicks": published["clicks"],
        "paused_per_day": published["paused_per_day"],
        "target_margin": rule.target_margin,
        "policies": per_policy,
        "choices": fitted.choices,
        "model_version": fitted.model_version,
        "champion_version": fitted.champion_version,
        "seconds": round(time.perf_counter() - started, 1),
        "per_day": [{"period": "validation", **r} for r in validation_rows]
        + [{"period": "test", **r} for r in test_rows],
    }
    return figures


def targets_met(figures: dict) -> dict[str, bool]:
    """The issue's targets, on the test period: the published policy's profit ≥ 1.05 × the analyst's
    and ≥ the best of XGBoost and the trailing mean; wasted spend ≤ the analyst's; bids above the
    true value per click ≤ 5% of spend; the gate did not promote a candidate that lost to the champion."""
    return {
        "profit_at_least_1.05x_analyst": figures["profit"] >= 1.05 * figures["analyst_profit"],
        "profit_at_least_gbdt_and_trailing_mean": figures["profit"]
        >= max(figures["gbdt_profit"], figures["naive_profit"]),
        "wasted_spend_at_most_analyst": figures["wasted_spend"] <= figures["analyst_wasted_spend"],
        "spend_above_truth_at_most_5pct": figures["spend_above_truth_share"] <= 0.05,
        "gate_never_promoted_a_loser": not figures["gate_promoted_a_loser"],
    }


POLICY_LABELS = {
    "model": "model (GRU candidate, guarded bids)",
    "champion": "champion (GRU in production, guarded bids)",
    "gbdt": "gbdt (XGBoost tuned, guarded bids)",
    "trailing_mean": "trailing mean (naive bids)",
    "analyst": "careful analyst (EB, lag-corrected, pauses)",
}


def summary_table(figures: dict) -> str:
    """Test-period figures per policy (Markdown); the published one in bold."""
    lines = [
        "| policy | profit | wasted spend | spend above true value | ROAS | clicks | paused/day | MAE vs truth |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for policy, label in POLICY_LABELS.items():
        p = figures["policies"][policy]
        name = f"**{label}** (published)" if policy == figures["published_policy"] else label
        lines.append(
            f"| {name} | {p['profit']:,.0f} | {p['wasted_spend']:,.0f} | {100 * p['spend_above_truth_share']:.1f}% "
            f"| {p['roas']:.2f} | {p['clicks']:,.0f} | {p['paused_per_day']:,.0f} | {p['mae']:.3f} |"
        )
    return "\n".join(lines)


def periods_line(figures: dict) -> str:
    return (
        f"training {figures['training_days'][0]} .. {figures['training_days'][-1]}, validation "
        f"{figures['validation_days'][0]} .. {figures['validation_days'][-1]}, test {figures['first_day']} .. "
        f"{figures['last_day']} (choices used {len(figures['choice_days'])} days, none in the test period)"
    )


def write_json(path, figures: dict) -> None:
    with publishing_file(path) as tmp:
        tmp.write_text(json.dumps(figures, indent=2))
