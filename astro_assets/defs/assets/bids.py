"""``bid_file``: the day's Max CPC per keyword as a Google Ads Editor CSV (``stages.bids``)."""

import datetime as dt

import dagster as dg
import numpy as np

from astro_assets.core.calendar import ONE_DAY
from astro_assets.defs.daily import DayResult, materialize_days
from astro_assets.defs.plots import histogram_markdown
from astro_assets.defs.resources import AstroStorage, BidPolicy
from astro_assets.stages.bids import BID_FILE_COLUMNS, bid_table, keywords_to_bid, previous_bids, publish_bid_file
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, PREPROCESSED_FEATURES


def bid_file_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=BID_FILE,
        partitions_def=partitions_def,
        group_name="bidding",
        kinds={"csv"},
        deps=[DAILY_PREDICTIONS, PREPROCESSED_FEATURES],
        description="Max CPC per keyword as a Google Ads Editor CSV at bid_file/YYYY-MM-DD.csv (one per partition).",
    )
    def bid_file(
        context: dg.AssetExecutionContext, storage: AstroStorage, bid_policy: BidPolicy
    ) -> dg.MaterializeResult:
        rule = bid_policy.to_rule()
        layout = storage.layout

        def bid_day(day: dt.date) -> DayResult:
            previous = previous_bids(layout, day)
            table, counts = bid_table(keywords_to_bid(layout, day), rule, previous)
            publish_bid_file(layout, day, table)
            bids = table.column("max_cpc").to_numpy()
            before_cap = table.column("max_cpc_before_change_cap").to_numpy()
            return DayResult(
                table.num_rows,
                str(layout.bid_file(day)),
                counts=counts,
                details={
                    "change_cap_against": (day - ONE_DAY).isoformat()
                    if previous is not None
                    else "none (no bids published for the day before)",
                    "mean_max_cpc": dg.MetadataValue.float(round(float(bids.mean()), 4) if len(bids) else 0.0),
                    "median_max_cpc": dg.MetadataValue.float(round(float(np.median(bids)), 4) if len(bids) else 0.0),
                    "bid_distribution": dg.MetadataValue.md(
                        histogram_markdown(
                            {"before the change cap": before_cap, "published": bids}, "max CPC", f"Bids of {day}"
                        )
                        if len(bids)
                        else "no bids"
                    ),
                    "preview": dg.MetadataValue.md(
                        table.select(list(BID_FILE_COLUMNS)).slice(0, 10).to_pandas().to_markdown(index=False)
                    ),
                },
            )

        return materialize_days(
            context,
            bid_day,
            extra=lambda run: {
                "target_margin": dg.MetadataValue.float(rule.target_margin),
                "max_daily_change": dg.MetadataValue.float(rule.max_daily_change or 0.0),
                "shrinkage_clicks": dg.MetadataValue.float(rule.shrinkage_clicks),
                "floor": dg.MetadataValue.float(rule.floor),
                "ceiling": dg.MetadataValue.float(rule.ceiling),
            },
        )

    return bid_file
