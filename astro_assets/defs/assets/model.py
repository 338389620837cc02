"""``trained_model`` and ``onnx_model``: train the GRU on the latest window (``stages.training``) and
publish it as ONNX when it earned promotion (``model.export``, ``model.registry``)."""

import datetime as dt
import hashlib
import time

import dagster as dg
from dagster_pyspark import PySparkResource

from astro_assets.core.calendar import ONE_DAY
from astro_assets.defs.plots import line_plot_markdown, scatter_plot_markdown
from astro_assets.defs.resources import AstroStorage, KeywordSource
from astro_assets.model.baselines import GbdtParams
from astro_assets.model.checkpoint import load_trained_model
from astro_assets.model.evaluation import comparison_table
from astro_assets.model.export import OPSET, PARITY_TOLERANCE, export_onnx, parity
from astro_assets.model.network import TrainingParams
from astro_assets.model.registry import publish_onnx, published_version
from astro_assets.model.training import TrainingPlan
from astro_assets.stages.training import resolve_end_date, train_on_window
from astro_assets.storage import ONNX_MODEL, PREPROCESSED_FEATURES, RAW_FEATURES, TRAINED_MODEL, DataLayout


class TrainingConfig(dg.Config):
    """Launch-time settings of a training run (editable in the launchpad); defaults are the plan's."""

    end_date: str = ""  # last day whose raw report is a target; default: newest raw_features day
    training_days: int = TrainingPlan.training_days
    epochs: int = TrainingParams.epochs
    hidden_size: int = TrainingParams.hidden_size
    batch_size: int = TrainingParams.batch_size
    learning_rate: float = TrainingParams.learning_rate
    seed: int = TrainingParams.seed
    #: The model is promoted to onnx_model only if its click-weighted MSE on the held-out day is at
    #: most (1 - promotion_margin) x the trailing mean's.
    promotion_margin: float = TrainingPlan.promotion_margin
    gbdt_rounds: int = GbdtParams.rounds

    def to_plan(self) -> TrainingPlan:
        return TrainingPlan(
            training_days=self.training_days,
            network=TrainingParams(self.epochs, self.hidden_size, self.batch_size, self.learning_rate, self.seed),
            gbdt=GbdtParams(rounds=self.gbdt_rounds, seed=self.seed),
            promotion_margin=self.promotion_margin,
        )

    def end(self) -> dt.date | None:
        return dt.date.fromisoformat(self.end_date) if self.end_date else None


@dg.asset(
    name=TRAINED_MODEL,
    group_name="model",
    kinds={"pytorch", "spark"},
    pool="spark",
    deps=[PREPROCESSED_FEATURES, RAW_FEATURES],
    description="GRU over each keyword's lagged features, predicting next day's value per click.",
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    storage: AstroStorage,
    pyspark: PySparkResource,
    keyword_source: KeywordSource,
) -> dg.MaterializeResult:
    layout = storage.layout
    end = resolve_end_date(config.end(), layout)
    plan = config.to_plan()
    started = time.perf_counter()
    window, holdout, candidate = train_on_window(
        pyspark.spark_session,
        layout,
        end,
        plan,
        truth=keyword_source.expected_value_per_click(end),
        log=context.log.info,
    )
    (context.log.info if candidate.promote else context.log.warning)(
        f"promotion: {'yes' if candidate.promote else 'no'}, {candidate.reason}"
    )
    return dg.MaterializeResult(
        metadata={
            "model_version": candidate.version,
            "training_rows": dg.MetadataValue.int(candidate.record["training_rows"]),
            "holdout_day": window.holdout_day.isoformat(),
            "holdout_rows": dg.MetadataValue.int(len(holdout)),
            "epochs": dg.MetadataValue.int(plan.network.epochs),
            "loss_per_epoch": dg.MetadataValue.json([round(v, 5) for v in candidate.losses]),
            **{k: dg.MetadataValue.float(round(v, 5)) for k, v in candidate.metrics.items()},
            "promote": dg.MetadataValue.bool(candidate.promote),
            "promotion_reason": candidate.reason,
            "comparison": dg.MetadataValue.md(comparison_table(candidate.metrics)),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
            "loss_curve": dg.MetadataValue.md(
                line_plot_markdown({"training loss": candidate.losses}, "epoch", "click-weighted MSE", "Training loss")
            ),
            "predicted_vs_actual": dg.MetadataValue.md(
                scatter_plot_markdown(
                    holdout.target,
                    candidate.holdout_prediction,
                    holdout.clicks,
                    "observed value per click",
                    "predicted",
                    f"Held-out day {window.holdout_day + ONE_DAY}",
                )
            ),
        }
    )


@dg.asset(
    name=ONNX_MODEL,
    group_name="model",
    kinds={"onnx"},
    deps=[TRAINED_MODEL],
    description="The trained model in ONNX with its scaler and feature order; parity-checked against torch.",
)
def onnx_model(context: dg.AssetExecutionContext, storage: AstroStorage) -> dg.MaterializeResult:
    layout = storage.layout
    started = time.perf_counter()
    version, model, record, holdout = load_trained_model(layout)
    if record.get("promote") is not True:  # a missing decision never publishes
        return keep_previous_model(
            context, layout, version, record.get("promotion_reason", "the record has no promotion decision")
        )
    onnx_bytes = export_onnx(model, version, record)
    difference = parity(model, onnx_bytes, holdout)
    if difference > PARITY_TOLERANCE:
        raise dg.Failure(
            f"ONNX export of {version} differs from torch by {difference:.3g} on {len(holdout)} held-out rows "
            f"(tolerance {PARITY_TOLERANCE}); model.onnx was left unchanged.",
            metadata={"max_abs_difference": difference},
        )
    publish_onnx(layout, version, onnx_bytes)
    context.log.info(f"onnx_model {version}: parity {difference:.2e} on {len(holdout)} rows")
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "promoted": dg.MetadataValue.bool(True),
            "promotion_reason": record.get("promotion_reason", ""),
            "opset": dg.MetadataValue.int(OPSET),
            "parity_max_abs_difference": dg.MetadataValue.float(difference),
            "parity_rows": dg.MetadataValue.int(len(holdout)),
            "bytes": dg.MetadataValue.int(len(onnx_bytes)),
            "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "path": dg.MetadataValue.path(str(layout.onnx_model())),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )


def keep_previous_model(
    context: dg.AssetExecutionContext, layout: DataLayout, candidate: str, reason: str
) -> dg.MaterializeResult:
    """The trained model was not promoted: leave ``model.onnx`` as it is and say why."""
    kept = published_version(layout)
    if kept is None:
        raise dg.Failure(
            f"trained model {candidate} was not promoted ({reason}) and there is no earlier model at "
            f"{layout.onnx_model()} to keep: no predictions can be made until a model beats the trailing mean."
        )
    context.log.warning(f"onnx_model: kept {kept}; trained model {candidate} not promoted: {reason}")
    return dg.MaterializeResult(
        metadata={
            "model_version": kept,
            "promoted": dg.MetadataValue.bool(False),
            "candidate_version": candidate,
            "promotion_reason": reason,
            "path": dg.MetadataValue.path(str(layout.onnx_model())),
        }
    )
