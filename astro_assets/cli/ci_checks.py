"""``python -m astro_assets.cli.ci_checks`` (``astro-ci-checks``): every asset check on a freshly
materialised sample day.

Materialises a small sample (``ASTRO_CI_KEYWORDS``, default 5,000 keywords) end to end in a
temporary data folder and Dagster instance, prints each check's outcome, and exits 1 when a check of
ERROR severity (the blocking ones) failed, 0 otherwise. ``--data-dir DIR`` runs the checks alone
(every separately defined check, nothing materialised) on the partition of ``--date`` (default:
yesterday) already stored in DIR, and exits 1 as well when a check could not run (e.g. the partition
is missing).
"""

import argparse
import dataclasses
import datetime as dt
import os
import sys
import tempfile

import dagster as dg

from astro_assets.cli.environment import require_java
from astro_assets.core.calendar import ONE_DAY
from astro_assets.defs.jobs import DAILY_CHECKS_JOB
from astro_assets.settings import Settings, load_settings

#: Keywords of the sample day (``ASTRO_CI_KEYWORDS``): enough clicks on the held-out day for the
#: promotion gate to be decisive (README "Model selection").
CI_KEYWORDS = 5_000


def check_fresh_sample(day: dt.date, settings: Settings) -> list[dg.AssetCheckEvaluation]:
    """Materialise ``day`` for the account of ``settings`` (history and model included) with every
    check; returns the evaluations."""
    from astro_assets.cli.run import materialize_day

    require_java()
    with dg.instance_for_test() as instance:
        return materialize_day(day, settings, instance, log=lambda m: print(m, flush=True))


def check_stored_day(day: dt.date, settings: Settings) -> tuple[list[dg.AssetCheckEvaluation], list[str]]:
    """Every separately defined check on ``day`` as stored under ``settings.data_dir``; returns the
    evaluations and the checks that could not run (with their error)."""
    from astro_assets.defs import build_definitions

    require_java()
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(DAILY_CHECKS_JOB).execute_in_process(
            tags={"dagster/partition": day.isoformat()}, instance=instance, raise_on_error=False
        )
        errors = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()}"
            for e in result.all_events
            if e.is_step_failure
        ]
        return result.get_asset_check_evaluations(), errors


def report(evaluations: list[dg.AssetCheckEvaluation], errors: list[str] = ()) -> int:
    blocking_failures = 0
    for e in sorted(evaluations, key=lambda e: (e.asset_key.to_user_string(), e.check_name)):
        status = "passed" if e.passed else f"FAILED ({e.severity.value})"
        print(f"  {e.asset_key.to_user_string():<24} {e.check_name:<50} {status}")
        blocking_failures += (not e.passed) and e.severity == dg.AssetCheckSeverity.ERROR
    for error in errors:
        print(f"  could not run {error}")
    print(
        f"astro checks: {len(evaluations)} run, {blocking_failures} blocking failures"
        + (f", {len(errors)} could not run" if errors else "")
    )
    return 1 if blocking_failures or errors or not evaluations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astro-ci-checks", description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="sample day (YYYY-MM-DD); default: yesterday, UTC")
    parser.add_argument("--data-dir", help="check this data folder instead of a fresh temporary one")
    args = parser.parse_args(argv)
    day = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(dt.UTC).date() - ONE_DAY
    settings = load_settings()
    if args.data_dir:
        return report(*check_stored_day(day, dataclasses.replace(settings, data_dir=args.data_dir)))
    keywords = int(os.environ.get("ASTRO_CI_KEYWORDS") or CI_KEYWORDS)
    with tempfile.TemporaryDirectory(prefix="astro-ci-") as data_dir:
        return report(check_fresh_sample(day, dataclasses.replace(settings, data_dir=data_dir, keywords=keywords)))


if __name__ == "__main__":
    sys.exit(main())
