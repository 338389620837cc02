"""The daily partitioning shared by every daily asset, check and job."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from astro_assets.core.calendar import ONE_DAY, day_range


def daily_partitions(start_date: str, timezone: str = "UTC") -> dg.DailyPartitionsDefinition:
    """One partition per day from ``start_date`` (``ASTRO_START_DATE``) to yesterday, days in the
    account's time zone (``ASTRO_ACCOUNT_TIMEZONE``, as Google Ads reports them): a day becomes a
    partition once it is over there."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone=timezone)


def days_in(window: dg.TimeWindow) -> list[dt.date]:
    """The days of a partition time window (one day for a single partition, more for a range)."""
    return day_range(window.start.date(), window.end.date() - ONE_DAY)


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Tags that make one run materialise every daily partition from ``first`` to ``last`` (the tags
    Dagster's single-run backfills set; github.com/dagster-io/dagster/discussions/11653). The daily
    assets walk the run's time window day by day (``defs.daily.materialize_days``)."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }
