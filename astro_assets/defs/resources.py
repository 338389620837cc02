"""Resources: the storage root, the keyword report source, the Spark session and the bid policy.

``build_resources`` turns the settings (loaded once, from environment variables) into resources, so the same definitions
run on a laptop (``local[*]``, files under ``data/``) and on a cluster (``ASTRO_SPARK_MASTER``,
``ASTRO_DATA_DIR`` on storage every node sees).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
from dagster_pyspark import LazyPySparkResource

from astro_assets.core.bid_rule import BidRule
from astro_assets.settings import Settings
from astro_assets.sources import synthetic
from astro_assets.sources.google_ads_report import IngestError, report_for_day
from astro_assets.sources.report_index import REPORT_INDEX, report_files
from astro_assets.storage import DataLayout
from astro_assets.storage.raw import RawBlocks


class AstroStorage(dg.ConfigurableResource):
    """Root folder of every asset (``ASTRO_DATA_DIR``)."""

    data_dir: str = "data"

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)


class KeywordSource(dg.ConfigurableResource):
    """Where a day's keyword report comes from (the ``keyword_source`` resource)."""

    def keyword_report(self, day: dt.date) -> pa.Table:
        raise NotImplementedError

    def report_day(self, day: dt.date) -> pa.Table | RawBlocks:
        """The day as the raw stage writes it: the report, or its blocks one at a time (a source that
        draws a day too large for one process's memory)."""
        return self.keyword_report(day)

    def expected_value_per_click(self, day: dt.date) -> Callable[[np.ndarray], np.ndarray] | None:
        """Ground truth: keyword ids -> true expected value per click on ``day``; None for real data."""
        return None


class SyntheticKeywordSource(KeywordSource):
    """The embedded keyword report source: a deterministic generator (same seed and day, same rows)."""

    seed: int = 7
    keywords: int = 100_000

    def keyword_report(self, day: dt.date) -> pa.Table:
        return synthetic.keyword_report(self.seed, self.keywords, day)

    def report_day(self, day: dt.date) -> pa.Table | RawBlocks:
        return synthetic.report_day(self.seed, self.keywords, day)

    def expected_value_per_click(self, day: dt.date) -> Callable[[np.ndarray], np.ndarray] | None:
        values = np.concatenate(
            [
                synthetic.expected_value_per_click(self.seed, self.keywords, day, block)
                for block in range(synthetic.blocks(self.keywords))
            ]
        )  # keyword_index is the position in the account: blocks follow one another
        return lambda keyword_ids: values[synthetic.keyword_index(keyword_ids)]


class GoogleAdsReportFolder(KeywordSource):
    """Real Google Ads keyword reports (``ASTRO_REPORTS_DIR``): the ``*.csv`` / ``*.parquet`` files of the
    folder that hold the day, read and validated as ``astro-ingest`` does; the day's rows are the report.

    Which file holds which days comes from ``sources.report_index`` (keyed by content hash), so a day
    reads only its own files and an unchanged file is parsed once per process. A refused file in the
    folder still refuses every day (its days are unknown: the day could be incomplete without it)."""

    folder: str

    def keyword_report(self, day: dt.date) -> pa.Table:
        # The index only says which files hold the day (no validation window: report_for_day applies it).
        files, refused = REPORT_INDEX.files_for_day(self.folder, day, today=dt.date.max, first_day=dt.date.min)
        if refused:
            raise IngestError("\n".join(entry.error or str(entry.path) for entry in refused))
        table = report_for_day(files, day) if files else None
        if table is None:
            indexed = len(report_files(self.folder))
            raise IngestError(f"{self.folder}: no report has rows for {day} ({indexed} files indexed)")
        return table


class BidPolicy(dg.ConfigurableResource):
    """How a predicted value per click becomes a max CPC (account currency); see ``core.bid_rule``.
    The defaults are :class:`BidRule`'s; :meth:`to_rule` validates and converts."""

    target_margin: float = BidRule.target_margin
    floor: float = BidRule.floor
    ceiling: float = BidRule.ceiling
    currency_unit: float = BidRule.currency_unit
    #: A keyword's bid moves at most this fraction from the previous day's published bid.
    max_daily_change: float = BidRule.max_daily_change
    #: Clicks of evidence at which a keyword's own prediction and its ad group's weigh the same.
    shrinkage_clicks: float = BidRule.shrinkage_clicks

    def to_rule(self) -> BidRule:
        return BidRule(
            self.target_margin,
            self.floor,
            self.ceiling,
            self.currency_unit,
            self.max_daily_change,
            self.shrinkage_clicks,
        )


def spark_config(settings: Settings) -> dict[str, Any]:
    """The Spark settings that matter, in one place (README "Sizing" explains each)."""
    config: dict[str, Any] = {
        "spark.master": settings.spark_master,
        "spark.app.name": "astro",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.shuffle.partitions": settings.spark_shuffle_partitions,
        "spark.sql.execution.arrow.maxRecordsPerBatch": settings.arrow_batch_rows,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.python.worker.reuse": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }
    if settings.spark_master.startswith("local"):
        # Local mode: stay on loopback and run the workers with this interpreter.
        config["spark.driver.host"] = "127.0.0.1"
        config["spark.driver.bindAddress"] = "127.0.0.1"
        config["spark.pyspark.python"] = sys.executable
    return config


def spark_session(settings: Settings):
    """A SparkSession configured as the ``pyspark`` resource configures it (``spark_config``), for the
    command-line tools that run stages without Dagster: the CI checks, the training budget, the
    bench's references."""
    from pyspark.sql import SparkSession

    if settings.spark_master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # as build_resources
    builder = SparkSession.builder
    for key, value in spark_config(settings).items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


def from_env(name: str, value: Any) -> Any:
    """``dg.EnvVar(name)`` when ``value`` (already validated by ``settings``) came from the environment
    variable ``name``, so the launchpad and the resource view show where it came from; else ``value``
    itself (a default, or a value a caller set in code). Dagster resolves the variable when the resource
    is initialised, in the process that runs it (dagster docs, "Using environment variables and secrets")."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return dg.EnvVar.int(name) if raw.replace("_", "").isdigit() and int(raw) == value else value
    return dg.EnvVar(name) if raw == value else value


def build_resources(settings: Settings) -> dict[str, Any]:
    if settings.spark_master.startswith("local"):
        # Local Python workers run this interpreter (the one with onnxruntime installed).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return {
        "storage": AstroStorage(data_dir=from_env("ASTRO_DATA_DIR", settings.data_dir)),
        "keyword_source": GoogleAdsReportFolder(folder=from_env("ASTRO_REPORTS_DIR", settings.reports_dir))
        if settings.reports_dir and settings.keyword_source != "synthetic"
        else SyntheticKeywordSource(
            seed=from_env("ASTRO_SEED", settings.seed), keywords=from_env("ASTRO_KEYWORDS", settings.keywords)
        ),
        "pyspark": LazyPySparkResource(spark_config=spark_config(settings)),
        "bid_policy": BidPolicy(),
    }
