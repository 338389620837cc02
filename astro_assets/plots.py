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


def line_plot_markdown(series: dict[str, list[float]], xlabel: str, ylabel: str, title: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _markdown(fig)


def histogram_markdown(values: np.ndarray, xlabel: str, title: str, bins: int = 50) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(values, bins=bins, color="#4f6bed")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("keywords")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _markdown(fig)
