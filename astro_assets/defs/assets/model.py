"""``trained_model`` and ``onnx_model``: train the GRU on the latest window (``stages.training``) and
publish what the gate chose (``model.export``, ``model.registry``): the GRU as ONNX when it earned
promotion, else the best baseline the platform can ship (the trailing mean as ONNX, the careful
analyst as its table), or nothing (the champion stays)."""

import datetime as dt
import hashlib
import json
import resource
import time

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from astro_assets.core.analyst_rule import policy_description, read_policy
from astro_assets.core.calendar import ONE_DAY
from astro_assets.defs.plots import line_plot_markdown, scatter_plot_markdown
from astro_assets.defs.resources import AstroStorage, KeywordSource
from astro_assets.model.baselines import GbdtParams, TrailingMeanModel, trailing_mean_version
from astro_assets.model.checkpoint import load_trained_model
from astro_assets.model.evaluation import comparison_table
from astro_assets.model.export import OPSET, PARITY_TOLERANCE, export_onnx, parity
from astro_assets.model.network import TrainingParams
from astro_assets.model.registry import ANALYST, publish_analyst, publish_onnx, published_policy
from astro_assets.model.training import TrainingPlan
from astro_assets.settings import DEFAULT_TRAINING_ROWS
from astro_assets.stages.training import resolve_end_date, train_on_window
from astro_assets.storage import ONNX_MODEL, PREPROCESSED_FEATURES, RAW_FEATURES, TRAINED_MODEL, DataLayout


class TrainingConfig(dg.Config):
    """Launch-time settings of a training run (editable in the launchpad); defaults are the plan's."""

    end_date: str = ""  # last day whose raw report is a target; default: newest raw_features day
    training_days: int = TrainingPlan.training_days
    #: After the training days, the days held out for the gate (several: ``TrainingPlan.holdout_days``).
    holdout_days: int = TrainingPlan.holdout_days
    epochs: int = TrainingParams.epochs
    hidden_size: int = TrainingParams.hidden_size
    batch_size: int = TrainingParams.batch_size
    learning_rate: float = TrainingParams.learning_rate
    seed: int = TrainingParams.seed
    #: The model is promoted to onnx_model only if it beats the champion and the best baseline by a
    #: real margin (``evaluation.gate``: paired bootstrap over keywords, this share of their error).
    promotion_margin: float = TrainingPlan.promotion_margin
    gbdt_rounds: int = GbdtParams.rounds
    #: Rows of the training sample (``model.sampling``); 0: the platform's (``ASTRO_TRAINING_ROWS``).
    training_rows: int = 0

    def to_plan(self) -> TrainingPlan:
        return TrainingPlan(
            training_days=self.training_days,
            holdout_days=self.holdout_days,
            network=TrainingParams(self.epochs, self.hidden_size, self.batch_size, self.learning_rate, self.seed),
            gbdt=GbdtParams(rounds=self.gbdt_rounds, seed=self.seed),
            promotion_margin=self.promotion_margin,
        )

    def end(self) -> dt.date | None:
        return dt.date.fromisoformat(self.end_date) if self.end_date else None


def trained_model_asset(training_rows: int = DEFAULT_TRAINING_ROWS) -> dg.AssetsDefinition:
    """``trained_model``, sampling ``training_rows`` rows of the window (``ASTRO_TRAINING_ROWS``) unless
    the run's config says otherwise."""

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
        pyspark: LazyPySparkResource,
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
            config.training_rows or training_rows,
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
                "gate_days": ", ".join(d.isoformat() for d in window.held_out_days),
                "holdout_rows": dg.MetadataValue.int(candidate.record["holdout_rows"]),
                "holdout_gate_rows": dg.MetadataValue.int(len(holdout)),
                "training_sample": dg.MetadataValue.json(candidate.record["training_sample"]),
                # The driver process's own peak (resident set); README "Training at scale" has the
                # whole run's (driver + JVM + workers), measured.
                "driver_peak_rss_mib": dg.MetadataValue.int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024),
                "epochs": dg.MetadataValue.int(plan.network.epochs),
                "loss_per_epoch": dg.MetadataValue.json([round(v, 5) for v in candidate.losses]),
                **{k: dg.MetadataValue.float(round(float(v), 5)) for k, v in candidate.metrics.items()},
                "promote": dg.MetadataValue.bool(candidate.promote),
                "promotion_reason": candidate.reason,
                "publish": candidate.record.get("publish", ""),
                "best_policy": candidate.record.get("best_policy", ""),
                "gate": dg.MetadataValue.json(candidate.record.get("gate", {})),
                "comparison": dg.MetadataValue.md(comparison_table(candidate.metrics)),
                "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 2)),
                **budget_curve_metadata(layout),
                "loss_curve": dg.MetadataValue.md(
                    line_plot_markdown(
                        {"training loss": candidate.losses}, "epoch", "click-weighted MSE", "Training loss"
                    )
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

    return trained_model


trained_model = trained_model_asset()


@dg.asset(
    name=ONNX_MODEL,
    group_name="model",
    kinds={"onnx"},
    deps=[TRAINED_MODEL],
    description="The published policy the gate chose: the trained model (or the trailing mean) in ONNX with its "
    "scaler and feature order, parity-checked against torch, or the careful analyst's table of ad-group priors.",
)
def onnx_model(context: dg.AssetExecutionContext, storage: AstroStorage) -> dg.MaterializeResult:
    layout = storage.layout
    started = time.perf_counter()
    version, model, record, holdout = load_trained_model(layout)
    published_policy = "model"
    if record.get("promote") is not True and record.get("publish") == ANALYST:
        # The gate found the careful analyst best: publish its table of ad-group priors (computed by the
        # training run); daily_predictions joins it per shard (core.analyst_rule).
        return publish_analyst_table(context, layout, version, record, started)
    if record.get("promote") is not True and record.get("publish") == "trailing_mean":
        # The gate found the trailing mean the best policy it can ship: publish it (as a model of its
        # own, computed from the features) and say so (README "Model selection").
        published_policy = "trailing_mean"
        model = TrailingMeanModel().eval()
        version = trailing_mean_version(dt.date.fromisoformat(record["end_date"]))
        context.log.warning(
            f"onnx_model: publishing the trailing-mean baseline {version}: {record['promotion_reason']}"
        )
    elif record.get("promote") is not True and not (
        record.get("promote") is False and record.get("publish") == "model"
    ):
        # The champion stays (or the gate made no decision: a missing decision never publishes). The gate
        # may also choose the candidate without promoting it: the best policy on validation could not be
        # shipped (XGBoost, the analyst) and the candidate is the best one that can.
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
    publish_onnx(layout, version, onnx_bytes, published_policy)
    context.log.info(f"onnx_model {version}: parity {difference:.2e} on {len(holdout)} rows")
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "promoted": dg.MetadataValue.bool(record.get("promote") is True),
            "published_policy": published_policy,
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


def budget_curve_metadata(layout: DataLayout) -> dict[str, dg.MetadataValue]:
    """The measured training budget curve (``astro_assets.cli.training_budget``), when there is one:
    quality on the held-out day relative to the largest budget, with each budget's minutes."""
    path = layout.training_budget_curve()
    if not path.exists():
        return {}
    curve = json.loads(path.read_text())
    points = curve["points"]
    labels = [f"{p['budget']:,}" for p in points]
    series = {
        name: [p[key] / points[-1][key] for p in points]
        for name, key in (("click-weighted MSE", "model_click_weighted_mse"), ("MAE vs truth", "model_mae_vs_expected"))
        if all(key in p for p in points)
    }
    return {
        "budget_curve": dg.MetadataValue.md(
            line_plot_markdown(
                series,
                "training rows",
                "relative to the largest budget",
                f"Budget curve at {curve['keywords']:,} keywords",
                x=labels,
            )
        ),
        "budget_curve_points": dg.MetadataValue.json(points),
    }


def publish_analyst_table(
    context: dg.AssetExecutionContext, layout: DataLayout, candidate: str, record: dict, started: float
) -> dg.MaterializeResult:
    """Publish the careful analyst's table of training run ``candidate`` as the published policy."""
    source = layout.trained_analyst_policy(candidate)
    if "analyst_version" not in record or not source.exists():
        raise dg.Failure(
            f"the gate picked the analyst but training run {candidate} saved no analyst table at {source}; "
            "the published policy was left unchanged."
        )
    version = record["analyst_version"]
    table_bytes = source.read_bytes()
    table = read_policy(table_bytes)
    publish_analyst(layout, version, table_bytes)
    context.log.warning(f"onnx_model: publishing the careful analyst {version}: {record['promotion_reason']}")
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "promoted": dg.MetadataValue.bool(False),
            "published_policy": ANALYST,
            "candidate_version": candidate,
            "promotion_reason": record.get("promotion_reason", ""),
            "analyst_ad_groups": dg.MetadataValue.int(table.num_rows),
            "analyst_prior_clicks": dg.MetadataValue.float(float(policy_description(table)["prior_clicks"])),
            "bytes": dg.MetadataValue.int(len(table_bytes)),
            "sha256": hashlib.sha256(table_bytes).hexdigest(),
            "path": dg.MetadataValue.path(str(layout.analyst_policy(version))),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )


def keep_previous_model(
    context: dg.AssetExecutionContext, layout: DataLayout, candidate: str, reason: str
) -> dg.MaterializeResult:
    """The trained model was not promoted: leave the published policy (``model.onnx`` or the analyst's
    table) as it is and say why."""
    current = published_policy(layout)
    kept = current["version"] or None
    if kept is None:
        raise dg.Failure(
            f"trained model {candidate} was not promoted ({reason}) and there is no earlier model at "
            f"{layout.onnx_model()} to keep: no predictions can be made until a policy the platform can ship "
            "wins the gate."
        )
    context.log.warning(f"onnx_model: kept {kept}; trained model {candidate} not promoted: {reason}")
    return dg.MaterializeResult(
        metadata={
            "model_version": kept,
            "promoted": dg.MetadataValue.bool(False),
            "published_policy": current["policy"],
            "candidate_version": candidate,
            "promotion_reason": reason,
            "path": dg.MetadataValue.path(str(layout.onnx_model())),
        }
    )
