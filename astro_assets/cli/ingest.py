"""``python -m astro_assets.cli.ingest FILE...`` (``astro-ingest``): Google Ads keyword reports into
``raw_features``, one partition per day present, after every file has been read and validated
(``sources.google_ads_report``). A refused file exits 2 with "nothing written" and one line per problem.
"""

import argparse
import datetime as dt
import os
import sys

import pyarrow as pa

from astro_assets.settings import Settings, SettingsError, load_settings
from astro_assets.sources.google_ads_report import IngestError, ingest
from astro_assets.storage import RAW_FEATURES, DataLayout
from astro_assets.storage.raw import null_counts


def _report_materialization(layout: DataLayout, day: dt.date, table: pa.Table) -> None:
    """Tell the Dagster instance (when DAGSTER_HOME is set) that the day's partition was replaced."""
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
                    "nulls_per_column": dg.MetadataValue.json(null_counts(table)),
                    "path": dg.MetadataValue.path(str(layout.partition_dir(RAW_FEATURES, day))),
                },
            )
        )


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astro-ingest", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="Google Ads keyword reports (UI CSV export, or API CSV/Parquet)")
    args = parser.parse_args(argv)
    try:
        settings = settings or load_settings()
    except SettingsError as error:
        raise SystemExit(f"astro: {error}") from None
    layout = DataLayout(settings.data_dir)
    today = dt.datetime.now(dt.UTC).date()
    try:
        rows, days = ingest(
            args.files,
            layout,
            today,
            dt.date.fromisoformat(settings.start_date),
            published=lambda day, table: _report_materialization(layout, day, table),
        )
    except IngestError as error:
        print(f"astro ingest: nothing written.\n{error}", file=sys.stderr)
        return 2
    print(f"ingested {rows} rows for {days} days into raw_features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
