"""The Google Ads API both ways, with the real ``google-ads`` client over real gRPC (TLS) against a local
server on 127.0.0.1 (``google_ads_server``) that records every request: ``raw_features`` from
``GoogleAdsService.SearchStream`` and the ``bid_upload`` of changed bids through
``AdGroupCriterionService.MutateAdGroupCriteria``. Nothing is mocked and nothing leaves the machine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.ads.googleads.v26.common.types.criteria import KeywordInfo
from google.ads.googleads.v26.common.types.metrics import Metrics
from google.ads.googleads.v26.common.types.segments import Segments
from google.ads.googleads.v26.enums.types.ad_group_criterion_status import AdGroupCriterionStatusEnum
from google.ads.googleads.v26.enums.types.ad_group_status import AdGroupStatusEnum
from google.ads.googleads.v26.enums.types.campaign_status import CampaignStatusEnum
from google.ads.googleads.v26.enums.types.keyword_match_type import KeywordMatchTypeEnum
from google.ads.googleads.v26.resources.types.ad_group import AdGroup
from google.ads.googleads.v26.resources.types.ad_group_criterion import AdGroupCriterion
from google.ads.googleads.v26.resources.types.campaign import Campaign
from google.ads.googleads.v26.services.types.google_ads_service import GoogleAdsRow

from astro_assets.core.bid_rule import BidRule
from astro_assets.defs.assets.upload import BREAK_EVEN_CHECK, REJECTIONS_CHECK, bid_upload_asset, bid_upload_checks
from astro_assets.defs.google_ads import GoogleAdsApi, GoogleAdsApiKeywordSource, google_ads_api_from_env
from astro_assets.defs.resources import AstroStorage, BidPolicy
from astro_assets.sources import google_ads_api
from astro_assets.sources.google_ads_report import IngestError, read_reports, to_day_tables
from astro_assets.sources.google_ads_retry import RetryPolicy
from astro_assets.stages import google_ads_upload as upload
from astro_assets.storage import BID_FILE, DataLayout, publish_partition
from astro_assets.storage.layout import BID_UPLOAD
from astro_assets_tests.google_ads_server import (
    MUTATE,
    SEARCH_STREAM,
    LocalGoogleAds,
    Servers,
)

CUSTOMER = "123-456-7890"
FAST = RetryPolicy(max_attempts=4, initial_delay=0.01, max_delay=1.0)
RULE = BidRule()
DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)


def api_for(servers: Servers, **extra) -> GoogleAdsApi:
    return GoogleAdsApi(
        developer_token="dev-token-for-tests",
        client_id="client-id-for-tests",
        client_secret="client-secret-for-tests",
        refresh_token="refresh-token-for-tests",
        customer_id=CUSTOMER,
        endpoint=servers.endpoint,
        token_uri=servers.token_uri,
        retry_initial_delay_seconds=0.01,
        **extra,
    )


# -- the API source ------------------------------------------------------------------------------

REPORT = [  # one dict per keyword: the day's keyword_view rows the server holds
    dict(
        campaign=11,
        campaign_name="Shoes",
        ad_group=101,
        ad_group_name="Running",
        keyword=1001,
        text="running shoes",
        match="EXACT",
        status="ENABLED",
        impressions=1200,
        clicks=80,
        cost=41_500_000,
        conversions=4.0,
        value=310.5,
        quality=7,
        share=0.42,
    ),
    dict(
        campaign=11,
        campaign_name="Shoes",
        ad_group=101,
        ad_group_name="Running",
        keyword=1002,
        text="trail shoes",
        match="PHRASE",
        status="PAUSED",
        impressions=300,
        clicks=9,
        cost=5_200_000,
        conversions=0.0,
        value=None,
        quality=None,
        share=None,
    ),
    dict(
        campaign=12,
        campaign_name="Socks",
        ad_group=201,
        ad_group_name="Wool",
        keyword=2001,
        text="wool socks",
        match="BROAD",
        status="ENABLED",
        impressions=50,
        clicks=0,
        cost=0,
        conversions=0.0,
        value=0.0,
        quality=3,
        share=0.05,
    ),
]


def keyword_row(day: dt.date, r: dict) -> GoogleAdsRow:
    """One GoogleAdsRow, built with the library's own messages; absent optional fields stay unset."""
    metrics = Metrics(
        impressions=r["impressions"], clicks=r["clicks"], cost_micros=r["cost"], conversions=r["conversions"]
    )
    if r["value"] is not None:
        metrics.conversions_value = r["value"]
    if r["share"] is not None:
        metrics.search_impression_share = r["share"]
    criterion = AdGroupCriterion(
        criterion_id=r["keyword"],
        keyword=KeywordInfo(text=r["text"], match_type=KeywordMatchTypeEnum.KeywordMatchType[r["match"]]),
        status=AdGroupCriterionStatusEnum.AdGroupCriterionStatus[r["status"]],
    )
    if r["quality"] is not None:
        criterion.quality_info.quality_score = r["quality"]
    return GoogleAdsRow(
        segments=Segments(date=day.isoformat()),
        campaign=Campaign(id=r["campaign"], name=r["campaign_name"], status=CampaignStatusEnum.CampaignStatus.ENABLED),
        ad_group=AdGroup(id=r["ad_group"], name=r["ad_group_name"], status=AdGroupStatusEnum.AdGroupStatus.ENABLED),
        ad_group_criterion=criterion,
        metrics=metrics,
    )


def report_as_file(day: dt.date, path: Path) -> Path:
    """The same rows as an API-named CSV report (what a person would export), empty cells for nulls."""
    frame = pd.DataFrame(
        {
            "segments.date": [day.isoformat()] * len(REPORT),
            "campaign.id": [r["campaign"] for r in REPORT],
            "campaign.name": [r["campaign_name"] for r in REPORT],
            "ad_group.id": [r["ad_group"] for r in REPORT],
            "ad_group.name": [r["ad_group_name"] for r in REPORT],
            "ad_group_criterion.criterion_id": [r["keyword"] for r in REPORT],
            "ad_group_criterion.keyword.text": [r["text"] for r in REPORT],
            "ad_group_criterion.keyword.match_type": [r["match"] for r in REPORT],
            "ad_group_criterion.status": [r["status"] for r in REPORT],
            "ad_group.status": ["ENABLED"] * len(REPORT),
            "campaign.status": ["ENABLED"] * len(REPORT),
            "metrics.impressions": [r["impressions"] for r in REPORT],
            "metrics.clicks": [r["clicks"] for r in REPORT],
            "metrics.cost_micros": [r["cost"] for r in REPORT],
            "metrics.conversions": [r["conversions"] for r in REPORT],
            "metrics.conversions_value": ["" if r["value"] is None else repr(r["value"]) for r in REPORT],
            "ad_group_criterion.quality_info.quality_score": [
                "" if r["quality"] is None else r["quality"] for r in REPORT
            ],
            "metrics.search_impression_share": ["" if r["share"] is None else repr(r["share"]) for r in REPORT],
        }
    )
    frame.to_csv(path, index=False)
    return path


def test_search_stream_source_equals_the_file_ingest_of_the_same_report(server, tmp_path):
    state, servers = server
    state.rows[DAY.isoformat()] = [keyword_row(DAY, r) for r in REPORT]
    state.developer_token = "dev-token-for-tests"
    api = api_for(servers, login_customer_id="999-888-7777")

    table = GoogleAdsApiKeywordSource(api=api).keyword_report(DAY)

    today = dt.datetime.now(dt.UTC).date()
    from_file = to_day_tables(read_reports([str(report_as_file(DAY, tmp_path / "report.csv"))], today, dt.date.min))[
        DAY
    ]
    assert table.num_rows == len(REPORT)
    assert table.schema.equals(from_file.schema)
    assert table.equals(from_file), (table.to_pandas(), from_file.to_pandas())
    # nulls where the API left optional fields unset
    assert table.column("quality_score").null_count == 1
    assert table.column("conversion_value").null_count == 1

    (call,) = state.calls(SEARCH_STREAM)
    assert call.request.customer_id == "1234567890"
    query = call.request.query
    assert query.startswith("SELECT ") and f"FROM keyword_view WHERE segments.date = '{DAY.isoformat()}'" in query
    for field in (
        "segments.date",
        "campaign.id",
        "campaign.name",
        "ad_group.id",
        "ad_group.name",
        "ad_group_criterion.criterion_id",
        "ad_group_criterion.keyword.text",
        "ad_group_criterion.keyword.match_type",
        "campaign.status",
        "ad_group.status",
        "ad_group_criterion.status",
        "metrics.impressions",
        "metrics.clicks",
        "metrics.cost_micros",
        "metrics.conversions",
        "metrics.conversions_value",
    ):
        assert field in query
    assert call.metadata["developer-token"] == "dev-token-for-tests"
    assert call.metadata["login-customer-id"] == "9998887777"
    # the OAuth refresh went to the local token endpoint with the configured client and refresh token
    (token,) = state.token_requests
    assert token["grant_type"] == "refresh_token"
    assert token["refresh_token"] == "refresh-token-for-tests" and token["client_id"] == "client-id-for-tests"


def test_search_stream_is_read_again_after_resource_exhausted(server):
    state, servers = server
    state.rows[DAY.isoformat()] = [keyword_row(DAY, r) for r in REPORT]
    state.stream_faults = [grpc.StatusCode.RESOURCE_EXHAUSTED]
    lines = []
    client = api_for(servers).client()
    table = google_ads_api.keyword_report(client, "1234567890", DAY, retry=FAST, log=lines.append)
    assert table.num_rows == len(REPORT)
    assert [c.answered for c in state.calls(SEARCH_STREAM)] == ["RESOURCE_EXHAUSTED", "OK"]
    assert len(lines) == 1 and "RESOURCE_EXHAUSTED on attempt 1" in lines[0]


def test_api_rows_are_validated_like_a_file(server):
    state, servers = server
    bad = dict(REPORT[0], clicks=REPORT[0]["impressions"] + 1)
    state.rows[DAY.isoformat()] = [keyword_row(DAY, bad), keyword_row(DAY, REPORT[2])]
    with pytest.raises(IngestError) as error:
        google_ads_api.keyword_report(api_for(servers).client(), "1234567890", DAY, retry=FAST)
    message = str(error.value)
    assert f"google-ads-api keyword_view {DAY.isoformat()}" in message
    assert "'metrics.clicks' > 'metrics.impressions' in 1 rows" in message
    assert "1234567890" not in message


def test_an_empty_day_is_refused(server):
    _, servers = server
    with pytest.raises(IngestError, match="no keyword rows"):
        google_ads_api.keyword_report(api_for(servers).client(), "1234567890", DAY, retry=FAST)


# -- the bid upload ------------------------------------------------------------------------------


def keyword_table(rows: list[dict]) -> pa.Table:
    """A bid_file keyword table (the contract's columns)."""
    return pa.table(
        {
            "ad_group_id": pa.array([r["ad_group"] for r in rows], pa.int64()),
            "keyword_id": pa.array([r["keyword"] for r in rows], pa.int64()),
            "campaign_id": pa.array([r.get("campaign", 11) for r in rows], pa.int64()),
            "campaign_name": [r.get("campaign_name", "Shoes") for r in rows],
            "ad_group_name": [r.get("ad_group_name", "Running") for r in rows],
            "keyword_text": [f"keyword {r['keyword']}" for r in rows],
            "match_type": [r.get("match", "EXACT") for r in rows],
            "predicted_value_per_click": pa.array([r["predicted"] for r in rows], pa.float64()),
            "max_cpc": pa.array([r["micros"] / 1e6 for r in rows], pa.float64()),
            "max_cpc_micros": pa.array([r["micros"] for r in rows], pa.int64()),
            "status": [r["status"] for r in rows],
            "paused_by_astro": [r.get("by_astro", False) for r in rows],
            "changed": [r["changed"] for r in rows],
        }
    )


def bid_micros(predicted: float) -> int:
    """The largest whole-cent bid at or below break-even (as the bid rule rounds)."""
    return int(np.floor(RULE.break_even(np.array([predicted]))[0] / 0.01 + 1e-9)) * 10_000


def day_of_keywords() -> tuple[pa.Table, dict[int, dict]]:
    rows = []
    for k in range(7):  # changed and enabled with a bid
        predicted = 0.5 + 0.37 * k
        rows.append(
            dict(
                ad_group=101 + k % 2,
                keyword=3000 + k,
                predicted=predicted,
                micros=bid_micros(predicted),
                status="ENABLED",
                changed=True,
            )
        )
    rows.append(
        dict(ad_group=101, keyword=3100, predicted=0.01, micros=0, status="PAUSED", by_astro=True, changed=True)
    )
    rows.append(
        dict(
            ad_group=102,
            keyword=3101,
            predicted=2.0,
            micros=bid_micros(2.0),
            status="PAUSED",
            by_astro=False,
            changed=True,
        )
    )  # paused by a person: bid only, never status
    for k in range(5):  # unchanged: never sent
        rows.append(
            dict(ad_group=103, keyword=4000 + k, predicted=1.0, micros=bid_micros(1.0), status="ENABLED", changed=False)
        )
    return keyword_table(rows), {r["keyword"]: r for r in rows}


def sent_operations(state: LocalGoogleAds, only_ok: bool = True) -> list:
    return [
        op for call in state.calls(MUTATE) if call.answered == "OK" or not only_ok for op in call.request.operations
    ]


def test_upload_sends_only_changed_keywords_in_batches_with_masks_micros_and_one_retry(server):
    state, servers = server
    keywords, by_id = day_of_keywords()
    state.mutate_faults = [grpc.StatusCode.RESOURCE_EXHAUSTED]
    state.reject = {3002, 3005}
    lines = []

    result = upload.upload_bids(
        api_for(servers).client(),
        "1234567890",
        keywords,
        RULE,
        live=False,
        max_operations=3,
        retry=FAST,
        log=lines.append,
    )

    calls = state.calls(MUTATE)
    # 9 changed keywords -> requests of 3, 3, 3; the first was answered RESOURCE_EXHAUSTED and sent again
    assert [c.answered for c in calls] == ["RESOURCE_EXHAUSTED", "OK", "OK", "OK"]
    assert [len(c.request.operations) for c in calls] == [3, 3, 3, 3]
    assert calls[0].request == calls[1].request  # the retry resends the same operations
    assert result.requests == 3 and result.attempts == 4 and result.retries == 1
    assert len(lines) == 1 and "RESOURCE_EXHAUSTED" in lines[0]
    for call in calls:
        assert call.request.customer_id == "1234567890"
        assert call.request.partial_failure is True
        assert call.request.validate_only is True  # a dry run unless live
    operations = sent_operations(state)
    sent_ids = [int(op.update.resource_name.rsplit("~", 1)[1]) for op in operations]
    assert sorted(sent_ids) == sorted(k for k, r in by_id.items() if r["changed"])
    assert not set(sent_ids) & {k for k, r in by_id.items() if not r["changed"]}
    for op, keyword in zip(operations, sent_ids, strict=True):
        row = by_id[keyword]
        assert op.update.resource_name == f"customers/1234567890/adGroupCriteria/{row['ad_group']}~{keyword}"
        paths = list(op.update_mask.paths)
        if row["status"] == "ENABLED":
            assert paths == ["cpc_bid_micros", "status"]
            assert op.update.cpc_bid_micros == row["micros"] and op.update.cpc_bid_micros % 10_000 == 0
            assert op.update.status == AdGroupCriterionStatusEnum.AdGroupCriterionStatus.ENABLED
        elif row["by_astro"]:
            assert paths == ["status"]
            assert op.update.status == AdGroupCriterionStatusEnum.AdGroupCriterionStatus.PAUSED
        else:  # a person's pause: Astro sets the bid, never the status
            assert paths == ["cpc_bid_micros"] and op.update.cpc_bid_micros == row["micros"]

    log = result.log.to_pandas().set_index("keyword_id")
    assert len(log) == 9 and result.unchanged == 5
    assert set(log.index[~log["accepted"]]) == {3002, 3005}
    assert log.loc[3002, "error"].startswith("criterion_error.INVALID_KEYWORD_TEXT: criterion 3002 rejected")
    assert log["error"][log["accepted"]].isna().all()
    assert log["validate_only"].all() and log["sent"].all()
    assert (
        log.loc[3000, "cpc_bid_micros"] == by_id[3000]["micros"]
        and log.loc[3000, "update_mask"] == "cpc_bid_micros,status"
    )
    assert pd.isna(log.loc[3100, "cpc_bid_micros"]) and log.loc[3100, "status"] == "PAUSED"
    summary = upload.summarise_upload_log(result.log, RULE)
    assert (summary.rejected, summary.accepted, summary.above_break_even) == (2, 7, 0)


def test_live_upload_is_not_validate_only(server):
    state, servers = server
    keywords, _ = day_of_keywords()
    result = upload.upload_bids(api_for(servers).client(), "1234567890", keywords, RULE, live=True, retry=FAST)
    (call,) = state.calls(MUTATE)
    assert call.request.validate_only is False and call.request.partial_failure is True
    assert result.accepted == 9


def test_default_batch_is_ten_thousand_operations(server):
    state, servers = server
    n = upload.MAX_OPERATIONS_PER_REQUEST + 1
    keywords = keyword_table(
        [
            dict(ad_group=7, keyword=10_000 + k, predicted=1.0, micros=bid_micros(1.0), status="ENABLED", changed=True)
            for k in range(n)
        ]
    )
    result = upload.upload_bids(api_for(servers).client(), "1234567890", keywords, RULE, live=False, retry=FAST)
    assert [len(c.request.operations) for c in state.calls(MUTATE)] == [10_000, 1]
    assert result.log.num_rows == n and result.accepted == n
    with pytest.raises(ValueError, match="max_operations"):
        upload.upload_bids(None, "1234567890", keywords, RULE, live=False, max_operations=10_001)


def test_a_bid_above_break_even_refuses_the_whole_upload(server):
    state, servers = server
    keywords, _ = day_of_keywords()
    micros = keywords.column("max_cpc_micros").to_pylist()
    micros[3] = bid_micros(keywords.column("predicted_value_per_click")[3].as_py()) + 10_000  # one cent over
    keywords = keywords.set_column(
        keywords.schema.get_field_index("max_cpc_micros"), "max_cpc_micros", pa.array(micros, pa.int64())
    )
    with pytest.raises(upload.UploadRefused, match="1 bids above break-even"):
        upload.upload_bids(api_for(servers).client(), "1234567890", keywords, RULE, live=True, retry=FAST)
    assert state.calls(MUTATE) == []


def test_a_request_that_keeps_failing_stops_the_upload_and_is_logged(server):
    state, servers = server
    keywords, _ = day_of_keywords()
    # request 1 served; request 2 answered RESOURCE_EXHAUSTED on both of its attempts
    state.mutate_faults = [None, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.RESOURCE_EXHAUSTED]
    policy = RetryPolicy(max_attempts=2, initial_delay=0.01)
    result = upload.upload_bids(
        api_for(servers).client(), "1234567890", keywords, RULE, live=False, max_operations=3, retry=policy
    )
    assert [c.answered for c in state.calls(MUTATE)] == ["OK", "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"]
    assert result.request_error.startswith("request 2: RESOURCE_EXHAUSTED")
    assert result.log.column("sent").to_pylist() == [True] * 6 + [False] * 3
    assert result.log.column("accepted").to_pylist() == [True] * 3 + [False] * 6
    errors = result.log.column("error").to_pylist()
    assert all(e.startswith("request 2: RESOURCE_EXHAUSTED") for e in errors[3:6])
    assert all(e.startswith("not sent: an earlier request failed") for e in errors[6:])


# -- Dagster: the bid_upload asset, its checks, credentials only through EnvVar --------------------

SECRETS = {
    "GOOGLE_ADS_DEVELOPER_TOKEN": "sentinel-developer-token-7f3a",
    "GOOGLE_ADS_CLIENT_ID": "sentinel-client-id-19c2",
    "GOOGLE_ADS_CLIENT_SECRET": "sentinel-client-secret-a8d1",
    "GOOGLE_ADS_REFRESH_TOKEN": "sentinel-refresh-token-5be0",
    "GOOGLE_ADS_LOGIN_CUSTOMER_ID": "555-444-3333",
    "GOOGLE_ADS_CUSTOMER_ID": CUSTOMER,
}


def publish_bid_day(data: Path, day: dt.date, keywords: pa.Table) -> None:
    layout = DataLayout(data)
    with publish_partition(layout.partition_dir(BID_FILE, day)) as staging:
        pq.write_table(keywords, layout.bid_keywords_file(staging))


def upload_definitions(data: Path, api: GoogleAdsApi) -> tuple[list, dict]:
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
    assets = [bid_upload_asset(partitions), *bid_upload_checks(partitions)]
    resources = {"storage": AstroStorage(data_dir=str(data)), "bid_policy": BidPolicy(), "google_ads": api}
    return assets, resources


def test_bid_upload_asset_with_credentials_from_env_vars(server, tmp_path, dagster_instance, monkeypatch):
    state, servers = server
    env = {**SECRETS, "GOOGLE_ADS_ENDPOINT": servers.endpoint, "GOOGLE_ADS_TOKEN_URI": servers.token_uri}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    state.developer_token = SECRETS["GOOGLE_ADS_DEVELOPER_TOKEN"]
    state.reject = {3004}
    keywords, _ = day_of_keywords()
    data = tmp_path / "data"
    publish_bid_day(data, DAY, keywords)
    api = google_ads_api_from_env(live=False).model_copy(update={"retry_initial_delay_seconds": 0.01})
    assets, resources = upload_definitions(data, api)

    result = dg.materialize(assets, partition_key=DAY.isoformat(), resources=resources, instance=dagster_instance)

    assert result.success
    (call,) = state.calls(MUTATE)
    assert call.metadata["developer-token"] == SECRETS["GOOGLE_ADS_DEVELOPER_TOKEN"]
    assert call.metadata["login-customer-id"] == "5554443333"
    assert call.request.customer_id == "1234567890" and call.request.validate_only is True
    assert state.token_requests[0]["client_secret"] == SECRETS["GOOGLE_ADS_CLIENT_SECRET"]
    metadata = result.asset_materializations_for_node(BID_UPLOAD)[0].metadata
    assert metadata["operations"].value == 9 and metadata["rejected"].value == 1 and metadata["unchanged"].value == 5
    assert metadata["mode"].value.startswith("validate_only")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[REJECTIONS_CHECK].passed is False
    assert checks[REJECTIONS_CHECK].metadata["rejected"].value == 1
    assert "3004" in checks[REJECTIONS_CHECK].metadata["rejections"].value
    assert checks[BREAK_EVEN_CHECK].passed is True
    log = pq.read_table(DataLayout(data).bid_upload_log(DataLayout(data).partition_dir(BID_UPLOAD, DAY)))
    assert log.num_rows == 9

    # no credential or id value anywhere Dagster or Astro wrote: instance (runs, events, logs) and data
    values = [v for v in SECRETS.values()] + [
        SECRETS["GOOGLE_ADS_CUSTOMER_ID"].replace("-", ""),
        SECRETS["GOOGLE_ADS_LOGIN_CUSTOMER_ID"].replace("-", ""),
    ]
    files = [p for root in (Path(dagster_instance.root_directory), data) for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        for value in values:
            assert value.encode() not in content, f"{value!r} found in {path}"
    for event in result.all_events:
        for value in values:
            assert value not in str(event)


def test_missing_credentials_name_the_variables(tmp_path, dagster_instance, monkeypatch):
    for name in (
        "GOOGLE_ADS_DEVELOPER_TOKEN",
        "GOOGLE_ADS_CLIENT_ID",
        "GOOGLE_ADS_CLIENT_SECRET",
        "GOOGLE_ADS_REFRESH_TOKEN",
        "GOOGLE_ADS_JSON_KEY_FILE_PATH",
        "GOOGLE_ADS_CUSTOMER_ID",
        "GOOGLE_ADS_LOGIN_CUSTOMER_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_ADS_DEVELOPER_TOKEN", "x-dev-token")
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_ID", "x-client")
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_SECRET", "x-secret")
    keywords, _ = day_of_keywords()
    data = tmp_path / "data"
    publish_bid_day(data, DAY, keywords)
    assets, resources = upload_definitions(data, google_ads_api_from_env())

    result = dg.materialize(
        assets, partition_key=DAY.isoformat(), resources=resources, instance=dagster_instance, raise_on_error=False
    )

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error.message)
    assert "GOOGLE_ADS_CUSTOMER_ID" in message
    assert "GOOGLE_ADS_REFRESH_TOKEN (OAuth" in message and "GOOGLE_ADS_JSON_KEY_FILE_PATH (service account)" in message
    assert "GOOGLE_ADS_DEVELOPER_TOKEN" not in message and "GOOGLE_ADS_CLIENT_SECRET" not in message.split("OAuth:")[0]
    assert not DataLayout(data).partition_dir(BID_UPLOAD, DAY).exists()


# -- the code location: chosen by settings, in no job by default ----------------------------------

API_NAMES = (
    "GOOGLE_ADS_DEVELOPER_TOKEN",
    "GOOGLE_ADS_CLIENT_ID",
    "GOOGLE_ADS_CLIENT_SECRET",
    "GOOGLE_ADS_REFRESH_TOKEN",
    "GOOGLE_ADS_JSON_KEY_FILE_PATH",
    "GOOGLE_ADS_CUSTOMER_ID",
    "GOOGLE_ADS_LOGIN_CUSTOMER_ID",
    "ASTRO_KEYWORD_SOURCE",
    "ASTRO_GOOGLE_ADS_UPLOAD",
)


def definitions_with(monkeypatch, tmp_path, **env):
    from astro_assets.defs import build_definitions
    from astro_assets.settings import load_settings

    for name in API_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ASTRO_DATA_DIR", str(tmp_path / "data"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return build_definitions(load_settings())


def test_without_api_settings_bid_upload_is_in_no_job_and_the_source_is_unchanged(monkeypatch, tmp_path):
    from astro_assets.defs.resources import KeywordSource

    defs = definitions_with(monkeypatch, tmp_path)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert BID_UPLOAD in keys
    assert graph.get(dg.AssetKey(BID_UPLOAD)).parent_keys == {dg.AssetKey(BID_FILE)}
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {(BID_UPLOAD, REJECTIONS_CHECK), (BID_UPLOAD, BREAK_EVEN_CHECK)} <= checks
    for job in defs.resolve_all_job_defs():
        if not job.name.startswith("__ASSET_JOB"):
            assert dg.AssetKey(BID_UPLOAD) not in job.asset_layer.selected_asset_keys, job.name
    assert "bid_upload_job" not in {j.name for j in defs.resolve_all_job_defs()}
    assert "bid_upload_schedule" not in {s.name for s in defs.schedules or []}
    assert graph.get(dg.AssetKey(BID_UPLOAD)).automation_condition is None
    source = defs.resources["keyword_source"]
    assert isinstance(source, KeywordSource) and not isinstance(source, GoogleAdsApiKeywordSource)
    assert defs.resources["google_ads"].upload_live is False and not defs.resources["google_ads"].configured


def test_api_settings_choose_the_source_the_job_the_schedule_and_live(monkeypatch, tmp_path):
    defs = definitions_with(
        monkeypatch,
        tmp_path,
        GOOGLE_ADS_DEVELOPER_TOKEN="t",
        GOOGLE_ADS_CLIENT_ID="c",
        GOOGLE_ADS_CLIENT_SECRET="s",
        GOOGLE_ADS_REFRESH_TOKEN="r",
        GOOGLE_ADS_CUSTOMER_ID="1234567890",
        ASTRO_KEYWORD_SOURCE="google_ads_api",
        ASTRO_GOOGLE_ADS_UPLOAD="live",
    )
    job = defs.resolve_job_def("bid_upload_job")
    assert job.asset_layer.selected_asset_keys == {dg.AssetKey(BID_UPLOAD)}
    schedule = defs.resolve_schedule_def("bid_upload_schedule")
    assert schedule.job_name == "bid_upload_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    source = defs.resources["keyword_source"]
    assert isinstance(source, GoogleAdsApiKeywordSource)
    api = defs.resources["google_ads"]
    assert api.upload_live is True
    # the resource holds EnvVars (names), never the values
    assert (
        isinstance(api.developer_token, dg.EnvVar) and api.developer_token.env_var_name == "GOOGLE_ADS_DEVELOPER_TOKEN"
    )


def test_upload_mode_and_source_settings_refuse_nonsense(monkeypatch, tmp_path):
    from astro_assets.settings import SettingsError

    with pytest.raises(SettingsError, match="ASTRO_GOOGLE_ADS_UPLOAD='yes'"):
        definitions_with(monkeypatch, tmp_path, ASTRO_GOOGLE_ADS_UPLOAD="yes")
    with pytest.raises(SettingsError, match="ASTRO_KEYWORD_SOURCE='adwords'"):
        definitions_with(monkeypatch, tmp_path, ASTRO_KEYWORD_SOURCE="adwords")


def test_a_service_account_key_file_authenticates_too(server, tmp_path):
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    state, servers = server
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file = tmp_path / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "astro@example.iam.gserviceaccount.com",
                "private_key_id": "local",
                "private_key": pem.decode(),
                "token_uri": servers.token_uri,  # the key file says where to get tokens
            }
        )
    )
    api = GoogleAdsApi(
        developer_token="dev",
        json_key_file_path=str(key_file),
        impersonated_email="ads-user@example.com",
        customer_id=CUSTOMER,
        endpoint=servers.endpoint,
    )
    keywords, _ = day_of_keywords()
    result = upload.upload_bids(api.client(), api.customer(), keywords, RULE, live=False, retry=FAST)
    assert result.accepted == 9
    (token,) = state.token_requests
    assert token["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer" and token["assertion"].count(".") == 2
