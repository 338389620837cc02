"""The backtest: the auction it replays on known cases, its command's figures, and its asset in the UI."""

import datetime as dt
import json

import dagster as dg
import numpy as np
import pytest

from astro_assets.cli.backtest import main
from astro_assets.core.bid_rule import BidRule
from astro_assets.defs.assets.backtest import backtest
from astro_assets.defs.resources import AstroStorage, BidPolicy, SyntheticKeywordSource
from astro_assets.model.backtest import BacktestSetup, auction_outcome, run_backtest, targets_met
from astro_assets.model.network import TrainingParams

SIGMA = 0.35


def test_a_bid_buys_the_clicks_priced_below_it_and_never_pays_more_than_it():
    clicks = np.array([100.0, 100.0, 100.0, 100.0])
    market = np.array([1.0, 1.0, 1.0, 0.0])
    bid = np.array([0.0, 1.0, 1000.0, 1.0])
    outcome = auction_outcome(bid, clicks, market, np.full(4, 2.0), SIGMA)
    won, cost, value = outcome["clicks"], outcome["cost"], outcome["value"]
    assert won[0] == 0 and cost[0] == 0  # no bid, nothing bought
    assert won[1] == pytest.approx(50.0)  # a bid at the median price wins half the clicks
    assert cost[1] / won[1] < 1.0  # ... each at most the bid, so on average less
    assert won[2] == pytest.approx(100.0)  # a huge bid wins them all at the mean price
    assert cost[2] == pytest.approx(100.0 * np.exp(SIGMA**2 / 2))
    assert won[3] == 0 and cost[3] == 0  # a keyword without an auction
    assert np.allclose(value, 2.0 * won)


def test_a_higher_bid_wins_more_clicks_at_a_higher_price_per_click():
    bids = np.linspace(0.2, 3.0, 30)
    outcome = auction_outcome(bids, np.full(30, 50.0), np.ones(30), np.ones(30), SIGMA)
    assert np.all(np.diff(outcome["clicks"]) > 0)
    assert np.all(np.diff(outcome["cost"] / outcome["clicks"]) > 0)
    assert np.all(outcome["cost"] / outcome["clicks"] <= bids)


SMALL = BacktestSetup(
    keywords=3_000, days=3, end=dt.date(2026, 5, 20), retrain_every=2, training=TrainingParams(epochs=6)
)


@pytest.fixture(scope="module")
def figures():
    return run_backtest(SMALL, BidRule(target_margin=0.2, floor=0.05, ceiling=25.0), log=lambda _: None)


def test_backtest_replays_each_held_out_day_with_guarded_bids(figures):
    assert [d["day"] for d in figures["per_day"]] == ["2026-05-18", "2026-05-19", "2026-05-20"]
    versions = [d["model_version"] for d in figures["per_day"]]
    assert versions[0] == versions[1] != versions[2]  # retrained every 2 days
    assert figures["unprofitable_bids"] == 0
    assert figures["profit"] == pytest.approx(sum(d["model_profit"] for d in figures["per_day"]))
    assert figures["roas"] == pytest.approx(figures["value"] / figures["cost"])
    assert figures["model_mae"] < 0.8 * figures["trailing_mean_mae"]
    assert figures["profit"] > figures["naive_profit"]


def test_the_same_backtest_gives_the_same_figures(figures):
    again = run_backtest(SMALL, BidRule(target_margin=0.2, floor=0.05, ceiling=25.0), log=lambda _: None)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in figures.items() if k != "seconds"}


def test_targets_are_judged_from_the_figures():
    good = {
        "model_mae": 0.4,
        "trailing_mean_mae": 1.0,
        "gbdt_mae": 0.5,
        "profit": 2.0,
        "naive_profit": 1.0,
        "unprofitable_bids": 0,
    }
    assert all(targets_met(good).values())
    assert targets_met(good | {"model_mae": 0.85})["model_mae_at_most_0.8x_trailing_mean"] is False
    assert targets_met(good | {"gbdt_mae": 0.3})["model_mae_at_most_gbdt"] is False
    assert targets_met(good | {"naive_profit": 3.0})["profit_above_naive"] is False
    assert targets_met(good | {"unprofitable_bids": 1})["no_unprofitable_bids"] is False


def test_command_prints_the_table_and_writes_the_json_keys(tmp_path, capsys):
    path = tmp_path / "backtest.json"
    assert main(["--keywords", "2000", "--days", "1", "--end", "2026-04-10", "--json", str(path)]) == 0
    written = json.loads(path.read_text())
    for key in ("model_mae", "trailing_mean_mae", "gbdt_mae", "profit", "naive_profit", "roas", "unprofitable_bids"):
        assert isinstance(written[key], int | float), key
    out = capsys.readouterr().out
    assert "| model (GRU, guarded bids) |" in out and "no_unprofitable_bids" in out


def test_backtest_asset_shows_the_table_and_the_profit_plot(tmp_path):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [backtest],
            instance=instance,
            resources={
                "storage": AstroStorage(data_dir=str(tmp_path)),
                "bid_policy": BidPolicy(),
                "keyword_source": SyntheticKeywordSource(seed=3, keywords=2_000),
            },
            run_config={"ops": {"backtest": {"config": {"keywords": 2_000, "days": 2, "end_date": "2026-04-10"}}}},
        )
    metadata = result.asset_materializations_for_node("backtest")[0].metadata
    assert metadata["profit_per_day"].value.startswith("![plot](data:image/png;base64,")
    assert "| trailing mean (naive bids) |" in metadata["summary"].value
    assert metadata["unprofitable_bids"].value == 0
    assert json.loads((tmp_path / "backtest" / "backtest.json").read_text())["days"] == 2
