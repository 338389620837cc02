"""Day ranges, computed one way everywhere: partitions, lag windows, training windows, backtests."""

import datetime as dt
from zoneinfo import ZoneInfo

ONE_DAY = dt.timedelta(days=1)


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last``, both included (empty when ``last`` is before ``first``)."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def days_ending(last: dt.date, count: int) -> list[dt.date]:
    """The ``count`` days that end with ``last`` (oldest first)."""
    return day_range(last - dt.timedelta(days=count - 1), last)


def lag_window(day: dt.date, lags: int) -> list[dt.date]:
    """The days whose raw reports make up the lagged features of ``day``: ``day-lags+1 .. day``."""
    return days_ending(day, lags)


def account_today(timezone: str, now: dt.datetime | None = None) -> dt.date:
    """The account's current date in its time zone (IANA name): a day is over once this date is past it."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(timezone)).date()


def runs_of_days(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """``days`` as runs of consecutive days, ``(first, last)`` each, oldest first: the ranges one
    Dagster run each can materialise."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][1] == ONE_DAY:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
