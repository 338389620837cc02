"""The backtest (``astro-backtest`` and the ``backtest`` asset): would these bids have made money?

It replays the daily cycle over past days of the synthetic account, with the very functions the
assets use: the same lagged features (``lagging.lagged_features``), the same training (GRU, retrained
every ``retrain_every`` days as the weekly schedule does, and the XGBoost baseline), the ONNX export
scored by onnxruntime, and the bid policy with its guardrails (the change cap against the replay's
own previous day). On each held-out day it asks what the bids would have bought:

- the day's clicks (the report's) are the clicks on offer; each click's clearing price is lognormal
  around the keyword's market CPC (``synthetic.market_cpc``, spread ``AUCTION_PRICE_SIGMA``), so a bid b
  wins the share Φ(z) of them, z = ln(b / market CPC) / σ, and pays for each the mean clearing price
  below b (never more than b);
- each click won is worth the generator's true expected value per click that day.

The naive policy bids the keyword's trailing-mean value per click × (1 − margin) (floor, ceiling and
rounding as usual), and is scored the same way. Errors are measured against the truth.
"""

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow as pa
from scipy.special import ndtr

from astro_assets.core.bid_rule import BidRule, guarded_bid_units, max_cpc_units, previous_units_of
from astro_assets.core.calendar import ONE_DAY, days_ending, lag_window
from astro_assets.core.features import LAGS
from astro_assets.core.lagging import lagged_features
from astro_assets.model.baselines import GbdtParams, fit_gbdt, predict_gbdt
from astro_assets.model.checkpoint import model_version
from astro_assets.model.datasets import TrainingSet, TrainingWindow, concat_sets, features_array, labelled_set
from astro_assets.model.evaluation import PREDICTORS
from astro_assets.model.export import INPUT_NAME, export_onnx
from astro_assets.model.network import TrainingParams, train
from astro_assets.sources import synthetic
from astro_assets.storage import publishing_file

#: The backtest's defaults: the size the targets are stated for, ending on a fixed day (reproducible).
DEFAULT_KEYWORDS = 20_000
DEFAULT_DAYS = 14
DEFAULT_END = dt.date(2026, 10, 31)


@dataclass(frozen=True)
class BacktestSetup:
    keywords: int = DEFAULT_KEYWORDS
    days: int = DEFAULT_DAYS
    end: dt.date = DEFAULT_END  # the last held-out day
    seed: int = 7
    training_days: int = 7
    retrain_every: int = 7
    training: TrainingParams = field(default_factory=TrainingParams)
    gbdt: GbdtParams = field(default_factory=GbdtParams)

    @property
    def held_out_days(self) -> list[dt.date]:
        return days_ending(self.end, self.days)


class SyntheticHistory:
    """The synthetic account's raw days and lagged features, built once each."""

    def __init__(self, seed: int, keywords: int):
        self.seed, self.keywords = seed, keywords
        self._raw: dict[dt.date, pa.Table] = {}
        self._features: dict[dt.date, pa.Table] = {}

    def raw(self, day: dt.date) -> pa.Table:
        if day not in self._raw:
            self._raw[day] = synthetic.keyword_report(self.seed, self.keywords, day)
        return self._raw[day]

    def features(self, day: dt.date) -> pa.Table:
        if day not in self._features:
            self._features[day] = lagged_features(day, [self.raw(d) for d in lag_window(day, LAGS)])
        return self._features[day]

    def training_set(self, days: list[dt.date]) -> TrainingSet:
        return concat_sets([labelled_set(self.features(d), self.raw(d + ONE_DAY)) for d in days])

    def truth(self, day: dt.date, keyword_ids: np.ndarray) -> np.ndarray:
        index = synthetic.keyword_index(keyword_ids)
        return synthetic.expected_value_per_click(self.seed, self.keywords, day)[index]

    def market_cpc(self, day: dt.date, keyword_ids: np.ndarray) -> np.ndarray:
        return synthetic.market_cpc(self.seed, self.keywords, day)[synthetic.keyword_index(keyword_ids)]

    def clicks(self, day: dt.date, keyword_ids: np.ndarray) -> np.ndarray:
        """Clicks on offer per keyword on ``day`` (0 where the report has no row)."""
        report = self.raw(day)
        offered = np.zeros(self.keywords)
        offered[synthetic.keyword_index(report.column("keyword_id").to_numpy())] = report.column("clicks").to_numpy()
        return offered[synthetic.keyword_index(keyword_ids)]


def auction_outcome(
    bid: np.ndarray,
    clicks: np.ndarray,
    market_cpc: np.ndarray,
    value_per_click: np.ndarray,
    sigma: float = synthetic.AUCTION_PRICE_SIGMA,
) -> dict[str, np.ndarray]:
    """What bids buy when click prices are lognormal(ln market_cpc, sigma): clicks won, their cost
    (each click costs its clearing price, which is at most the bid), and their true value."""
    bid = np.asarray(bid, dtype=np.float64)
    has_bid = (bid > 0) & (market_cpc > 0)
    z = np.where(
        has_bid, np.log(np.where(has_bid, bid, 1.0) / np.where(market_cpc > 0, market_cpc, 1.0)) / sigma, -np.inf
    )
    won = clicks * ndtr(z)
    # E[price; price <= bid] for a lognormal price: market_cpc · e^(σ²/2) · Φ(z − σ).
    cost = clicks * np.where(has_bid, market_cpc, 0.0) * np.exp(sigma**2 / 2) * ndtr(z - sigma)
    return {"clicks": won, "cost": cost, "value": won * value_per_click}


@dataclass
class Models:
    version: str
    session: ort.InferenceSession
    gbdt: object


def fit_models(history: SyntheticHistory, setup: BacktestSetup, first_day: dt.date, log) -> Models:
    """The GRU (as ONNX) and the GBDT baseline trained on what was known the evening before ``first_day``."""
    end = first_day - ONE_DAY
    window = TrainingWindow.ending(end, setup.training_days)
    data = history.training_set(window.feature_days)
    log(f"backtest: training for {first_day} on {len(data):,} rows ({window.feature_days[0]} .. {end})")
    model, _ = train(data, setup.training, log=lambda _: None)
    version = model_version(model, end)
    onnx_bytes = export_onnx(model, version, {"end_date": end.isoformat()})
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return Models(version, session, fit_gbdt(data, setup.gbdt))


def day_outcomes(
    history: SyntheticHistory,
    day: dt.date,
    bids: dict[str, np.ndarray],
    keyword_ids: np.ndarray,
    truth: np.ndarray,
    clicks: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Each policy's clicks, cost, value, profit and bid count on ``day`` (``truth`` and ``clicks``
    of ``keyword_ids`` that day)."""
    market = history.market_cpc(day, keyword_ids)
    result = {}
    for policy, bid in bids.items():
        outcome = {k: float(v.sum()) for k, v in auction_outcome(bid, clicks, market, truth).items()}
        outcome["profit"] = outcome["value"] - outcome["cost"]
        outcome["bids"] = int((bid > 0).sum())
        result[policy] = outcome
    return result


def run_backtest(setup: BacktestSetup, rule: BidRule, log=print) -> dict:
    """Replay the held-out days; returns the figures (``--json`` keys) and the per-day table."""
    started = time.perf_counter()
    history = SyntheticHistory(setup.seed, setup.keywords)
    errors = {name: [] for name in PREDICTORS}
    weights: list[np.ndarray] = []
    per_day = []
    unprofitable = 0
    models: Models | None = None
    previous: pa.Table | None = None  # the replay's bids of the day before (keyword_id, max_cpc)
    for i, day in enumerate(setup.held_out_days):
        if i % setup.retrain_every == 0:
            models = fit_models(history, setup, day, log)
        features = history.features(day - ONE_DAY)  # what is known the evening before
        ids = features.column("keyword_id").to_numpy()
        x = features_array(features)
        predicted = {
            "model": models.session.run(None, {INPUT_NAME: x})[0].astype(np.float64),
            "trailing_mean": features.column("trailing_value_per_click").to_numpy(),
            "gbdt": predict_gbdt(models.gbdt, x).astype(np.float64),
        }
        truth = history.truth(day, ids)
        clicks = history.clicks(day, ids)
        for name, values in predicted.items():
            errors[name].append(np.abs(values - truth))
        weights.append(clicks)
        previous_units = previous_units_of(features, previous, rule)
        evidence = {
            "clicks": features.column("clicks_in_window").to_numpy(),
            "ad_group": features.column("ad_group_id").to_numpy(),
        }
        model_units = guarded_bid_units(predicted["model"], rule, previous_units=previous_units, **evidence).units
        unprofitable += int((model_units * rule.currency_unit > rule.break_even(predicted["model"]) + 1e-9).sum())
        previous = pa.table({"keyword_id": ids, "max_cpc": model_units * rule.currency_unit})
        bids = {
            "model": model_units * rule.currency_unit,
            "unguarded": max_cpc_units(predicted["model"], rule) * rule.currency_unit,
            "naive": max_cpc_units(predicted["trailing_mean"], rule) * rule.currency_unit,
            "gbdt": guarded_bid_units(predicted["gbdt"], rule, **evidence).units * rule.currency_unit,
        }
        outcome = day_outcomes(history, day, bids, ids, truth, clicks)
        per_day.append(
            {
                "day": day.isoformat(),
                "model_version": models.version,
                **{f"{policy}_{k}": v for policy, o in outcome.items() for k, v in o.items()},
            }
        )
        log(f"backtest {day}: profit {outcome['model']['profit']:,.0f} (naive {outcome['naive']['profit']:,.0f})")

    def total(key: str) -> float:
        return float(sum(d[key] for d in per_day))

    all_clicks = np.concatenate(weights)
    figures = {
        "keywords": setup.keywords,
        "days": setup.days,
        "first_day": setup.held_out_days[0].isoformat(),
        "last_day": setup.end.isoformat(),
        **{f"{name}_mae": float(np.concatenate(e).mean()) for name, e in errors.items()},
        **{
            f"{name}_click_weighted_mae": float(np.average(np.concatenate(e), weights=all_clicks))
            if all_clicks.sum()
            else 0.0
            for name, e in errors.items()
        },
        "profit": total("model_profit"),
        "naive_profit": total("naive_profit"),
        "gbdt_profit": total("gbdt_profit"),
        "unguarded_profit": total("unguarded_profit"),
        "value": total("model_value"),
        "cost": total("model_cost"),
        "roas": total("model_value") / total("model_cost") if total("model_cost") else 0.0,
        "naive_roas": total("naive_value") / total("naive_cost") if total("naive_cost") else 0.0,
        "unprofitable_bids": unprofitable,
        "target_margin": rule.target_margin,
        "seconds": round(time.perf_counter() - started, 1),
        "per_day": per_day,
    }
    return figures


def targets_met(figures: dict) -> dict[str, bool]:
    """The issue's targets: MAE ≤ 0.8× the trailing mean's and ≤ the GBDT's; profit above naive; no
    bid above predicted value per click × (1 − margin)."""
    return {
        "model_mae_at_most_0.8x_trailing_mean": figures["model_mae"] <= 0.8 * figures["trailing_mean_mae"],
        "model_mae_at_most_gbdt": figures["model_mae"] <= figures["gbdt_mae"],
        "profit_above_naive": figures["profit"] > figures["naive_profit"],
        "no_unprofitable_bids": figures["unprofitable_bids"] == 0,
    }


def summary_table(figures: dict) -> str:
    rows = [
        ("model (GRU, guarded bids)", figures["model_mae"], figures["model_click_weighted_mae"], figures["profit"]),
        (
            "gbdt (XGBoost, guarded bids)",
            figures["gbdt_mae"],
            figures["gbdt_click_weighted_mae"],
            figures["gbdt_profit"],
        ),
        (
            "trailing mean (naive bids)",
            figures["trailing_mean_mae"],
            figures["trailing_mean_click_weighted_mae"],
            figures["naive_profit"],
        ),
    ]
    lines = ["| policy | MAE vs truth | click-weighted MAE | profit |", "|---|---|---|---|"]
    lines += [f"| {name} | {mae:.4f} | {weighted:.4f} | {profit:,.0f} |" for name, mae, weighted, profit in rows]
    lines.append(f"| model without guardrails | | | {figures['unguarded_profit']:,.0f} |")
    return "\n".join(lines)


def write_json(path: Path, figures: dict) -> None:
    with publishing_file(path) as tmp:
        tmp.write_text(json.dumps(figures, indent=2))
