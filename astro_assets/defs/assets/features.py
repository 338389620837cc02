"""``preprocessed_features``: null replacement and lagging in Spark (``stages.preprocess``)."""

import datetime as dt

import dagster as dg
from dagster_pyspark import PySparkResource

from astro_assets.core.features import FEATURE_NAMES, LAGS
from astro_assets.defs.daily import DayResult, materialize_days
from astro_assets.defs.resources import AstroStorage
from astro_assets.stages.preprocess import write_preprocessed
from astro_assets.storage import PREPROCESSED_FEATURES, RAW_FEATURES


def preprocessed_features_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=PREPROCESSED_FEATURES,
        partitions_def=partitions_def,
        group_name="keywords",
        kinds={"spark", "parquet"},
        pool="spark",
        deps=[
            dg.AssetDep(
                RAW_FEATURES,
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(LAGS - 1), end_offset=0),
            )
        ],
        description=f"Null-replaced features of each keyword's last {LAGS} days as one [T, F] float array.",
    )
    def preprocessed_features(
        context: dg.AssetExecutionContext, storage: AstroStorage, pyspark: PySparkResource
    ) -> dg.MaterializeResult:
        spark = pyspark.spark_session
        layout = storage.layout

        def write_day(day: dt.date) -> DayResult:
            rows = write_preprocessed(spark, layout, day)
            return DayResult(rows, str(layout.partition_dir(PREPROCESSED_FEATURES, day)))

        return materialize_days(
            context,
            write_day,
            extra=lambda run: {
                "lags": dg.MetadataValue.int(LAGS),
                "features": dg.MetadataValue.json(list(FEATURE_NAMES)),
            },
        )

    return preprocessed_features
