"""``raw_features``: one day of the Google Ads keyword report per partition, as keyword shards of Parquet."""

import datetime as dt

import dagster as dg

from astro_assets.defs.daily import DayResult, materialize_days
from astro_assets.defs.resources import AstroStorage, KeywordSource
from astro_assets.storage import RAW_FEATURES
from astro_assets.storage.raw import null_counts, write_raw_partition


def raw_features_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=RAW_FEATURES,
        partitions_def=partitions_def,
        group_name="keywords",
        kinds={"python", "parquet"},
        description="One row per keyword per day: the Google Ads keyword performance report.",
    )
    def raw_features(
        context: dg.AssetExecutionContext, storage: AstroStorage, keyword_source: KeywordSource
    ) -> dg.MaterializeResult:
        layout = storage.layout

        def write_day(day: dt.date) -> DayResult:
            table = keyword_source.keyword_report(day)
            write_raw_partition(layout, day, table)
            return DayResult(
                table.num_rows,
                str(layout.partition_dir(RAW_FEATURES, day)),
                counts={f"nulls/{column}": n for column, n in null_counts(table).items()},
            )

        return materialize_days(context, write_day)

    return raw_features
