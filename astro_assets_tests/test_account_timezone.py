"""The account's time zone (ASTRO_ACCOUNT_TIMEZONE) decides what day a partition is, when a day is over,
when the daily schedule fires and which report days ingest refuses as not over — tested for an account in
Los Angeles and one in Tokyo around midnight UTC, with the real definitions and Dagster's own evaluation."""

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from astro_assets.core.calendar import account_today
from astro_assets.defs import build_definitions
from astro_assets.settings import SettingsError, load_settings
from astro_assets.sources.google_ads_report import IngestError, ingest
from astro_assets.storage import DataLayout

UTC = dt.UTC
DATA = Path(__file__).parent / "data"
#: Just after midnight UTC on 27 November: still the 26th in Los Angeles (16:30), already the 27th in Tokyo.
JUST_AFTER_MIDNIGHT_UTC = dt.datetime(2026, 11, 27, 0, 30, tzinfo=UTC)
#: Just before midnight UTC on 26 November: the 26th in Los Angeles (15:30), the 27th in Tokyo (08:30).
JUST_BEFORE_MIDNIGHT_UTC = dt.datetime(2026, 11, 26, 23, 30, tzinfo=UTC)


def definitions(timezone: str, hour: int = 6) -> dg.Definitions:
    settings = dataclasses.replace(load_settings(), account_timezone=timezone, daily_run_hour=hour)
    return build_definitions(settings)


def last_partition(defs: dg.Definitions, now: dt.datetime) -> str | None:
    partitions = defs.get_assets_def("raw_features").partitions_def
    with dg.partition_loading_context(effective_dt=now):
        return partitions.get_last_partition_key()


@pytest.mark.parametrize(
    "timezone, now, last_day",
    [
        ("UTC", JUST_AFTER_MIDNIGHT_UTC, "2026-11-26"),  # the 26th is over in UTC
        ("America/Los_Angeles", JUST_AFTER_MIDNIGHT_UTC, "2026-11-25"),  # 16:30 on the 26th: not over there
        ("Asia/Tokyo", JUST_AFTER_MIDNIGHT_UTC, "2026-11-26"),  # 09:30 on the 27th
        ("UTC", JUST_BEFORE_MIDNIGHT_UTC, "2026-11-25"),
        ("America/Los_Angeles", JUST_BEFORE_MIDNIGHT_UTC, "2026-11-25"),
        ("Asia/Tokyo", JUST_BEFORE_MIDNIGHT_UTC, "2026-11-26"),  # 08:30 on the 27th: the 26th is over in Tokyo
    ],
)
def test_a_day_is_a_partition_once_it_is_over_in_the_account(timezone, now, last_day):
    defs = definitions(timezone)
    assert defs.get_assets_def("raw_features").partitions_def.timezone == timezone
    assert last_partition(defs, now) == last_day
    assert (account_today(timezone, now) - dt.timedelta(days=1)).isoformat() == last_day


@pytest.mark.parametrize(
    "timezone, fires_at_utc, partition",
    [
        # 06:00 in Los Angeles on the 27th (PST, UTC-8) is 14:00 UTC: the run is for the 26th there.
        ("America/Los_Angeles", dt.datetime(2026, 11, 27, 14, 0, tzinfo=UTC), "2026-11-26"),
        # 06:00 in Tokyo on the 27th (UTC+9) is 21:00 UTC on the 26th: the run is for the 26th in Tokyo,
        # a day that is not over in UTC yet.
        ("Asia/Tokyo", dt.datetime(2026, 11, 26, 21, 0, tzinfo=UTC), "2026-11-26"),
    ],
)
def test_the_daily_schedule_fires_after_the_accounts_midnight(dagster_instance, timezone, fires_at_utc, partition):
    defs = definitions(timezone)
    schedule = defs.get_schedule_def("daily_bid_job_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * *", timezone)
    local = fires_at_utc.astimezone(ZoneInfo(timezone))
    assert (local.day, local.hour, local.minute) == (27, 6, 0)  # the cron's 06:00, on the account's clock
    context = dg.build_schedule_context(
        instance=dagster_instance, scheduled_execution_time=fires_at_utc, repository_def=defs.get_repository_def()
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == [partition]


def test_the_run_hour_is_a_setting(monkeypatch):
    monkeypatch.setenv("ASTRO_ACCOUNT_TIMEZONE", "Asia/Tokyo")
    monkeypatch.setenv("ASTRO_DAILY_RUN_HOUR", "9")
    settings = load_settings()
    assert (settings.account_timezone, settings.daily_run_hour) == ("Asia/Tokyo", 9)
    schedule = build_definitions(settings).get_schedule_def("daily_bid_job_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 9 * * *", "Asia/Tokyo")


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("ASTRO_ACCOUNT_TIMEZONE", "Mars/Olympus_Mons", "not an IANA time zone name"),
        ("ASTRO_ACCOUNT_TIMEZONE", "../../etc/passwd", "not an IANA time zone name"),
        ("ASTRO_DAILY_RUN_HOUR", "24", "not an hour of the day"),
        ("ASTRO_DAILY_RUN_HOUR", "six", "not an hour of the day"),
    ],
)
def test_a_nonsense_time_setting_stops_at_load(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"{name}={value!r} is {message}"):
        load_settings()


def test_ingest_refuses_a_day_not_over_in_the_accounts_time_zone(tmp_path):
    """The UI report holds 2026-11-22 and 2026-11-23. Just after midnight UTC on the 24th, the 23rd is
    over in UTC and in Tokyo, but not in Los Angeles (16:30 on the 23rd)."""
    now = dt.datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
    report = [str(DATA / "google_ads_ui_keyword_report.csv")]
    first = dt.date(2026, 1, 1)
    for timezone in ("UTC", "Asia/Tokyo"):
        summary = ingest(report, DataLayout(tmp_path / timezone), account_today(timezone, now), first)
        assert summary.days == 2
    with pytest.raises(IngestError, match="column 'Day': 4 rows for 2026-11-23 or later in the account's time zone"):
        ingest(report, DataLayout(tmp_path / "la"), account_today("America/Los_Angeles", now), first)
    assert not (tmp_path / "la").exists()
    assert account_today("America/Los_Angeles", now) == now.astimezone(ZoneInfo("America/Los_Angeles")).date()
