"""``python -m astro_assets.cli.backtest`` (``astro-backtest``): would the bids have made money?
Replays every bid policy over test days of the synthetic account, after choosing on validation days
(``model.backtest``); with ``--seeds N``, over N accounts (seeds) with the mean and spread of each figure."""

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np

from astro_assets.core.bid_rule import BidRule
from astro_assets.model.backtest import (
    DEFAULT_DAYS,
    DEFAULT_END,
    DEFAULT_KEYWORDS,
    MARGINS,
    POLICY_LABELS,
    BacktestSetup,
    periods_line,
    run_backtest,
    summary_table,
    table_header,
    targets_met,
    write_json,
)

#: The figures averaged over seeds (mean, and spread = sample standard deviation).
FIGURES = (
    "model_mae",
    "champion_mae",
    "trailing_mean_mae",
    "gbdt_mae",
    "analyst_mae",
    "profit",
    "model_profit",
    "champion_profit",
    "naive_profit",
    "gbdt_profit",
    "analyst_profit",
    "risk_bounded_profit",
    "risk_bounded_spend_above_truth_share",
    "roas",
    "wasted_spend",
    "analyst_wasted_spend",
    "unprofitable_bids",
    "spend_above_truth_share",
    "clicks",
    "paused_per_day",
)
POLICY_FIGURES = (
    "target_margin",
    "profit",
    "wasted_spend",
    "spend_above_truth_share",
    "bids_above_truth",
    "roas",
    "clicks",
    "paused_per_day",
    "mae",
)


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def combine(runs: list[dict]) -> dict:
    """The seeds' figures: each of ``FIGURES`` as the mean (same key) and its spread (``spread``),
    per policy likewise, the gate's decisions counted, the periods of each seed kept."""
    first = runs[0]
    combined = {
        "keywords": first["keywords"],
        "days": first["days"],
        "seeds": [r["seed"] for r in runs],
        "first_day": first["first_day"],
        "last_day": first["last_day"],
        "test_days": first["test_days"],
        "choice_days": first["choice_days"],
        "training_days": first["training_days"],
        "validation_days": first["validation_days"],
        # Each seed's target margins, chosen on its validation days (the published policy's, and all).
        "target_margin": [r["target_margin"] for r in runs],
        "target_margins": [r["target_margins"] for r in runs],
    }
    spread = {}
    for key in FIGURES:
        combined[key], spread[key] = mean_and_spread([r[key] for r in runs])
    combined["spread"] = spread
    combined["policies"] = {
        policy: {
            key: dict(zip(("mean", "spread"), mean_and_spread([r["policies"][policy][key] for r in runs]), strict=True))
            for key in POLICY_FIGURES
        }
        for policy in POLICY_LABELS
    }
    combined["published_policies"] = [r["published_policy"] for r in runs]
    combined["gate_promotions"] = sum(bool(r["gate_promoted"]) for r in runs)
    combined["gate_promoted_a_loser"] = any(r["gate_promoted_a_loser"] for r in runs)
    combined["seconds"] = round(sum(r["seconds"] for r in runs), 1)
    combined["per_seed"] = runs
    return combined


def seeds_table(combined: dict) -> str:
    """Test-period figures per policy, mean ± spread over the seeds, with each seed's target margin
    chosen on its validation days (Markdown)."""
    lines = table_header("margin (per seed)")
    for policy, label in POLICY_LABELS.items():
        p = combined["policies"][policy]
        margins = " / ".join(f"{m[policy]:g}" for m in combined["target_margins"])

        def cell(key, fmt="{:,.0f}", scale=1.0, p=p):
            return f"{fmt.format(scale * p[key]['mean'])} ± {fmt.format(scale * p[key]['spread'])}"

        lines.append(
            f"| {label} | {margins} | {cell('profit')} | {cell('wasted_spend')} "
            f"| {cell('spend_above_truth_share', '{:.1f}', 100)}% "
            f"| {cell('roas', '{:.2f}')} | {cell('clicks')} | {cell('paused_per_day')} | {cell('mae', '{:.3f}')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astro-backtest", description=__doc__.splitlines()[0])
    parser.add_argument("--keywords", type=int, default=DEFAULT_KEYWORDS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="test days replayed")
    parser.add_argument("--end", type=dt.date.fromisoformat, default=DEFAULT_END, help="last test day")
    parser.add_argument("--seed", type=int, default=7, help="the first seed")
    parser.add_argument("--seeds", type=int, default=1, help="accounts (seeds seed, seed+1, ...): mean and spread")
    parser.add_argument("--validation-days", type=int, default=BacktestSetup.validation_days)
    parser.add_argument(
        "--margins",
        type=float,
        nargs="+",
        default=list(MARGINS),
        help="target margins each policy tries on validation days (it keeps its most profitable)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.keywords <= 0 or args.days <= 0 or args.seeds <= 0 or args.validation_days <= 0:
        parser.error("--keywords, --days, --seeds and --validation-days must be positive")
    if not all(0.0 <= m < 1.0 for m in args.margins):
        parser.error(f"--margins must be in [0, 1): {args.margins}")
    rule = BidRule()
    runs = []
    for seed in range(args.seed, args.seed + args.seeds):
        setup = BacktestSetup(
            keywords=args.keywords,
            days=args.days,
            end=args.end,
            seed=seed,
            validation_days=args.validation_days,
            margins=tuple(args.margins),
        )
        figures = run_backtest(setup, rule)
        print(f"seed {seed}: {periods_line(figures)}")
        print(summary_table(figures))
        print(f"seed {seed}: published {figures['published_policy']}: {figures['gate_reason']}")
        runs.append(figures)
    combined = combine(runs)
    if args.seeds > 1:
        print(f"mean ± spread over seeds {combined['seeds']}:")
        print(seeds_table(combined))
    print(
        f"published {combined['published_policies']}, gate promoted the candidate {combined['gate_promotions']} "
        f"of {args.seeds} time(s); roas {combined['roas']:.2f}, bids above the true value per click "
        f"{combined['unprofitable_bids']:.0f} ({100 * combined['spend_above_truth_share']:.1f}% of spend), "
        f"{combined['seconds']} s"
    )
    for target, ok in targets_met(combined).items():
        print(f"{'met ' if ok else 'MISSED'} {target}")
    if args.json:
        write_json(args.json, combined)
    return 0


if __name__ == "__main__":
    sys.exit(main())
