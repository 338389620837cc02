"""``bid_file``: one row per scored keyword (its Max CPC, or Paused) as Google Ads Editor files and the
keyword table the API upload reads, published as one partition folder (``stages.bids``)."""

import datetime as dt
import re
from pathlib import Path

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from astro_assets.defs.catalog import model_versions_of_day
from astro_assets.defs.checks import gates
from astro_assets.defs.daily import DayResult, gated_check_specs, materialize_days, selected
from astro_assets.defs.plots import histogram_markdown
from astro_assets.defs.resources import AstroStorage, BidPolicy
from astro_assets.model.registry import policy_of_version
from astro_assets.stages.bids import build_bid_partition, editor_rows
from astro_assets.stages.validation import CheckInputs
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES


def bid_file_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=BID_FILE,
        specs=[
            dg.AssetSpec(
                BID_FILE,
                group_name="bidding",
                kinds={"csv", "parquet"},
                deps=[DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES],
                description="Every scored keyword's row, its Max CPC or Paused: Google Ads Editor files (UTF-16, "
                "tab-separated, one campaign per file, all keywords and the changed ones) with a manifest, and "
                "keywords.parquet for the API upload, in bid_file/date=YYYY-MM-DD/.",
                partitions_def=partitions_def,
            )
        ],
        partitions_def=partitions_def,
        check_specs=gated_check_specs(gates(BID_FILE), partitions_def),
        can_subset=True,  # its checks can be left out
    )
    def bid_file(
        context: dg.AssetExecutionContext,
        storage: AstroStorage,
        bid_policy: BidPolicy,
        pyspark: LazyPySparkResource,
    ):
        rule = bid_policy.to_rule()
        layout = storage.layout

        def bid_day(day: dt.date, staging: Path) -> DayResult:
            built = build_bid_partition(layout, day, rule, staging)
            bids = built.distribution
            files = built.manifest["files"]
            return DayResult(
                built.rows,
                counts={**built.counts, "editor_files": len(files)},
                details={
                    # The model behind the bids, carried from the day's predictions (defs.catalog).
                    "model_version": ", ".join(versions := model_versions_of_day(layout, day)),
                    # Which policy the bids are (issue 14: the gate may publish a baseline, and says so).
                    "published_policy": ", ".join(sorted({policy_of_version(v) for v in versions})),
                    "change_cap_against": built.previous.isoformat()
                    if built.previous is not None
                    else "none (no bids published before this day)",
                    "editor_files": dg.MetadataValue.md(
                        "| file | rows | bytes |\n|---|---|---|\n"
                        + "\n".join(f"| {f['name']} | {f['rows']} | {f['bytes']} |" for f in files[:20])
                        + (f"\n\n{len(files) - 20} more in manifest.json" if len(files) > 20 else "")
                    ),
                    "mean_max_cpc": dg.MetadataValue.float(round(bids.mean(), 4)),
                    "median_max_cpc": dg.MetadataValue.float(round(bids.median(), 4)),
                    "bid_distribution": dg.MetadataValue.md(
                        histogram_markdown(
                            {
                                "before the change cap": bids.values(bids.before_change_cap),
                                "published": bids.values(bids.published),
                            },
                            "max CPC",
                            f"Bids of {day}",
                        )
                        if bids.bids
                        else "no bids"
                    ),
                    "preview": dg.MetadataValue.md(
                        editor_rows(built.preview, rule).to_pandas().to_markdown(index=False)
                    ),
                },
            )

        try:
            # Write-audit-publish: the checks read the staged Editor files as Editor would, then the
            # folder is published; a bid above break-even never reaches the published folder.
            yield from materialize_days(
                context,
                destination=lambda day: layout.partition_dir(BID_FILE, day),
                stage=bid_day,
                gates=selected(context, gates(BID_FILE)),
                check_inputs=lambda day, staging: CheckInputs(
                    pyspark.spark_session, layout, day, rule, staged={BID_FILE: staging}
                ),
                extra=lambda run: {
                    "target_margin": dg.MetadataValue.float(rule.target_margin),
                    "max_daily_change": dg.MetadataValue.float(rule.max_daily_change or 0.0),
                    "shrinkage_clicks": dg.MetadataValue.float(rule.shrinkage_clicks),
                    "floor": dg.MetadataValue.float(rule.floor),
                    "ceiling": dg.MetadataValue.float(rule.ceiling),
                },
            )
        except PermissionError as error:
            where = Path(error.filename).parent if error.filename else layout.asset_dir(BID_FILE)
            match = re.search(r"date=(\d{4}-\d{2}-\d{2})", str(error.filename or ""))
            when = match.group(1) if match else "the partition"
            raise PermissionError(
                f"bid_file {when}: cannot write into {where} ({error.strerror}); nothing for {when} was "
                f"published, the previous version is unchanged"
            ) from error

    return bid_file
