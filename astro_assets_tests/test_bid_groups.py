"""The bid stage decides the day in campaign groups (``stages.bid_groups``) so that its memory follows
the group size, not the account. What it writes must not depend on the group size: on a random account
of several keyword shards, with the report's paused and removed keywords, ad groups and campaigns,
shrinkage toward the ad group, the change cap and Astro's pauses carried from the day before, the
partition built one campaign per group, a few campaigns per group and the whole day in one group is the
same, byte for byte, and its keyword table is the one the whole-day rule (``bid_table`` on the day in
memory) gives."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astro_assets.core.bid_rule import BidRule
from astro_assets.core.lagging import keyword_shard
from astro_assets.stages.bid_groups import campaign_groups, group_campaigns
from astro_assets.stages.bids import (
    account_statuses,
    bid_table,
    build_bid_partition,
    keywords_to_bid,
    previous_day,
    removed_in_account,
    removed_scored_keywords,
)
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout
from astro_assets.storage.layout import part_file_name, shard_file_name
from astro_assets.storage.publish import publish_partition

RULE = BidRule(0.2, 0.05, 25.0, 0.01, max_daily_change=0.25, shrinkage_clicks=5.0)
DAY1 = dt.date(2026, 7, 6)
DAY2 = DAY1 + dt.timedelta(days=1)
SHARDS = 4
STATUSES = np.array(["ENABLED", "PAUSED", "REMOVED"])


def account(seed: int = 3) -> pa.Table:
    """12 campaigns (ids not in order of size), 2-6 ad groups each, 1-12 keywords per ad group; some
    criterion ids repeat across ad groups."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in rng.permutation(12):
        campaign = 1000 + 7 * int(c)
        for a in range(int(rng.integers(2, 7))):
            ad_group = campaign * 100 + a
            for k in range(int(rng.integers(1, 13))):
                rows.append((campaign, ad_group, 500 + k if rng.random() < 0.3 else ad_group * 100 + k))
    campaign, ad_group, keyword = (np.array(x, dtype=np.int64) for x in zip(*rows, strict=True))
    return pa.table({"campaign_id": campaign, "ad_group_id": ad_group, "keyword_id": keyword})


def write_inputs(layout: DataLayout, day: dt.date, keywords: pa.Table, rng: np.random.Generator) -> None:
    """The day's features and predictions in SHARDS keyword shards (a random 85 % of the account scored;
    predictions with cannot-earn values and NaNs), and a raw partition of two files with the report's
    statuses for a random 90 % of the account (not only the scored keywords)."""
    n = keywords.num_rows
    scored = keywords.filter(pa.array(rng.random(n) < 0.85))
    m = scored.num_rows
    predicted = rng.lognormal(0.3, 1.0, m)
    predicted[rng.random(m) < 0.08] = 0.01
    predicted[rng.random(m) < 0.03] = np.nan
    clicks = rng.poisson(4.0, m).astype(np.int64)
    # Half the campaigns score the same every day, so some keywords keep their bid (``changed`` false).
    ad_group, keyword = scored["ad_group_id"].to_numpy(), scored["keyword_id"].to_numpy()
    stable = (scored["campaign_id"].to_numpy() - 1000) // 7 % 2 == 0
    predicted[stable] = 0.3 + (ad_group * 31 + keyword)[stable] % 97 / 10
    clicks[stable] = (ad_group + keyword)[stable] % 9
    features = scored.append_column(
        "campaign_name", pa.array([f"Campaign {c}" for c in scored["campaign_id"].to_pylist()])
    )
    features = features.append_column(
        "ad_group_name", pa.array([f"Group {a}" for a in scored["ad_group_id"].to_pylist()])
    )
    features = features.append_column("keyword_text", pa.array([f"kw {k}" for k in scored["keyword_id"].to_pylist()]))
    features = features.append_column(
        "match_type", pa.array(np.array(["EXACT", "PHRASE", "BROAD"])[rng.integers(0, 3, m)])
    )
    features = features.append_column("clicks_in_window", pa.array(clicks))
    shard = keyword_shard(scored["ad_group_id"].to_numpy(), scored["keyword_id"].to_numpy(), SHARDS)
    with (
        publish_partition(layout.partition_dir(PREPROCESSED_FEATURES, day)) as f_staging,
        publish_partition(layout.partition_dir(DAILY_PREDICTIONS, day)) as p_staging,
    ):
        for s in range(SHARDS):
            part = features.filter(pa.array(shard == s))
            pq.write_table(part, f_staging / part_file_name(s))
            scores = pa.table(
                {
                    "ad_group_id": part["ad_group_id"],
                    "keyword_id": part["keyword_id"],
                    "predicted_value_per_click": pa.array(predicted[shard == s], pa.float32()),
                }
            )
            pq.write_table(scores, p_staging / part_file_name(s))
    reported = keywords.filter(pa.array(rng.random(n) < 0.9))
    r = reported.num_rows
    status = {
        # mostly enabled; a few keywords, ad groups (one row is enough) and campaigns paused or removed
        f"{level}_status": pa.array(STATUSES[np.where(rng.random(r) < share, rng.integers(1, 3, r), 0)])
        for level, share in (("keyword", 0.08), ("ad_group", 0.02), ("campaign", 0.005))
    }
    raw = pa.table({**{c: reported[c] for c in reported.column_names}, **status})
    with publish_partition(layout.partition_dir(RAW_FEATURES, day)) as staging:
        half = r // 2
        pq.write_table(raw.slice(0, half), staging / shard_file_name(0, 2))
        pq.write_table(raw.slice(half), staging / shard_file_name(1, 2))


def build_two_days(root, group_rows: int):
    """Day 1 and day 2 (a different draw of scores and statuses over the same account) built in their own
    data folder with ``group_rows``; returns the layout and the two days' results."""
    layout = DataLayout(root / f"rows-{group_rows}")
    rng = np.random.default_rng(11)
    keywords = account()
    built = []
    for day in (DAY1, DAY2):
        write_inputs(layout, day, keywords, rng)
        with publish_partition(layout.partition_dir(BID_FILE, day)) as staging:
            built.append(build_bid_partition(layout, day, RULE, staging, max_rows=7, group_rows=group_rows))
    return layout, built


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("groups")
    return {rows: build_two_days(root, rows) for rows in (1, 60, 10**9)}


def test_the_groups_are_what_the_group_size_asks(built):
    """One campaign per group at size 1, a few at 60, the whole day in one group above the account."""
    campaigns = 12
    for rows, expected in ((1, campaigns), (10**9, 1)):
        layout, _ = built[rows]
        assert len(campaign_groups(layout, DAY2, rows)) == expected
    layout, _ = built[60]
    groups = campaign_groups(layout, DAY2, 60)
    assert 1 < len(groups) < campaigns
    assert groups.keywords.sum() == pq.read_table(layout.partition_dir(PREPROCESSED_FEATURES, DAY2)).num_rows


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_the_partition_does_not_depend_on_the_group_size(built, day):
    whole, _ = built[10**9]
    reference = _partition(whole, day)
    assert reference["keywords"].num_rows > 200 and reference["pauses"].num_rows > 0
    assert reference["manifest"]["counts"]["removed_in_account"] > 0
    assert reference["manifest"]["counts"]["paused_by_account"] > 0
    if day == DAY2:
        counts = reference["manifest"]["counts"]
        assert counts["raised_by_change_cap"] + counts["lowered_by_change_cap"] > 0
        assert counts["astro_pauses_carried"] > 0 and counts["keywords_absent_kept"] > 0
    for rows in (1, 60):
        layout, _ = built[rows]
        got = _partition(layout, day)
        assert same_table(got["keywords"], reference["keywords"]), rows
        assert got["pauses"].equals(reference["pauses"]), rows
        assert got["manifest"] == reference["manifest"], rows  # counts, and every Editor file's sha256
        assert got["editor"] == reference["editor"], rows


@pytest.mark.parametrize("rows", [1, 60, 10**9])
def test_the_keyword_table_is_the_whole_day_rule(built, rows):
    """keywords.parquet of day 2 equals bid_table on the whole day in memory, with the whole previous day."""
    layout, _ = built[rows]
    expected, pauses, counts = bid_table(
        keywords_to_bid(layout, DAY2), RULE, previous_day(layout, DAY2), account_statuses(layout, DAY2)
    )
    got = _partition(layout, DAY2)
    assert same_table(got["keywords"], expected)
    assert got["pauses"].equals(pauses)
    assert got["manifest"]["counts"] == counts


def test_changes_files_are_links_to_the_bids_files_where_everything_changed(built):
    """Day 1 (nothing published before): every keyword changed, so each changes file is its bids file
    (one inode, listed twice in the manifest). Day 2: the groups where some keyword kept its bid and
    status have changes files of their own, with fewer rows."""
    layout, _ = built[60]
    for day in (DAY1, DAY2):
        folder = layout.partition_dir(BID_FILE, day)
        manifest = json.loads(layout.bid_manifest_file(folder).read_text())
        files = {(f["kind"], f["campaign_id"], f["part"]): f for f in manifest["files"]}
        linked = [
            (folder / f["name"]).stat().st_ino == (folder / files["bids", c, p]["name"]).stat().st_ino
            for (kind, c, p), f in files.items()
            if kind == "changes"
        ]
        if day == DAY1:
            assert linked and all(linked)
            assert all(files["changes", c, p]["sha256"] == f["sha256"] for (k, c, p), f in files.items() if k == "bids")
        else:
            assert not all(linked)
            changed = sum(f["rows"] for f in manifest["files"] if f["kind"] == "changes")
            assert (
                changed
                == manifest["counts"]["changed"]
                < sum(f["rows"] for f in manifest["files"] if f["kind"] == "bids")
            )


def test_the_stage_reports_the_bids_it_wrote(built):
    """BidDay's row count, distribution (mean, median as numpy's) and preview match the keyword table."""
    layout, (_, day2) = built[60]
    table = pq.read_table(layout.bid_keywords_file(layout.partition_dir(BID_FILE, DAY2)))
    bids = table.filter(pa.array(table["max_cpc_micros"].to_numpy() > 0))
    published = bids["max_cpc"].to_numpy()
    assert day2.rows == table.num_rows and day2.distribution.bids == len(published) > 100
    assert day2.distribution.mean() == pytest.approx(published.mean(), rel=1e-12)
    assert day2.distribution.median() == pytest.approx(np.median(published), rel=1e-12)
    values, counts = day2.distribution.values(day2.distribution.before_change_cap)
    before = np.sort(bids["max_cpc_before_change_cap"].to_numpy())
    assert np.allclose(np.repeat(values, counts), before)
    settable = table.filter(pa.array(table["status"].to_numpy(zero_copy_only=False) != "REMOVED"))
    assert day2.preview.equals(settable.slice(0, 10))


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_the_checks_removed_keywords_read_shard_by_shard_are_the_whole_day_rule(built, day):
    """What the bid-file check treats as removed (``removed_scored_keywords``, file by file and shard by
    shard) is what ``removed_in_account`` says on the whole day in memory."""
    layout, _ = built[60]
    keywords = keywords_to_bid(layout, day)
    expected = keywords.filter(pa.array(removed_in_account(keywords, account_statuses(layout, day))))
    got = removed_scored_keywords(layout, day)
    pairs = lambda t: set(zip(t["ad_group_id"].to_pylist(), t["keyword_id"].to_pylist(), strict=True))  # noqa: E731
    assert got.num_rows == len(pairs(got)) and pairs(got) == pairs(expected)
    assert 10 < got.num_rows < keywords.num_rows


def test_group_campaigns_cuts_contiguous_ranges_without_splitting_a_campaign():
    groups = group_campaigns({30: 4, 10: 5, 20: 2, 40: 9, 50: 1}, rows=6)
    # id order 10 (5), 20 (2) -> over 6, so 20 starts a group; 20+30 = 6; 40 alone (9 > 6); 50 joins nothing
    assert groups.keywords.tolist() == [5, 6, 9, 1]
    assert groups.of(np.array([-5, 10, 15, 20, 39, 40, 49, 50, 10**12])).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert groups.filters(0) == [("campaign_id", "<", 20)]
    assert groups.filters(1) == [("campaign_id", ">=", 20), ("campaign_id", "<", 40)]
    assert groups.filters(3) == [("campaign_id", ">=", 50)]
    assert group_campaigns({}, 6).keywords.tolist() == [0]  # an empty day is one empty group
    assert group_campaigns({7: 3}, 10).filters(0) is None
    with pytest.raises(ValueError, match="rows=0"):
        group_campaigns({7: 3}, 0)


def same_table(a: pa.Table, b: pa.Table) -> bool:
    """Equal schemas and values, NaN equal to NaN (``Table.equals`` says NaN differs from itself, and
    invalid predictions are NaN)."""
    if a.schema != b.schema:
        return False
    for name in a.column_names:
        x, y = a[name], b[name]
        if pa.types.is_floating(x.type):
            nulls = x.is_null().to_numpy(zero_copy_only=False)
            if not (nulls == y.is_null().to_numpy(zero_copy_only=False)).all():
                return False
            values = (c.fill_null(0.0).to_numpy(zero_copy_only=False) for c in (x, y))
            if not np.array_equal(*values, equal_nan=True):
                return False
        elif not x.equals(y):
            return False
    return True


def _partition(layout: DataLayout, day: dt.date) -> dict:
    folder = layout.partition_dir(BID_FILE, day)
    manifest = json.loads(layout.bid_manifest_file(folder).read_text())
    editor = {p.name: p.read_bytes() for kind in ("bids", "changes") for p in layout.bid_editor_files(folder, kind)}
    return {
        "keywords": pq.read_table(layout.bid_keywords_file(folder)),
        "pauses": pq.read_table(layout.bid_pauses_file(folder)),
        "manifest": manifest,
        "editor": editor,
    }
