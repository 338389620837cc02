"""Keywords removed in the account (themselves, or their ad group or campaign): Google Ads refuses any change
to a removed resource (OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE) and removal is final. The day's
keywords.parquet keeps their one row, saying REMOVED with nothing to write; the Editor files (read back from
their UTF-16 bytes) have no row for them; Astro's pause record lets go of them; the manifest counts them;
the bid-file checks pass on that day and fail if a removed keyword gets a row; and the API upload (the real
google-ads client over gRPC to the local server on 127.0.0.1) sends them no operation."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astro_assets.stages import google_ads_upload as upload
from astro_assets.stages import validation as v
from astro_assets.stages.bids import EDITOR_COLUMNS, encode_editor_file
from astro_assets.storage import BID_FILE, DataLayout
from astro_assets_tests.conftest import loopback_spark
from astro_assets_tests.google_ads_server import MUTATE
from astro_assets_tests.test_bid_file import RULE, bid, failing_checks, write_day
from astro_assets_tests.test_google_ads_api import FAST, api_for

DAY1 = dt.date(2026, 6, 1)
DAY2 = DAY1 + dt.timedelta(days=1)
DAY3 = DAY2 + dt.timedelta(days=1)

#: campaign, ad group, keyword, text.
KEYWORDS = [
    (3, 70, 11, "red shoes"),  # active throughout: the control
    (3, 70, 12, "shoes sale"),  # day 2: the keyword itself REMOVED (its bid would have changed)
    (3, 71, 11, "blue shoes"),  # day 2: absent from the report, but its ad group 71 is REMOVED
    (3, 71, 13, "boots"),  # day 2: its row says ad group 71 REMOVED
    (4, 80, 21, "tent"),  # day 2: campaign 4 REMOVED
    (5, 90, 31, "stove"),  # day 1: Astro pauses it (cannot earn); day 2: REMOVED, scored
    (5, 90, 32, "lamp"),  # day 1: Astro pauses it; day 2: not scored, the report says REMOVED
    (5, 90, 33, "chair"),  # day 1 and 2: cannot earn, Astro's pause stays (control)
    (5, 91, 34, "table"),  # day 1: Astro pauses it; day 2: not scored nor reported, its pause is carried
]
ENABLED = ("ENABLED", "ENABLED", "ENABLED")
DAY1_STATUSES = {(k[1], k[2]): ENABLED for k in KEYWORDS}
DAY2_STATUSES = {
    (70, 11): ENABLED,
    (70, 12): ("REMOVED", "ENABLED", "ENABLED"),
    (71, 13): ("ENABLED", "REMOVED", "ENABLED"),
    (80, 21): ("ENABLED", "ENABLED", "REMOVED"),
    (90, 31): ("REMOVED", "ENABLED", "ENABLED"),
    (90, 32): ("REMOVED", "ENABLED", "ENABLED"),
    (90, 33): ENABLED,
}
REMOVED_SCORED = {(70, 12), (71, 11), (71, 13), (80, 21), (90, 31)}
SCORED_DAY2 = {(70, 11), (90, 33)} | REMOVED_SCORED


def editor_rows_from_bytes(layout: DataLayout, day: dt.date, kind: str) -> list[dict]:
    """Every row of the day's Editor files of ``kind``, decoded from their bytes here (UTF-16 LE with its
    byte-order mark, tab-separated, the header row) rather than by the code under test."""
    rows = []
    for path in layout.bid_editor_files(layout.partition_dir(BID_FILE, day), kind):
        data = path.read_bytes()
        assert data.startswith(codecs.BOM_UTF16_LE), path
        reader = csv.DictReader(io.StringIO(data[2:].decode("utf-16-le"), newline=""), delimiter="\t")
        assert reader.fieldnames == list(EDITOR_COLUMNS), path
        rows += list(reader)
    return rows


def pairs_of(rows: list[dict]) -> set[tuple[int, int]]:
    return {(int(r["Ad group ID"]), int(r["Keyword ID"])) for r in rows}


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    """Day 1: every keyword enabled; Astro pauses the four that cannot earn. Day 2: the report removes a
    keyword, an ad group, a campaign and two of Astro's paused keywords (one scored, one not)."""
    layout = DataLayout(tmp_path_factory.mktemp("removed") / "data")
    cannot_earn = {(90, 31), (90, 32), (90, 33), (91, 34)}
    write_day(
        layout,
        DAY1,
        {(k[1], k[2]): 0.01 if (k[1], k[2]) in cannot_earn else 2.0 for k in KEYWORDS},
        DAY1_STATUSES,
        KEYWORDS,
    )
    first = bid(layout, DAY1)
    predicted = {pair: 2.5 for pair in SCORED_DAY2} | {(70, 12): 3.0, (90, 33): 0.01}
    write_day(layout, DAY2, predicted, DAY2_STATUSES, KEYWORDS)
    second = bid(layout, DAY2)
    # Day 3: the removed keywords have no impressions, so the report has no row for them; still scored.
    write_day(layout, DAY3, predicted, {(70, 11): ENABLED, (90, 33): ENABLED}, KEYWORDS)
    bid(layout, DAY3)
    return layout, first, second


def test_day1_is_the_ordinary_case(two_days):
    layout, first, _ = two_days
    pauses = pq.read_table(layout.bid_pauses_file(layout.partition_dir(BID_FILE, DAY1))).to_pylist()
    assert {(p["ad_group_id"], p["keyword_id"]) for p in pauses} == {(90, 31), (90, 32), (90, 33), (91, 34)}
    assert pairs_of(editor_rows_from_bytes(layout, DAY1, "bids")) == {(k[1], k[2]) for k in KEYWORDS}
    assert first.counts["removed_in_account"] == 0 and first.counts["astro_pauses_ended_by_removal"] == 0


def test_a_removed_keyword_keeps_its_row_in_keywords_parquet_saying_removed_with_nothing_to_write(two_days):
    layout, _, second = two_days
    table = pq.read_table(layout.bid_keywords_file(layout.partition_dir(BID_FILE, DAY2)))
    rows = {(r["ad_group_id"], r["keyword_id"]): r for r in table.to_pylist()}
    assert table.num_rows == len(SCORED_DAY2) and set(rows) == SCORED_DAY2  # one row per scored keyword
    for pair in REMOVED_SCORED:
        r = rows[pair]
        assert r["status"] == "REMOVED", pair
        assert (r["max_cpc"], r["max_cpc_micros"], r["max_cpc_before_change_cap"]) == (0.0, 0, 0.0), pair
        assert not (r["changed"] or r["writes_status"] or r["paused_by_astro"] or r["paused_by_account"]), pair
    assert (rows[(70, 11)]["status"], rows[(70, 11)]["max_cpc"], rows[(70, 11)]["changed"]) == ("ENABLED", 2.0, True)
    assert (rows[(90, 33)]["status"], rows[(90, 33)]["paused_by_astro"]) == ("PAUSED", True)
    assert second.rows == table.num_rows


def test_a_removed_keyword_has_no_row_in_any_editor_file(two_days):
    layout, _, _ = two_days
    bids = editor_rows_from_bytes(layout, DAY2, "bids")
    changes = editor_rows_from_bytes(layout, DAY2, "changes")
    assert pairs_of(bids) == SCORED_DAY2 - REMOVED_SCORED == {(70, 11), (90, 33)}
    assert pairs_of(changes) == {(70, 11)}  # its bid moved 1.60 -> 2.00; (90, 33) stays paused
    assert not {r["Campaign ID"] for r in bids + changes} & {"4"}  # the removed campaign has no file row
    folder = layout.partition_dir(BID_FILE, DAY2)
    names = {p.name for kind in ("bids", "changes") for p in layout.bid_editor_files(folder, kind)}
    assert not [name for name in names if "campaign-4-" in name]


def test_removal_is_final_a_keyword_removed_the_day_before_stays_removed_without_a_report_row(two_days):
    layout, _, _ = two_days
    folder = layout.partition_dir(BID_FILE, DAY3)
    rows = {(r["ad_group_id"], r["keyword_id"]): r for r in pq.read_table(layout.bid_keywords_file(folder)).to_pylist()}
    assert set(rows) == SCORED_DAY2
    assert {pair for pair, r in rows.items() if r["status"] == "REMOVED"} == REMOVED_SCORED
    assert not any(rows[pair]["changed"] or rows[pair]["max_cpc_micros"] for pair in REMOVED_SCORED)
    assert pairs_of(editor_rows_from_bytes(layout, DAY3, "bids")) == {(70, 11), (90, 33)}
    assert editor_rows_from_bytes(layout, DAY3, "changes") == []  # nothing changed since day 2
    counts = json.loads(layout.bid_manifest_file(folder).read_text())["counts"]
    assert counts["removed_in_account"] == counts["removed_on_previous_day"] == len(REMOVED_SCORED)


def test_astro_lets_go_of_its_pauses_of_removed_keywords_and_keeps_the_others(two_days):
    layout, _, _ = two_days
    pauses = pq.read_table(layout.bid_pauses_file(layout.partition_dir(BID_FILE, DAY2))).to_pylist()
    # (90, 31) removed and scored, (90, 32) removed and not scored: both gone; (90, 33) still paused by
    # Astro today; (91, 34) not scored, not reported: carried.
    assert {(p["ad_group_id"], p["keyword_id"]) for p in pauses} == {(90, 33), (91, 34)}


def test_the_manifest_counts_the_keywords_left_out_as_removed(two_days):
    layout, _, second = two_days
    manifest = json.loads(layout.bid_manifest_file(layout.partition_dir(BID_FILE, DAY2)).read_text())
    counts = manifest["counts"]
    assert counts == second.counts
    assert counts["keywords"] == len(SCORED_DAY2)
    assert counts["removed_in_account"] == len(REMOVED_SCORED)
    assert counts["astro_pauses_ended_by_removal"] == 2 and counts["removed_on_previous_day"] == 0
    assert (counts["bids"], counts["enabled"], counts["paused"], counts["changed"]) == (1, 1, 1, 1)
    assert counts["astro_pauses_carried"] == 1
    rows = {kind: sum(f["rows"] for f in manifest["files"] if f["kind"] == kind) for kind in ("bids", "changes")}
    assert rows == {"bids": len(SCORED_DAY2) - len(REMOVED_SCORED), "changes": 1}


# -- the bid-file checks --------------------------------------------------------------------------------


def test_the_checks_pass_without_rows_for_removed_keywords_and_fail_with_one(two_days, tmp_path):
    layout, _, _ = two_days
    spark = loopback_spark()
    assert failing_checks(spark, layout, DAY2) == {}
    assert failing_checks(spark, layout, DAY3) == {}  # the removals the report no longer shows
    # Both joins (shard by shard, and in Spark for predictions stored otherwise) count the same.
    inputs = v.CheckInputs(spark, layout, DAY2, RULE)
    removed = v.removed_keywords(inputs)
    assert set(zip(*(a.tolist() for a in removed), strict=True)) == REMOVED_SCORED
    by_shard = v._joined_by_shard(inputs, v._prediction_shards(inputs))
    assert by_shard.pop("predictions_outside_shard") == 0
    assert by_shard == v._joined_in_spark(inputs)
    assert (by_shard["keywords_without_row"], by_shard["rows_of_removed_keywords"]) == (0, 0)

    # A row for the removed keyword (70, 12) added to campaign 3's file: the check names it.
    path = layout.bid_editor_files(layout.partition_dir(BID_FILE, DAY2), "bids")[0]
    original = path.read_bytes()
    try:
        rows = editor_rows_from_bytes(layout, DAY2, "bids")
        extra = {**next(r for r in rows if r["Campaign ID"] == "3"), "Keyword ID": "12", "Keyword": "shoes sale"}
        mine = [r for r in rows if r["Campaign ID"] == "3"] + [extra]
        path.write_bytes(
            encode_editor_file(pa.Table.from_pylist(mine, schema=pa.schema([(c, pa.string()) for c in EDITOR_COLUMNS])))
        )
        assert failing_checks(spark, layout, DAY2) == {
            "bid_file_sets_every_keyword_once": ["rows_of_removed_keywords=1"]
        }
        assert v._joined_in_spark(v.CheckInputs(spark, layout, DAY2, RULE))["rows_of_removed_keywords"] == 1
    finally:
        path.write_bytes(original)


# -- the API upload -------------------------------------------------------------------------------------


def test_the_upload_sends_no_operation_for_removed_keywords(two_days, server):
    layout, _, _ = two_days
    state, servers = server
    keywords = upload.read_keywords(layout, DAY2)
    result = upload.upload_bids(api_for(servers).client(), "1234567890", keywords, RULE, live=False, retry=FAST)
    operations = [op for call in state.calls(MUTATE) for op in call.request.operations]
    sent = {tuple(int(x) for x in op.update.resource_name.rsplit("/", 1)[1].split("~")) for op in operations}
    assert sent == {(70, 11)}  # the one changed keyword; none of the removed ones
    assert result.removed_in_account == len(REMOVED_SCORED)
    assert result.unchanged == 1  # (90, 33): paused yesterday and today

    # Even a REMOVED row marked changed (an older or hand-edited table) is never sent.
    forced = keywords.set_column(
        keywords.schema.get_field_index("changed"), "changed", pa.array([True] * len(keywords))
    )
    before = len([op for call in state.calls(MUTATE) for op in call.request.operations])
    result = upload.upload_bids(api_for(servers).client(), "1234567890", forced, RULE, live=False, retry=FAST)
    operations = [op for call in state.calls(MUTATE) for op in call.request.operations][before:]
    sent = {tuple(int(x) for x in op.update.resource_name.rsplit("/", 1)[1].split("~")) for op in operations}
    assert sent == {(70, 11), (90, 33)} and result.removed_in_account == len(REMOVED_SCORED)
