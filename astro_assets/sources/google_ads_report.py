"""Real Google Ads keyword reports, read and validated into ``raw_features`` days
(``python -m astro_assets.cli.ingest FILE...`` and the ``GoogleAdsReportFolder`` source).

Every export of the keyword / search keyword report is recognised from its bytes (``report_files``):
the UI's CSV (UTF-8, with or without BOM) and "Excel .csv" (UTF-16 with BOM, tab-separated), comma-,
tab- or semicolon-separated, in English, French, German or Spanish (``report_languages``: a title and a
date-range line above the header, ``Total: …`` rows in any column, ``--`` where there is no figure), and
the same data named by the Google Ads API's ``keyword_view`` fields, as CSV or Parquet. Figures are read
in the report language's number convention or the one given (``report_numbers``): a value that convention
cannot read, or one that is ambiguous, is refused by name, never guessed.

A keyword is identified as Google Ads identifies it: the pair (ad group id, criterion id) — the criterion
id of the same text and match type is shared across ad groups. Where the report has no match type column,
the keyword's notation says it (``[exact]``, ``"phrase"``, otherwise broad).

Every file is read and validated before anything is written: a file that cannot be read, a missing
column, a value that is not a number, a negative metric, more clicks than impressions, two rows for the
same (ad group, criterion, day), a criterion id with two texts, NaN/Inf, an identity or name cell left
empty, a metric column empty in every row, no rows, a currency sign that contradicts ``Currency code``, or
a day that is not over yet in the account's time zone (or before the first partition) is refused with one
message per problem naming the file, the column and the count, and no partition changes. ``--`` or empty
metric cells are nulls: counted in the ingest summary and handled by the null policy
(``core.features.NULL_POLICY``; the null check on ``raw_features`` holds them to its tolerances). Then each
day present is published as its ``raw_features`` partition — only if its content changed
(``storage.raw.write_raw_partition``) — and the command prints the rows, days and nulls, and which days
changed. Columns the mapping does not name are ignored (and listed on stderr).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from astro_assets.core.features import RAW_COLUMNS, STATUS_COLUMNS, raw_schema
from astro_assets.sources.report_files import UnreadableReport, read_report_file
from astro_assets.sources.report_languages import (
    API,
    CURRENCY,
    DAY,
    ENGLISH,
    MATCH_TYPE_WORDS,
    Language,
    best_language,
    header_matches,
    normal,
)
from astro_assets.sources.report_numbers import (
    API_IMPRESSION_SHARE_BUCKETS,
    LOCALES,
    MACHINE,
    Column,
    convention_problems,
    currency_problems,
    examples,
    read_column,
    text_cells,
)
from astro_assets.storage import DataLayout
from astro_assets.storage.raw import RawWrite, write_raw_partition

#: Google Ads API (GAQL ``keyword_view``) field -> raw_features column; ``None`` marks the day column.
API_COLUMNS: dict[str, str | None] = {
    names[0]: (None if target == DAY else target) for target, names in API.columns.items()
}
#: The English UI's column names (current names) -> raw_features column; ``None`` marks the day column.
UI_COLUMNS: dict[str, str | None] = {
    names[0]: (None if target == DAY else target) for target, names in ENGLISH.columns.items()
}
#: Report columns that may be absent (they become nulls, which the null policy handles; an absent
#: status column is an unknown status, and the day's partition has no such column).
OPTIONAL = {"quality_score", "search_impression_share", "conversion_value", "match_type", CURRENCY, *STATUS_COLUMNS}
#: Identity and name columns: a row without one of them cannot be a keyword.
REQUIRED_VALUES = (
    "campaign_id",
    "campaign_name",
    "ad_group_id",
    "ad_group_name",
    "keyword_id",
    "keyword_text",
    "match_type",
)
#: Metrics that must be in the report; a cell may be ``--`` (a null), the whole column may not.
METRICS = ("impressions", "clicks", "cost_micros", "conversions")
IDS = ("campaign_id", "ad_group_id", "keyword_id")
INTEGER_COLUMNS = (*IDS, "impressions", "clicks", "quality_score")
NON_NEGATIVE = ("impressions", "clicks", "cost_micros", "conversions", "conversion_value")
NUMERIC = ("impressions", "clicks", "cost_micros", "conversions", "conversion_value", "quality_score")
MONEY = ("cost_micros", "conversion_value")
#: The pair Google Ads identifies a keyword by, and the day.
KEYWORD_DAY = ("ad_group_id", "keyword_id", "day")


class IngestError(ValueError):
    """A report that cannot be ingested; the message lists every problem found, one per line."""


@dataclass(frozen=True)
class Report:
    path: Path
    kind: str  # "ui" or "api"
    rows: pd.DataFrame  # raw_features columns plus "day"
    ignored_columns: tuple[str, ...]
    language: str = "en"
    locale: str = "en"
    #: Report column -> metric cells that were ``--`` or empty (nulls for the null policy).
    nulls: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestSummary:
    rows: int
    days: int
    nulls: dict[str, int]
    changed: list[dt.date]
    unchanged: list[dt.date]


def read_report(path: str | os.PathLike[str]) -> tuple[str, pd.DataFrame]:
    """The file as strings (text) or typed columns (Parquet), and which naming it uses ("ui" or "api")."""
    try:
        report = read_report_file(path)
    except UnreadableReport as error:
        raise IngestError(str(error)) from None
    return ("api" if report.language is API else "ui"), report.frame


def _drop_totals(frame: pd.DataFrame, language: Language) -> pd.DataFrame:
    """Without the ``Total: …`` rows (a label in any column) of a text report."""
    if frame.empty or not all(pd.api.types.is_string_dtype(frame[c]) for c in frame.columns):
        return frame
    labels = "|".join(normal(label) for label in language.totals)
    pattern = rf"^\s*(?:{labels})\s*:"
    totals = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        totals |= frame[column].astype("string").str.casefold().str.match(pattern).fillna(False).to_numpy(bool)
    return frame[~totals]


def _keyword_and_match(
    frame: pd.DataFrame, found: dict[str, str], where: str, problems: list[str]
) -> tuple[pd.Series, pd.Series]:
    """The keyword text without its match notation, and its match type (from the column, else the notation)."""
    text = text_cells(frame[found["keyword_text"]])
    exact = text.str.fullmatch(r"\[.*\]").fillna(False).astype(bool)
    phrase = text.str.fullmatch(r'".*"').fillna(False).astype(bool)
    plain = text.str.replace(r"^\[(.*)\]$", r"\1", regex=True).str.replace(r'^"(.*)"$', r"\1", regex=True)
    if "match_type" not in found:
        notation = pd.Series("BROAD", index=frame.index, dtype="string").mask(exact, "EXACT").mask(phrase, "PHRASE")
        return plain, notation.where(text.notna())
    source = found["match_type"]
    words = text_cells(frame[source])
    mapped = words.str.casefold().map(MATCH_TYPE_WORDS).astype("string")
    unknown = words.notna() & mapped.isna()
    if unknown.any():
        problems.append(
            f"{where}: column '{source}': {int(unknown.sum())} unknown match types (e.g. {examples(words, unknown)})"
        )
    contradicts = (exact & (mapped != "EXACT").fillna(False)) | (phrase & (mapped != "PHRASE").fillna(False))
    if contradicts.any():
        problems.append(
            f"{where}: columns '{found['keyword_text']}' and '{source}': {int(contradicts.sum())} keywords whose "
            f'[exact] / "phrase" notation contradicts their match type (e.g. {examples(text, contradicts)})'
        )
    return plain, mapped


def _statuses(frame: pd.DataFrame, source: str, language: Language, where: str, problems: list[str]) -> pd.Series:
    """A status column as ENABLED / PAUSED / REMOVED (``report_languages``: which column, which words);
    empty, ``--`` and the API's UNKNOWN / UNSPECIFIED are nulls (unknown). A word the language does not
    know is a problem (the file is refused), never a guess."""
    words = text_cells(frame[source])
    folded = words.str.casefold()
    unknown = words.notna() & ~folded.isin(list(language.statuses)).fillna(False).astype(bool)
    if unknown.any():
        problems.append(
            f"{where}: column '{source}': {int(unknown.sum())} unknown statuses (e.g. {examples(words, unknown)}; "
            f"expected one of {', '.join(w.capitalize() for w, v in language.statuses.items() if v)})"
        )
    return folded.map(language.statuses).astype("string")


def normalise(
    path: Path,
    kind: str,
    frame: pd.DataFrame,
    today: dt.date | None,
    first_day: dt.date,
    language: Language | None = None,
    locale: str | None = None,
) -> Report:
    """Map a report onto raw_features columns and validate it; raises IngestError listing every problem.

    ``today`` is the account's current date (a day is complete only once it is over); None skips that
    rule (a caller asking for a day that is already a partition). ``locale`` (``report_numbers.LOCALES``)
    overrides the report language's number convention."""
    where = str(path)
    if kind == "api":
        language = API
    elif language is None:
        language = best_language(list(frame.columns))[0]
    found = header_matches(list(frame.columns), language)
    missing = [names[0] for target, names in language.columns.items() if target not in found and target not in OPTIONAL]
    if missing:
        raise IngestError("\n".join(f"{where}: missing required column '{c}' ({kind} report)" for c in missing))
    frame = _drop_totals(frame, language)
    if frame.empty:
        raise IngestError(f"{where}: no keyword rows (an empty report would publish an empty day)")
    if kind == "api":
        number_format, explicit = MACHINE, False
    else:
        number_format, explicit = LOCALES[locale or language.locale], locale is not None
    problems: list[str] = []
    out = pd.DataFrame(index=frame.index)

    day_source = found[DAY]
    raw_day = text_cells(frame[day_source].astype("string"))
    days = pd.to_datetime(raw_day, format="%Y-%m-%d", errors="coerce").dt.date
    if days.isna().any():
        problems.append(f"{where}: column '{day_source}': {int(days.isna().sum())} values are not dates (YYYY-MM-DD)")
    if today is not None:
        late = days.notna() & (days >= today)
        if late.any():
            problems.append(
                f"{where}: column '{day_source}': {int(late.sum())} rows for {today} or later in the account's "
                f"time zone (a day's report is complete only once the day is over)"
            )
    early = days.notna() & (days < first_day)
    if early.any():
        problems.append(
            f"{where}: column '{day_source}': {int(early.sum())} rows before the first partition "
            f"({first_day}, ASTRO_START_DATE)"
        )
    out["day"] = days

    for target in ("campaign_name", "ad_group_name"):
        out[target] = text_cells(frame[found[target]])
    out["keyword_text"], out["match_type"] = _keyword_and_match(frame, found, where, problems)
    for target in STATUS_COLUMNS:
        if target in found:
            out[target] = _statuses(frame, found[target], language, where, problems)

    columns: dict[str, Column] = {}
    for target in IDS:
        columns[target], _ = read_column(frame[found[target]], found[target], MACHINE)
    codes = text_cells(frame[found[CURRENCY]]) if CURRENCY in found else None
    if codes is not None and codes.nunique() > 1:
        problems.append(
            f"{where}: column '{found[CURRENCY]}': {codes.nunique()} currencies "
            f"({', '.join(sorted(codes.dropna().unique()))}) in one report: Astro bids in one account currency"
        )
    metrics: list[Column] = []
    for target in (*NUMERIC, "search_impression_share"):
        if target not in found:
            continue
        source = found[target]
        column, signs = read_column(
            frame[source],
            source,
            number_format,
            percent=target == "search_impression_share" and kind == "ui",
            money=target in MONEY and kind == "ui",
        )
        columns[target] = column
        metrics.append(column)
        if target in MONEY:
            problems += currency_problems(where, source, signs, codes, found.get(CURRENCY, ""))
    problems += convention_problems(where, [columns[t] for t in IDS], MACHINE, explicit=True)
    problems += convention_problems(where, metrics, number_format, explicit)

    for target in RAW_COLUMNS:
        if target in columns:
            out[target] = columns[target].values
        elif target not in out:
            out[target] = np.nan
    if kind == "ui":
        out["cost_micros"] = (out["cost_micros"] * 1_000_000).round()
    share = out["search_impression_share"]
    for reported, bucket in API_IMPRESSION_SHARE_BUCKETS.items():
        share = share.mask(np.isclose(share.fillna(-1.0), reported), bucket)
    out["search_impression_share"] = share

    infinite = {t: int(np.isinf(out[t].astype("float64")).sum()) for t in columns}
    for target, count in infinite.items():
        if count:
            problems.append(f"{where}: column '{found[target]}': {count} values are NaN or infinite")
    for target in REQUIRED_VALUES:
        source = found.get(target)
        if source is None:
            continue
        nulls = int(text_cells(frame[source]).isna().sum())
        if nulls == len(out):
            problems.append(f"{where}: column '{source}' is empty in all {nulls} rows")
        elif nulls:
            problems.append(f"{where}: column '{source}': {nulls} empty values")
    nulls = {}
    for target in (*METRICS, "conversion_value", "quality_score", "search_impression_share"):
        if target in columns:
            count = columns[target].nulls
            if count == len(out) and target in METRICS:
                problems.append(f"{where}: column '{found[target]}' is empty in all {count} rows")
            elif count:
                nulls[found[target]] = count
    for target in INTEGER_COLUMNS:
        values = out[target].astype("float64")
        fractional = int((np.isfinite(values) & (values != values.round())).sum())
        if fractional:
            problems.append(f"{where}: column '{found[target]}': {fractional} values are not whole numbers")
    for target in NON_NEGATIVE:
        negative = int((out[target] < 0).sum())
        if negative:
            problems.append(f"{where}: column '{found[target]}': {negative} negative values")
    too_many = int((out["clicks"] > out["impressions"]).sum())
    if too_many:
        problems.append(f"{where}: columns '{found['clicks']}' > '{found['impressions']}' in {too_many} rows")
    duplicated = int(out.duplicated(list(KEYWORD_DAY), keep=False).sum())
    if duplicated:
        problems.append(
            f"{where}: {duplicated} rows are two rows for the same (ad group, criterion, day) "
            f"('{found['ad_group_id']}', '{found['keyword_id']}', '{day_source}')"
        )
    texts = out.dropna(subset=["keyword_id", "keyword_text"]).groupby("keyword_id")["keyword_text"].nunique()
    if (texts > 1).any():
        example = int(texts[texts > 1].index[0])
        problems.append(
            f"{where}: column '{found['keyword_text']}': {int((texts > 1).sum())} keyword ids appear "
            f"with different texts (e.g. {example})"
        )
    if problems:
        raise IngestError("\n".join(problems))
    named = {name for target, name in found.items()}
    ignored = tuple(c for c in frame.columns if c not in named)
    return Report(path, kind, out, ignored, language.code, number_format.name, nulls)


def to_day_tables(reports: list[Report]) -> dict[dt.date, pa.Table]:
    """One raw_features table per day across all reports; an (ad group, criterion, day) in two files is refused."""
    rows = pd.concat([r.rows.assign(_file=str(r.path)) for r in reports], ignore_index=True)
    clash = rows.duplicated(list(KEYWORD_DAY), keep=False)
    if clash.any():
        files = sorted(rows.loc[clash, "_file"].unique())
        raise IngestError(
            f"{', '.join(files)}: {int(clash.sum())} rows are two rows for the same (ad group, criterion, day) "
            "across files"
        )
    tables = {}
    for day, group in rows.groupby("day"):
        # A status column is kept when the day has a status in it; without one it is unknown, as absent.
        statuses = [c for c in STATUS_COLUMNS if c in group.columns and group[c].notna().any()]
        schema = raw_schema(statuses)
        frame = group[schema.names].copy()
        for column in (*INTEGER_COLUMNS, "cost_micros"):
            frame[column] = frame[column].astype("Float64").round().astype("Int64")
        for column in ("conversions", "conversion_value", "search_impression_share"):
            frame[column] = frame[column].astype("float64")
        for column in statuses:
            frame[column] = frame[column].astype("string")
        tables[day] = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    return tables


def read_reports(
    paths: list[str], today: dt.date | None, first_day: dt.date, locale: str | None = None
) -> list[Report]:
    """Read and validate every file; raises one IngestError listing the problems of all of them."""
    reports, problems = [], []
    for path in paths:
        try:
            report = read_report_file(path)
            kind = "api" if report.language is API else "ui"
            reports.append(normalise(Path(path), kind, report.frame, today, first_day, report.language, locale))
        except (IngestError, UnreadableReport) as error:
            problems.append(str(error))
        except (ValueError, TypeError, KeyError, pa.ArrowException) as error:  # never a traceback for a file
            problems.append(f"{path}: cannot be read as a report ({type(error).__name__}: {error})")
    if problems:
        raise IngestError("\n".join(problems))
    return reports


def report_for_day(paths: list[str], day: dt.date, locale: str | None = None) -> pa.Table | None:
    """The raw_features table of ``day`` from the reports in ``paths`` (validated whole), None if no
    report has rows for it. Used by the ``GoogleAdsReportFolder`` source of the raw_features asset, which
    only asks for days that are partitions (over in the account's time zone): no future-day rule here."""
    reports = read_reports(paths, today=None, first_day=dt.date.min, locale=locale) if paths else []
    return to_day_tables(reports).get(day) if reports else None


def ingest(
    paths: list[str],
    layout: DataLayout,
    today: dt.date,
    first_day: dt.date,
    published: Callable[[dt.date, pa.Table, RawWrite], None] = lambda day, table, write: None,
    locale: str | None = None,
) -> IngestSummary:
    """Validate every file, then publish each day whose content changed (``published(day, table, write)``
    is told of each day written); returns what was ingested and which days changed."""
    reports = read_reports(paths, today, first_day, locale)
    for report in reports:
        if report.ignored_columns:
            print(f"astro ingest: {report.path}: ignored columns {', '.join(report.ignored_columns)}", file=sys.stderr)
    tables = to_day_tables(reports)
    changed, unchanged = [], []
    for day, table in sorted(tables.items()):
        write = write_raw_partition(layout, day, table)
        if write.changed:
            changed.append(day)
            published(day, table, write)
        else:
            unchanged.append(day)
    nulls: dict[str, int] = {}
    for report in reports:
        for column, count in report.nulls.items():
            nulls[column] = nulls.get(column, 0) + count
    return IngestSummary(sum(t.num_rows for t in tables.values()), len(tables), nulls, changed, unchanged)
