"""Stage 6, ``bid_file``: max CPC per keyword, written as a CSV that Google Ads Editor imports.

Max CPC = predicted value per click × (1 − target margin), rounded *down* to the currency unit and
capped at the ceiling. A keyword whose bid would fall below the floor gets no bid (it is left out and
counted): raising it to the floor would bid at a loss.

Two guardrails (``guarded_bid_units``), neither of which may ever lift a bid above the keyword's
predicted value per click × (1 − margin):
- shrinkage: a keyword with little evidence (few clicks in its lag window) has its value pulled toward
  its ad group's click-weighted mean prediction, weight clicks / (clicks + ``shrinkage_clicks``), and
  only ever downward (the ad group cannot vouch for more than the keyword's own prediction);
- a day-over-day change cap: against the bid published for the previous day, a bid moves by at most
  ``max_daily_change`` (up or down), except that it never goes above the break-even limit.
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
    #: A bid moves at most this fraction from the previous day's bid (None: no cap).
    max_daily_change: float | None = 0.25
    #: Clicks of evidence at which a keyword's prediction and its ad group's count equally.
    shrinkage_clicks: float = 5.0

    @classmethod
    def from_policy(cls, policy: BidPolicy) -> "BidRule":
        policy.validate()
        return cls(policy.target_margin, policy.floor, policy.ceiling, policy.currency_unit,
                   policy.max_daily_change, policy.shrinkage_clicks)

    @property
    def floor_units(self) -> int:
        return int(np.ceil(self.floor / self.currency_unit - 1e-9))

    def break_even(self, predicted: np.ndarray) -> np.ndarray:
        """The most a click may cost: predicted value per click × (1 − margin)."""
        return np.asarray(predicted, dtype=np.float64) * (1.0 - self.target_margin)


def max_cpc_units(predicted: np.ndarray, rule: BidRule) -> np.ndarray:
    """Max CPC in whole currency units (cents); 0 means no bid.

    Never above ``rule.break_even`` nor the ceiling; never below the floor (below it: no bid);
    NaN, infinite or negative predictions get no bid.
    """
    units = units_at_most(bid_limit(predicted, rule), rule)
    units[units < rule.floor_units] = 0
    return units


def bid_limit(predicted: np.ndarray, rule: BidRule) -> np.ndarray:
    """The most a bid may be, in currency: break-even capped at the ceiling; 0 for a NaN, infinite or
    non-positive prediction."""
    break_even = rule.break_even(predicted)
    valid = np.isfinite(break_even) & (break_even > 0)
    return np.where(valid, np.minimum(break_even, rule.ceiling), 0.0)


def units_at_most(limit: np.ndarray, rule: BidRule) -> np.ndarray:
    """``limit`` (currency) rounded down to whole units."""
    # Round down to the unit, with a hair of slack for values that are a whole number of units but
    # land a few ulps below it in floating point (0.3625 × 0.8 is 0.29, not 0.28999...).
    units = np.floor(limit / rule.currency_unit + 1e-9).astype(np.int64)
    # Never above the limit by more than that floating-point hair (MONEY_TOLERANCE in the checks).
    units -= (units * rule.currency_unit > limit + 1e-9).astype(np.int64)
    return units


def shrunk_value(predicted: np.ndarray, clicks: np.ndarray, ad_group: np.ndarray, rule: BidRule) -> np.ndarray:
    """Each keyword's predicted value per click pulled toward its ad group's click-weighted mean
    prediction with weight ``clicks / (clicks + shrinkage_clicks)``, never above its own prediction."""
    predicted = np.asarray(predicted, dtype=np.float64)
    clicks = np.maximum(np.nan_to_num(np.asarray(clicks, dtype=np.float64)), 0.0)
    usable = np.isfinite(predicted) & (predicted > 0)
    groups, group = np.unique(np.asarray(ad_group), return_inverse=True)
    weight = np.where(usable, clicks + 1.0, 0.0)  # +1: an ad group of keywords without clicks still has a mean
    total = np.bincount(group, weights=weight, minlength=len(groups))
    value = np.bincount(group, weights=np.where(usable, predicted, 0.0) * weight, minlength=len(groups))
    group_value = np.divide(value, total, out=np.zeros(len(groups)), where=total > 0)[group]
    trust = clicks / (clicks + rule.shrinkage_clicks) if rule.shrinkage_clicks > 0 else np.ones_like(clicks)
    shrunk = trust * predicted + (1.0 - trust) * group_value
    return np.where(usable, np.minimum(shrunk, predicted), predicted)


@dataclass(frozen=True)
class GuardedBids:
    units: np.ndarray  # the bids, whole currency units; 0 = no bid
    before_change_cap: np.ndarray  # the bids shrinkage alone would give
    effects: dict[str, int]


def guarded_bid_units(predicted: np.ndarray, rule: BidRule, clicks: np.ndarray | None = None,
                      ad_group: np.ndarray | None = None, previous_units: np.ndarray | None = None) -> GuardedBids:
    """Bids with the guardrails: shrinkage toward the ad group (when ``clicks`` and ``ad_group`` are
    given) and the day-over-day change cap against ``previous_units`` (0 = no bid yesterday).

    Invariants, for any input: no bid above ``bid_limit`` (break-even and ceiling), none below the
    floor, and where yesterday had a bid and the limit allows, at most ``max_daily_change`` away from it.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    limit_units = max_cpc_units(predicted, rule)  # the unguarded bid: 0 where it cannot cover the floor
    value = predicted if clicks is None or ad_group is None else shrunk_value(predicted, clicks, ad_group, rule)
    units = np.minimum(max_cpc_units(value, rule), limit_units)
    before_cap = units.copy()
    effects = {"lowered_by_shrinkage": int((units < limit_units).sum())}
    if previous_units is not None and rule.max_daily_change is not None:
        previous = np.asarray(previous_units, dtype=np.int64)
        had_bid = (previous > 0) & (limit_units > 0)
        low = np.ceil(previous * (1.0 - rule.max_daily_change) - 1e-9).astype(np.int64)
        high = np.floor(previous * (1.0 + rule.max_daily_change) + 1e-9).astype(np.int64)
        capped = np.minimum(np.clip(units, low, high), limit_units)
        units = np.where(had_bid, capped, units)
        units[units < rule.floor_units] = 0
        effects["raised_by_change_cap"] = int((units > before_cap).sum())
        effects["lowered_by_change_cap"] = int((units < before_cap).sum())
    return GuardedBids(units, before_cap, effects)


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


def previous_units_of(keywords: pa.Table, previous: pa.Table | None, rule: BidRule) -> np.ndarray | None:
    """The previous day's bid (whole units, 0 = none) of each keyword, from its audit (keyword_id, max_cpc)."""
    if previous is None:
        return None
    ids = keywords.column("keyword_id").to_numpy()
    before = previous.column("keyword_id").to_numpy()
    order = np.argsort(before, kind="stable")
    position = np.clip(np.searchsorted(before[order], ids), 0, max(len(before) - 1, 0))
    found = (before[order][position] == ids) if len(before) else np.zeros(len(ids), dtype=bool)
    cpc = previous.column("max_cpc").to_numpy()[order][position] if len(before) else np.zeros(len(ids))
    return np.where(found, np.rint(cpc / rule.currency_unit), 0).astype(np.int64)


def bid_table(keywords: pa.Table, rule: BidRule, previous: pa.Table | None = None) -> tuple[pa.Table, dict[str, int]]:
    """Bids for ``keywords`` (keyword_id, campaign_name, ad_group_name, keyword_text, match_type,
    predicted_value_per_click, and for shrinkage ad_group_id and clicks_in_window): the rows to
    upload (Editor columns plus keyword id, prediction, bid, and the bid before the change cap, for
    the audit) and the counts of what was left out and of what the guardrails changed. ``previous``
    is the previous day's audit (keyword_id, max_cpc) for the change cap."""
    predicted = keywords.column("predicted_value_per_click").to_numpy(zero_copy_only=False).astype(np.float64)
    has_evidence = {"clicks_in_window", "ad_group_id"} <= set(keywords.column_names)
    guarded = guarded_bid_units(
        predicted, rule,
        clicks=keywords.column("clicks_in_window").to_numpy() if has_evidence else None,
        ad_group=keywords.column("ad_group_id").to_numpy() if has_evidence else None,
        previous_units=previous_units_of(keywords, previous, rule),
    )
    units = guarded.units
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
            "max_cpc_before_change_cap": pa.array(guarded.before_change_cap[bid] * rule.currency_unit),
        }
    )
    counts = {
        "keywords": keywords.num_rows,
        "bids": int(bid.sum()),
        "left_out_below_floor": int((~bid & np.isfinite(limit)).sum()),
        "left_out_invalid_prediction": int((~np.isfinite(limit)).sum()),
        "capped_at_ceiling": int((limit > rule.ceiling).sum()),
        **guarded.effects,
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
    attributes = ["keyword_id", "campaign_name", "ad_group_id", "ad_group_name", "keyword_text", "match_type",
                  "clicks_in_window"]
    parts = []
    for path in sorted(predictions.glob("part-*.parquet")):
        scored = pq.read_table(path, columns=["keyword_id", "predicted_value_per_click"])
        described = pq.read_table(features / path.name, columns=attributes)
        joined = described.join(scored, "keyword_id", join_type="inner")
        parts.append(joined.take(pc.sort_indices(joined, [("keyword_id", "ascending")])))
    return pa.concat_tables(parts) if parts else pa.table({c: [] for c in [*attributes, "predicted_value_per_click"]})


def audit_dir(layout: DataLayout, day: dt.date):
    return layout.asset_dir("bid_file") / "audit" / f"date={day.isoformat()}"


def previous_bids(layout: DataLayout, day: dt.date) -> pa.Table | None:
    """The bids published for the day before ``day`` (keyword_id, max_cpc), if any."""
    folder = audit_dir(layout, day - dt.timedelta(days=1))
    if not (folder / "_SUCCESS").exists():
        return None
    return pq.read_table(folder, columns=["keyword_id", "max_cpc"])


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
        previous = previous_bids(layout, day)
        table, counts = bid_table(keywords_to_bid(layout, day), rule, previous)
        publish_bid_file(layout, day, table)
        context.log.info(f"bid_file {day}: {counts['bids']:,} bids written to {layout.bid_file(day)}")
    bids = table.column("max_cpc").to_numpy()
    before_cap = table.column("max_cpc_before_change_cap").to_numpy()
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
            "path": dg.MetadataValue.path(str(layout.bid_file(day))),
            "change_cap_against": (day - dt.timedelta(days=1)).isoformat() if previous is not None
            else "none (no bids published for the day before)",
            "target_margin": dg.MetadataValue.float(rule.target_margin),
            "max_daily_change": dg.MetadataValue.float(rule.max_daily_change or 0.0),
            "shrinkage_clicks": dg.MetadataValue.float(rule.shrinkage_clicks),
            "floor": dg.MetadataValue.float(rule.floor),
            "ceiling": dg.MetadataValue.float(rule.ceiling),
            "mean_max_cpc": dg.MetadataValue.float(round(float(bids.mean()), 4) if len(bids) else 0.0),
            "median_max_cpc": dg.MetadataValue.float(round(float(np.median(bids)), 4) if len(bids) else 0.0),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
            "bid_distribution": dg.MetadataValue.md(
                histogram_markdown({"before the change cap": before_cap, "published": bids}, "max CPC",
                                   f"Bids of {day}") if len(bids) else "no bids"
            ),
            "preview": dg.MetadataValue.md(
                table.select(list(BID_FILE_COLUMNS)).slice(0, 10).to_pandas().to_markdown(index=False)
            ),
        }
    )
