"""``raw_features``: one day of the Google Ads keyword report per partition, as keyword shards of Parquet,
published only once its checks pass on the staged files."""

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from astro_assets.defs.checks import gates
from astro_assets.defs.daily import DayResult, gated_check_specs, materialize_days, selected
from astro_assets.defs.resources import AstroStorage, KeywordSource
from astro_assets.stages.validation import CheckInputs
from astro_assets.storage import RAW_FEATURES
from astro_assets.storage.raw import content_hash, write_raw


def raw_features_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=RAW_FEATURES,
        specs=[
            dg.AssetSpec(
                RAW_FEATURES,
                group_name="keywords",
                kinds={"python", "parquet"},
                description="One row per keyword per day: the Google Ads keyword performance report.",
                partitions_def=partitions_def,
            )
        ],
        partitions_def=partitions_def,
        check_specs=gated_check_specs(gates(RAW_FEATURES), partitions_def),
        can_subset=True,  # its checks can be left out (history builds select the asset without them)
    )
    def raw_features(
        context: dg.AssetExecutionContext,
        storage: AstroStorage,
        keyword_source: KeywordSource,
        pyspark: LazyPySparkResource,
    ):
        layout = storage.layout

        hashes: dict[dt.date, str] = {}

        def write_day(day: dt.date, staging: Path) -> DayResult:
            rows, nulls = write_raw(staging, keyword_source.report_day(day))
            hashes[day] = content_hash(staging)
            return DayResult(
                rows,
                counts={f"nulls/{c}": n for c, n in nulls.items()},
                details={"content_sha256": hashes[day]},
            )

        yield from with_data_version(
            hashes,
            materialize_days(
                context,
                destination=lambda day: layout.partition_dir(RAW_FEATURES, day),
                stage=write_day,
                gates=selected(context, gates(RAW_FEATURES)),
                check_inputs=lambda day, staging: CheckInputs(
                    pyspark.spark_session, layout, day, staged={RAW_FEATURES: staging}
                ),
            ),
        )

    return raw_features


def data_version(hashes: dict[dt.date, str]) -> dg.DataVersion:
    """The data version of a raw_features materialisation: the day's content hash
    (``storage.raw.content_hash``), or for a range of days the hash of their hashes in date order. A
    re-ingest or rerun that leaves a day's content as it was keeps its version, so Dagster marks the
    features, predictions and bids fed by a day stale only when the day's content changed."""
    if len(hashes) == 1:
        return dg.DataVersion(next(iter(hashes.values()))[:16])
    combined = hashlib.sha256("".join(h for _, h in sorted(hashes.items())).encode()).hexdigest()
    return dg.DataVersion(combined[:16])


def with_data_version(hashes: dict[dt.date, str], results: Iterator) -> Iterator:
    """``results`` with the materialisation carrying :func:`data_version` (check results pass through)."""
    for result in results:
        if isinstance(result, dg.MaterializeResult) and hashes:
            result = dg.MaterializeResult(
                asset_key=result.asset_key,
                metadata=result.metadata,
                check_results=result.check_results,
                data_version=data_version(hashes),
                tags=result.tags,
            )
        yield result
