"""``python -m astro_assets.ci_checks``: every asset check on a freshly materialised sample day.

Materialises a small sample (``ASTRO_CI_KEYWORDS``, default 2,000 keywords) end to end in a
temporary data folder and Dagster instance, prints each check's outcome, and exits 1 when a check of
ERROR severity (the blocking ones) failed, 0 otherwise. ``--data-dir`` checks an existing folder
instead (its newest day, or ``--date``) without retraining when it holds a model.
"""

import argparse
import datetime as dt
import os
import sys
import tempfile

import dagster as dg


def run_checks(day: dt.date, data_dir: str, keywords: int | None) -> list[dg.AssetCheckEvaluation]:
    os.environ["ASTRO_DATA_DIR"] = data_dir
    if keywords is not None:
        os.environ["ASTRO_KEYWORDS"] = str(keywords)
    from astro_assets.run import materialize_day, require_java
    from astro_assets.settings import load_settings

    require_java()
    with dg.instance_for_test() as instance:
        return materialize_day(day, load_settings(), instance, log=lambda m: print(m, flush=True))


def report(evaluations: list[dg.AssetCheckEvaluation]) -> int:
    blocking_failures = 0
    for e in sorted(evaluations, key=lambda e: (e.asset_key.to_user_string(), e.check_name)):
        status = "passed" if e.passed else f"FAILED ({e.severity.value})"
        print(f"  {e.asset_key.to_user_string():<24} {e.check_name:<50} {status}")
        blocking_failures += (not e.passed) and e.severity == dg.AssetCheckSeverity.ERROR
    print(f"astro checks: {len(evaluations)} run, {blocking_failures} blocking failures")
    return 1 if blocking_failures or not evaluations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="sample day (YYYY-MM-DD); default: yesterday, UTC")
    parser.add_argument("--data-dir", help="check this data folder instead of a fresh temporary one")
    args = parser.parse_args(argv)
    day = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    if args.data_dir:
        return report(run_checks(day, args.data_dir, None))
    with tempfile.TemporaryDirectory(prefix="astro-ci-") as data_dir:
        return report(run_checks(day, data_dir, int(os.environ.get("ASTRO_CI_KEYWORDS", "2000"))))


if __name__ == "__main__":
    sys.exit(main())
