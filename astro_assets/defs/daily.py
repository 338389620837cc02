"""The one shape of every daily asset: loop over the partition's days, run the stage for each, and
report rows, seconds and paths the same way (``dagster/row_count`` included), whether the run is one
day or a range."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from astro_assets.defs.partitions import days_in


@dataclass
class DayResult:
    """What a stage did for one day: the rows it published, counts to sum over the days, and details
    shown for the last day of the range."""

    rows: int
    path: str
    counts: Mapping[str, int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class DailyRun:
    """The days of a run and their results, for metadata that needs more than the sums."""

    days: list[dt.date]
    results: list[DayResult]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)


def run_days(context: dg.AssetExecutionContext, stage: Callable[[dt.date], DayResult]) -> DailyRun:
    """``stage(day)`` for every day of the partition window, oldest first, logged as it goes."""
    started = time.perf_counter()
    days = days_in(context.partition_time_window)
    results = []
    for day in days:
        result = stage(day)
        results.append(result)
        context.log.info(f"{context.asset_key.to_user_string()} {day}: {result.rows:,} rows at {result.path}")
    return DailyRun(days, results, time.perf_counter() - started)


def daily_metadata(run: DailyRun) -> dict[str, Any]:
    """Rows, seconds, rate, days and paths, the counts summed over the days and the last day's details."""
    counts: dict[str, int] = {}
    for result in run.results:
        for name, value in result.counts.items():
            counts[name] = counts.get(name, 0) + int(value)
    last = run.results[-1]
    return {
        "dagster/row_count": dg.MetadataValue.int(run.rows),
        "rows": dg.MetadataValue.int(run.rows),
        "days": dg.MetadataValue.int(len(run.days)),
        "seconds": dg.MetadataValue.float(round(run.seconds, 3)),
        "rows_per_second": dg.MetadataValue.float(round(run.rows / run.seconds, 1) if run.seconds > 0 else 0.0),
        "path": dg.MetadataValue.path(last.path),
        **({"paths": dg.MetadataValue.json([r.path for r in run.results])} if len(run.results) > 1 else {}),
        **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
        **last.details,
    }


def materialize_days(
    context: dg.AssetExecutionContext,
    stage: Callable[[dt.date], DayResult],
    extra: Callable[[DailyRun], dict[str, Any]] | None = None,
    check_results: Callable[[DailyRun], list[dg.AssetCheckResult]] | None = None,
) -> dg.MaterializeResult:
    """Run ``stage`` over the partition's days and return the materialisation with the shared metadata,
    plus ``extra(run)`` and ``check_results(run)`` where the asset has more to say."""
    run = run_days(context, stage)
    return dg.MaterializeResult(
        metadata={**daily_metadata(run), **(extra(run) if extra else {})},
        check_results=check_results(run) if check_results else None,
    )
