"""``backtest``: the bid policy replayed over past days of the synthetic account (``model.backtest``)."""

import datetime as dt

import dagster as dg

from astro_assets.defs.plots import line_plot_markdown
from astro_assets.defs.resources import AstroStorage, BidPolicy, KeywordSource, SyntheticKeywordSource
from astro_assets.model.backtest import (
    DEFAULT_DAYS,
    DEFAULT_END,
    DEFAULT_KEYWORDS,
    BacktestSetup,
    run_backtest,
    summary_table,
    targets_met,
    write_json,
)
from astro_assets.storage import BACKTEST


def profit_plot(figures: dict) -> str:
    days = [d["day"][5:] for d in figures["per_day"]]
    series = {
        policy: [d[f"{key}_profit"] for d in figures["per_day"]]
        for policy, key in (("model", "model"), ("gbdt", "gbdt"), ("naive (trailing mean)", "naive"))
    }
    return line_plot_markdown(series, "held-out day", "profit (value - cost)", "Backtest: profit per day", x=days)


class BacktestConfig(dg.Config):
    """Launch-time settings of the backtest (editable in the launchpad)."""

    keywords: int = DEFAULT_KEYWORDS
    days: int = DEFAULT_DAYS
    end_date: str = DEFAULT_END.isoformat()


@dg.asset(
    name=BACKTEST,
    group_name="evaluation",
    kinds={"pytorch", "onnx"},
    description="Replays the bid policy over past days of the synthetic account: model vs naive profit.",
)
def backtest(
    context: dg.AssetExecutionContext,
    config: BacktestConfig,
    storage: AstroStorage,
    bid_policy: BidPolicy,
    keyword_source: KeywordSource,
) -> dg.MaterializeResult:
    if not isinstance(keyword_source, SyntheticKeywordSource):
        raise dg.Failure(
            "the backtest needs the synthetic account's ground truth; keyword_source is "
            f"{type(keyword_source).__name__} (unset ASTRO_REPORTS_DIR to run it)"
        )
    setup = BacktestSetup(
        keywords=config.keywords, days=config.days, end=dt.date.fromisoformat(config.end_date), seed=keyword_source.seed
    )
    figures = run_backtest(setup, bid_policy.to_rule(), log=context.log.info)
    path = storage.layout.backtest_json()
    write_json(path, figures)
    met = targets_met(figures)
    scalars = {k: v for k, v in figures.items() if isinstance(v, int | float)}
    return dg.MaterializeResult(
        metadata={
            **{k: dg.MetadataValue.float(round(float(v), 4)) for k, v in scalars.items()},
            **{f"target_{k}": dg.MetadataValue.bool(v) for k, v in met.items()},
            "summary": dg.MetadataValue.md(summary_table(figures)),
            "profit_per_day": dg.MetadataValue.md(profit_plot(figures)),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
