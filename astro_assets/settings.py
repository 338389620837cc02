"""Everything that differs between a laptop and a cluster, read from environment variables.

One function reads and validates each variable so that nonsense fails at load time with a message
naming the variable, instead of deep inside a Spark job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

DEFAULT_KEYWORDS = 100_000
DEFAULT_START_DATE = "2026-01-01"

_MASTER = re.compile(r"^(local(\[(\*|\d+)(,\d+)?\])?|spark://[\w.\-]+:\d+(,[\w.\-]+:\d+)*|yarn|k8s://\S+|mesos://\S+)$")
_MEMORY = re.compile(r"^\d+[kmgt]?$", re.IGNORECASE)


class SettingsError(ValueError):
    """An environment variable holds a value Astro cannot use."""


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be a positive whole number")
    return value


def _memory(name: str, default: str) -> str:
    raw = os.environ.get(name) or default
    if not _MEMORY.match(raw):
        raise SettingsError(f"{name}={raw!r} is not a Spark memory size such as 4g or 512m")
    return raw


def _existing_dir(name: str) -> str | None:
    raw = os.environ.get(name)
    if raw and not os.path.isdir(raw):
        raise SettingsError(f"{name}={raw!r} is not a folder")
    return raw or None


@dataclass(frozen=True)
class Settings:
    data_dir: str
    keywords: int
    seed: int
    start_date: str
    spark_master: str
    spark_driver_memory: str
    spark_shuffle_partitions: int
    arrow_batch_rows: int
    #: A folder of Google Ads keyword reports to read raw_features from instead of the synthetic account.
    reports_dir: str | None = None


def spark_master_from_env() -> str:
    # local[*,4]: all cores, and a failed task (e.g. a killed Python worker) is retried up to 4 times,
    # as spark.task.maxFailures does on a cluster (plain local[*] gives up at the first failure).
    master = os.environ.get("ASTRO_SPARK_MASTER") or "local[*,4]"
    if not _MASTER.match(master):
        raise SettingsError(
            f"ASTRO_SPARK_MASTER={master!r} is not a Spark master URL "
            "(local[*], local[N], local[N,retries], spark://host:port, yarn, k8s://https://host:port)"
        )
    return master


def load_settings() -> Settings:
    start = os.environ.get("ASTRO_START_DATE") or DEFAULT_START_DATE
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", start):
        raise SettingsError(f"ASTRO_START_DATE={start!r} is not a date YYYY-MM-DD")
    return Settings(
        data_dir=os.environ.get("ASTRO_DATA_DIR") or "data",
        keywords=_positive_int("ASTRO_KEYWORDS", DEFAULT_KEYWORDS),
        seed=_positive_int("ASTRO_SEED", 7),
        start_date=start,
        spark_master=spark_master_from_env(),
        spark_driver_memory=_memory("ASTRO_SPARK_DRIVER_MEMORY", "6g"),
        spark_shuffle_partitions=_positive_int("ASTRO_SPARK_SHUFFLE_PARTITIONS", 8),
        arrow_batch_rows=_positive_int("ASTRO_ARROW_BATCH_ROWS", 10_000),
        reports_dir=_existing_dir("ASTRO_REPORTS_DIR"),
    )
