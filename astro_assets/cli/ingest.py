"""``python -m astro_assets.cli.ingest FILE...`` (``astro-ingest``): Google Ads keyword reports into
``raw_features``, one partition per day present, after every file has been read and validated
(``sources.google_ads_report``). A refused or unreadable file exits 2 with "nothing written" and one line
per problem; a day whose content did not change is left as it is. "Today" is the account's date
(``ASTRO_ACCOUNT_TIMEZONE``): a day not over there is refused.
"""

import argparse
import datetime as dt
import os
import sys

import pyarrow as pa

from astro_assets.core.calendar import account_today
from astro_assets.settings import Settings, SettingsError, load_settings
from astro_assets.sources.google_ads_report import IngestError, IngestSummary, ingest
from astro_assets.sources.report_numbers import LOCALES
from astro_assets.storage import RAW_FEATURES, DataLayout
from astro_assets.storage.raw import RawWrite, null_counts

#: Dagster's tag for a materialisation's data version (``dagster._core.definitions.data_version``):
#: a runless event carries its version this way, so the UI shows what depends on the day as stale.
DATA_VERSION_TAGS = ("dagster/data_version", "dagster/data_version_is_user_provided")


def _report_materialization(layout: DataLayout, day: dt.date, table: pa.Table, write: RawWrite) -> None:
    """Tell the Dagster instance (when DAGSTER_HOME is set) that the day's partition was replaced, with
    its content hash as data version: the features, predictions and bids of the days it feeds show as
    needing an update."""
    if not os.environ.get("DAGSTER_HOME"):
        return
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=RAW_FEATURES,
                partition=day.isoformat(),
                description="ingested from a Google Ads report",
                metadata={
                    "rows": table.num_rows,
                    "content_sha256": write.content_hash,
                    "nulls_per_column": dg.MetadataValue.json(null_counts(table)),
                    "path": dg.MetadataValue.path(str(layout.partition_dir(RAW_FEATURES, day))),
                },
                tags={DATA_VERSION_TAGS[0]: write.content_hash[:16], DATA_VERSION_TAGS[1]: "true"},
            )
        )


def summary_lines(summary: IngestSummary) -> list[str]:
    nulls = ", ".join(f"{column} {count}" for column, count in sorted(summary.nulls.items()))
    lines = [f"ingested {summary.rows} rows for {summary.days} days into raw_features"]
    lines.append(f"nulls (-- or empty, left to the null policy): {nulls or 'none'}")
    lines.append(f"changed: {', '.join(d.isoformat() for d in summary.changed) or 'none'}")
    if summary.unchanged:
        lines.append(f"unchanged (left as they were): {', '.join(d.isoformat() for d in summary.unchanged)}")
    return lines


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astro-ingest", description=__doc__.splitlines()[0])
    parser.add_argument(
        "files", nargs="+", help="Google Ads keyword reports (UI CSV or 'Excel .csv' export, or API CSV/Parquet)"
    )
    parser.add_argument(
        "--locale",
        choices=sorted(LOCALES),
        help="the number convention of the reports' figures (default: the report language's)",
    )
    args = parser.parse_args(argv)
    try:
        settings = settings or load_settings()
    except SettingsError as error:
        raise SystemExit(f"astro: {error}") from None
    layout = DataLayout(settings.data_dir)
    try:
        summary = ingest(
            args.files,
            layout,
            account_today(settings.account_timezone),
            dt.date.fromisoformat(settings.start_date),
            published=lambda day, table, write: _report_materialization(layout, day, table, write),
            locale=args.locale,
        )
    except IngestError as error:
        print(f"astro ingest: nothing written.\n{error}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
