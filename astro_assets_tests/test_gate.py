"""The promotion gate protects production, the truth-based metrics measure what bids buy, and the
careful analyst and the trailing-mean model behave as documented."""

import datetime as dt

import dagster as dg
import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pytest

from astro_assets.core.bid_rule import BidRule
from astro_assets.core.calendar import lag_window
from astro_assets.core.lagging import lagged_features
from astro_assets.model.analyst import AnalystParams, analyst_bid_units, estimate, lag_completeness, pair_keys
from astro_assets.model.baselines import TrailingMeanModel, trailing_mean_version
from astro_assets.model.datasets import features_array
from astro_assets.model.evaluation import day_metrics, gate, paired_bootstrap, truth_outcome
from astro_assets.model.export import INPUT_NAME, export_onnx
from astro_assets.sources import synthetic

RNG = np.random.default_rng(3)
KEYWORDS = 2_000


def scores(**leads: float) -> dict[str, np.ndarray]:
    """Per-keyword scores: a common noisy base plus each policy's lead per keyword."""
    base = RNG.normal(10.0, 1.0, KEYWORDS)
    return {name: base + lead + RNG.normal(0.0, 0.3, KEYWORDS) for name, lead in leads.items()}


def test_the_bootstrap_tells_a_real_lead_from_luck():
    total, lower = paired_bootstrap(RNG.normal(0.5, 1.0, KEYWORDS))
    assert total > 0 and lower > 0
    total, lower = paired_bootstrap(RNG.normal(0.0, 1.0, KEYWORDS))
    assert lower < 0
    # Resampling keywords, not keyword-days: one keyword with a huge lead on every day is one keyword.
    difference = np.r_[np.full(10, 100.0), RNG.normal(-0.1, 1.0, KEYWORDS)]
    groups = np.r_[np.zeros(10, dtype=int), np.arange(1, KEYWORDS + 1)]
    assert paired_bootstrap(difference, groups)[1] < paired_bootstrap(difference)[1]


def test_a_candidate_that_beats_the_champion_and_the_best_baseline_is_promoted():
    decision = gate(
        scores(model=0.3, champion=0.0, gbdt=0.1, trailing_mean=-0.5), "model", "champion", ("gbdt", "trailing_mean")
    )
    assert decision.promote and decision.publish == "model" and decision.best_baseline == "gbdt"
    assert decision.comparisons["champion"]["lead_lower_bound"] > 0


def test_a_candidate_no_better_than_the_champion_keeps_the_champion():
    decision = gate(
        scores(model=0.0, champion=0.0, gbdt=-0.2, trailing_mean=-0.5), "model", "champion", ("gbdt", "trailing_mean")
    )
    assert not decision.promote and decision.publish == "champion"
    assert "the champion stays" in decision.reason


def test_a_worse_candidate_never_replaces_the_champion_whatever_the_baselines():
    decision = gate(
        scores(model=-0.3, champion=0.0, gbdt=-0.6, trailing_mean=-0.9), "model", "champion", ("gbdt", "trailing_mean")
    )
    assert not decision.promote and decision.publish == "champion"


def test_the_best_baseline_is_published_when_it_beats_the_candidate_and_the_champion():
    decision = gate(
        scores(model=0.0, champion=-0.1, analyst=0.4, trailing_mean=-0.5),
        "model",
        "champion",
        ("analyst", "trailing_mean"),
    )
    assert not decision.promote and decision.publish == "analyst"
    assert "the best baseline analyst beats the champion, so it is published" in decision.reason
    # Without a champion (the first run), the best baseline is published when the candidate loses to it.
    decision = gate(scores(model=0.0, gbdt=0.4, trailing_mean=-0.5), "model", None, ("gbdt", "trailing_mean"))
    assert decision.publish == "gbdt" and "no champion" in decision.reason


def test_the_margin_raises_the_bar():
    s = scores(model=0.05, champion=0.0, trailing_mean=-1.0)
    assert gate(s, "model", "champion", ("trailing_mean",)).promote
    assert not gate(s, "model", "champion", ("trailing_mean",), margin=0.05).promote  # 5% of 20,000


def test_truth_metrics_count_what_bids_buy_against_the_true_value():
    market = np.array([1.0, 1.0, 1.0, 1.0])
    truth = np.array([2.0, 2.0, 0.5, 2.0])  # the third cannot earn (its reserve is 0.70)
    offered = np.full(4, 100.0)
    bids = np.array([1.5, 4.0, 1.0, 0.0])
    outcome = truth_outcome(bids, offered, market, truth)
    assert outcome["clicks"][3] == 0 and outcome["cost"][3] == 0  # paused
    assert outcome["wasted_spend"][0] == pytest.approx(0.0)  # a bid below the value wastes nothing
    assert outcome["wasted_spend"][1] > 0  # above it, the clicks priced between value and bid are waste
    assert outcome["wasted_spend"][2] == pytest.approx(outcome["cost"][2])  # every click of a loser is waste
    assert outcome["profit"][2] < 0
    assert list(outcome["above_truth"]) == [False, True, True, False]
    metrics = day_metrics(outcome, bids)
    assert metrics["paused"] == 1 and metrics["bids"] == 3 and metrics["bids_above_truth"] == 2
    assert metrics["spend_above_truth"] == pytest.approx(outcome["cost"][1] + outcome["cost"][2])
    assert metrics["roas"] == pytest.approx(outcome["value"].sum() / outcome["cost"].sum())
    assert metrics["profit"] == pytest.approx(metrics["value"] - metrics["cost"])
    # Wasted spend is exactly what bidding the true value instead would have saved (and more profit).
    fair = truth_outcome(np.minimum(bids, truth), offered, market, truth)
    assert (outcome["cost"] - fair["cost"]).sum() == pytest.approx(outcome["wasted_spend"].sum())


def report(rows: list[tuple]) -> pa.Table:
    """(campaign, ad group, keyword, clicks, cost, conversions, value) rows."""
    columns = list(zip(*rows, strict=True))
    return pa.table(
        {
            "campaign_id": pa.array(columns[0], pa.int64()),
            "ad_group_id": pa.array(columns[1], pa.int64()),
            "keyword_id": pa.array(columns[2], pa.int64()),
            "clicks": pa.array(columns[3], pa.int64()),
            "cost_micros": pa.array([int(c * 1e6) for c in columns[4]], pa.int64()),
            "conversions": pa.array(columns[5], pa.float64()),
            "conversion_value": pa.array(columns[6], pa.float64()),
        }
    )


def test_the_analyst_shrinks_toward_the_ad_group_corrects_the_lag_and_pauses_what_cannot_earn():
    old = report(
        [
            (1, 10, 1, 100, 50.0, 10, 200.0),  # 2.0 per click, plenty of evidence
            (1, 10, 2, 2, 1.0, 0, 0.0),  # little evidence: pulled toward its ad group
            (1, 10, 3, 100, 300.0, 1, 50.0),  # 0.5 per click but pays 3.0: cannot earn
            (2, 20, 1, 500, 100.0, 0, 0.0),  # a tracking outage: many clicks, no conversion ...
        ]
    )
    young = report([(1, 10, 1, 100, 50.0, 5, 100.0), (2, 20, 1, 500, 100.0, 25, 500.0)])  # half arrived
    completeness = np.array([0.5, 0.5, 1.0, 1.0])
    params = AnalystParams(prior_clicks=10.0)
    guess = estimate([old, young], [3, 1], completeness, params)
    value = dict(zip(guess.keys.tolist(), guess.value_per_click, strict=True))
    keys = {
        name: int(pair_keys(np.array([g]), np.array([k]))[0])
        for name, (g, k) in {"a": (10, 1), "b": (10, 2), "c": (10, 3), "d": (20, 1)}.items()
    }
    assert value[keys["a"]] == pytest.approx(2.0, rel=0.1)  # 200 + 100/0.5 over 200 clicks, barely shrunk
    assert 0.5 < value[keys["b"]] < 1.9  # from 0 toward the ad group
    assert value[keys["d"]] == pytest.approx(2.0, rel=0.1)  # the outage day is dropped, the lag corrected
    paused = dict(zip(guess.keys.tolist(), guess.cannot_earn, strict=True))
    assert paused[keys["c"]] and not paused[keys["a"]]
    units = analyst_bid_units(guess, np.array([keys["a"], keys["c"], 12345]), BidRule())
    assert units[0] == int(value[keys["a"]] * 0.8 * 100) and units[1] == 0 and units[2] == 0


def test_the_analyst_measures_the_lag_from_re_downloads():
    day = dt.date(2026, 6, 1)
    early, late, ages = [], [], []
    for offset in range(4):
        d = day + dt.timedelta(days=offset)
        for age in (1, 2, 3):
            early.append(synthetic.keyword_report(5, 5_000, d, reported_on=d + dt.timedelta(days=age)))
            late.append(synthetic.keyword_report(5, 5_000, d))
            ages.append(age)
    completeness = lag_completeness(early, late, ages, 3)
    assert completeness[1:] == pytest.approx(np.cumsum(synthetic.LAG_PROFILE)[:3], abs=0.05)


def test_the_trailing_mean_ships_as_an_onnx_model_that_reproduces_it():
    day = dt.date(2026, 5, 5)
    features = lagged_features(day, [synthetic.keyword_report(3, 2_000, d) for d in lag_window(day, 7)])
    model = TrailingMeanModel().eval()
    session = ort.InferenceSession(export_onnx(model, trailing_mean_version(day), {"end_date": day.isoformat()}))
    predicted = session.run(None, {INPUT_NAME: features_array(features)})[0]
    expected = features.column("trailing_value_per_click").to_numpy()
    assert predicted == pytest.approx(expected, rel=1e-5, abs=1e-4)


def _sets():
    from astro_assets.model.datasets import TrainingWindow, concat_sets, labelled_set

    end = dt.date(2026, 5, 12)
    window = TrainingWindow.ending(end, 2)

    def labelled(day):
        features = lagged_features(day, [synthetic.keyword_report(3, 2_000, d) for d in lag_window(day, 7)])
        return labelled_set(features, synthetic.keyword_report(3, 2_000, day + dt.timedelta(days=1)))

    return window, end, concat_sets([labelled(d) for d in window.train_days]), labelled(window.holdout_day)


def test_train_candidate_keeps_a_champion_the_candidate_does_not_beat():
    from astro_assets.model.network import TrainingParams
    from astro_assets.model.training import TrainingPlan, train_candidate

    window, end, train_set, holdout = _sets()
    plan = TrainingPlan(training_days=2, network=TrainingParams(epochs=1))
    oracle = holdout.target.astype(np.float64)  # a champion that knows the held-out day
    kept = train_candidate(
        window, end, train_set, holdout, plan, lambda _: "v1", log=lambda _: None, champion=lambda _: oracle
    )
    assert not kept.promote and kept.record["publish"] == "champion" and "the champion stays" in kept.reason
    assert kept.record["gate"]["champion"]["lead"] < 0


def test_what_the_platform_cannot_ship_is_replaced_by_the_best_it_can():
    from astro_assets.model.training import shippable

    totals = {"model": -120.0, "champion": -110.0, "trailing_mean": -130.0, "gbdt": -90.0}
    assert shippable("champion", totals) == ("champion", "")
    chosen, why = shippable("gbdt", totals)
    assert chosen == "champion" and "gbdt cannot be published" in why
    assert shippable("gbdt", {k: v for k, v in totals.items() if k != "champion"})[0] == "model"


def test_onnx_model_publishes_the_trailing_mean_when_the_gate_says_so_and_nothing_without_a_decision(tmp_path):
    from astro_assets.defs.assets.model import onnx_model
    from astro_assets.defs.resources import AstroStorage
    from astro_assets.model.checkpoint import save_trained_model
    from astro_assets.model.network import TrainingParams, train
    from astro_assets.model.registry import published_version
    from astro_assets.storage import DataLayout

    window, end, train_set, holdout = _sets()
    params = TrainingParams(epochs=1, hidden_size=8)
    model, _ = train(train_set, params, log=lambda _: None)
    layout = DataLayout(tmp_path)

    def materialize(record):
        save_trained_model(layout, "20260512-candidate", model, params, holdout, record)
        with dg.instance_for_test() as instance:
            return dg.materialize(
                [onnx_model],
                resources={"storage": AstroStorage(data_dir=str(tmp_path))},
                instance=instance,
                raise_on_error=False,
            )

    reason = "model not promoted: ...; no champion, so the best baseline trailing_mean is published"
    base = {"version": "20260512-candidate", "end_date": end.isoformat(), "promotion_reason": reason}
    # "publish" without an explicit promote: False is not a decision to publish anything.
    undecided = materialize({**base, "publish": "model"})
    assert not undecided.success and not layout.onnx_model().exists()
    result = materialize({**base, "promote": False, "publish": "trailing_mean"})
    assert result.success
    metadata = result.asset_materializations_for_node("onnx_model")[0].metadata
    assert metadata["published_policy"].value == "trailing_mean" and metadata["promoted"].value is False
    assert published_version(layout) == trailing_mean_version(end) == metadata["model_version"].value
    features = lagged_features(
        window.holdout_day, [synthetic.keyword_report(3, 2_000, d) for d in lag_window(window.holdout_day, 7)]
    )
    session = ort.InferenceSession(layout.onnx_model().read_bytes())
    scored = session.run(None, {INPUT_NAME: features_array(features)})[0]
    assert scored == pytest.approx(features.column("trailing_value_per_click").to_numpy(), rel=1e-5, abs=1e-4)
