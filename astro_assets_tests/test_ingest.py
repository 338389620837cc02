"""`astro-ingest` (`python -m astro_assets.cli.ingest`): Google Ads reports (UI export, API field names as
CSV and Parquet) into raw_features partitions, and the catalogue of inputs it refuses without changing anything."""

import csv
import datetime as dt
import hashlib
import io
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from astro_assets.cli.ingest import main
from astro_assets.definitions import defs
from astro_assets.defs.resources import AstroStorage, GoogleAdsReportFolder
from astro_assets.sources.google_ads_report import IngestError

DATA = Path(__file__).parent / "data"
UI_REPORT = DATA / "google_ads_ui_keyword_report.csv"
API_REPORT = DATA / "google_ads_api_keyword_view.csv"
DAYS = ("2026-11-22", "2026-11-23")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("ASTRO_DATA_DIR", str(root))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return root


def day_table(root: Path, day: str) -> pd.DataFrame:
    return pq.read_table(root / "raw_features" / f"date={day}").to_pandas().sort_values("keyword_id", ignore_index=True)


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root`` with its hash and modification time."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_google_ads_ui_export_ingests(data_dir, capsys):
    assert main([str(UI_REPORT)]) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[0] == "ingested 8 rows for 2 days into raw_features"
    assert f"changed: {DAYS[0]}, {DAYS[1]}" in out
    assert "ignored columns Avg. CPC" in err  # Keyword status is read (raw_features.keyword_status)
    first = day_table(data_dir, DAYS[0])
    assert first.keyword_id.tolist() == [1001, 1002, 1003, 1004]  # the Total: rows are not keywords
    shoes, course, _, japanese = (first.iloc[i] for i in range(4))
    assert (shoes.impressions, shoes.clicks, shoes.cost_micros) == (1234, 56, 78_900_000)  # "1,234", EUR -> micros
    assert (shoes.conversion_value, shoes.search_impression_share, shoes.match_type) == (1234.5, 0.4512, "EXACT")
    assert pd.isna(course.quality_score) and course.search_impression_share == 0.05  # "--" and "< 10%"
    assert course.match_type == "PHRASE"
    assert (japanese.keyword_text, japanese.ad_group_name) == ("ランニングシューズ", "ランニング")
    assert pd.isna(japanese.conversion_value) and japanese.cost_micros == 1_105_200_000  # "--", "1,105.20"
    assert japanese.search_impression_share == 0.95  # "> 90%"


@pytest.mark.parametrize("as_parquet", [False, True], ids=["csv", "parquet"])
def test_api_field_names_give_the_same_partitions(data_dir, tmp_path, as_parquet):
    assert main([str(UI_REPORT)]) == 0
    from_ui = {day: day_table(data_dir, day) for day in DAYS}
    report = API_REPORT
    if as_parquet:
        report = tmp_path / "keyword_view.parquet"
        pd.read_csv(API_REPORT).to_parquet(report)
    api_dir = tmp_path / "api"
    os.environ["ASTRO_DATA_DIR"] = str(api_dir)
    assert main([str(report)]) == 0
    for day in DAYS:
        pd.testing.assert_frame_equal(day_table(api_dir, day), from_ui[day])


def test_reingesting_a_day_replaces_that_day_only(data_dir, tmp_path):
    assert main([str(UI_REPORT)]) == 0
    before = snapshot(data_dir / "raw_features" / f"date={DAYS[0]}")
    second_day_only = tmp_path / "second_day.csv"
    second_day_only.write_text("\n".join(line for line in UI_REPORT.read_text().splitlines() if DAYS[0] not in line))
    assert main([str(second_day_only)]) == 0
    assert snapshot(data_dir / "raw_features" / f"date={DAYS[0]}") == before
    assert len(day_table(data_dir, DAYS[1])) == 4


def _ui_rows() -> tuple[list[str], list[str], list[dict[str, str]], list[dict[str, str]]]:
    """The UI report as (preamble lines, columns, keyword rows, Total: rows)."""
    lines = UI_REPORT.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Keyword status"))
    reader = list(csv.DictReader(io.StringIO("\n".join(lines[header:]))))
    rows = [r for r in reader if not r["Keyword status"].startswith("Total:")]
    totals = [r for r in reader if r["Keyword status"].startswith("Total:")]
    return lines[:header], list(reader[0].keys()), rows, totals


def _write_ui(path: Path, edit) -> Path:
    """The UI report with ``edit(columns, rows)`` applied, laid out as Google Ads exports it."""
    preamble, columns, rows, totals = _ui_rows()
    columns, rows = edit(columns, rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows + totals)
    path.write_text("\n".join(preamble) + "\n" + buffer.getvalue(), encoding="utf-8")
    return path


def _set(column: str, value: str, row: int = 0):
    def edit(columns, rows):
        rows[row][column] = value
        return columns, rows

    return edit


def _drop_column(column: str):
    return lambda columns, rows: ([c for c in columns if c != column], rows)


def _every_row(column: str, value: str):
    return lambda columns, rows: (columns, [{**r, column: value} for r in rows])


TOMORROW = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()

#: (case, edit of the UI report, what the message must say besides the file name)
BAD_INPUTS = [
    ("missing required column", _drop_column("Clicks"), "missing required column 'Clicks'"),
    ("wrong type", _set("Clicks", "12 clicks"), "column 'Clicks': 1 values are not numbers (e.g. '12 clicks')"),
    ("fractional count", _set("Impr.", "12.5"), "column 'Impr.': 1 values are not whole numbers"),
    ("negative impressions", _set("Impr.", "-5"), "column 'Impr.': 1 negative values"),
    ("negative clicks", _set("Clicks", "-1", row=2), "column 'Clicks': 1 negative values"),
    ("negative cost", _set("Cost", "-3.20"), "column 'Cost': 1 negative values"),
    ("clicks above impressions", _set("Clicks", "5000"), "columns 'Clicks' > 'Impr.' in 1 rows"),
    (
        "duplicate keyword and day",
        lambda c, r: (c, r + [r[0]]),
        "2 rows are two rows for the same (ad group, criterion, day) ('Ad group ID', 'Keyword ID', 'Day')",
    ),
    ("column entirely null", _every_row("Cost", "--"), "column 'Cost' is empty in all 8 rows"),
    ("empty report", lambda c, r: (c, []), "no keyword rows"),
    ("day not over yet", _set("Day", TOMORROW), "column 'Day': 1 rows for"),
    ("infinite value", _set("Conv. value", "inf"), "column 'Conv. value': 1 values are NaN or infinite"),
    ("NaN value", _set("Conversions", "NaN"), "column 'Conversions': 1 values are not numbers (e.g. 'NaN')"),
    (
        "one id, two texts",
        _set("Keyword", "running shoes red", row=4),
        "column 'Keyword': 1 keyword ids appear with different texts (e.g. 1001)",
    ),
    ("unknown match type", _set("Match type", "Fuzzy match"), "column 'Match type': 1 unknown match types"),
    ("not a date", _set("Day", "22/11/2026"), "column 'Day': 1 values are not dates"),
]


@pytest.mark.parametrize("edit, message", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_a_bad_report_is_refused_and_nothing_written_changes(data_dir, tmp_path, capsys, edit, message):
    assert main([str(UI_REPORT)]) == 0  # what already exists must survive the bad file
    before = snapshot(data_dir)
    bad = _write_ui(tmp_path / "bad report.csv", edit)
    capsys.readouterr()
    assert main([str(UI_REPORT), str(bad)]) == 2  # a good file beside a bad one: nothing is written either
    _, err = capsys.readouterr()
    assert "nothing written" in err
    assert f"{bad}: " in err and message in err, err
    assert snapshot(data_dir) == before


def test_a_report_for_a_day_before_the_first_partition_is_refused(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ASTRO_START_DATE", "2026-11-23")
    assert main([str(UI_REPORT)]) == 2
    assert "column 'Day': 4 rows before the first partition (2026-11-23" in capsys.readouterr().err
    assert not data_dir.exists()


def test_the_same_keyword_day_in_two_files_is_refused(data_dir, tmp_path, capsys):
    assert main([str(UI_REPORT), str(API_REPORT)]) == 2
    assert "16 rows are two rows for the same (ad group, criterion, day) across files" in capsys.readouterr().err
    assert not data_dir.exists()


def test_a_missing_file_is_named(data_dir, tmp_path, capsys):
    assert main([str(tmp_path / "nowhere.csv")]) == 2
    assert f"{tmp_path / 'nowhere.csv'}: no such file" in capsys.readouterr().err


def test_the_raw_features_asset_reads_a_folder_of_reports(data_dir, tmp_path, dagster_instance):
    """ASTRO_REPORTS_DIR: the asset's source is the folder of reports, read exactly as ingest reads them."""
    assert main([str(UI_REPORT)]) == 0
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / UI_REPORT.name).write_bytes(UI_REPORT.read_bytes())
    asset_dir = tmp_path / "asset"
    result = dg.materialize(
        [defs.get_assets_def("raw_features")],
        partition_key=DAYS[1],
        instance=dagster_instance,
        resources={
            **defs.resources,  # the Spark session the raw_features checks run on before publishing
            "storage": AstroStorage(data_dir=str(asset_dir)),
            "keyword_source": GoogleAdsReportFolder(folder=str(folder)),
        },
    )
    assert result.success
    pd.testing.assert_frame_equal(day_table(asset_dir, DAYS[1]), day_table(data_dir, DAYS[1]))
    with pytest.raises(IngestError, match=f"{folder}: no report has rows for 2026-11-24"):
        GoogleAdsReportFolder(folder=str(folder)).keyword_report(dt.date(2026, 11, 24))
