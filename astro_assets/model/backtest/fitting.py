"""What the backtest fits and chooses before the test period: the GRU, XGBoost and the champion on
training days; the GRU's and XGBoost's configurations, the analyst's shrinkage and the conversion-lag
curve on validation days (``fit_and_choose``). The target margins are chosen by ``replay``, on
validation days too."""

import datetime as dt
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from astro_assets.core.calendar import ONE_DAY, days_ending
from astro_assets.model.analyst import RISK_LEVEL, AnalystParams, estimate, lag_completeness, table_keys
from astro_assets.model.backtest.market import Market
from astro_assets.model.backtest.periods import BacktestSetup, Periods
from astro_assets.model.baselines import predict_gbdt, tune_gbdt, weighted_mse
from astro_assets.model.checkpoint import model_version
from astro_assets.model.export import INPUT_NAME, export_onnx
from astro_assets.model.network import train
from astro_assets.model.training import tune_network
from astro_assets.sources import synthetic


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
    #: The risk-bounded analyst's level α (``BacktestSetup.risk_level``).
    risk_level: float = RISK_LEVEL


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
        setup.risk_level,
    )
