"""The daily partitioning shared by every daily asset, check and job."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from astro_assets.settings import load_settings

daily_partition_def = dg.DailyPartitionsDefinition(start_date=load_settings().start_date, timezone="UTC")


def days_in(window: dg.TimeWindow) -> list[dt.date]:
    """The days of a partition time window (one day for a single partition, more for a range)."""
    start = window.start.date()
    end = window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]
