"""Figures of a Google Ads report as the UI writes them, read by locale and never guessed silently.

A locale is a number convention: the decimal separator and the characters that group thousands
(:data:`LOCALES`). A report is read under one convention — its language's (``report_languages``) or the
one given with ``astro-ingest --locale``. Every cell is also tried under the *other* family of
conventions (decimal point vs decimal comma), so that:

- a cell that only the chosen convention can read (``12,34`` under ``fr``) is evidence for it;
- a cell that only the other can read (``1,234.50`` under ``fr``) is evidence against it;
- a cell both read, to different values (``1,234``: 1.234 under ``fr``, 1234 under ``en``), is
  ambiguous. When the convention was inferred from the language, a file with evidence against it, or with
  ambiguous cells and no evidence for it, is refused by name (file, column, count, examples) with the
  ``--locale`` to pass; with an explicit ``--locale`` the user has decided and only unreadable cells are
  refused.

Money cells may carry the currency (``€1.25``, ``1,25 €``, ``EUR 12,34``): the sign or ISO code is
stripped and checked against the report's ``Currency code`` column when it has one. Percentages (``45,12 %``)
lose their ``%``; Google's impression share buckets ``< 10%`` and ``> 90%`` (the API's 0.0999 for the
first) become one encoding, :data:`IMPRESSION_SHARE_BUCKETS`, whatever the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from astro_assets.core.features import MISSING_IMPRESSION_SHARE

#: Cells the UI writes where it has no figure; they are nulls (the null policy replaces them).
EMPTY_MARKERS = ("--", "")
#: Google's bucketed impression shares (UI text, spaces removed) -> the one value Astro stores for them.
#: "< 10%" is the same bucket as the null policy's value (core.features.MISSING_IMPRESSION_SHARE).
IMPRESSION_SHARE_BUCKETS = {"<10%": MISSING_IMPRESSION_SHARE, ">90%": 0.95}
#: What the Google Ads API reports for a search impression share below 0.1 ("Any value below 0.1 is
#: reported as 0.0999": the metrics reference, https://developers.google.com/google-ads/api/fields/v14/metrics,
#: as quoted by the Google Ads API forum, 2023-07-06) -> the same bucket value as the UI's "< 10%".
API_IMPRESSION_SHARE_BUCKETS = {0.0999: MISSING_IMPRESSION_SHARE}

_SPACES = "\u0020\u00a0\u202f\u2009"  # space, no-break space, narrow no-break space, thin space


@dataclass(frozen=True)
class NumberFormat:
    """A number convention: the decimal separator and the characters grouping thousands."""

    name: str
    decimal: str
    groups: str

    def describe(self) -> str:
        groups = " or ".join("space" if c in _SPACES else repr(c) for c in dict.fromkeys(self.groups)) or "none"
        return f"{self.name} (decimal {self.decimal!r}, thousands {groups})"

    @property
    def pattern(self) -> re.Pattern[str]:
        group = f"[{re.escape(self.groups)}]" if self.groups else None
        grouped = rf"\d{{1,3}}(?:{group}\d{{3}})+" if group else None
        integer = rf"(?:{grouped}|\d+)" if grouped else r"\d+"
        return re.compile(rf"^[+-]?{integer}(?:{re.escape(self.decimal)}\d+)?$")

    def read(self, text: pd.Series) -> pd.Series:
        """Cells valid under this convention as float64, NaN elsewhere."""
        valid = text.str.match(self.pattern).fillna(False).astype(bool)
        plain = text.where(valid)
        for group in self.groups:
            plain = plain.str.replace(group, "", regex=False)
        plain = plain.str.replace(self.decimal, ".", regex=False)
        return pd.to_numeric(plain, errors="coerce").astype("float64")


LOCALES: dict[str, NumberFormat] = {
    "en": NumberFormat("en", ".", ","),
    "es-419": NumberFormat("es-419", ".", ","),
    "fr": NumberFormat("fr", ",", _SPACES),
    "de": NumberFormat("de", ",", "."),
    "es": NumberFormat("es", ",", "."),
}
#: The machine-written figures of an API-named report (``1234.5``, no grouping).
MACHINE = NumberFormat("api", ".", "")
#: The other family of conventions, tried against each cell to find evidence and ambiguity.
_OTHER_FAMILY = {".": LOCALES["de"], ",": LOCALES["en"]}

#: Currency signs -> the ISO codes they may stand for (checked against ``Currency code``).
CURRENCY_SIGNS: dict[str, frozenset[str]] = {
    "€": frozenset({"EUR"}),
    "$": frozenset({"USD", "CAD", "AUD", "NZD", "MXN", "ARS", "CLP", "COP", "SGD", "HKD", "TWD"}),
    "US$": frozenset({"USD"}),
    "R$": frozenset({"BRL"}),
    "£": frozenset({"GBP"}),
    "¥": frozenset({"JPY", "CNY"}),
    "₹": frozenset({"INR"}),
    "zł": frozenset({"PLN"}),
    "kr": frozenset({"SEK", "NOK", "DKK", "ISK"}),
    "Kč": frozenset({"CZK"}),
    "₩": frozenset({"KRW"}),
}
_CURRENCY = re.compile(
    r"^(?P<before>[^\d+\-.,\s]*)\s*(?P<number>[+-]?[\d.,\s\u00a0\u202f\u2009]*\d)\s*(?P<after>[^\d\s]*)$"
)


@dataclass
class Column:
    """One numeric column of a report read under a convention, with what the other family says."""

    source: str
    text: pd.Series  # the cells as read (markers as nulls), for the messages' examples
    values: pd.Series  # float64, NaN where null or unreadable
    present: pd.Series  # bool: a figure was written (not null, not "--")
    unreadable: pd.Series  # bool: neither family reads it
    for_chosen: pd.Series  # bool: only the chosen convention reads it
    against: pd.Series  # bool: only the other family reads it
    ambiguous: pd.Series  # bool: both read it, to different values

    @property
    def nulls(self) -> int:
        return int((~self.present).sum())


def text_cells(series: pd.Series) -> pd.Series:
    """Strings with the UI's empty markers (``--``, blank) as nulls."""
    values = series.astype("string").str.strip()
    return values.mask(values.isin(EMPTY_MARKERS))


def examples(text: pd.Series, mask: pd.Series, count: int = 3) -> str:
    return ", ".join(repr(v) for v in text[mask].unique()[:count])


def strip_currency(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Money cells without their currency sign or ISO code, and the sign or code found (null if none)."""
    parts = text.str.extract(_CURRENCY)
    sign = (parts["before"].fillna("") + parts["after"].fillna("")).str.strip()
    has_parts = parts["number"].notna()
    number = parts["number"].where(has_parts, text)
    return number.where(text.notna()), sign.where(has_parts & (sign != ""))


def _other(chosen: NumberFormat) -> NumberFormat | None:
    return None if chosen is MACHINE else _OTHER_FAMILY[chosen.decimal]


def read_column(
    series: pd.Series, source: str, chosen: NumberFormat, percent: bool = False, money: bool = False
) -> tuple[Column, pd.Series]:
    """Read a column of report cells under ``chosen``; returns the column and, for money, the currency
    sign or code of each cell (null where none)."""
    if pd.api.types.is_numeric_dtype(series):
        return numeric_column(series, source), pd.Series(pd.NA, index=series.index, dtype="string")
    text = text_cells(series)
    signs = pd.Series(pd.NA, index=series.index, dtype="string")
    buckets = pd.Series(np.nan, index=series.index)
    number = text
    if percent:
        compact = text.str.replace(rf"[{_SPACES}]", "", regex=True)
        for bucket, share in IMPRESSION_SHARE_BUCKETS.items():
            buckets = buckets.mask((compact == bucket).fillna(False).astype(bool), share)
        number = text.mask(buckets.notna()).str.replace(rf"[{_SPACES}]*%$", "", regex=True)
    if money:
        number, signs = strip_currency(text)
    infinite = number.str.fullmatch(r"[+-]?(?:inf|infinity)", case=False).fillna(False).astype(bool)
    other = _other(chosen)
    mine = chosen.read(number)
    theirs = other.read(number) if other is not None else pd.Series(np.nan, index=series.index)
    written = number.notna() & ~infinite
    mine_ok, theirs_ok = mine.notna() & written, theirs.notna() & written
    values = mine.where(mine_ok) / (100.0 if percent else 1.0)
    values = values.mask(buckets.notna(), buckets).mask(infinite, np.inf)
    return Column(
        source=source,
        text=text,
        values=values.astype("float64"),
        present=text.notna(),
        unreadable=written & ~mine_ok & ~theirs_ok,
        for_chosen=mine_ok & ~theirs_ok,
        against=theirs_ok & ~mine_ok,
        ambiguous=mine_ok & theirs_ok & ~np.isclose(mine.fillna(0), theirs.fillna(0)),
    ), signs


def numeric_column(series: pd.Series, source: str) -> Column:
    """A column that is already numbers (a Parquet report, the API's rows)."""
    values = series.astype("float64")
    none = pd.Series(False, index=series.index)
    return Column(source, series.astype("string"), values, values.notna(), none, none, none, none)


def convention_problems(where: str, columns: list[Column], chosen: NumberFormat, explicit: bool) -> list[str]:
    """The refusals a file's numeric columns call for under ``chosen`` (see the module docstring)."""
    problems = []
    other = _other(chosen)
    evidence_for = any(bool(c.for_chosen.any()) for c in columns)
    for c in columns:
        bad = (c.unreadable | c.against) if explicit or other is None else c.unreadable
        if bad.any():
            problems.append(
                f"{where}: column '{c.source}': {int(bad.sum())} values are not numbers "
                f"(e.g. {examples(c.text, bad)}) in the {chosen.describe()} convention"
            )
        if explicit or other is None:
            continue
        if c.against.any():
            problems.append(
                f"{where}: column '{c.source}': {int(c.against.sum())} values are written in the "
                f"{other.describe()} convention (e.g. {examples(c.text, c.against)}), not in the report "
                f"language's {chosen.name}: pass --locale {other.name} if that is the file's convention"
            )
        elif c.ambiguous.any() and not evidence_for:
            problems.append(
                f"{where}: column '{c.source}': {int(c.ambiguous.sum())} values read differently in "
                f"{chosen.name} and {other.name} (e.g. {examples(c.text, c.ambiguous)}) and nothing in the "
                f"file says which: pass --locale {chosen.name} or --locale {other.name}"
            )
    return problems


def currency_problems(
    where: str, source: str, signs: pd.Series, codes: pd.Series | None, code_source: str
) -> list[str]:
    """Currency signs in money cells that are unknown or that contradict the ``Currency code`` column."""
    found = signs.notna()
    if not found.any():
        return []
    problems = []
    known = signs.isin(list(CURRENCY_SIGNS)) | signs.str.fullmatch(r"[A-Z]{3}").fillna(False)
    unknown = found & ~known
    if unknown.any():
        problems.append(
            f"{where}: column '{source}': {int(unknown.sum())} values carry an unknown currency sign "
            f"(e.g. {examples(signs, unknown)})"
        )
    if codes is None:
        distinct = signs[found & known].unique()
        if len(distinct) > 1:
            problems.append(f"{where}: column '{source}': values in {len(distinct)} currencies ({', '.join(distinct)})")
        return problems
    allowed = [
        code in CURRENCY_SIGNS.get(sign, frozenset({sign})) if isinstance(sign, str) and isinstance(code, str) else True
        for sign, code in zip(signs, codes, strict=True)
    ]
    clash = found & known & ~pd.Series(allowed, index=signs.index)
    if clash.any():
        pairs = ", ".join(sorted({f"{s!r} with {c}" for s, c in zip(signs[clash], codes[clash], strict=True)})[:3])
        problems.append(
            f"{where}: column '{source}': {int(clash.sum())} values carry a currency that is not the row's "
            f"'{code_source}' ({pairs})"
        )
    return problems
