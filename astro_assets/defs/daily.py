"""The one shape of every daily asset: write, audit, publish, for each day of the partition window.

For each day the stage writes the partition into a staging folder beside its destination; the asset's
blocking checks (Great Expectations suites, ``defs.checks``) run on the staged files; only if they all
pass is the folder marked complete and renamed into place. A failing blocking check fails the run
with the check's counts in the message, shows as a failed check on the asset in the UI, and leaves
the previously published version untouched. Rows, seconds and paths are reported the same way for
every daily asset (``dagster/row_count`` included), whether the run is one day or a range.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from astro_assets.defs.checks import CheckSpec, check_result, failure_summary
from astro_assets.defs.partitions import days_in
from astro_assets.stages.validation import CheckInputs, Validation, run_suite
from astro_assets.storage import publishing_dir
from astro_assets.storage.publish import SUCCESS


@dataclass
class DayResult:
    """What a stage did for one day: the rows it wrote, counts to sum over the days, and details
    shown for the last day of the range."""

    rows: int
    counts: Mapping[str, int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class DailyRun:
    """The days of a run, their results and where they were published."""

    days: list[dt.date] = field(default_factory=list)
    results: list[DayResult] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    check_seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def daily_metadata(run: DailyRun) -> dict[str, Any]:
    """Rows, seconds, rate, days and paths, the counts summed over the days and the last day's details."""
    counts: dict[str, int] = {}
    for result in run.results:
        for name, value in result.counts.items():
            counts[name] = counts.get(name, 0) + int(value)
    return {
        "dagster/row_count": dg.MetadataValue.int(run.rows),
        "rows": dg.MetadataValue.int(run.rows),
        "days": dg.MetadataValue.int(len(run.days)),
        "seconds": dg.MetadataValue.float(round(run.seconds, 3)),
        "check_seconds": dg.MetadataValue.float(round(run.check_seconds, 3)),
        "rows_per_second": dg.MetadataValue.float(round(run.rows_per_second, 1)),
        "path": dg.MetadataValue.path(str(run.paths[-1])),
        # The partition's folder as a link (UriMetadataSet's key), openable from the UI and the catalog.
        "dagster/uri": dg.MetadataValue.url(Path(run.paths[-1]).resolve().as_uri()),
        **({"paths": dg.MetadataValue.json([str(p) for p in run.paths])} if len(run.paths) > 1 else {}),
        **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
        **run.results[-1].details,
    }


def gated_check_specs(gates: tuple[CheckSpec, ...], partitions_def: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """The Dagster specs of an asset's write-audit-publish checks (they run inside its step)."""
    return [
        dg.AssetCheckSpec(
            spec.name,
            asset=spec.asset,
            description=spec.description,
            partitions_def=partitions_def,
            blocking=spec.severity == dg.AssetCheckSeverity.ERROR,
        )
        for spec in gates
    ]


def selected(context: dg.AssetExecutionContext, specs: tuple[CheckSpec, ...]) -> tuple[CheckSpec, ...]:
    """The checks of ``specs`` this run selected (``AssetSelection.without_checks()`` selects none)."""
    keys = context.selected_asset_check_keys
    return tuple(spec for spec in specs if dg.AssetCheckKey(dg.AssetKey(spec.asset), spec.name) in keys)


def materialize_days(
    context: dg.AssetExecutionContext,
    destination: Callable[[dt.date], Path],
    stage: Callable[[dt.date, Path], DayResult],
    gates: tuple[CheckSpec, ...],
    check_inputs: Callable[[dt.date, Path], CheckInputs],
    extra: Callable[[DailyRun], dict[str, Any]] | None = None,
    after: Callable[[DailyRun], list[dg.AssetCheckResult]] | None = None,
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Write, audit and publish every day of the partition window, oldest first.

    ``stage(day, staging)`` writes the day into ``staging``; ``gates`` run on it
    (``check_inputs(day, staging)``); the day is published at ``destination(day)`` only if no blocking
    gate failed. Yields the gates' results (for the last day, or the first day that failed), then the
    materialisation with the shared metadata, ``extra(run)``, and ``after(run)``'s check results.
    """
    run = DailyRun()
    started = time.perf_counter()
    last: list[tuple[CheckSpec, Validation, dict[str, int]]] = []
    for day in days_in(context.partition_time_window):
        final = destination(day)
        with publishing_dir(final) as staging:
            staging.mkdir(parents=True)
            result = stage(day, staging)
            check_started = time.perf_counter()
            inputs = check_inputs(day, staging)
            outcomes = [(spec, *run_suite(spec.name, spec.suite, inputs)) for spec in gates]
            run.check_seconds += time.perf_counter() - check_started
            blocked = [
                (spec, validation)
                for spec, validation, _ in outcomes
                if spec.severity == dg.AssetCheckSeverity.ERROR and not validation.success
            ]
            if blocked:
                for spec, validation, counts in outcomes:
                    yield check_result(spec, validation, counts)
                raise dg.Failure(
                    f"{context.asset_key.to_user_string()} {day}: blocking checks failed on the staged partition, "
                    f"so nothing for {day} was published and {final} is unchanged: "
                    + "; ".join(failure_summary(spec, validation) for spec, validation in blocked),
                )
            (staging / SUCCESS).touch()
        failing_warning = any(not v.success for _, v, _ in outcomes)
        if failing_warning or not last or all(v.success for _, v, _ in last):
            last = outcomes  # show a day whose warning fired rather than a later quiet one
        run.days.append(day)
        run.results.append(result)
        run.paths.append(final)
        context.log.info(f"{context.asset_key.to_user_string()} {day}: {result.rows:,} rows published at {final}")
    run.seconds = time.perf_counter() - started
    for spec, validation, counts in last:
        yield check_result(spec, validation, counts)
    yield dg.MaterializeResult(
        metadata={**daily_metadata(run), **(extra(run) if extra else {})},
        check_results=after(run) if after else None,
    )
