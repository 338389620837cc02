"""``preprocessed_features``: null replacement and lagging in Spark (``stages.preprocess``), published
only once its checks pass on the staged files."""

import datetime as dt
from pathlib import Path

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from astro_assets.core.features import FEATURE_NAMES, LAGS
from astro_assets.defs.checks import gates
from astro_assets.defs.daily import DayResult, gated_check_specs, materialize_days, selected
from astro_assets.defs.resources import AstroStorage
from astro_assets.stages.preprocess import build_features
from astro_assets.stages.validation import CheckInputs
from astro_assets.storage import PREPROCESSED_FEATURES, RAW_FEATURES


def preprocessed_features_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=PREPROCESSED_FEATURES,
        specs=[
            dg.AssetSpec(
                PREPROCESSED_FEATURES,
                group_name="keywords",
                kinds={"spark", "parquet"},
                deps=[
                    dg.AssetDep(
                        RAW_FEATURES,
                        partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-(LAGS - 1), end_offset=0),
                    )
                ],
                description=f"Null-replaced features of each keyword's last {LAGS} days as one [T, F] float array.",
                partitions_def=partitions_def,
            )
        ],
        partitions_def=partitions_def,
        pool="spark",
        check_specs=gated_check_specs(gates(PREPROCESSED_FEATURES), partitions_def),
        can_subset=True,  # its checks can be left out (history builds select the asset without them)
    )
    def preprocessed_features(context: dg.AssetExecutionContext, storage: AstroStorage, pyspark: LazyPySparkResource):
        layout = storage.layout

        def write_day(day: dt.date, staging: Path) -> DayResult:
            return DayResult(build_features(pyspark.spark_session, layout, day, staging))

        yield from materialize_days(
            context,
            destination=lambda day: layout.partition_dir(PREPROCESSED_FEATURES, day),
            stage=write_day,
            gates=selected(context, gates(PREPROCESSED_FEATURES)),
            check_inputs=lambda day, staging: CheckInputs(
                pyspark.spark_session, layout, day, staged={PREPROCESSED_FEATURES: staging}
            ),
            extra=lambda run: {
                "lags": dg.MetadataValue.int(LAGS),
                "features": dg.MetadataValue.json(list(FEATURE_NAMES)),
            },
        )

    return preprocessed_features
