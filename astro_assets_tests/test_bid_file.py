"""The bid_file partition: every scored keyword's row, the Editor files as Editor reads them (UTF-16,
tab-separated, split per campaign, with a manifest), Astro's pauses undone and only those, and the
blocking checks on the files read back, each broken on purpose to see it fail."""

import codecs
import datetime as dt
import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astro_assets.core.bid_rule import BidRule
from astro_assets.stages import validation as v
from astro_assets.stages.bids import (
    EDITOR_COLUMNS,
    build_bid_partition,
    encode_editor_file,
    previous_day,
    read_editor_file,
    read_editor_files,
)
from astro_assets.storage import BID_FILE, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout
from astro_assets.storage.layout import part_file_name
from astro_assets.storage.publish import publish_partition
from astro_assets_tests.conftest import loopback_spark

RULE = BidRule(0.2, 0.05, 25.0, 0.01, max_daily_change=None, shrinkage_clicks=0.0)  # bids are break-even exactly
DAY = dt.date(2026, 5, 4)

#: campaign, ad group, keyword, text: two campaigns, the same criterion id 11 in two ad groups.
KEYWORDS = [
    (3, 70, 11, "red shoes"),
    (3, 70, 12, 'shoes "sale"'),
    (3, 71, 11, "blue shoes"),
    (3, 71, 13, "boots"),
    (4, 80, 21, "tent"),
    (4, 80, 22, "stove"),
]


def write_day(
    layout: DataLayout,
    day: dt.date,
    predicted: dict[tuple[int, int], float],
    statuses: dict | None = None,
    keywords: list[tuple[int, int, int, str]] = KEYWORDS,
) -> None:
    """Publish the inputs of bid_file for ``day``: preprocessed features and predictions (one part, the
    keywords of ``predicted``), and a raw partition carrying the report's statuses when given
    (``{(ad_group, keyword): (keyword_status, ad_group_status, campaign_status)}``)."""
    rows = [k for k in keywords if (k[1], k[2]) in predicted]
    features = pa.table(
        {
            "ad_group_id": pa.array([r[1] for r in rows], pa.int64()),
            "keyword_id": pa.array([r[2] for r in rows], pa.int64()),
            "campaign_id": pa.array([r[0] for r in rows], pa.int64()),
            "campaign_name": [f"Campaign {r[0]}" for r in rows],
            "ad_group_name": [f"Group {r[1]}" for r in rows],
            "keyword_text": [r[3] for r in rows],
            "match_type": [("EXACT", "PHRASE", "BROAD")[i % 3] for i in range(len(rows))],
            "clicks_in_window": pa.array([1000] * len(rows), pa.int64()),
        }
    )
    predictions = pa.table(
        {
            "ad_group_id": features["ad_group_id"],
            "keyword_id": features["keyword_id"],
            "predicted_value_per_click": pa.array([predicted[(r[1], r[2])] for r in rows], pa.float32()),
            "model_version": ["m"] * len(rows),
        }
    )
    with publish_partition(layout.partition_dir(PREPROCESSED_FEATURES, day)) as staging:
        pq.write_table(features, staging / part_file_name(0))
    with publish_partition(layout.partition_dir(DAILY_PREDICTIONS, day)) as staging:
        pq.write_table(predictions, staging / part_file_name(0))
    if statuses is not None:
        listed = [k for k in keywords if (k[1], k[2]) in statuses]
        raw = pa.table(
            {
                "ad_group_id": pa.array([k[1] for k in listed], pa.int64()),
                "keyword_id": pa.array([k[2] for k in listed], pa.int64()),
                "campaign_id": pa.array([k[0] for k in listed], pa.int64()),
                "keyword_status": [statuses[(k[1], k[2])][0] for k in listed],
                "ad_group_status": [statuses[(k[1], k[2])][1] for k in listed],
                "campaign_status": [statuses[(k[1], k[2])][2] for k in listed],
            }
        )
        with publish_partition(layout.partition_dir(RAW_FEATURES, day)) as staging:
            pq.write_table(raw, staging / "shard-00000-of-00001.parquet")


def bid(layout: DataLayout, day: dt.date, max_rows: int = 100_000):
    with publish_partition(layout.partition_dir(BID_FILE, day)) as staging:
        return build_bid_partition(layout, day, RULE, staging, max_rows)


def rows_by_keyword(layout: DataLayout, day: dt.date, kind: str = "bids") -> dict[tuple[int, int], dict]:
    table = read_editor_files(layout, layout.partition_dir(BID_FILE, day), kind).to_pylist()
    return {(int(r["Ad group ID"]), int(r["Keyword ID"])): r for r in table}


EVERYONE = {(k[1], k[2]): 2.0 for k in KEYWORDS}


def test_editor_files_are_utf16_tab_separated_per_campaign_with_a_manifest(tmp_path):
    layout = DataLayout(tmp_path)
    write_day(layout, DAY, {**EVERYONE, (70, 12): 0.01})
    built = bid(layout, DAY, max_rows=2)
    folder = layout.partition_dir(BID_FILE, DAY)
    bids = layout.bid_editor_files(folder, "bids")
    # Campaign 3 has 4 keywords (2 files of 2 rows), campaign 4 has 2 (1 file); first day: all changed.
    assert [p.name for p in bids] == [
        "bids-campaign-3-0000.csv",
        "bids-campaign-3-0001.csv",
        "bids-campaign-4-0000.csv",
    ]
    assert len(layout.bid_editor_files(folder, "changes")) == 3
    data = bids[0].read_bytes()
    assert data.startswith(codecs.BOM_UTF16_LE)
    lines = data[2:].decode("utf-16-le").splitlines()
    assert lines[0].split("\t") == list(EDITOR_COLUMNS)
    assert lines[1].split("\t") == ["3", "Campaign 3", "70", "Group 70", "11", "red shoes", "Exact", "1.60", ""]
    assert lines[2].split("\t") == [
        "3",
        "Campaign 3",
        "70",
        "Group 70",
        "12",
        '"shoes ""sale"""',
        "Phrase",
        "",
        "Paused",
    ]
    manifest = json.loads(layout.bid_manifest_file(folder).read_text())
    assert manifest == built.manifest
    for entry in manifest["files"]:
        content = (folder / entry["name"]).read_bytes()
        assert entry["bytes"] == len(content) and entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["rows"] == read_editor_file(content).num_rows <= 2
    assert sum(e["rows"] for e in manifest["files"] if e["kind"] == "bids") == len(KEYWORDS)
    keywords = pq.read_table(layout.bid_keywords_file(folder))
    assert keywords.num_rows == len(KEYWORDS) and keywords.column("changed").to_pylist() == [True] * len(KEYWORDS)
    assert rows_by_keyword(layout, DAY)[(70, 12)]["Keyword"] == 'shoes "sale"'  # quoted, and read back whole


def test_a_name_with_a_tab_is_quoted_and_read_back():
    rows = pa.table({c: [f"{c} x"] for c in EDITOR_COLUMNS}).set_column(1, "Campaign", pa.array(["a\tb"]))
    assert read_editor_file(encode_editor_file(rows)).to_pylist() == rows.to_pylist()


def test_a_file_without_the_utf16_mark_is_refused():
    with pytest.raises(ValueError, match="x.csv: no UTF-16 byte-order mark"):
        read_editor_file(b"Campaign\tKeyword\n", "x.csv")


def test_astro_pauses_undoes_its_own_pauses_only_and_keeps_what_is_absent(tmp_path):
    layout = DataLayout(tmp_path)
    day1, day2, day3 = DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    # Day 1: (70, 12) and (80, 22) cannot earn: Astro pauses them. (71, 13) was paused by a person.
    write_day(
        layout,
        day1,
        {**EVERYONE, (70, 12): 0.01, (80, 22): float("nan"), (71, 13): 0.01},
        {(71, 13): ("PAUSED", "ENABLED", "ENABLED"), (70, 11): ("ENABLED", "ENABLED", "ENABLED")},
    )
    first = bid(layout, day1)
    rows = rows_by_keyword(layout, day1)
    assert {k: r["Status"] for k, r in rows.items() if r["Status"]} == {
        (70, 12): "Paused",
        (80, 22): "Paused",
        (71, 13): "Paused",
    }
    assert first.counts["paused_by_astro_new"] == 2 and first.counts["paused_by_account"] == 1
    assert pq.read_table(layout.bid_pauses_file(layout.partition_dir(BID_FILE, day1))).num_rows == 2

    # Day 2: everyone can earn. The report shows Astro's pause of (70, 12) as Paused (Astro's doing), and
    # the person's (71, 13) still paused; (80, 22) is absent from the day's data.
    day2_predictions = {k: p for k, p in EVERYONE.items() if k != (80, 22)}
    write_day(
        layout,
        day2,
        day2_predictions,
        {(70, 12): ("PAUSED", "ENABLED", "ENABLED"), (71, 13): ("PAUSED", "ENABLED", "ENABLED")},
    )
    second = bid(layout, day2)
    rows = rows_by_keyword(layout, day2)
    assert rows[(70, 12)]["Status"] == "Enabled" and rows[(70, 12)]["Max CPC"] == "1.60"  # Astro's pause undone
    assert rows[(71, 13)]["Status"] == "" and rows[(71, 13)]["Max CPC"] == "1.60"  # a person's: a bid, no Enabled
    assert (80, 22) not in rows and second.counts["keywords_absent_kept"] == 1
    assert second.counts["astro_pauses_carried"] == 1 and second.counts["enabled_again"] == 1
    changes = rows_by_keyword(layout, day2, "changes")
    # Changed: the pause undone (status and bid), and the person-paused keyword's new bid; not the others.
    assert sorted(changes) == [(70, 12), (71, 13)]
    assert previous_day(layout, day3).day == day2

    # Day 3: (80, 22) is back and can earn, but its campaign is paused now: the pause stays recorded
    # and the row writes no status; the day after, the campaign is active again and it is enabled.
    write_day(layout, day3, EVERYONE, {(80, 21): ("ENABLED", "ENABLED", "PAUSED")})
    third = bid(layout, day3)
    rows = rows_by_keyword(layout, day3)
    assert rows[(80, 22)]["Status"] == "" and rows[(80, 22)]["Max CPC"] == "1.60"
    assert third.counts["kept_paused_under_paused_parent"] == 1
    day4 = day3 + dt.timedelta(days=1)
    write_day(layout, day4, EVERYONE, {(80, 21): ("ENABLED", "ENABLED", "ENABLED")})
    bid(layout, day4)
    assert rows_by_keyword(layout, day4)[(80, 22)]["Status"] == "Enabled"
    assert pq.read_table(layout.bid_pauses_file(layout.partition_dir(BID_FILE, day4))).num_rows == 0


def test_a_rerun_writes_the_same_bytes(tmp_path):
    layout = DataLayout(tmp_path)
    write_day(layout, DAY, {**EVERYONE, (70, 12): 0.01})
    bid(layout, DAY, max_rows=3)
    folder = layout.partition_dir(BID_FILE, DAY)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    bid(layout, DAY, max_rows=3)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


# -- the blocking checks, on the files read back ---------------------------------------------------------


@pytest.fixture(scope="module")
def spark():
    session = loopback_spark()
    yield session


CHECKS = {
    "bid_file_max_cpc_within_floor_and_ceiling": v.bids_within_floor_and_ceiling,
    "bid_file_never_bids_above_break_even": v.bids_never_above_break_even,
    "bid_file_sets_every_keyword_once": v.bids_one_row_per_keyword,
}


def failing_checks(spark, layout: DataLayout, day: dt.date = DAY) -> dict[str, list[str]]:
    inputs = v.CheckInputs(spark, layout, day, RULE)
    failed = {}
    for name, suite in CHECKS.items():
        validation, _ = v.run_suite(name, suite, inputs)
        if not validation.success:
            failed[name] = [f"{r['column']}={r['observed_value']}" for r in validation.results if not r["success"]]
    return failed


def rewrite(path, change) -> None:
    """Read an Editor file back, change its rows (a list of dicts), and write it again as Editor files are."""
    rows = read_editor_file(path.read_bytes()).to_pylist()
    rows = change(rows)
    path.write_bytes(
        encode_editor_file(pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in EDITOR_COLUMNS])))
    )


@pytest.fixture
def published(tmp_path):
    layout = DataLayout(tmp_path)
    write_day(layout, DAY, {**EVERYONE, (70, 12): 0.01, (80, 22): float("nan")})
    bid(layout, DAY, max_rows=2)
    return layout


def test_the_checks_pass_on_what_was_published(spark, published):
    assert failing_checks(spark, published) == {}


def _first(published, kind="bids"):
    return published.bid_editor_files(published.partition_dir(BID_FILE, DAY), kind)


def test_a_bid_above_break_even_fails(spark, published):
    # red shoes: predicted 2.00, break-even 1.60; 1.61 costs more than the click is expected to earn.
    rewrite(
        _first(published)[0],
        lambda rows: [{**r, "Max CPC": "1.61"} if r["Keyword"] == "red shoes" else r for r in rows],
    )
    assert failing_checks(spark, published) == {"bid_file_never_bids_above_break_even": ["bids_above_break_even=1"]}


def test_a_paused_keyword_left_serving_without_a_bid_fails(spark, published):
    # Blanking the Status of a pause leaves the keyword serving with its live bid: what the issue was about.
    rewrite(_first(published)[0], lambda rows: [{**r, "Status": ""} if r["Status"] == "Paused" else r for r in rows])
    assert failing_checks(spark, published) == {"bid_file_never_bids_above_break_even": ["serving_without_bid=1"]}


def test_a_missing_or_duplicated_keyword_fails(spark, published):
    files = _first(published)
    rewrite(files[0], lambda rows: rows[1:])  # one keyword has no row
    assert failing_checks(spark, published) == {"bid_file_sets_every_keyword_once": ["keywords_without_row=1"]}
    extra = read_editor_file(files[1].read_bytes()).to_pylist()[0]
    rewrite(files[2], lambda rows: [*rows, extra])  # another one twice, in another file
    assert failing_checks(spark, published) == {
        "bid_file_sets_every_keyword_once": ["keywords_without_row=1", "keywords_with_several_rows=1"]
    }


def test_a_row_for_a_keyword_not_scored_today_fails(spark, published):
    stranger = {c: "" for c in EDITOR_COLUMNS}
    stranger.update({"Campaign ID": "4", "Campaign": "Campaign 4", "Ad group ID": "99", "Ad group": "G"})
    stranger.update({"Keyword ID": "21", "Keyword": "tent", "Criterion Type": "Exact", "Max CPC": "0.50"})
    rewrite(_first(published)[2], lambda rows: [*rows, stranger])
    failed = failing_checks(spark, published)
    assert failed == {
        "bid_file_never_bids_above_break_even": ["rows_not_scored=1"],
        "bid_file_sets_every_keyword_once": ["rows_not_scored=1"],
    }


def test_a_bid_below_the_floor_or_a_broken_cell_fails(spark, published):
    def spoil(rows):
        rows[0] = {**rows[0], "Max CPC": "0.04", "Status": "Active"}  # below the floor; not an Editor status
        return rows

    rewrite(_first(published)[0], spoil)
    failed = failing_checks(spark, published)
    assert set(failed) == {"bid_file_max_cpc_within_floor_and_ceiling"}
    assert sorted(failed["bid_file_max_cpc_within_floor_and_ceiling"]) == [
        "max_cpc_below_floor=1",
        "unknown_statuses=1",
    ]


def test_a_utf8_file_is_not_read_as_an_editor_file(spark, published):
    path = _first(published)[0]
    path.write_bytes(path.read_bytes()[2:].decode("utf-16-le").encode("utf-8"))
    with pytest.raises(ValueError, match="no UTF-16 byte-order mark"):
        failing_checks(spark, published)


def test_the_check_sees_every_row_of_a_large_day(spark, tmp_path):
    """Many keywords per campaign, split in parts: the checks count every row of every part."""
    layout = DataLayout(tmp_path)
    keywords = [(3 + i % 2, 70 + i % 5, 1000 + i, f"kw {i}") for i in range(600)]
    predicted = {(k[1], k[2]): float(p) for k, p in zip(keywords, np.linspace(0.0, 3.0, 600), strict=True)}
    write_day(layout, DAY, predicted, keywords=keywords)
    built = bid(layout, DAY, max_rows=97)
    assert len(built.manifest["files"]) >= 8
    assert failing_checks(spark, layout) == {}
    assert read_editor_files(layout, layout.partition_dir(BID_FILE, DAY)).num_rows == 600


def _materialize_bid_file(layout: DataLayout, instance):
    import dagster as dg
    from dagster_pyspark import LazyPySparkResource

    from astro_assets.defs.assets.bids import bid_file_asset
    from astro_assets.defs.partitions import daily_partitions
    from astro_assets.defs.resources import AstroStorage, BidPolicy

    return dg.materialize(
        [bid_file_asset(daily_partitions("2026-01-01"))],
        partition_key=DAY.isoformat(),
        instance=instance,
        resources={
            "storage": AstroStorage(data_dir=str(layout.root)),
            "bid_policy": BidPolicy(shrinkage_clicks=0.0),
            "pyspark": LazyPySparkResource(spark_config={"spark.master": "local[1]"}),
        },
        raise_on_error=False,
    )


def test_the_asset_publishes_one_folder_and_its_three_checks_pass(spark, tmp_path, dagster_instance):
    """The bid_file asset through a real Dagster instance: its three blocking checks run on the staged
    files (write-audit-publish), then the folder is published with its marker; the metadata counts the
    pauses."""
    from astro_assets.storage.publish import is_published

    layout = DataLayout(tmp_path / "data")
    write_day(layout, DAY, {**EVERYONE, (70, 12): 0.01})
    result = _materialize_bid_file(layout, dagster_instance)
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == dict.fromkeys(CHECKS, True)
    folder = layout.partition_dir(BID_FILE, DAY)
    assert is_published(folder) and layout.bid_manifest_file(folder).exists()
    metadata = result.asset_materializations_for_node(BID_FILE)[0].metadata
    assert metadata["keywords"].value == len(KEYWORDS) and metadata["paused"].value == 1
    assert metadata["path"].value == str(folder)
    assert rows_by_keyword(layout, DAY)[(70, 12)]["Status"] == "Paused"


def test_a_bid_above_break_even_in_the_staged_file_is_never_published(spark, tmp_path, dagster_instance, monkeypatch):
    """Write-audit-publish for the bid file: a Max CPC above break-even written into the staged Editor
    file fails the check on the staged files and the run; the previous day's folder stays as it was;
    the next good run publishes."""
    from astro_assets.defs.assets import bids as bids_asset

    layout = DataLayout(tmp_path / "data")
    write_day(layout, DAY, EVERYONE)
    assert _materialize_bid_file(layout, dagster_instance).success
    folder = layout.partition_dir(BID_FILE, DAY)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}
    real = bids_asset.build_bid_partition

    def above_break_even(layout_, day, rule, staging, *args, **kwargs):
        built = real(layout_, day, rule, staging, *args, **kwargs)
        rewrite(
            layout_.bid_editor_files(staging, "bids")[0], lambda rows: [{**rows[0], "Max CPC": "1.61"}, *rows[1:]]
        )  # break-even is 1.60
        return built

    monkeypatch.setattr(bids_asset, "build_bid_partition", above_break_even)
    failed = _materialize_bid_file(layout, dagster_instance)
    assert not failed.success
    message = failed.get_step_failure_events()[0].step_failure_data.error.message
    assert "bid_file_never_bids_above_break_even" in message and "nothing for 2026-05-04 was published" in message
    evaluations = {e.check_name: e.passed for e in failed.get_asset_check_evaluations()}
    assert evaluations["bid_file_never_bids_above_break_even"] is False
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())} == before

    monkeypatch.setattr(bids_asset, "build_bid_partition", real)
    assert _materialize_bid_file(layout, dagster_instance).success
