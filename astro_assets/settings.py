"""Everything that differs between a laptop and a cluster, read from environment variables.

One function reads and validates each variable so that nonsense fails at load time with a message
naming the variable, instead of deep inside a Spark job.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_KEYWORDS = 100_000
DEFAULT_START_DATE = "2026-01-01"
#: Values of ASTRO_KEYWORD_SOURCE.
KEYWORD_SOURCES = ("synthetic", "reports", "google_ads_api")
DEFAULT_ACCOUNT_TIMEZONE = "UTC"
#: Google Ads statistics of a day settle in the hours after it ends; 06:00 in the account's time zone.
DEFAULT_DAILY_RUN_HOUR = 6
#: Rows of the training sample (``model.sampling``). Measured (README "Training at scale"): at 100,000
#: keywords (make run) the 7 training days hold ~275,000 labelled rows, kept whole. At 10M keywords
#: (2026-11-26, budgets 500k / 1M / 3M): 1M is where the click-weighted MSE flattens (+0.27 % against
#: 3M; 500k +0.70 %) and costs 8.3 min and 6.1 GiB; 3M gains 2.1 % in MAE against the truth for 13.7
#: min and 8.7 GiB, too close to the 15-minute target on a shared machine.
DEFAULT_TRAINING_ROWS = 1_000_000

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


def _switch(name: str) -> bool:
    """An on/off variable: unset, ``0``, ``off``, ``false`` or ``no`` is off; ``1``, ``on``, ``true``, ``yes`` is on."""
    raw = (os.environ.get(name) or "").strip().lower()
    if raw in ("", "0", "off", "false", "no"):
        return False
    if raw in ("1", "on", "true", "yes"):
        return True
    raise SettingsError(f"{name}={raw!r} is not on or off (1/on/true/yes, 0/off/false/no)")


def _timezone(name: str, default: str) -> str:
    """An IANA time zone name (``America/New_York``), checked against the zone database."""
    raw = os.environ.get(name) or default
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{name}={raw!r} is not an IANA time zone name such as Europe/Paris or UTC") from None
    return raw


def _hour(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d{1,2}", raw.strip()) or not 0 <= int(raw) <= 23:
        raise SettingsError(f"{name}={raw!r} is not an hour of the day, 0 to 23")
    return int(raw)


def _choice(name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    if name == "ASTRO_KEYWORD_SOURCE" and raw == "reports" and not os.environ.get("ASTRO_REPORTS_DIR"):
        raise SettingsError("ASTRO_KEYWORD_SOURCE='reports' needs ASTRO_REPORTS_DIR (the folder of reports)")
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
    #: Where raw_features comes from (``ASTRO_KEYWORD_SOURCE``): ``synthetic``, ``reports`` (ASTRO_REPORTS_DIR) or
    #: ``google_ads_api``; unset: the reports folder when ASTRO_REPORTS_DIR is set, else the synthetic account.
    keyword_source: str | None = None
    #: ``ASTRO_GOOGLE_ADS_UPLOAD=live``: bid_upload changes the account; anything else is a validate_only dry run.
    google_ads_upload_live: bool = False
    #: Rows ``trained_model`` samples from the training window (``ASTRO_TRAINING_ROWS``).
    training_rows: int = DEFAULT_TRAINING_ROWS
    #: Declarative automation (README "Operating Astro"): the automation sensor starts on.
    automation: bool = False
    #: The Google Ads account's time zone (``ASTRO_ACCOUNT_TIMEZONE``, IANA): what day a partition is, when
    #: a day is over, when the daily schedule fires. Google Ads reports days in the account's time zone.
    account_timezone: str = DEFAULT_ACCOUNT_TIMEZONE
    #: Hour after the account's midnight at which the daily schedule runs for the day just over
    #: (``ASTRO_DAILY_RUN_HOUR``): late enough for Google's statistics of that day to settle.
    daily_run_hour: int = DEFAULT_DAILY_RUN_HOUR


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
        keyword_source=_choice("ASTRO_KEYWORD_SOURCE", KEYWORD_SOURCES, None),
        google_ads_upload_live=_choice("ASTRO_GOOGLE_ADS_UPLOAD", ("validate_only", "live"), "validate_only") == "live",
        training_rows=_positive_int("ASTRO_TRAINING_ROWS", DEFAULT_TRAINING_ROWS),
        automation=_switch("ASTRO_AUTOMATION"),
        account_timezone=_timezone("ASTRO_ACCOUNT_TIMEZONE", DEFAULT_ACCOUNT_TIMEZONE),
        daily_run_hour=_hour("ASTRO_DAILY_RUN_HOUR", DEFAULT_DAILY_RUN_HOUR),
    )
