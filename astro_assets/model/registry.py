"""The published model: ``onnx_model/model.onnx`` (every version kept under ``versions/``), read and
checked against today's features before anything is scored. Imports no torch: the predict path uses it.
"""

import json

import onnx

from astro_assets.core.features import FEATURE_NAMES, LAGS
from astro_assets.storage import DataLayout, MissingPartitionError, publishing_file


class ModelMismatchError(ValueError):
    """The ONNX model cannot score these features (corrupt file, other features or lags)."""


def read_model(layout: DataLayout) -> tuple[bytes, dict[str, str]]:
    """The current ONNX model's bytes and its description, refusing a file that cannot score
    today's features."""
    path = layout.onnx_model()
    if not path.exists():
        raise MissingPartitionError(f"no ONNX model at {path}: materialize trained_model and onnx_model first")
    model_bytes = path.read_bytes()
    try:
        proto = onnx.load_from_string(model_bytes)
        onnx.checker.check_model(proto)
    except Exception as error:  # onnx raises several types for a damaged file
        raise ModelMismatchError(f"{path} is not a valid ONNX model ({len(model_bytes)} bytes): {error}") from error
    description = {p.key: p.value for p in proto.metadata_props}
    features = json.loads(description.get("astro.features", "[]"))
    lags = int(description.get("astro.lags", "0"))
    if features != list(FEATURE_NAMES) or lags != LAGS:
        extra = sorted(set(features) - set(FEATURE_NAMES))
        absent = sorted(set(FEATURE_NAMES) - set(features))
        raise ModelMismatchError(
            f"{path} expects {lags} lags of {len(features)} features, preprocessed_features has {LAGS} lags "
            f"of {len(FEATURE_NAMES)}; features only in the model: {extra}, missing from it: {absent}"
        )
    return model_bytes, description


def publish_onnx(layout: DataLayout, version: str, onnx_bytes: bytes) -> None:
    """Keep every version under ``onnx_model/versions/`` and make ``model.onnx`` the current one."""
    with publishing_file(layout.onnx_version(version)) as tmp:
        tmp.write_bytes(onnx_bytes)
    with publishing_file(layout.onnx_model()) as tmp:
        tmp.write_bytes(onnx_bytes)


def published_version(layout: DataLayout) -> str | None:
    """The model version inside the published ``model.onnx``, if there is one."""
    path = layout.onnx_model()
    if not path.exists():
        return None
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return props.get("astro.model_version")
