"""``python -m astro_assets.cli.ci_checks`` (``astro-ci-checks``): every asset check on a freshly
materialised sample day.

Materialises a small sample (``ASTRO_CI_KEYWORDS``, default 5,000 keywords) end to end in a
temporary data folder and Dagster instance, prints each check's outcome, and exits 1 when a check of
ERROR severity (the blocking ones) failed, 0 otherwise. ``--data-dir DIR`` runs the checks alone
(every check's suite, nothing materialised) on the partition of ``--date`` (default:
yesterday) already stored in DIR, and exits 1 as well when a check could not run (e.g. the partition
is missing).
"""

import argparse
import dataclasses
import datetime as dt
import os
import sys
import tempfile
from typing import NamedTuple

import dagster as dg

from astro_assets.cli.environment import require_java
from astro_assets.core.calendar import ONE_DAY, account_today
from astro_assets.settings import Settings, load_settings

#: Keywords of the sample day (``ASTRO_CI_KEYWORDS``): enough clicks on the held-out day for the
#: promotion gate to be decisive (README "Model selection").
CI_KEYWORDS = 5_000


class Outcome(NamedTuple):
    asset: str
    check: str
    passed: bool
    severity: dg.AssetCheckSeverity


def check_fresh_sample(day: dt.date, settings: Settings) -> list[Outcome]:
    """Materialise ``day`` for the account of ``settings`` (history and model included) with every
    check; returns the outcomes."""
    from astro_assets.cli.run import materialize_day

    require_java()
    with dg.instance_for_test() as instance:
        evaluations = materialize_day(day, settings, instance, log=lambda m: print(m, flush=True))
    return [Outcome(e.asset_key.to_user_string(), e.check_name, e.passed, e.severity) for e in evaluations]


def check_stored_day(day: dt.date, settings: Settings) -> tuple[list[Outcome], list[str]]:
    """Every check's suite on ``day`` as published under ``settings.data_dir`` (nothing is
    materialised: the suites read the stored partitions in a Spark session of their own); returns the
    outcomes and the checks that could not run (with their error)."""
    from astro_assets.core.bid_rule import BidRule
    from astro_assets.defs.checks import CHECK_SPECS
    from astro_assets.defs.resources import spark_session
    from astro_assets.stages.validation import CheckInputs, run_suite
    from astro_assets.storage import DataLayout

    require_java()
    inputs = CheckInputs(spark_session(settings), DataLayout(settings.data_dir), day, BidRule())
    outcomes, errors = [], []
    for spec in CHECK_SPECS:
        try:
            validation, _ = run_suite(spec.name, spec.suite, inputs)
        except Exception as error:  # a check that cannot run is reported, never a pass
            errors.append(f"{spec.name}: {str(error).strip().splitlines()[0]}")
            continue
        outcomes.append(Outcome(spec.asset, spec.name, validation.success, spec.severity))
    return outcomes, errors


def report(outcomes: list[Outcome], errors: list[str] = ()) -> int:
    blocking_failures = 0
    for o in sorted(outcomes):
        status = "passed" if o.passed else f"FAILED ({o.severity.value})"
        print(f"  {o.asset:<24} {o.check:<50} {status}")
        blocking_failures += (not o.passed) and o.severity == dg.AssetCheckSeverity.ERROR
    for error in errors:
        print(f"  could not run {error}")
    print(
        f"astro checks: {len(outcomes)} run, {blocking_failures} blocking failures"
        + (f", {len(errors)} could not run" if errors else "")
    )
    return 1 if blocking_failures or errors or not outcomes else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astro-ci-checks", description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="sample day (YYYY-MM-DD); default: yesterday in the account's time zone")
    parser.add_argument("--data-dir", help="check this data folder instead of a fresh temporary one")
    args = parser.parse_args(argv)
    settings = load_settings()
    day = dt.date.fromisoformat(args.date) if args.date else account_today(settings.account_timezone) - ONE_DAY
    if args.data_dir:
        return report(*check_stored_day(day, dataclasses.replace(settings, data_dir=args.data_dir)))
    keywords = int(os.environ.get("ASTRO_CI_KEYWORDS") or CI_KEYWORDS)
    with tempfile.TemporaryDirectory(prefix="astro-ci-") as data_dir:
        return report(check_fresh_sample(day, dataclasses.replace(settings, data_dir=data_dir, keywords=keywords)))


if __name__ == "__main__":
    sys.exit(main())
