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


def publish_onnx(layout: DataLayout, version: str, onnx_bytes: bytes, policy: str = "model") -> None:
    """Keep every version under ``onnx_model/versions/``, make ``model.onnx`` the current one and the
    published policy (``policy``: which policy the ONNX model is, ``model`` or ``trailing_mean``)."""
    with publishing_file(layout.onnx_version(version)) as tmp:
        tmp.write_bytes(onnx_bytes)
    with publishing_file(layout.onnx_model()) as tmp:
        tmp.write_bytes(onnx_bytes)
    set_published_policy(layout, policy, version)


def published_version(layout: DataLayout) -> str | None:
    """The model version inside the published ``model.onnx``, if there is one."""
    path = layout.onnx_model()
    if not path.exists():
        return None
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return props.get("astro.model_version")


ANALYST = "analyst"
#: How a published version names its policy (``<end YYYYMMDD>-analyst``, ``<end>-trailing-mean``; the
#: GRU's versions end in a hash of its weights), so that what a day's predictions were scored with says
#: which policy bid (``policy_of_version``).
ANALYST_SUFFIX, TRAILING_MEAN_SUFFIX = "-analyst", "-trailing-mean"


def analyst_version(end) -> str:
    """The version of the careful analyst computed by the training run ending at ``end``."""
    return f"{end.strftime('%Y%m%d')}{ANALYST_SUFFIX}"


def policy_of_version(version: str) -> str:
    """The policy a published version is: ``analyst``, ``trailing_mean`` or ``model``."""
    if version.endswith(ANALYST_SUFFIX):
        return ANALYST
    return "trailing_mean" if version.endswith(TRAILING_MEAN_SUFFIX) else "model"


def published_policy(layout: DataLayout) -> dict[str, str]:
    """The published policy (``{"policy", "version"}``): ``analyst`` means the daily predictions come
    from the careful analyst's table (``read_analyst``), anything else from ``model.onnx``."""
    path = layout.published_policy()
    if not path.exists():
        return {"policy": "model", "version": published_version(layout) or ""}
    return json.loads(path.read_text())


def set_published_policy(layout: DataLayout, policy: str, version: str) -> None:
    """Point the daily predictions at ``policy`` (after its file was published)."""
    with publishing_file(layout.published_policy()) as tmp:
        tmp.write_text(json.dumps({"policy": policy, "version": version}))


def publish_analyst(layout: DataLayout, version: str, table_bytes: bytes) -> None:
    """Publish a careful-analyst table (``core.analyst_rule``) and make it the published policy."""
    with publishing_file(layout.analyst_policy(version)) as tmp:
        tmp.write_bytes(table_bytes)
    set_published_policy(layout, ANALYST, version)


def read_analyst(layout: DataLayout, version: str) -> bytes:
    """The bytes of published analyst table ``version``."""
    path = layout.analyst_policy(version)
    if not path.exists():
        raise MissingPartitionError(f"the published policy is the analyst {version} but {path} does not exist")
    return path.read_bytes()
