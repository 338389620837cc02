"""The on-disk contract: where every asset lives under ``ASTRO_DATA_DIR`` and how it is published.

Imports ``core`` only (and numpy / pyarrow): the Dagster definitions, the stages, the sources and the
model all reach files through :class:`DataLayout`.
"""

from astro_assets.storage.layout import (
    BACKTEST,
    BID_FILE,
    DAILY_ASSETS,
    DAILY_PREDICTIONS,
    ONNX_MODEL,
    PREPROCESSED_FEATURES,
    RAW_FEATURES,
    TRAINED_MODEL,
    DataLayout,
    partition_date,
    shard_count,
)
from astro_assets.storage.publish import (
    MissingPartitionError,
    publish_partition,
    publishing_dir,
    publishing_file,
    recover_dir,
)

__all__ = [
    "BACKTEST",
    "BID_FILE",
    "DAILY_ASSETS",
    "DAILY_PREDICTIONS",
    "ONNX_MODEL",
    "PREPROCESSED_FEATURES",
    "RAW_FEATURES",
    "TRAINED_MODEL",
    "DataLayout",
    "MissingPartitionError",
    "partition_date",
    "publish_partition",
    "publishing_dir",
    "publishing_file",
    "recover_dir",
    "shard_count",
]
