"""The trained model as a self-describing ONNX file, and its parity with torch.

The graph takes the null-replaced lagged features ``[batch, T, F]`` and applies the training
window's scaler itself; ``metadata_props`` carry the feature order, T, the scaler parameters and the
model version, so scoring needs this file and nothing else.

Only a model that earned promotion (``evaluation.promotion``) replaces ``model.onnx``
(``registry.publish_onnx``); the ``onnx_model`` asset decides.
"""

import io
import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch

from astro_assets.core.features import FEATURE_NAMES, LAGS, N_FEATURES
from astro_assets.model.network import ValuePerClickModel

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
            {
                "kind": "standard",
                "mean": model.mean.tolist(),
                "std": model.std.tolist(),
                "fitted_on": record.get("train_days", []),
            }
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
