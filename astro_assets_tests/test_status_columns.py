"""The account's statuses end to end: a report's ``Keyword status`` / ``Ad group status`` / ``Campaign
status`` columns (and the API's ``ad_group_criterion.status`` / ``ad_group.status`` / ``campaign.status``)
reach the ``raw_features`` partition as ENABLED / PAUSED / REMOVED, the bid file reads them there, and so a
keyword a person paused is never recorded as Astro's pause nor enabled by Astro."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from dagster_pyspark import LazyPySparkResource
from google.ads.googleads.v26.enums.types.ad_group_status import AdGroupStatusEnum
from google.ads.googleads.v26.enums.types.campaign_status import CampaignStatusEnum

from astro_assets.core.features import RAW_COLUMNS, STATUS_COLUMNS
from astro_assets.defs.assets.raw import raw_features_asset
from astro_assets.defs.google_ads import GoogleAdsApiKeywordSource
from astro_assets.defs.partitions import daily_partitions
from astro_assets.defs.resources import AstroStorage
from astro_assets.sources.google_ads_report import IngestError, ingest
from astro_assets.stages.bids import account_statuses, paused_in_account
from astro_assets.storage import BID_FILE, RAW_FEATURES, DataLayout
from astro_assets.storage.raw import content_hash
from astro_assets_tests.test_bid_file import DAY, EVERYONE, KEYWORDS, bid, rows_by_keyword, write_day
from astro_assets_tests.test_google_ads_api import DAY as API_DAY
from astro_assets_tests.test_google_ads_api import REPORT, api_for, keyword_row

TODAY = DAY + dt.timedelta(days=30)
#: test_bid_file's keywords as a report lists them: a criterion id has one text in every ad group (the
#: ingest refuses one id with two texts), so criterion 11 is "red shoes" in both of its ad groups.
REPORT_KEYWORDS = [(c, a, k, "red shoes" if k == 11 else text) for c, a, k, text in KEYWORDS]
ENABLED = ("Enabled", "Enabled", "Enabled")
#: The UI's serving status column ("Status"): one status per keyword, the most relevant one. Never read.
SERVING = {"Enabled": "Eligible", "Paused": "Paused", "Removed": "Removed"}
HEADER_WITH_STATUSES = [
    "Keyword status",
    "Keyword",
    "Match type",
    "Campaign",
    "Ad group",
    "Status",
    "Keyword ID",
    "Campaign ID",
    "Ad group ID",
    "Ad group status",
    "Campaign status",
    "Day",
    "Currency code",
    "Impr.",
    "Clicks",
    "Cost",
    "Conversions",
]


def ui_report(
    path: Path,
    day: dt.date,
    statuses: dict[tuple[int, int], tuple[str, str, str]] | None,
    keywords: list[tuple[int, int, int, str]] = REPORT_KEYWORDS,
) -> Path:
    """A Google Ads UI "Search keyword report" download of ``day`` (title, date range, header, rows, a
    ``Total:`` row) for ``keywords``; ``statuses`` gives each keyword's (keyword, ad group, campaign)
    status words (every keyword Enabled where it has none), or None for a download without the three
    status columns."""
    header = HEADER_WITH_STATUSES
    if statuses is None:
        header = [c for c in header if c not in ("Keyword status", "Ad group status", "Campaign status")]
    out = io.StringIO()
    out.write(f'Search keyword report\n"{day:%B} {day.day}, {day.year} - {day:%B} {day.day}, {day.year}"\n')
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for campaign, ad_group, keyword, text in keywords:
        words = (statuses or {}).get((ad_group, keyword), ENABLED)
        serving = {"Paused": "Campaign paused"}.get(words[2]) or {"Paused": "Ad group paused"}.get(words[1])
        writer.writerow(
            {
                "Keyword status": words[0],
                "Keyword": text,
                "Match type": "Exact match",
                "Campaign": f"Campaign {campaign}",
                "Ad group": f"Group {ad_group}",
                "Status": serving or SERVING.get(words[0], words[0]),
                "Keyword ID": keyword,
                "Campaign ID": campaign,
                "Ad group ID": ad_group,
                "Ad group status": words[1],
                "Campaign status": words[2],
                "Day": day.isoformat(),
                "Currency code": "EUR",
                "Impr.": "1,000",
                "Clicks": 10,
                "Cost": "5.00",
                "Conversions": "1.00",
            }
        )
    total = {header[0]: "Total: Keywords", "Currency code": "EUR", "Impr.": f"{1000 * len(keywords):,}"}
    writer.writerow(total)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def ingest_report(layout: DataLayout, path: Path):
    return ingest([str(path)], layout, today=TODAY, first_day=dt.date(2026, 1, 1))


def raw_rows(layout: DataLayout, day: dt.date) -> dict[tuple[int, int], dict]:
    table = pq.read_table(layout.partition_dir(RAW_FEATURES, day))
    return {(r["ad_group_id"], r["keyword_id"]): r for r in table.to_pylist()}


# -- the report file ----------------------------------------------------------------------------


def test_the_ui_status_columns_reach_raw_features_and_a_rerun_leaves_the_day_unchanged(tmp_path):
    layout = DataLayout(tmp_path / "data")
    statuses = {
        (70, 12): ("Paused", "Enabled", "Enabled"),
        (71, 13): ("Removed", "Enabled", "Enabled"),
        (80, 21): ("Enabled", "Paused", "Enabled"),
        (80, 22): ("enabled", "PAUSED", "Enabled"),  # the words are matched ignoring case
    }
    report = ui_report(tmp_path / "report.csv", DAY, statuses)
    assert ingest_report(layout, report).changed == [DAY]

    folder = layout.partition_dir(RAW_FEATURES, DAY)
    assert pq.read_schema(next(folder.glob("shard-*.parquet"))).names == [*RAW_COLUMNS, *STATUS_COLUMNS]
    rows = raw_rows(layout, DAY)
    got = {pair: tuple(r[c] for c in STATUS_COLUMNS) for pair, r in rows.items()}
    assert got == {
        (70, 11): ("ENABLED", "ENABLED", "ENABLED"),
        (70, 12): ("PAUSED", "ENABLED", "ENABLED"),
        (71, 11): ("ENABLED", "ENABLED", "ENABLED"),
        (71, 13): ("REMOVED", "ENABLED", "ENABLED"),
        (80, 21): ("ENABLED", "PAUSED", "ENABLED"),
        (80, 22): ("ENABLED", "PAUSED", "ENABLED"),
    }
    # What the bid file reads: the report's pauses, the keyword's own and its ad group's.
    keywords = account_statuses(layout, DAY).select(["ad_group_id", "keyword_id", "campaign_id"])
    keyword_paused, parent_paused = paused_in_account(keywords, account_statuses(layout, DAY))
    pairs = list(zip(keywords["ad_group_id"].to_pylist(), keywords["keyword_id"].to_pylist(), strict=True))
    assert {p for p, paused in zip(pairs, keyword_paused, strict=True) if paused} == {(70, 12), (71, 13)}
    assert {p for p, paused in zip(pairs, parent_paused, strict=True) if paused} == {(80, 21), (80, 22)}

    # The same download again: the day's content (and its hash, the data version) is unchanged.
    before = content_hash(folder)
    again = ingest_report(layout, report)
    assert again.changed == [] and again.unchanged == [DAY]
    assert content_hash(folder) == before


def test_a_download_without_status_columns_is_stored_as_before(tmp_path, capsys):
    """No status columns: the partition has exactly the RAW_SCHEMA columns (the bytes written before
    status columns existed), the UI's serving "Status" is not read, and the bid file knows no status."""
    layout = DataLayout(tmp_path / "data")
    ingest_report(layout, ui_report(tmp_path / "report.csv", DAY, None))
    assert "ignored columns Status" in capsys.readouterr().err
    folder = layout.partition_dir(RAW_FEATURES, DAY)
    assert pq.read_schema(next(folder.glob("shard-*.parquet"))).names == list(RAW_COLUMNS)
    assert account_statuses(layout, DAY) is None


def test_an_unknown_status_word_refuses_the_file_naming_its_column_and_count(tmp_path):
    layout = DataLayout(tmp_path / "data")
    statuses = {
        (70, 11): ("Eligible", "Enabled", "Enabled"),  # the serving status's word, in the keyword status column
        (70, 12): ("Eligible", "Enabled", "Enabled"),
        (80, 21): ("Enabled", "Enabled", "Ended"),
    }
    report = ui_report(tmp_path / "report.csv", DAY, statuses)
    with pytest.raises(IngestError) as error:
        ingest_report(layout, report)
    assert str(error.value).splitlines() == [
        f"{report}: column 'Keyword status': 2 unknown statuses (e.g. 'Eligible'; expected one of Enabled, Paused, "
        "Removed)",
        f"{report}: column 'Campaign status': 1 unknown statuses (e.g. 'Ended'; expected one of Enabled, Paused, "
        "Removed)",
    ]
    assert not layout.partition_dir(RAW_FEATURES, DAY).exists()


# -- the report file to the bid file -------------------------------------------------------------


def test_a_keyword_a_person_paused_is_never_astros_pause_nor_enabled_by_astro(tmp_path):
    """Day 1: (70, 12), paused by a person, cannot earn; (80, 22), enabled, cannot earn either. Astro
    pauses (80, 22) and records it; (70, 12)'s row says Paused but the pause stays the person's.
    Day 2: both can earn, and a person has paused ad group 80: both get their bid and no status (Astro's
    pause of (80, 22) is kept while its ad group is paused). Day 3: ad group 80 is enabled again: Astro
    enables (80, 22), and only it; (70, 12) gets its bid and keeps the person's pause."""
    layout = DataLayout(tmp_path / "data")
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    person = ("Paused", "Enabled", "Enabled")

    ingest_report(layout, ui_report(tmp_path / "day1.csv", days[0], {(70, 12): person}))
    write_day(layout, days[0], {**EVERYONE, (70, 12): 0.01, (80, 22): 0.01})
    first = bid(layout, days[0])
    rows = rows_by_keyword(layout, days[0])
    assert (rows[(70, 12)]["Status"], rows[(70, 12)]["Max CPC"]) == ("Paused", "")  # the row keeps Paused
    assert (rows[(80, 22)]["Status"], rows[(80, 22)]["Max CPC"]) == ("Paused", "")
    pauses = pq.read_table(layout.bid_pauses_file(layout.partition_dir(BID_FILE, days[0]))).to_pylist()
    assert [(p["ad_group_id"], p["keyword_id"]) for p in pauses] == [(80, 22)]  # not the person's (70, 12)
    assert first.counts["paused_by_account"] == 1 and first.counts["paused_by_astro_new"] == 1

    # The report shows Astro's own pause of (80, 22) as Paused too: Astro's record says whose it is.
    day2 = {(70, 12): person, (80, 21): ("Enabled", "Paused", "Enabled"), (80, 22): ("Paused", "Paused", "Enabled")}
    ingest_report(layout, ui_report(tmp_path / "day2.csv", days[1], day2))
    write_day(layout, days[1], EVERYONE)
    second = bid(layout, days[1])
    rows = rows_by_keyword(layout, days[1])
    for pair in ((70, 12), (80, 21), (80, 22)):
        assert (rows[pair]["Max CPC"], rows[pair]["Status"]) == ("1.60", ""), pair  # a bid, never Enabled
    assert not [pair for pair, row in rows.items() if row["Status"] == "Enabled"]
    pauses = pq.read_table(layout.bid_pauses_file(layout.partition_dir(BID_FILE, days[1]))).to_pylist()
    assert [(p["ad_group_id"], p["keyword_id"]) for p in pauses] == [(80, 22)]
    assert second.counts["kept_paused_under_paused_parent"] == 1 and second.counts["enabled_again"] == 0

    ingest_report(layout, ui_report(tmp_path / "day3.csv", days[2], {(70, 12): person, (80, 22): person}))
    write_day(layout, days[2], EVERYONE)
    third = bid(layout, days[2])
    rows = rows_by_keyword(layout, days[2])
    assert [pair for pair, row in rows.items() if row["Status"] == "Enabled"] == [(80, 22)]
    assert (rows[(70, 12)]["Max CPC"], rows[(70, 12)]["Status"]) == ("1.60", "")
    assert pq.read_table(layout.bid_pauses_file(layout.partition_dir(BID_FILE, days[2]))).num_rows == 0
    assert third.counts["enabled_again"] == 1 and third.counts["paused_by_account"] == 1


# -- the Google Ads API ---------------------------------------------------------------------------


def test_api_statuses_arrive_in_the_raw_features_partition(server, tmp_path, dagster_instance):
    """The raw_features asset (real Dagster, checks left out) with the API source: the statuses the local
    Google Ads server holds are in the published partition, UNSPECIFIED read as unknown (null)."""
    state, servers = server
    rows = [keyword_row(API_DAY, r) for r in REPORT]  # keyword 1002 is PAUSED
    rows[2].campaign.status = CampaignStatusEnum.CampaignStatus.PAUSED  # campaign 12
    rows[0].ad_group.status = AdGroupStatusEnum.AdGroupStatus.UNSPECIFIED
    state.rows[API_DAY.isoformat()] = rows
    data = tmp_path / "data"

    result = dg.materialize(
        [raw_features_asset(daily_partitions((API_DAY - dt.timedelta(days=30)).isoformat()))],
        selection=dg.AssetSelection.assets(RAW_FEATURES).without_checks(),
        partition_key=API_DAY.isoformat(),
        instance=dagster_instance,
        resources={
            "storage": AstroStorage(data_dir=str(data)),
            "keyword_source": GoogleAdsApiKeywordSource(api=api_for(servers)),
            "pyspark": LazyPySparkResource(spark_config={"spark.master": "local[1]"}),
        },
    )
    assert result.success
    layout = DataLayout(data)
    got = {pair: tuple(r[c] for c in STATUS_COLUMNS) for pair, r in raw_rows(layout, API_DAY).items()}
    assert got == {
        (101, 1001): ("ENABLED", None, "ENABLED"),
        (101, 1002): ("PAUSED", "ENABLED", "ENABLED"),
        (201, 2001): ("ENABLED", "ENABLED", "PAUSED"),
    }
    statuses = account_statuses(layout, API_DAY)
    keywords = statuses.select(["ad_group_id", "keyword_id", "campaign_id"])
    keyword_paused, parent_paused = paused_in_account(keywords, statuses)
    pairs = list(zip(keywords["ad_group_id"].to_pylist(), keywords["keyword_id"].to_pylist(), strict=True))
    assert {p for p, paused in zip(pairs, keyword_paused, strict=True) if paused} == {(101, 1002)}
    assert {p for p, paused in zip(pairs, parent_paused, strict=True) if paused} == {(201, 2001)}
