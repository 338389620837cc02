"""One training run, without Dagster or Spark: fit the GRU and the XGBoost baseline on the training
window, compare them with the champion and the baselines on the held-out days, decide promotion (the
gate, ``evaluation.gate``), and describe it.

``stages.training`` reads the window's partitions and calls :func:`train_candidate`; the
``trained_model`` asset wraps that and shows the result.
"""

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import onnxruntime as ort

from astro_assets.model.baselines import GbdtParams, fit_gbdt, predict_gbdt, weighted_mse
from astro_assets.model.datasets import TrainingSet, TrainingWindow, features_array
from astro_assets.model.evaluation import evaluate, gate, keyword_squared_errors, truth_errors
from astro_assets.model.network import TrainingParams, ValuePerClickModel, predict, train
from astro_assets.model.registry import ANALYST, ModelMismatchError, published_policy, read_model
from astro_assets.storage import DataLayout

#: The policies the platform can publish: as ``model.onnx`` the candidate, the champion (kept) and the
#: trailing mean (``baselines.TrailingMeanModel``); the careful analyst as its table of ad-group priors
#: (``core.analyst_rule``, joined per shard by ``daily_predictions``). XGBoost is compared but not
#: shipped: its trees would need a converter to ONNX (onnxmltools or hummingbird, new dependencies for a
#: baseline); when it is best, the platform publishes the best policy it can ship and says so.
SHIPPABLE = ("model", "champion", "trailing_mean", "analyst")


def shippable(best: str, totals: dict[str, float]) -> tuple[str, str]:
    """What the platform publishes when the gate says ``best``: ``best`` itself if it can ship it, else
    the shippable policy with the best total score (``totals``), and why (appended to the reason)."""
    if best in SHIPPABLE:
        return best, ""
    candidates = {name: total for name, total in totals.items() if name in SHIPPABLE}
    chosen = max(candidates, key=candidates.get)
    return chosen, f"; {best} cannot be published by the platform, so it publishes {chosen}"


def onnx_predictor(model_bytes: bytes) -> Callable[[np.ndarray], np.ndarray]:
    """Predictions of an ONNX model (the champion: the published ``model.onnx``) on [N, T, F] features."""
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict_onnx(features: np.ndarray) -> np.ndarray:
        parts = [
            session.run(None, {name: np.asarray(features[i : i + 65_536], dtype=np.float32)})[0]
            for i in range(0, len(features), 65_536)
        ]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)

    return predict_onnx


def published_champion(layout: DataLayout) -> Callable[[np.ndarray], np.ndarray] | None:
    """The champion the gate compares with: the published ``model.onnx`` (None when there is none, or
    when it cannot score today's features, or when the published policy is the careful analyst: the
    analyst is a baseline of every gate, recomputed on the latest window, and ``model.onnx`` is then
    not what production bids with)."""
    if not layout.onnx_model().exists() or published_policy(layout)["policy"] == ANALYST:
        return None
    try:
        model_bytes, _ = read_model(layout)
    except ModelMismatchError:
        return None
    return onnx_predictor(model_bytes)


#: The GRU configurations tried on validation days (as many as ``baselines.GBDT_GRID`` gets).
NETWORK_GRID: tuple[TrainingParams, ...] = (
    TrainingParams(epochs=6),
    TrainingParams(epochs=12),
    TrainingParams(epochs=12, hidden_size=16),
)


def tune_network(
    data: TrainingSet,
    validation: TrainingSet,
    grid: tuple[TrainingParams, ...] = NETWORK_GRID,
    log: Callable[[str], None] = print,
) -> tuple[ValuePerClickModel, TrainingParams, dict[str, float]]:
    """Each configuration of ``grid`` trained on ``data``; the one with the lowest click-weighted MSE
    on ``validation`` (never on the days a backtest reports), its parameters and every score."""
    best = None
    scores = {}
    for params in grid:
        model, _ = train(data, params, log=lambda _: None)
        score = weighted_mse(predict(model, validation.features), validation)
        scores[f"epochs{params.epochs}_hidden{params.hidden_size}_lr{params.learning_rate}"] = score
        log(f"network {params}: validation click-weighted MSE {score:.4f}")
        if best is None or score < best[0]:
            best = (score, model, params)
    return best[1], best[2], scores


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a training run is configured by (the ``trained_model`` run config converts to it)."""

    #: The window (``TrainingWindow.ending``): the ``training_days + holdout_days`` feature days before
    #: the end; the model trains on the first ``training_days``.
    training_days: int = 7
    #: The window's last days, held out for the gate: several days, so one odd day cannot decide. They
    #: come on top of the training days (at 100k keywords, taking them out of 7 training days cost the
    #: model 0.6 % in click-weighted MSE and 1.5 % in MAE against the truth; on top, on the day the model
    #: bids on, it is 0.1 % / 1.0 % behind a 1-day gate, about one seed's spread: README "Training at scale").
    holdout_days: int = 3
    network: TrainingParams = field(default_factory=TrainingParams)
    gbdt: GbdtParams = field(default_factory=GbdtParams)
    #: The model is promoted to onnx_model only if it beats the champion (the published model) and the
    #: best baseline on the held-out days (all ``holdout_days``) by more than promotion_margin × their
    #: click-weighted squared error, at the 5th percentile of a paired bootstrap over keywords
    #: (``evaluation.gate``).
    promotion_margin: float = 0.02


@dataclass
class TrainedCandidate:
    """A trained model with its held-out comparison, its promotion decision and its record."""

    version: str
    model: ValuePerClickModel
    losses: list[float]
    metrics: dict[str, float]
    promote: bool
    reason: str
    holdout_prediction: np.ndarray  # the model's prediction on the held-out rows (with clicks)
    record: dict


def train_candidate(
    window: TrainingWindow,
    end: dt.date,
    train_set: TrainingSet,
    holdout: TrainingSet,
    plan: TrainingPlan,
    version_of: Callable[[ValuePerClickModel], str],
    scored_holdout=None,
    truth: Callable[[np.ndarray], np.ndarray] | None = None,
    log: Callable[[str], None] = print,
    champion: Callable[[np.ndarray], np.ndarray] | None = None,
    holdout_keys: np.ndarray | None = None,
    whole_day: Callable[[dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]], dict[str, float]] | None = None,
    baselines: dict[str, np.ndarray] | None = None,
) -> TrainedCandidate:
    """Fit, compare and decide. ``scored_holdout`` (every keyword of the held-out day: keyword_id,
    features, trailing_value_per_click) and ``truth`` (keyword ids -> true value per click) add the
    errors against the truth where the source knows it.

    The gate (``evaluation.gate``): on the held-out rows (several days when ``holdout`` holds several;
    ``holdout_keys`` names each row's keyword so the bootstrap resamples keywords, else rows), the
    candidate must beat ``champion`` (the published model's predictions, when there is one) and the
    best baseline (trailing mean, XGBoost, and ``baselines``: other policies' predictions on the
    held-out rows, e.g. the careful analyst's) by a real margin in click-weighted squared error."""
    log(f"training on {len(train_set):,} rows from {len(window.train_days)} days")
    gbdt_params = plan.gbdt
    # XGBoost on one thread of the second core while the GRU trains on the first (torch uses one:
    # ``network.TORCH_THREADS``); both release the GIL while they compute, and the trees are the same.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gbdt") as pool:
        fitting = pool.submit(fit_gbdt, train_set, gbdt_params, None, 1)
        model, losses = train(train_set, plan.network, log=log)
        booster = fitting.result()
    log(f"gbdt fitted on {len(train_set):,} rows")
    held_out = {
        "model": predict(model, holdout.features),
        "trailing_mean": holdout.trailing_value_per_click,
        "gbdt": predict_gbdt(booster, holdout.features),
    }
    if champion is not None:
        held_out["champion"] = np.asarray(champion(holdout.features), dtype=np.float64)
    for name, values in (baselines or {}).items():
        held_out[name] = np.asarray(values, dtype=np.float64)
    metrics = evaluate(held_out, holdout)
    if truth is not None and scored_holdout is not None:
        # Every keyword scored on the held-out day, against what its next click is really worth.
        features = features_array(scored_holdout)
        metrics |= truth_errors(
            {
                "model": predict(model, features),
                "trailing_mean": scored_holdout.column("trailing_value_per_click").to_numpy(),
                "gbdt": predict_gbdt(booster, features),
            },
            truth(scored_holdout.column("keyword_id").to_numpy()),
        )
    if whole_day is not None:
        # The reported figures over every keyword of the held-out day (``model.heldout``: predictors
        # as (features, trailing value per click) -> prediction); the gate keeps ``holdout``'s rows.
        predictors = {
            "model": lambda x, _: predict(model, x),
            "trailing_mean": lambda _, trailing: trailing,
            "gbdt": lambda x, _: predict_gbdt(booster, x),
        }
        if champion is not None:
            predictors["champion"] = lambda x, _: champion(x)
        metrics |= whole_day(predictors)
    decision = gate(
        {name: keyword_squared_errors(values, holdout) for name, values in held_out.items()},
        candidate="model",
        champion="champion" if champion is not None else None,
        baselines=("trailing_mean", "gbdt", *(baselines or {})),
        groups=holdout_keys,
        margin=plan.promotion_margin,
    )
    promote, reason = decision.promote, decision.reason
    totals = {name: float(keyword_squared_errors(values, holdout).sum()) for name, values in held_out.items()}
    publish, why = shippable(decision.publish, totals)
    reason += why
    version = version_of(model)
    record = {
        "version": version,
        "end_date": end.isoformat(),
        "train_days": [d.isoformat() for d in window.train_days],
        "holdout_day": window.holdout_day.isoformat(),
        "gate_days": [d.isoformat() for d in window.held_out_days],
        "gate_keywords": len(holdout) if holdout_keys is None else int(len(np.unique(holdout_keys))),
        "training_rows": len(train_set),
        "holdout_rows": len(holdout),
        "epochs": plan.network.epochs,
        "loss_per_epoch": losses,
        "params": asdict(plan.network),
        "promote": promote,
        "promotion_reason": reason,
        "publish": publish,
        "best_policy": decision.publish,
        "best_baseline": decision.best_baseline,
        "gate": decision.comparisons,
        **metrics,
    }
    return TrainedCandidate(version, model, losses, metrics, promote, reason, held_out["model"], record)
