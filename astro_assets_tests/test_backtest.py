"""The backtest: three disjoint periods (it refuses to report on a day a choice used), every policy
in a market that answers its own bids, the gate replayed, figures against the truth, its command
(with --seeds) and its asset in the UI."""

import dataclasses
import datetime as dt
import json

import dagster as dg
import numpy as np
import pytest

from astro_assets.cli.backtest import main
from astro_assets.core.bid_rule import BidRule
from astro_assets.defs.assets.backtest import backtest
from astro_assets.defs.resources import AstroStorage, BidPolicy, SyntheticKeywordSource
from astro_assets.model.backtest import (
    POLICIES,
    BacktestSetup,
    PeriodOverlapError,
    arm,
    choose_margins,
    periods_of,
    run_backtest,
    targets_met,
)
from astro_assets.model.baselines import GbdtParams
from astro_assets.model.network import TrainingParams

SMALL = BacktestSetup(
    keywords=1_000,
    days=2,
    end=dt.date(2026, 5, 20),
    training_days=2,
    validation_days=8,
    network_grid=(TrainingParams(epochs=1), TrainingParams(epochs=2)),
    gbdt_grid=(GbdtParams(rounds=30, max_depth=3), GbdtParams(rounds=30, max_depth=5)),
    analyst_priors=(5.0, 50.0),
    margins=(0.1, 0.3),
    champion_params=TrainingParams(epochs=1),
)


def test_the_periods_are_disjoint_and_the_backtest_refuses_to_report_on_days_a_choice_used():
    periods = periods_of(BacktestSetup(days=14, end=dt.date(2026, 10, 31)))
    assert periods.test[0] == dt.date(2026, 10, 18) and len(periods.test) == 14
    assert periods.validation[-1] == dt.date(2026, 10, 17) and len(periods.validation) == 14
    assert max(periods.choice_days) < periods.test[0]
    assert max(periods.training) + dt.timedelta(days=1) < periods.validation[0]  # targets before validation
    with pytest.raises(PeriodOverlapError) as refused:
        periods_of(BacktestSetup(days=14, end=dt.date(2026, 10, 31), validation_end=dt.date(2026, 10, 19)))
    assert "refusing to report on 2 test day(s) that choices used: 2026-10-18, 2026-10-19" in str(refused.value)


@pytest.fixture(scope="module")
def figures():
    return run_backtest(SMALL, BidRule(target_margin=0.2, floor=0.05, ceiling=25.0), log=lambda _: None)


def test_every_policy_is_replayed_on_validation_then_test_days_and_the_gate_decides_on_validation(figures):
    test_rows = [d for d in figures["per_day"] if d["period"] == "test"]
    assert sorted({d["day"] for d in test_rows}) == ["2026-05-19", "2026-05-20"] == figures["test_days"]
    assert {d["policy"] for d in test_rows} == set(POLICIES)
    assert not set(figures["test_days"]) & set(figures["choice_days"])
    assert set(figures["validation_days"]) <= set(figures["choice_days"])
    assert figures["published_policy"] in POLICIES and figures["gate_reason"]
    assert figures["profit"] == figures["policies"][figures["published_policy"]]["profit"]
    model = figures["policies"]["model"]
    assert model["profit"] == pytest.approx(sum(d["profit"] for d in test_rows if d["policy"] == "model"))
    assert model["profit"] == pytest.approx(model["value"] - model["cost"])
    assert 0.0 <= figures["spend_above_truth_share"] <= 1.0 and figures["wasted_spend"] >= 0
    assert figures["choices"]["network"]["chosen"] and figures["choices"]["gbdt"]["chosen"]
    assert figures["gate_promoted_a_loser"] is (
        figures["gate_promoted"] and model["profit"] < figures["champion_profit"]
    )


def test_each_policy_keeps_the_margin_its_validation_reports_showed_most_profit_at(figures):
    margins = figures["target_margins"]
    assert set(margins) == set(POLICIES) and figures["target_margin"] == margins[figures["published_policy"]]
    for policy in POLICIES:
        choice = figures["choices"]["target_margin"][policy]
        observed = choice["validation_observed_profit"]
        assert set(observed) == {"0.1", "0.3"} and choice["chosen"] == margins[policy]
        assert observed[f"{margins[policy]:g}"] == max(observed.values())
        assert figures["policies"][policy]["validation_observed_profit"] == pytest.approx(max(observed.values()))
        assert figures["policies"][policy]["target_margin"] == margins[policy]
        validation = [d for d in figures["per_day"] if d["period"] == "validation" and d["policy"] == policy]
        assert {d["margin"] for d in validation} == {0.1, 0.3}  # every margin replayed on validation days
        test = [d for d in figures["per_day"] if d["period"] == "test" and d["policy"] == policy]
        assert {d["margin"] for d in test} == {margins[policy]} and len(test) == 2  # only the chosen one
    # The margins change the bids: the two arms of a policy did not earn the same.
    assert any(
        len(set(c["validation_observed_profit"].values())) == 2 for c in figures["choices"]["target_margin"].values()
    )


def test_the_same_backtest_gives_the_same_figures_and_more_test_days_change_no_choice(figures):
    again = run_backtest(SMALL, BidRule(target_margin=0.2, floor=0.05, ceiling=25.0), log=lambda _: None)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in figures.items() if k != "seconds"}
    # One more test day (the same validation days): every choice, margin and the gate's decision are
    # the same, so none of them looked at a test day.
    longer = run_backtest(
        dataclasses.replace(SMALL, days=3, end=SMALL.end + dt.timedelta(days=1)),
        BidRule(target_margin=0.2, floor=0.05, ceiling=25.0),
        log=lambda _: None,
    )
    assert longer["validation_days"] == figures["validation_days"] and len(longer["test_days"]) == 3
    assert longer["choices"] == figures["choices"] and longer["target_margins"] == figures["target_margins"]
    assert (longer["published_policy"], longer["gate_reason"]) == (figures["published_policy"], figures["gate_reason"])
    first_two = [d for d in longer["per_day"] if d["period"] == "test" and d["day"] in figures["test_days"]]
    assert first_two == [d for d in figures["per_day"] if d["period"] == "test"]


def test_the_margin_with_the_most_observed_profit_wins_the_first_of_equals():
    observed = {
        arm("model", 0.1): np.array([1.0, 2.0]),
        arm("model", 0.3): np.array([4.0, -0.5]),
        arm("analyst", 0.1): np.array([1.0]),
        arm("analyst", 0.3): np.array([1.0]),
    }
    chosen = choose_margins(observed, ("model", "analyst"), (0.1, 0.3))
    assert chosen["model"] == {"chosen": 0.3, "validation_observed_profit": {"0.1": 3.0, "0.3": 3.5}}
    assert chosen["analyst"]["chosen"] == 0.1


def test_targets_are_judged_from_the_figures():
    good = {
        "profit": 110.0,
        "analyst_profit": 100.0,
        "gbdt_profit": 90.0,
        "naive_profit": 50.0,
        "wasted_spend": 5.0,
        "analyst_wasted_spend": 6.0,
        "spend_above_truth_share": 0.04,
        "gate_promoted_a_loser": False,
    }
    assert all(targets_met(good).values())
    assert targets_met(good | {"profit": 104.0})["profit_at_least_1.05x_analyst"] is False
    assert targets_met(good | {"gbdt_profit": 120.0})["profit_at_least_gbdt_and_trailing_mean"] is False
    assert targets_met(good | {"wasted_spend": 7.0})["wasted_spend_at_most_analyst"] is False
    assert targets_met(good | {"spend_above_truth_share": 0.06})["spend_above_truth_at_most_5pct"] is False
    assert targets_met(good | {"gate_promoted_a_loser": True})["gate_never_promoted_a_loser"] is False


def test_command_reports_mean_and_spread_over_seeds_with_the_json_keys(tmp_path, capsys):
    path = tmp_path / "backtest.json"
    argv = ["--keywords", "600", "--days", "1", "--end", "2026-04-10", "--validation-days", "8", "--seeds", "2"]
    argv += ["--margins", "0.2", "0.35"]
    assert main([*argv, "--json", str(path)]) == 0
    written = json.loads(path.read_text())
    keys = ("model_mae", "trailing_mean_mae", "gbdt_mae", "profit", "naive_profit", "roas", "unprofitable_bids")
    keys += ("analyst_profit", "gbdt_profit", "wasted_spend", "analyst_wasted_spend")
    for key in keys:
        assert isinstance(written[key], int | float), key
        assert written[key] == pytest.approx(sum(r[key] for r in written["per_seed"]) / 2), key
        assert written["spread"][key] >= 0, key
    assert written["seeds"] == [7, 8] and written["test_days"] == ["2026-04-10"]
    assert written["choice_days"] and max(written["choice_days"]) < "2026-04-10"
    assert 0 <= written["gate_promotions"] <= 2
    assert [set(m.values()) <= {0.2, 0.35} for m in written["target_margins"]] == [True, True]
    assert written["target_margin"] == [r["target_margin"] for r in written["per_seed"]]
    out = capsys.readouterr().out
    assert "mean ± spread over seeds [7, 8]" in out and "| careful analyst" in out
    assert "target margins chosen on validation: model " in out


def test_backtest_asset_shows_the_table_and_the_profit_plot(tmp_path):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [backtest],
            instance=instance,
            resources={
                "storage": AstroStorage(data_dir=str(tmp_path)),
                "bid_policy": BidPolicy(),
                "keyword_source": SyntheticKeywordSource(seed=3, keywords=600),
            },
            run_config={
                "ops": {
                    "backtest": {"config": {"keywords": 600, "days": 1, "end_date": "2026-04-10", "validation_days": 8}}
                }
            },
        )
    metadata = result.asset_materializations_for_node("backtest")[0].metadata
    assert metadata["profit_per_day"].value.startswith("![plot](data:image/png;base64,")
    assert "trailing mean (naive bids)" in metadata["summary"].value and "(published)" in metadata["summary"].value
    assert metadata["published_policy"].value in POLICIES
    assert "test 2026-04-10 .. 2026-04-10" in metadata["periods"].value
    assert json.loads((tmp_path / "backtest" / "backtest.json").read_text())["days"] == 1
