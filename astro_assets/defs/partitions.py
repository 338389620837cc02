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
