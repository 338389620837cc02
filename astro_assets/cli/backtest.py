"""``python -m astro_assets.cli.backtest`` (``astro-backtest``): would the bids have made money?
Replays the policy over held-out days of the synthetic account (``model.backtest``)."""

import argparse
import datetime as dt
import sys
from pathlib import Path

from astro_assets.core.bid_rule import BidRule
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astro-backtest", description=__doc__.splitlines()[0])
    parser.add_argument("--keywords", type=int, default=DEFAULT_KEYWORDS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="held-out days replayed")
    parser.add_argument("--end", type=dt.date.fromisoformat, default=DEFAULT_END, help="last held-out day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.keywords <= 0 or args.days <= 0:
        parser.error("--keywords and --days must be positive")
    figures = run_backtest(
        BacktestSetup(keywords=args.keywords, days=args.days, end=args.end, seed=args.seed), BidRule()
    )
    print(summary_table(figures))
    print(
        f"roas {figures['roas']:.2f} (naive {figures['naive_roas']:.2f}), unprofitable bids "
        f"{figures['unprofitable_bids']}, {figures['seconds']} s"
    )
    for target, ok in targets_met(figures).items():
        print(f"{'met ' if ok else 'MISSED'} {target}")
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
