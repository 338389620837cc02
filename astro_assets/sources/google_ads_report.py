"""Real Google Ads keyword reports, read and validated into ``raw_features`` days
(``python -m astro_assets.cli.ingest FILE...`` and the ``GoogleAdsReportFolder`` source).

Two formats, told apart by their header:

- the **search keyword report downloaded from the Google Ads UI** (CSV): a title line and a
  date-range line above the header, ``Total: …`` rows at the bottom, numbers with thousands
  separators, ``--`` for empty cells, money in the account currency, ``Exact match`` / ``Phrase
  match`` / ``Broad match``, a ``Keyword status`` column;
- the same data with the **Google Ads API's ``keyword_view`` field names** (``segments.date``,
  ``metrics.cost_micros``, …), as CSV or Parquet.

Every file is read and validated before anything is written: a file with a missing column, a value
that is not a number, a negative metric, more clicks than impressions, a duplicate (keyword, day), a
keyword id with two texts, NaN/Inf, an empty required column, no rows, or a day that is not over yet
(or before the first partition) is refused with one message per problem naming the file, the column
and the count, and no partition changes. Then each day present is published atomically as its
``raw_features`` partition (replacing that day, no other), and the command prints
``ingested <rows> rows for <days> days into raw_features``. Columns the mapping does not name are
ignored (and listed on stderr): reports carry many more than the model uses.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from astro_assets.core.features import RAW_COLUMNS, RAW_SCHEMA
from astro_assets.storage import DataLayout
from astro_assets.storage.raw import write_raw_partition

#: Google Ads UI column -> raw_features column. ``None`` marks the day column.
UI_COLUMNS: dict[str, str | None] = {
    "Day": None,
    "Campaign ID": "campaign_id",
    "Campaign": "campaign_name",
    "Ad group ID": "ad_group_id",
    "Ad group": "ad_group_name",
    "Keyword ID": "keyword_id",
    "Keyword": "keyword_text",
    "Match type": "match_type",
    "Impr.": "impressions",
    "Clicks": "clicks",
    "Cost": "cost_micros",
    "Conversions": "conversions",
    "Conv. value": "conversion_value",
    "Quality Score": "quality_score",
    "Search impr. share": "search_impression_share",
}
#: Google Ads API (GAQL ``keyword_view``) field -> raw_features column.
API_COLUMNS: dict[str, str | None] = {
    "segments.date": None,
    "campaign.id": "campaign_id",
    "campaign.name": "campaign_name",
    "ad_group.id": "ad_group_id",
    "ad_group.name": "ad_group_name",
    "ad_group_criterion.criterion_id": "keyword_id",
    "ad_group_criterion.keyword.text": "keyword_text",
    "ad_group_criterion.keyword.match_type": "match_type",
    "metrics.impressions": "impressions",
    "metrics.clicks": "clicks",
    "metrics.cost_micros": "cost_micros",
    "metrics.conversions": "conversions",
    "metrics.conversions_value": "conversion_value",
    "ad_group_criterion.quality_info.quality_score": "quality_score",
    "metrics.search_impression_share": "search_impression_share",
}
#: Report columns that may be absent (they become nulls, which the null policy handles).
OPTIONAL = {"quality_score", "search_impression_share"}
#: Columns that must have a value on every row.
NOT_NULL = (
    "campaign_id",
    "campaign_name",
    "ad_group_id",
    "ad_group_name",
    "keyword_id",
    "keyword_text",
    "match_type",
    "impressions",
    "clicks",
    "cost_micros",
    "conversions",
)
MATCH_TYPE_NAMES = {
    "exact match": "EXACT",
    "phrase match": "PHRASE",
    "broad match": "BROAD",
    "exact": "EXACT",
    "phrase": "PHRASE",
    "broad": "BROAD",
}
INTEGER_COLUMNS = ("campaign_id", "ad_group_id", "keyword_id", "impressions", "clicks", "quality_score")
NON_NEGATIVE = ("impressions", "clicks", "cost_micros", "conversions", "conversion_value")
#: Google's bucketed impression share values.
IMPRESSION_SHARE_BUCKETS = {"< 10%": 0.05, "> 90%": 0.95}


class IngestError(ValueError):
    """A report that cannot be ingested; the message lists every problem found, one per line."""


@dataclass(frozen=True)
class Report:
    path: Path
    kind: str  # "ui" or "api"
    rows: pd.DataFrame  # raw_features columns plus "day"
    ignored_columns: tuple[str, ...]


def _read_ui_csv(path: Path) -> pd.DataFrame:
    """The UI export: skip the title and date-range lines above the header, drop ``Total:`` rows."""
    with path.open(encoding="utf-8-sig") as f:
        lines = f.read().splitlines()
    header = next(
        (i for i, fields in enumerate(csv.reader(lines[:10])) if {"Keyword", "Keyword ID"} & set(fields)), None
    )
    if header is None:
        raise IngestError(f"{path}: no header row (with a 'Keyword' or 'Keyword ID' column) in its first 10 lines")
    try:
        frame = pd.read_csv(io.StringIO("\n".join(lines[header:])), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as error:
        raise IngestError(
            f"{path}: not a well-formed CSV report below its header (line {header + 1}): {error}"
        ) from None
    first = frame.columns[0]
    totals = frame[first].str.startswith("Total:") | (frame == "").all(axis=1)
    return frame[~totals]


def read_report(path: str | os.PathLike[str]) -> tuple[str, pd.DataFrame]:
    """The file as strings (CSV) or typed columns (Parquet), and which naming it uses."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
    else:
        with path.open(encoding="utf-8-sig") as f:
            head = f.readline()
        frame = (
            pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            if "segments.date" in head
            else _read_ui_csv(path)
        )
    kind = "api" if "segments.date" in frame.columns else "ui"
    return kind, frame


def _text(series: pd.Series) -> pd.Series:
    """Strings with the UI's empty markers (``--``, blank) as nulls."""
    values = series.astype("string").str.strip()
    return values.mask(values.isin(["--", ""]))


def _numbers(
    series: pd.Series, column: str, problems: list[str], where: str, percent: bool = False, money: bool = False
) -> pd.Series:
    """Parse a numeric column: thousands separators, ``--``, percentages and Google's ``< 10%``."""
    if pd.api.types.is_numeric_dtype(series):
        values = series.astype("float64")
    else:
        text = _text(series)
        if percent:
            text = text.replace({bucket: str(share * 100) for bucket, share in IMPRESSION_SHARE_BUCKETS.items()})
        cleaned = text.str.replace(",", "", regex=False).str.rstrip("%")
        if money:
            cleaned = cleaned.str.replace(r"^[^\d\-.]+", "", regex=True)  # a currency sign before the amount
        values = pd.to_numeric(cleaned, errors="coerce").astype("float64")
        bad = text.notna() & values.isna()
        if bad.any():
            examples = ", ".join(repr(v) for v in text[bad].unique()[:3])
            problems.append(f"{where}: column '{column}': {int(bad.sum())} values are not numbers (e.g. {examples})")
        if percent:
            values = values / 100.0
    infinite = ~np.isfinite(values) & values.notna()
    if infinite.any():
        problems.append(f"{where}: column '{column}': {int(infinite.sum())} values are NaN or infinite")
    return values


def normalise(path: Path, kind: str, frame: pd.DataFrame, today: dt.date, first_day: dt.date) -> Report:
    """Map a report onto raw_features columns and validate it; raises IngestError listing every problem."""
    mapping = UI_COLUMNS if kind == "ui" else API_COLUMNS
    by_target = {target: source for source, target in mapping.items()}
    day_column = by_target[None]
    missing = [source for source, target in mapping.items() if source not in frame.columns and target not in OPTIONAL]
    if missing:
        raise IngestError("\n".join(f"{path}: missing required column '{c}' ({kind} report)" for c in missing))
    if frame.empty:
        raise IngestError(f"{path}: no keyword rows (an empty report would publish an empty day)")
    problems: list[str] = []
    out = pd.DataFrame(index=frame.index)
    raw_day = _text(frame[day_column])
    days = pd.to_datetime(raw_day, format="%Y-%m-%d", errors="coerce").dt.date
    if days.isna().any():
        problems.append(f"{path}: column '{day_column}': {int(days.isna().sum())} values are not dates (YYYY-MM-DD)")
    late = days.notna() & (days >= today)
    if late.any():
        problems.append(
            f"{path}: column '{day_column}': {int(late.sum())} rows for {today} or later "
            f"(a day's report is complete only once the day is over)"
        )
    early = days.notna() & (days < first_day)
    if early.any():
        problems.append(
            f"{path}: column '{day_column}': {int(early.sum())} rows before the first partition "
            f"({first_day}, ASTRO_START_DATE)"
        )
    out["day"] = days
    for target in RAW_COLUMNS:
        source = by_target.get(target)
        if source not in frame.columns:
            out[target] = np.nan if target in OPTIONAL else None
            continue
        series = frame[source]
        if target in ("campaign_name", "ad_group_name", "keyword_text"):
            out[target] = _text(series)
        elif target == "match_type":
            text = _text(series)
            mapped = text.str.lower().map(MATCH_TYPE_NAMES)
            unknown = text.notna() & mapped.isna()
            if unknown.any():
                examples = ", ".join(repr(v) for v in text[unknown].unique()[:3])
                problems.append(
                    f"{path}: column '{source}': {int(unknown.sum())} unknown match types (e.g. {examples})"
                )
            out[target] = mapped
        elif target == "cost_micros":
            values = _numbers(series, source, problems, str(path), money=kind == "ui")
            out[target] = (values * 1_000_000).round() if kind == "ui" else values
        else:
            out[target] = _numbers(
                series, source, problems, str(path), percent=target == "search_impression_share" and kind == "ui"
            )
    for target in NOT_NULL:  # empty cells; cells that did not parse were reported above
        source = by_target[target]
        cells = frame[source]
        nulls = int((cells.isna() if pd.api.types.is_numeric_dtype(cells) else _text(cells).isna()).sum())
        if nulls == len(out):
            problems.append(f"{path}: column '{source}' is empty in all {nulls} rows")
        elif nulls:
            problems.append(f"{path}: column '{source}': {nulls} empty values")
    for target in INTEGER_COLUMNS:
        values = out[target].astype("float64")
        fractional = int((values.notna() & (values != values.round())).sum())
        if fractional:
            problems.append(f"{path}: column '{by_target[target]}': {fractional} values are not whole numbers")
    for target in NON_NEGATIVE:
        negative = int((out[target] < 0).sum())
        if negative:
            problems.append(f"{path}: column '{by_target[target]}': {negative} negative values")
    too_many = int((out["clicks"] > out["impressions"]).sum())
    if too_many:
        problems.append(f"{path}: columns '{by_target['clicks']}' > '{by_target['impressions']}' in {too_many} rows")
    duplicated = int(out.duplicated(["keyword_id", "day"], keep=False).sum())
    if duplicated:
        problems.append(f"{path}: {duplicated} rows share a ({by_target['keyword_id']}, {day_column}) with another row")
    texts = out.dropna(subset=["keyword_id", "keyword_text"]).groupby("keyword_id")["keyword_text"].nunique()
    if (texts > 1).any():
        example = int(texts[texts > 1].index[0])
        problems.append(
            f"{path}: column '{by_target['keyword_text']}': {int((texts > 1).sum())} keyword ids appear "
            f"with different texts (e.g. {example})"
        )
    if problems:
        raise IngestError("\n".join(problems))
    ignored = tuple(c for c in frame.columns if c not in mapping)
    return Report(path, kind, out, ignored)


def to_day_tables(reports: list[Report]) -> dict[dt.date, pa.Table]:
    """One raw_features table per day across all reports; a (keyword, day) in two files is refused."""
    rows = pd.concat([r.rows.assign(_file=str(r.path)) for r in reports], ignore_index=True)
    clash = rows.duplicated(["keyword_id", "day"], keep=False)
    if clash.any():
        files = sorted(rows.loc[clash, "_file"].unique())
        raise IngestError(f"{', '.join(files)}: {int(clash.sum())} rows share a (keyword id, day) across files")
    tables = {}
    for day, group in rows.groupby("day"):
        frame = group[list(RAW_COLUMNS)].copy()
        for column in INTEGER_COLUMNS + ("cost_micros",):
            frame[column] = frame[column].astype("Int64")
        tables[day] = pa.Table.from_pandas(frame, schema=RAW_SCHEMA, preserve_index=False)
    return tables


def read_reports(paths: list[str], today: dt.date, first_day: dt.date) -> list[Report]:
    """Read and validate every file; raises one IngestError listing the problems of all of them."""
    reports, problems = [], []
    for path in paths:
        try:
            kind, frame = read_report(path)
            reports.append(normalise(Path(path), kind, frame, today, first_day))
        except IngestError as error:
            problems.append(str(error))
    if problems:
        raise IngestError("\n".join(problems))
    return reports


def report_for_day(paths: list[str], day: dt.date) -> pa.Table | None:
    """The raw_features table of ``day`` from the reports in ``paths`` (validated whole), None if no
    report has rows for it. Used by the ``GoogleAdsReportFolder`` source of the raw_features asset."""
    reports = read_reports(paths, today=dt.datetime.now(dt.UTC).date(), first_day=dt.date.min) if paths else []
    return to_day_tables(reports).get(day) if reports else None


def ingest(
    paths: list[str], layout: DataLayout, today: dt.date, first_day: dt.date, published=lambda day, table: None
) -> tuple[int, int]:
    """Validate every file, then publish each day (``published(day, table)`` is told of each);
    returns (rows, days)."""
    reports = read_reports(paths, today, first_day)
    for report in reports:
        if report.ignored_columns:
            print(f"astro ingest: {report.path}: ignored columns {', '.join(report.ignored_columns)}", file=sys.stderr)
    tables = to_day_tables(reports)
    for day, table in sorted(tables.items()):
        write_raw_partition(layout, day, table)
        published(day, table)
    return sum(t.num_rows for t in tables.values()), len(tables)
