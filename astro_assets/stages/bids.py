"""``bid_file``: max CPC per keyword, written as a CSV that Google Ads Editor imports.

The bids come from the bid rule (``core.bid_rule``) with its guardrails; this module joins the day's
predictions to each keyword's names, builds the Editor rows and publishes the file with its audit.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv

from astro_assets.core.bid_rule import BidRule, format_money, guarded_bid_units, previous_units_of
from astro_assets.core.calendar import ONE_DAY
from astro_assets.storage import (
    DAILY_PREDICTIONS,
    PREPROCESSED_FEATURES,
    DataLayout,
    publish_partition,
    publishing_file,
)
from astro_assets.storage.layout import part_file_name
from astro_assets.storage.publish import is_published

#: Google Ads Editor column names, and its spelling of match types.
BID_FILE_COLUMNS = ("Campaign", "Ad group", "Keyword", "Criterion Type", "Max CPC")
EDITOR_MATCH_TYPES = {"EXACT": "Exact", "PHRASE": "Phrase", "BROAD": "Broad"}


def bid_table(keywords: pa.Table, rule: BidRule, previous: pa.Table | None = None) -> tuple[pa.Table, dict[str, int]]:
    """Bids for ``keywords`` (keyword_id, campaign_name, ad_group_name, keyword_text, match_type,
    predicted_value_per_click, and for shrinkage ad_group_id and clicks_in_window): the rows to
    upload (Editor columns plus keyword id, prediction, bid, and the bid before the change cap, for
    the audit) and the counts of what was left out and of what the guardrails changed. ``previous``
    is the previous day's audit (keyword_id, max_cpc) for the change cap."""
    predicted = keywords.column("predicted_value_per_click").to_numpy(zero_copy_only=False).astype(np.float64)
    has_evidence = {"clicks_in_window", "ad_group_id"} <= set(keywords.column_names)
    guarded = guarded_bid_units(
        predicted,
        rule,
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
    features = layout.require_published(PREPROCESSED_FEATURES, day)
    predictions = layout.require_published(DAILY_PREDICTIONS, day)
    attributes = [
        "keyword_id",
        "campaign_name",
        "ad_group_id",
        "ad_group_name",
        "keyword_text",
        "match_type",
        "clicks_in_window",
    ]
    parts = []
    for path in layout.part_files(predictions):
        scored = pq.read_table(path, columns=["keyword_id", "predicted_value_per_click"])
        described = pq.read_table(features / path.name, columns=attributes)
        joined = described.join(scored, "keyword_id", join_type="inner")
        parts.append(joined.take(pc.sort_indices(joined, [("keyword_id", "ascending")])))
    return pa.concat_tables(parts) if parts else pa.table({c: [] for c in [*attributes, "predicted_value_per_click"]})


def previous_bids(layout: DataLayout, day: dt.date) -> pa.Table | None:
    """The bids published for the day before ``day`` (keyword_id, max_cpc), if any."""
    folder = layout.bid_audit_dir(day - ONE_DAY)
    if not is_published(folder):
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
            csv.write_csv(
                table.select(list(BID_FILE_COLUMNS)),
                out,
                write_options=csv.WriteOptions(include_header=False, quoting_style="needed"),
            )
            with publish_partition(layout.bid_audit_dir(day)) as staging:
                pq.write_table(
                    table.select(["keyword_id", "predicted_value_per_click", "max_cpc"]), staging / part_file_name(0)
                )
    except PermissionError as error:
        raise PermissionError(
            f"bid_file {day}: cannot write into {error.filename and Path(error.filename).parent} "
            f"({error.strerror}); nothing for {day} was published, {destination.name} is unchanged"
        ) from error
