"""Stage 4, ``onnx_model``: the trained model as a self-describing ONNX file.

The graph takes the null-replaced lagged features ``[batch, T, F]`` and applies the training
window's scaler itself; ``metadata_props`` carry the feature order, T, the scaler parameters and the
model version, so scoring needs this file and nothing else.

Only a model that earned promotion (``training.promotion``: it beat the trailing mean on the held-out
day by the stated margin) replaces ``model.onnx``; otherwise the previous model stays in place and the
materialisation says why.
"""

import hashlib
import io
import json
import time
import warnings

import dagster as dg
import numpy as np
import onnx
import onnxruntime as ort
import torch

from astro_assets.features import FEATURE_NAMES, LAGS, N_FEATURES
from astro_assets.resources import AstroStorage
from astro_assets.storage import DataLayout, publishing_file
from astro_assets.training import ValuePerClickModel, load_trained_model

OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "value_per_click"
PARITY_TOLERANCE = 1e-4


def export_onnx(model: ValuePerClickModel, version: str, record: dict) -> bytes:
    """Serialise ``model`` to ONNX (opset ``OPSET``, dynamic batch) with its description attached."""
    example = torch.zeros(2, LAGS, N_FEATURES)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The GRU's initial state is zeros inside the graph, so any batch size is valid.
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    description = {
        "astro.model_version": version,
        "astro.lags": str(LAGS),
        "astro.features": json.dumps(list(FEATURE_NAMES)),
        "astro.scaler": json.dumps(
            {"kind": "standard", "mean": model.mean.tolist(), "std": model.std.tolist(),
             "fitted_on": record.get("train_days", [])}
        ),
        "astro.target": "next day's conversion value per click (account currency)",
        "astro.trained_end_date": record.get("end_date", ""),
    }
    onnx.helper.set_model_props(proto, description)
    proto.producer_name = "astro_assets"
    proto.model_version = int(version.split("-")[0])
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def parity(model: ValuePerClickModel, onnx_bytes: bytes, features: np.ndarray) -> float:
    """Largest absolute difference between torch and onnxruntime on ``features``."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {INPUT_NAME: features.astype(np.float32)})[0]
    with torch.no_grad():
        torch_out = model(torch.tensor(features)).numpy()
    return float(np.max(np.abs(onnx_out - torch_out))) if len(features) else 0.0


def publish_onnx(layout: DataLayout, version: str, onnx_bytes: bytes) -> None:
    """Keep every version under ``onnx_model/versions/`` and make ``model.onnx`` the current one."""
    with publishing_file(layout.onnx_dir() / "versions" / f"{version}.onnx") as tmp:
        tmp.write_bytes(onnx_bytes)
    with publishing_file(layout.onnx_model()) as tmp:
        tmp.write_bytes(onnx_bytes)


@dg.asset(
    group_name="model",
    kinds={"onnx"},
    deps=["trained_model"],
    description="The trained model in ONNX with its scaler and feature order; parity-checked against torch.",
)
def onnx_model(context: dg.AssetExecutionContext, storage: AstroStorage) -> dg.MaterializeResult:
    layout = storage.layout
    started = time.perf_counter()
    version, model, record, holdout = load_trained_model(layout)
    if not record.get("promote", True):
        return keep_previous_model(context, layout, version, record.get("promotion_reason", ""))
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


def published_version(layout: DataLayout) -> str | None:
    """The model version inside the published ``model.onnx``, if there is one."""
    path = layout.onnx_model()
    if not path.exists():
        return None
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return props.get("astro.model_version")


def keep_previous_model(context: dg.AssetExecutionContext, layout: DataLayout, candidate: str,
                        reason: str) -> dg.MaterializeResult:
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
