"""Stage 6, ``bid_file``: max CPC per keyword, written as a CSV that Google Ads Editor imports.

Max CPC = predicted value per click × (1 − target margin), rounded *down* to the currency unit and
capped at the ceiling. A keyword whose bid would fall below the floor gets no bid (it is left out and
counted): raising it to the floor would bid at a loss.
"""

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv

from astro_assets.partitions import daily_partition_def, days_in
from astro_assets.plots import histogram_markdown
from astro_assets.preprocess import MissingHistoryError
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
    break_even = rule.break_even(predicted)
    valid = np.isfinite(break_even) & (break_even > 0)
    limit = np.where(valid, np.minimum(break_even, rule.ceiling), 0.0)
    # Round down to the unit, with a hair of slack for values that are a whole number of units but
    # land a few ulps below it in floating point (0.3625 × 0.8 is 0.29, not 0.28999...).
    units = np.floor(limit / rule.currency_unit + 1e-9).astype(np.int64)
    # Never above the limit by more than that floating-point hair (MONEY_TOLERANCE in the checks).
    units -= (units * rule.currency_unit > limit + 1e-9).astype(np.int64)
    floor_units = int(np.ceil(rule.floor / rule.currency_unit - 1e-9))
    units[units < floor_units] = 0
    return units


def format_money(units: np.ndarray, rule: BidRule) -> pa.Array:
    """Whole currency units as decimal strings ("12.34"), exactly: no float formatting involved."""
    decimals = max(0, int(round(-np.log10(rule.currency_unit))))
    units = pa.array(np.asarray(units, dtype=np.int64))
    if decimals == 0:
        return pc.cast(units, pa.string())
    scale = 10**decimals
    whole = pc.cast(pc.divide(units, scale), pa.string())  # integer division on int64
    fraction = pc.utf8_lpad(pc.cast(pc.subtract(units, pc.multiply(pc.divide(units, scale), scale)), pa.string()),
                            width=decimals, padding="0")
    return pc.binary_join_element_wise(whole, fraction, ".")


def bid_table(keywords: pa.Table, rule: BidRule) -> tuple[pa.Table, dict[str, int]]:
    """Bids for ``keywords`` (keyword_id, campaign_name, ad_group_name, keyword_text, match_type,
    predicted_value_per_click): the rows to upload (Editor columns plus keyword id, prediction and
    bid for the audit) and the counts of what was left out."""
    predicted = keywords.column("predicted_value_per_click").to_numpy(zero_copy_only=False).astype(np.float64)
    units = max_cpc_units(predicted, rule)
    limit = rule.break_even(predicted)
    bid = units > 0
    chosen = keywords.filter(pa.array(bid))
    match = pc.index_in(chosen.column("match_type"), value_set=pa.array(list(EDITOR_MATCH_TYPES)))
    table = pa.table(
        {
            "Campaign": chosen.column("campaign_name"),
            "Ad group": chosen.column("ad_group_name"),
            "Keyword": chosen.column("keyword_text"),
            "Criterion Type": pa.array(list(EDITOR_MATCH_TYPES.values())).take(match),
            "Max CPC": format_money(units[bid], rule),
            "keyword_id": chosen.column("keyword_id"),
            "predicted_value_per_click": chosen.column("predicted_value_per_click"),
            "max_cpc": pa.array(units[bid] * rule.currency_unit),
        }
    )
    counts = {
        "keywords": keywords.num_rows,
        "bids": int(bid.sum()),
        "left_out_below_floor": int((~bid & np.isfinite(limit)).sum()),
        "left_out_invalid_prediction": int((~np.isfinite(limit)).sum()),
        "capped_at_ceiling": int((limit > rule.ceiling).sum()),
    }
    return table, counts


def keywords_to_bid(layout: DataLayout, day: dt.date) -> pa.Table:
    """The day's predictions with each keyword's campaign, ad group, text and match type, shard by
    shard (predictions keep the shards of the preprocessed features), ordered by shard and keyword."""
    features = layout.partition_dir("preprocessed_features", day)
    predictions = layout.partition_dir("daily_predictions", day)
    for folder in (features, predictions):
        if not (folder / "_SUCCESS").exists():
            raise MissingHistoryError(f"no published partition at {folder}; materialize it first")
    attributes = ["keyword_id", "campaign_name", "ad_group_name", "keyword_text", "match_type"]
    parts = []
    for path in sorted(predictions.glob("part-*.parquet")):
        scored = pq.read_table(path, columns=["keyword_id", "predicted_value_per_click"])
        described = pq.read_table(features / path.name, columns=attributes)
        joined = described.join(scored, "keyword_id", join_type="inner")
        parts.append(joined.take(pc.sort_indices(joined, [("keyword_id", "ascending")])))
    return pa.concat_tables(parts) if parts else pa.table({c: [] for c in [*attributes, "predicted_value_per_click"]})


def audit_dir(layout: DataLayout, day: dt.date):
    return layout.asset_dir("bid_file") / "audit" / f"date={day.isoformat()}"


def publish_bid_file(layout: DataLayout, day: dt.date, table: pa.Table) -> None:
    """The upload CSV (Editor columns only) and its audit Parquet (keyword id, prediction, bid).

    The CSV is staged first, beside its destination: a folder that cannot be written stops here,
    before anything is published. The audit is published next, then the CSV renamed into place.
    """
    destination = layout.bid_file(day)
    try:
        with publishing_file(destination) as tmp, open(tmp, "wb") as out:
            out.write((",".join(BID_FILE_COLUMNS) + "\n").encode())
            csv.write_csv(table.select(list(BID_FILE_COLUMNS)), out,
                          write_options=csv.WriteOptions(include_header=False, quoting_style="needed"))
            with publishing_dir(audit_dir(layout, day)) as staging:
                staging.mkdir(parents=True)
                pq.write_table(table.select(["keyword_id", "predicted_value_per_click", "max_cpc"]),
                               staging / "part-00000.parquet")
                (staging / "_SUCCESS").touch()
    except PermissionError as error:
        raise PermissionError(
            f"bid_file {day}: cannot write into {error.filename and Path(error.filename).parent} "
            f"({error.strerror}); nothing for {day} was published, {destination.name} is unchanged"
        ) from error


@dg.asset(
    partitions_def=daily_partition_def,
    group_name="bidding",
    kinds={"csv"},
    deps=["daily_predictions", "preprocessed_features"],
    description="Max CPC per keyword as a Google Ads Editor CSV at bid_file/YYYY-MM-DD.csv (one per partition).",
)
def bid_file(context: dg.AssetExecutionContext, storage: AstroStorage, bid_policy: BidPolicy) -> dg.MaterializeResult:
    rule = BidRule.from_policy(bid_policy)
    layout = storage.layout
    started = time.perf_counter()
    for day in days_in(context.partition_time_window):
        table, counts = bid_table(keywords_to_bid(layout, day), rule)
        publish_bid_file(layout, day, table)
        context.log.info(f"bid_file {day}: {counts['bids']:,} bids written to {layout.bid_file(day)}")
    bids = table.column("max_cpc").to_numpy()
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
            "preview": dg.MetadataValue.md(
                table.select(list(BID_FILE_COLUMNS)).slice(0, 10).to_pandas().to_markdown(index=False)
            ),
        }
    )
