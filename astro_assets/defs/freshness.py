"""Freshness: a deadline, in the account's time zone, by which yesterday's ``raw_features`` and
``bid_file`` partitions must exist; a late day fails the asset's ``freshness_check`` in the UI.

Which mechanism, and why. Dagster 1.13 offers two:

- ``dg.FreshnessPolicy.cron(deadline_cron, lower_bound_delta, timezone)`` on the asset spec, evaluated by
  the instance's freshness daemon. Its evaluator is **asset-level**: it passes when *any* materialisation
  happened in the window before the deadline (``freshness_evaluator.CronFreshnessPolicyEvaluator`` in
  dagster 1.13.27), so a backfill of an old day, or a rerun of last week, hides a missing yesterday —
  confirmed by the maintainers' answer in dagster-io/dagster discussion #34023.
- ``dg.build_time_partition_freshness_checks(assets, deadline_cron, timezone)``: once a tick of the
  deadline cron has passed, the check passes only if **the partition that ended before that tick**
  (yesterday's day) has a materialisation. Exactly "the bid file for yesterday is late". Marked
  "superseded" by the policies in 1.13 but not deprecated, and it is what the maintainers point
  partitioned assets to until the policies become partition-aware.

Astro's daily assets are partitioned, so it uses the **time-partition freshness checks**: an asset check
named ``freshness_check`` on each asset (shown on the asset page with "Asset is overdue. We expected
partition … to have arrived" and the overdue seconds), evaluated by :data:`FRESHNESS_SENSOR`
(``build_sensor_for_freshness_checks``): off by default like the schedules; turn it on in the UI
(Automation). The time zone is the daily partitions' (the account's, so "yesterday" is the account's).
"""

from __future__ import annotations

import dagster as dg

from astro_assets.storage import BID_FILE, RAW_FEATURES

#: Deadlines, in hours after the daily run (``ASTRO_DAILY_RUN_HOUR``, in the account's time zone): with
#: the default 06:00 run, the raw day D by 07:00 on D+1 and its bid file by 09:00 on D+1 (the run takes
#: minutes at 100,000 keywords and about 4 at 10M: README benchmark). Capped at 23:00 the same day.
RAW_FEATURES_DEADLINE_HOURS = 1
BID_FILE_DEADLINE_HOURS = 3
FRESHNESS_SENSOR = "freshness_checks_sensor"
FRESHNESS_CHECK = "freshness_check"


#: The assets with a deadline.
DEADLINE_ASSETS = (RAW_FEATURES, BID_FILE)
#: The freshness checks, to leave out of the daily jobs: they judge the clock, not a day's data (a
#: backfill of an old day would record "overdue" at each run), and their own sensor runs them.
FRESHNESS_CHECKS = dg.AssetSelection.checks(
    *(dg.AssetCheckKey(dg.AssetKey(a), FRESHNESS_CHECK) for a in DEADLINE_ASSETS)
)


def deadline_cron(daily_run_hour: int, hours_after: int) -> str:
    """The daily cron of a deadline ``hours_after`` the daily run."""
    return f"0 {min(daily_run_hour + hours_after, 23)} * * *"


def freshness_checks(
    partitions_def: dg.TimeWindowPartitionsDefinition, daily_run_hour: int = 6
) -> list[dg.AssetChecksDefinition]:
    """One ``freshness_check`` on ``raw_features`` (WARN: the report is the account's, not ours, to
    deliver) and one on ``bid_file`` (ERROR: no bids today)."""
    timezone = partitions_def.timezone
    return [
        *dg.build_time_partition_freshness_checks(
            assets=[RAW_FEATURES],
            deadline_cron=deadline_cron(daily_run_hour, RAW_FEATURES_DEADLINE_HOURS),
            timezone=timezone,
            severity=dg.AssetCheckSeverity.WARN,
        ),
        *dg.build_time_partition_freshness_checks(
            assets=[BID_FILE],
            deadline_cron=deadline_cron(daily_run_hour, BID_FILE_DEADLINE_HOURS),
            timezone=timezone,
            severity=dg.AssetCheckSeverity.ERROR,
        ),
    ]


def freshness_sensor(checks: list[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    """Runs each freshness check again once its result can have changed (a deadline passed); off by default."""
    return dg.build_sensor_for_freshness_checks(
        freshness_checks=checks,
        name=FRESHNESS_SENSOR,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
