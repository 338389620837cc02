"""The backtest (``astro-backtest`` and the ``backtest`` asset): would these bids have made money?

It replays the daily cycle over days of the synthetic account, with the functions the assets use
(the lagged features, the GRU exported to ONNX and scored by onnxruntime, the guarded bid rule), in a
market that answers each policy's own bids (``synthetic.keyword_report(..., bids=...)``): what a
policy bid on day D decides the impressions, clicks and costs in the report it reads on D+1, and
conversions arrive days late (each day is read as downloaded that morning).

Three disjoint periods (``periods.Periods``), oldest first:
- **training**: feature days whose next-day targets train the GRU, XGBoost and the champion (a GRU
  trained a week earlier with the default parameters: the model in production), targets read
  ``label_maturity`` days after they happened;
- **validation**: every choice is made here — the GRU's and XGBoost's configurations (the same
  budget: three each, early stopping for XGBoost), the analyst's shrinkage (``fitting``), each
  policy's target margin (every margin of ``BacktestSetup.margins`` replayed in its own closed loop;
  the one whose reports showed the most profit is kept: ``replay.choose_margins``), and the gate's
  decision of which policy is published, on each policy's own closed-loop days at its margin;
- **test**: the figures. The backtest refuses to report on a day any choice used, and says which.

Policies: ``model`` (the candidate GRU, guarded bids), ``champion`` (the GRU in production, guarded),
``gbdt`` (XGBoost, guarded), ``trailing_mean`` (naive: trailing-mean value per click × (1 − margin)),
``analyst`` (``model.analyst``: empirical Bayes, lag-corrected, pauses what cannot earn),
``risk_bounded`` (the same analyst's estimate × the account's weekday factor, bid at its posterior
lower bound of level ``BacktestSetup.risk_level``: ``model.analyst.risk_bounded_estimate``), and the
``published`` one: the policy the gate chose on validation days. Each is scored against the truth
(``evaluation.truth_outcome``): profit, wasted spend, bids above the true value per click, ROAS,
clicks, paused keywords.

Modules: ``periods`` (setup, the three periods), ``market`` (the account as each policy sees it),
``fitting`` (what is fitted and chosen before the test), ``replay`` (the closed loop, the margins),
``run`` (``run_backtest``), ``report`` (targets, tables, JSON).
"""

from astro_assets.model.backtest.fitting import Fitted, fit_and_choose
from astro_assets.model.backtest.market import Market
from astro_assets.model.backtest.periods import (
    ANALYST_PRIORS,
    DEFAULT_DAYS,
    DEFAULT_END,
    DEFAULT_KEYWORDS,
    MARGINS,
    BacktestSetup,
    PeriodOverlapError,
    Periods,
    periods_of,
)
from astro_assets.model.backtest.replay import (
    BASELINES,
    POLICIES,
    arm,
    choose_margins,
    observed_profit,
    policy_bids,
    replay,
)
from astro_assets.model.backtest.report import (
    POLICY_LABELS,
    periods_line,
    summary_table,
    table_header,
    targets_met,
    write_json,
)
from astro_assets.model.backtest.run import run_backtest

__all__ = [
    "ANALYST_PRIORS",
    "BASELINES",
    "DEFAULT_DAYS",
    "DEFAULT_END",
    "DEFAULT_KEYWORDS",
    "MARGINS",
    "POLICIES",
    "POLICY_LABELS",
    "BacktestSetup",
    "Fitted",
    "Market",
    "PeriodOverlapError",
    "Periods",
    "arm",
    "choose_margins",
    "fit_and_choose",
    "observed_profit",
    "periods_line",
    "periods_of",
    "policy_bids",
    "replay",
    "run_backtest",
    "summary_table",
    "table_header",
    "targets_met",
    "write_json",
]
