"""The backtest's figures as the issue's targets judge them and as tables (Markdown) and JSON."""

import json

from astro_assets.model.analyst import RISK_LEVEL
from astro_assets.storage import publishing_file


def targets_met(figures: dict) -> dict[str, bool]:
    """The issue's targets, on the test period: the published policy's profit ≥ 1.05 × the analyst's
    and ≥ the best of XGBoost and the trailing mean; wasted spend ≤ the analyst's; bids above the
    true value per click ≤ 5% of spend; the gate did not promote a candidate that lost to the champion."""
    return {
        "profit_at_least_1.05x_analyst": figures["profit"] >= 1.05 * figures["analyst_profit"],
        "profit_at_least_gbdt_and_trailing_mean": figures["profit"]
        >= max(figures["gbdt_profit"], figures["naive_profit"]),
        "wasted_spend_at_most_analyst": figures["wasted_spend"] <= figures["analyst_wasted_spend"],
        "spend_above_truth_at_most_5pct": figures["spend_above_truth_share"] <= RISK_LEVEL,
        "gate_never_promoted_a_loser": not figures["gate_promoted_a_loser"],
    }


POLICY_LABELS = {
    "model": "model (GRU candidate, guarded bids)",
    "champion": "champion (GRU in production, guarded bids)",
    "gbdt": "gbdt (XGBoost tuned, guarded bids)",
    "trailing_mean": "trailing mean (naive bids)",
    "analyst": "careful analyst (EB, lag-corrected, pauses)",
    "risk_bounded": "risk-bounded analyst (weekday, 5% lower bound)",
}


def table_header(margin: str) -> list[str]:
    """The Markdown header of the per-policy tables (``summary_table``, the CLI's seeds table)."""
    columns = ["policy", margin, "profit", "wasted spend", "spend above true value", "ROAS", "clicks"]
    columns += ["paused/day", "MAE vs truth"]
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def summary_table(figures: dict) -> str:
    """Test-period figures per policy at its target margin chosen on validation (Markdown); the
    published one in bold."""
    lines = table_header("margin")
    for policy, label in POLICY_LABELS.items():
        p = figures["policies"][policy]
        name = f"**{label}** (published)" if policy == figures["published_policy"] else label
        lines.append(
            f"| {name} | {p['target_margin']:g} | {p['profit']:,.0f} | {p['wasted_spend']:,.0f} "
            f"| {100 * p['spend_above_truth_share']:.1f}% "
            f"| {p['roas']:.2f} | {p['clicks']:,.0f} | {p['paused_per_day']:,.0f} | {p['mae']:.3f} |"
        )
    return "\n".join(lines)


def periods_line(figures: dict) -> str:
    return (
        f"training {figures['training_days'][0]} .. {figures['training_days'][-1]}, validation "
        f"{figures['validation_days'][0]} .. {figures['validation_days'][-1]}, test {figures['first_day']} .. "
        f"{figures['last_day']} (choices used {len(figures['choice_days'])} days, none in the test period); "
        f"target margins chosen on validation: " + ", ".join(f"{p} {m:g}" for p, m in figures["target_margins"].items())
    )


def write_json(path, figures: dict) -> None:
    with publishing_file(path) as tmp:
        tmp.write_text(json.dumps(figures, indent=2))
