"""Trained model versions on disk: ``trained_model/<version>/`` (weights, record, a held-out batch)
and the ``latest.json`` pointer."""

import datetime as dt
import hashlib
import json

import numpy as np
import torch

from astro_assets.core.features import N_FEATURES
from astro_assets.model.datasets import TrainingSet
from astro_assets.model.network import TrainingParams, ValuePerClickModel
from astro_assets.storage import DataLayout, MissingPartitionError, publishing_dir, publishing_file

#: Rows of the held-out day kept with a trained model, for the ONNX parity check.
HOLDOUT_BATCH_ROWS = 2048


def model_version(model: ValuePerClickModel, end: dt.date) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.numpy().tobytes())
    return f"{end.strftime('%Y%m%d')}-{digest.hexdigest()[:10]}"


def save_trained_model(
    layout: DataLayout,
    version: str,
    model: ValuePerClickModel,
    params: TrainingParams,
    holdout: TrainingSet,
    record: dict,
) -> None:
    """Publish ``trained_model/<version>/`` (weights, description, a held-out batch) and point
    ``trained_model/latest.json`` at it."""
    with publishing_dir(layout.trained_model_version_dir(version)) as staging:
        staging.mkdir(parents=True)
        torch.save(
            {"state_dict": model.state_dict(), "hidden_size": params.hidden_size, "n_features": N_FEATURES},
            staging / "model.pt",
        )
        rows = min(HOLDOUT_BATCH_ROWS, len(holdout))
        np.save(staging / "holdout_features.npy", holdout.features[:rows])
        (staging / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    with publishing_file(layout.latest_trained_model()) as tmp:
        tmp.write_text(json.dumps({"version": version}))


def load_trained_model(
    layout: DataLayout, version: str | None = None
) -> tuple[str, ValuePerClickModel, dict, np.ndarray]:
    """The published model (the latest unless ``version`` is given), its record and held-out batch."""
    if version is None:
        pointer = layout.latest_trained_model()
        if not pointer.exists():
            raise MissingPartitionError(f"no trained model at {pointer.parent}: materialize trained_model first")
        version = json.loads(pointer.read_text())["version"]
    folder = layout.trained_model_version_dir(version)
    saved = torch.load(folder / "model.pt", weights_only=True)
    state = saved["state_dict"]
    model = ValuePerClickModel(saved["n_features"], saved["hidden_size"], state["mean"].numpy(), state["std"].numpy())
    model.load_state_dict(state)
    model.eval()
    record = json.loads((folder / "training.json").read_text())
    return version, model, record, np.load(folder / "holdout_features.npy")
