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
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
from dagster_pyspark import PySparkResource

from astro_assets.core.bid_rule import BidRule
from astro_assets.settings import Settings
from astro_assets.sources import synthetic
from astro_assets.sources.google_ads_report import IngestError, report_for_day
from astro_assets.storage import DataLayout


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

    def expected_value_per_click(self, day: dt.date) -> Callable[[np.ndarray], np.ndarray] | None:
        """Ground truth: keyword ids -> true expected value per click on ``day``; None for real data."""
        return None


class SyntheticKeywordSource(KeywordSource):
    """The embedded keyword report source: a deterministic generator (same seed and day, same rows)."""

    seed: int = 7
    keywords: int = 100_000

    def keyword_report(self, day: dt.date) -> pa.Table:
        return synthetic.keyword_report(self.seed, self.keywords, day)

    def expected_value_per_click(self, day: dt.date) -> Callable[[np.ndarray], np.ndarray] | None:
        values = synthetic.expected_value_per_click(self.seed, self.keywords, day)
        return lambda keyword_ids: values[synthetic.keyword_index(keyword_ids)]


class GoogleAdsReportFolder(KeywordSource):
    """Real Google Ads keyword reports (``ASTRO_REPORTS_DIR``): every ``*.csv`` / ``*.parquet`` in the
    folder, read and validated as ``astro-ingest`` does; the day's rows are the report."""

    folder: str

    def keyword_report(self, day: dt.date) -> pa.Table:
        files = sorted(str(p) for pattern in ("*.csv", "*.parquet") for p in Path(self.folder).glob(pattern))
        table = report_for_day(files, day)
        if table is None:
            raise IngestError(f"{self.folder}: no report has rows for {day} ({len(files)} files read)")
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


def build_resources(settings: Settings) -> dict[str, Any]:
    if settings.spark_master.startswith("local"):
        # Local Python workers run this interpreter (the one with onnxruntime installed).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return {
        "storage": AstroStorage(data_dir=settings.data_dir),
        "keyword_source": GoogleAdsReportFolder(folder=settings.reports_dir)
        if settings.reports_dir
        else SyntheticKeywordSource(seed=settings.seed, keywords=settings.keywords),
        "pyspark": PySparkResource(spark_config=spark_config(settings)),
        "bid_policy": BidPolicy(),
    }
