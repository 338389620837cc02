"""Small matplotlib figures rendered to PNG and embedded in Markdown metadata for the Dagster UI."""

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _markdown(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![plot](data:image/png;base64,{encoded})"


def line_plot_markdown(
    series: dict[str, list[float]], xlabel: str, ylabel: str, title: str, x: list[str] | None = None
) -> str:
    """One line per series over 1..n (or over the labels ``x``, e.g. days)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, values in series.items():
        ax.plot(x if x is not None else range(1, len(values) + 1), values, marker="o", label=label)
    if x is not None:
        ax.tick_params(axis="x", labelrotation=45)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _markdown(fig)


Series = np.ndarray | tuple[np.ndarray, np.ndarray]


def histogram_markdown(values: Series | dict[str, Series], xlabel: str, title: str, bins: int = 50) -> str:
    """A histogram of ``values``, or of several labelled series overlaid on the same bins. A series is
    the values, or (distinct values, how many of each) for data counted rather than held."""
    labelled = values if isinstance(values, dict) else {"": values}
    series = {k: v if isinstance(v, tuple) else (v, None) for k, v in labelled.items()}
    everything = np.concatenate([np.asarray(v, dtype=np.float64) for v, _ in series.values()])
    edges = np.histogram_bin_edges(everything, bins=bins) if everything.size else bins
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, (data, weights) in series.items():
        ax.hist(
            data,
            bins=edges,
            weights=weights,
            alpha=0.55 if len(series) > 1 else 1.0,
            label=label or None,
            color=None if len(series) > 1 else "#4f6bed",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("keywords")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    return _markdown(fig)


def scatter_plot_markdown(
    actual: np.ndarray,
    predicted: np.ndarray,
    weight: np.ndarray,
    xlabel: str,
    ylabel: str,
    title: str,
    points: int = 4_000,
) -> str:
    """Predicted against actual (a seeded sample of at most ``points``), marker area by ``weight``,
    with the diagonal where a perfect prediction would lie."""
    actual, predicted, weight = (np.asarray(a, dtype=np.float64) for a in (actual, predicted, weight))
    if len(actual) > points:
        keep = np.sort(np.random.default_rng(0).choice(len(actual), points, replace=False))
        actual, predicted, weight = actual[keep], predicted[keep], weight[keep]
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.scatter(
        actual,
        predicted,
        s=4 + 20 * weight / max(float(weight.max(initial=1.0)), 1.0),
        alpha=0.3,
        color="#4f6bed",
        linewidths=0,
    )
    top = float(np.quantile(np.concatenate([actual, predicted]), 0.99)) if len(actual) else 1.0
    ax.plot([0, top], [0, top], color="#d9534f", linewidth=1, label="perfect")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _markdown(fig)
