"""The training budget curve: train on samples of several sizes of the same window and measure each on
the whole held-out day (quality, minutes, peak memory of driver + JVM + workers).

    ASTRO_KEYWORDS=10000000 ASTRO_DATA_DIR=... python -m astro_assets.cli.training_budget \\
        --end 2026-11-25 --budgets 500000,1000000,3000000

needs the raw and preprocessed days of the window (``make run`` builds them). Writes the points to
``DataLayout.training_budget_curve()`` (``trained_model`` shows them as a plot in its metadata) and the
plot as a PNG beside it. Every budget saves a ``trained_model`` version, as a training run does.
"""

import argparse
import datetime as dt
import json
import os
import sys
import time

from astro_assets.cli.bench import PeakMemory
from astro_assets.cli.environment import require_java
from astro_assets.defs.resources import SyntheticKeywordSource, spark_session
from astro_assets.model.training import TrainingPlan
from astro_assets.settings import DEFAULT_TRAINING_ROWS, load_settings
from astro_assets.stages.training import train_on_window
from astro_assets.storage import DataLayout, publishing_file

#: What each point keeps of a training run's metrics.
KEPT = tuple(
    f"{predictor}_{measure}"
    for predictor in ("model", "gbdt", "trailing_mean")
    for measure in ("click_weighted_mse", "click_weighted_mae", "mae_vs_expected")
)


def write_plot(curve: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curve["points"]
    budgets = [p["budget"] for p in points]
    fig, (quality, cost) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key, label in (("model_click_weighted_mse", "click-weighted MSE"), ("model_mae_vs_expected", "MAE vs truth")):
        if all(key in p for p in points):
            quality.plot(budgets, [p[key] / points[-1][key] for p in points], marker="o", label=label)
    quality.set_xscale("log")
    quality.set_xlabel("training rows (sample budget)")
    quality.set_ylabel("relative to the largest budget")
    quality.set_title(f"Held-out quality, {curve['keywords']:,} keywords")
    quality.grid(alpha=0.3)
    quality.legend()
    cost.plot(budgets, [p["seconds"] / 60 for p in points], marker="o", label="trained_model minutes")
    cost.plot(budgets, [p["peak_bytes"] / 2**30 for p in points], marker="s", label="peak memory GiB")
    cost.set_xscale("log")
    cost.set_xlabel("training rows (sample budget)")
    cost.set_title("Cost (2 cores)")
    cost.grid(alpha=0.3)
    cost.legend()
    fig.tight_layout()
    with publishing_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--end", required=True, help="last day whose raw report is a target (YYYY-MM-DD)")
    parser.add_argument(
        "--budgets",
        default=f"{DEFAULT_TRAINING_ROWS},{3 * DEFAULT_TRAINING_ROWS}",
        help="comma-separated training rows, measured in this order (default: the default budget and 3x it)",
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    require_java()
    spark = spark_session(settings)
    layout = DataLayout(settings.data_dir)
    end = dt.date.fromisoformat(args.end)
    truth = SyntheticKeywordSource(seed=settings.seed, keywords=settings.keywords).expected_value_per_click(end)
    plan = TrainingPlan()
    points = []
    for budget in (int(b) for b in args.budgets.split(",")):  # in the order given (the default first)
        print(f"budget {budget:,}: training", flush=True)
        started = time.perf_counter()
        load_before = os.getloadavg()[0]

        def log(message: str, started: float = started) -> None:  # each step with the seconds since the start
            print(f"  [{time.perf_counter() - started:6.0f} s] {message}", flush=True)

        with PeakMemory() as memory:
            _, _, candidate = train_on_window(spark, layout, end, plan, budget, truth=truth, log=log)
        point = {
            "budget": budget,
            "rows": candidate.record["training_rows"],
            "seconds": round(time.perf_counter() - started, 1),
            # The machine's 1-minute load average before and after: other jobs share the 2 cores.
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "sample_seconds": candidate.record["training_sample"]["seconds"],
            "peak_bytes": memory.peak,  # PSS of driver + JVM + workers
            "peak_resident_bytes": memory.peak_resident,  # their RSS summed: an upper bound, sampled more often
            **{k: candidate.metrics[k] for k in KEPT if k in candidate.metrics},
        }
        points.append(point)
        print(json.dumps(point), flush=True)
        curve = {"keywords": settings.keywords, "end_date": end.isoformat(), "epochs": plan.network.epochs}
        curve["points"] = sorted(points, key=lambda p: p["budget"])
        with publishing_file(layout.training_budget_curve()) as tmp:
            tmp.write_text(json.dumps(curve, indent=2))
        write_plot(curve, layout.training_budget_curve().with_suffix(".png"))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
