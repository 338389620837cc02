"""Stage 6, ``bid_file``: max CPC per keyword, written as a CSV that Google Ads Editor imports.

Max CPC = predicted value per click × (1 − target margin), rounded *down* to the currency unit and
capped at the ceiling. A keyword whose bid would fall below the floor gets no bid (it is left out and
counted): raising it to the floor would bid at a loss.
"""

import datetime as dt
import time
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster_pyspark import PySparkResource
from pyspark.sql import SparkSession

from astro_assets.partitions import daily_partition_def, days_in
from astro_assets.plots import histogram_markdown
from astro_assets.preprocess import read_partition
from astro_assets.resources import AstroStorage, BidPolicy
from astro_assets.storage import DataLayout, publishing_dir, publishing_file

#: Google Ads Editor column names, and its spelling of match types.
BID_FILE_COLUMNS = ("Campaign", "Ad group", "Keyword", "Criterion Type", "Max CPC")
EDITOR_MATCH_TYPES = {"EXACT": "Exact", "PHRASE": "Phrase", "BROAD": "Broad"}


@dataclass(frozen=True)
class BidRule:
    target_margin: float
    floor: float
    ceiling: float
    currency_unit: float = 0.01

    @classmethod
    def from_policy(cls, policy: BidPolicy) -> "BidRule":
        policy.validate()
        return cls(policy.target_margin, policy.floor, policy.ceiling, policy.currency_unit)

    def break_even(self, predicted: np.ndarray) -> np.ndarray:
        """The most a click may cost: predicted value per click × (1 − margin)."""
        return np.asarray(predicted, dtype=np.float64) * (1.0 - self.target_margin)


def max_cpc_units(predicted: np.ndarray, rule: BidRule) -> np.ndarray:
    """Max CPC in whole currency units (cents); 0 means no bid.

    Never above ``rule.break_even`` nor the ceiling; never below the floor (below it: no bid);
    NaN, infinite or negative predictions get no bid.
    """
    limit = np.minimum(rule.break_even(predicted), rule.ceiling)
    valid = np.isfinite(limit) & (limit > 0)
    limit = np.where(valid, limit, 0.0)
    units = np.floor(limit / rule.currency_unit).astype(np.int64)
    # Guard the rounding: a unit count whose value exceeds the limit by floating error drops by one.
    units -= (units * rule.currency_unit > limit).astype(np.int64)
    floor_units = int(np.ceil(rule.floor / rule.currency_unit - 1e-9))
    units[units < floor_units] = 0
    return units


def format_money(units: np.ndarray, rule: BidRule) -> np.ndarray:
    decimals = max(0, int(round(-np.log10(rule.currency_unit))))
    return np.char.mod(f"%.{decimals}f", units * rule.currency_unit)


def bid_table(keywords: pd.DataFrame, rule: BidRule) -> tuple[pd.DataFrame, dict[str, int]]:
    """Bids for ``keywords`` (campaign_name, ad_group_name, keyword_text, match_type,
    predicted_value_per_click, keyword_id): the rows to upload and the counts of what was left out."""
    units = max_cpc_units(keywords["predicted_value_per_click"].to_numpy(), rule)
    limit = rule.break_even(keywords["predicted_value_per_click"].to_numpy())
    bid = units > 0
    chosen = keywords.loc[bid]
    table = pd.DataFrame(
        {
            "keyword_id": chosen["keyword_id"].to_numpy(),
            "Campaign": chosen["campaign_name"].to_numpy(),
            "Ad group": chosen["ad_group_name"].to_numpy(),
            "Keyword": chosen["keyword_text"].to_numpy(),
            "Criterion Type": chosen["match_type"].map(EDITOR_MATCH_TYPES).to_numpy(),
            "Max CPC": format_money(units[bid], rule),
            "max_cpc": units[bid] * rule.currency_unit,
            "predicted_value_per_click": chosen["predicted_value_per_click"].to_numpy(),
        }
    ).sort_values(["Campaign", "Ad group", "Keyword", "Criterion Type"], kind="stable")
    counts = {
        "keywords": len(keywords),
        "bids": int(bid.sum()),
        "left_out_below_floor": int((~bid & np.isfinite(limit)).sum()),
        "left_out_invalid_prediction": int((~np.isfinite(limit)).sum()),
        "capped_at_ceiling": int((limit > rule.ceiling).sum()),
    }
    return table.reset_index(drop=True), counts


def keywords_to_bid(spark: SparkSession, layout: DataLayout, day: dt.date) -> pd.DataFrame:
    predictions = read_partition(spark, layout, "daily_predictions", day)
    attributes = read_partition(spark, layout, "preprocessed_features", day).select(
        "keyword_id", "campaign_name", "ad_group_name", "keyword_text", "match_type"
    )
    return predictions.join(attributes, "keyword_id").toArrow().to_pandas()


def audit_dir(layout: DataLayout, day: dt.date):
    return layout.asset_dir("bid_file") / "audit" / f"date={day.isoformat()}"


def publish_bid_file(layout: DataLayout, day: dt.date, table: pd.DataFrame) -> None:
    """The upload CSV (Editor columns only) and its audit Parquet (keyword id, prediction, bid)."""
    with publishing_dir(audit_dir(layout, day)) as staging:
        staging.mkdir(parents=True)
        audit = table[["keyword_id", "predicted_value_per_click", "max_cpc"]]
        pq.write_table(pa.Table.from_pandas(audit, preserve_index=False), staging / "part-00000.parquet")
        (staging / "_SUCCESS").touch()
    with publishing_file(layout.bid_file(day)) as tmp:
        table[list(BID_FILE_COLUMNS)].to_csv(tmp, index=False)


@dg.asset(
    partitions_def=daily_partition_def,
    group_name="bidding",
    kinds={"csv"},
    pool="spark",
    deps=["daily_predictions", "preprocessed_features"],
    description="Max CPC per keyword as a Google Ads Editor CSV at bid_file/<date>.csv.",
)
def bid_file(
    context: dg.AssetExecutionContext, storage: AstroStorage, pyspark: PySparkResource, bid_policy: BidPolicy
) -> dg.MaterializeResult:
    rule = BidRule.from_policy(bid_policy)
    layout = storage.layout
    started = time.perf_counter()
    for day in days_in(context.partition_time_window):
        table, counts = bid_table(keywords_to_bid(pyspark.spark_session, layout, day), rule)
        publish_bid_file(layout, day, table)
        context.log.info(f"bid_file {day}: {counts['bids']:,} bids written to {layout.bid_file(day)}")
    bids = table["max_cpc"].to_numpy()
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
            "path": dg.MetadataValue.path(str(layout.bid_file(day))),
            "target_margin": dg.MetadataValue.float(rule.target_margin),
            "floor": dg.MetadataValue.float(rule.floor),
            "ceiling": dg.MetadataValue.float(rule.ceiling),
            "mean_max_cpc": dg.MetadataValue.float(round(float(bids.mean()), 4) if len(bids) else 0.0),
            "median_max_cpc": dg.MetadataValue.float(round(float(np.median(bids)), 4) if len(bids) else 0.0),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
            "bid_distribution": dg.MetadataValue.md(
                histogram_markdown(bids, "max CPC", f"Bids of {day}") if len(bids) else "no bids"
            ),
            "preview": dg.MetadataValue.md(table[list(BID_FILE_COLUMNS)].head(10).to_markdown(index=False)),
        }
    )
