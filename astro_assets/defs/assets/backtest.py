"""``backtest``: every bid policy replayed over test days of the synthetic account, after choosing on
validation days (``model.backtest``); the published policy is the one the gate chose."""

import datetime as dt

import dagster as dg

from astro_assets.defs.plots import line_plot_markdown
from astro_assets.defs.resources import AstroStorage, BidPolicy, KeywordSource, SyntheticKeywordSource
from astro_assets.model.backtest import (
    DEFAULT_DAYS,
    DEFAULT_END,
    DEFAULT_KEYWORDS,
    POLICY_LABELS,
    BacktestSetup,
    periods_line,
    run_backtest,
    summary_table,
    targets_met,
    write_json,
)
from astro_assets.storage import BACKTEST


def profit_plot(figures: dict) -> str:
    test = [d for d in figures["per_day"] if d["period"] == "test"]
    days = sorted({d["day"] for d in test})
    series = {
        policy: [next(d["profit"] for d in test if d["day"] == day and d["policy"] == policy) for day in days]
        for policy in POLICY_LABELS
    }
    return line_plot_markdown(
        series, "test day", "profit (true value - cost)", "Backtest: profit per day", x=[d[5:] for d in days]
    )


class BacktestConfig(dg.Config):
    """Launch-time settings of the backtest (editable in the launchpad)."""

    keywords: int = DEFAULT_KEYWORDS
    days: int = DEFAULT_DAYS
    end_date: str = DEFAULT_END.isoformat()
    validation_days: int = BacktestSetup.validation_days


@dg.asset(
    name=BACKTEST,
    group_name="evaluation",
    kinds={"pytorch", "onnx"},
    description="Every bid policy replayed over test days of the synthetic account, chosen on validation days.",
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
        keywords=config.keywords,
        days=config.days,
        end=dt.date.fromisoformat(config.end_date),
        seed=keyword_source.seed,
        validation_days=config.validation_days,
    )
    figures = run_backtest(setup, bid_policy.to_rule(), log=context.log.info)
    path = storage.layout.backtest_json()
    write_json(path, figures)
    met = targets_met(figures)
    scalars = {k: v for k, v in figures.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return dg.MaterializeResult(
        metadata={
            **{k: dg.MetadataValue.float(round(float(v), 4)) for k, v in scalars.items()},
            **{f"target_{k}": dg.MetadataValue.bool(v) for k, v in met.items()},
            "published_policy": figures["published_policy"],
            "gate_promoted": dg.MetadataValue.bool(figures["gate_promoted"]),
            "gate_reason": figures["gate_reason"],
            "periods": periods_line(figures),
            "choices": dg.MetadataValue.json(figures["choices"]),
            "summary": dg.MetadataValue.md(summary_table(figures)),
            "profit_per_day": dg.MetadataValue.md(profit_plot(figures)),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
