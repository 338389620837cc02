"""The Google Ads UI's keyword report in each language it is downloaded in: one table entry per language.

A report's header says which language it was downloaded in; the entry gives, for every ``raw_features``
column, the header names that language uses (the current UI's first, older exports' after), its
``Total`` row labels, its match type words, and the number convention its figures are written in by
default (``report_numbers.LOCALES``; ``astro-ingest --locale`` overrides it). Adding a language is
adding one :class:`Language` to :data:`LANGUAGES`.

Where the names come from (checked 2026-11-26):

- English: the Google Ads help "About columns in your statistics table"
  (https://support.google.com/google-ads/answer/2454071?hl=en: ``Impr.``, ``Conv. value``, ``Search impr.
  share``, ``Quality Score``) and the UI's search keyword report (``Search keyword``, ``Search keyword match
  type``; older exports ``Keyword``, ``Match type``).
- French: the same help page in French (https://support.google.com/google-ads/answer/2454071?hl=fr) and
  public parsers of real French exports on GitHub (``Jour``, ``Campagne``, ``ID de la campagne``, ``Groupe
  d'annonces``, ``ID du groupe d'annonces``, ``Mot clé``, ``Type de correspondance``, ``Impr.``, ``Clics``,
  ``Coût``, ``Valeur de conv.``; ``Total : …`` rows; figures as ``1 234,56 €`` and ``7,41 %``; the
  "Excel" download in UTF-16 with tabs).
- German: the help page in German (https://support.google.com/google-ads/answer/2454071?hl=de) and public
  parsers and tests of real German exports (``Kampagne``, ``Tag``, ``Impressionen``, ``Klicks``, ``Kosten``,
  ``Conversions``, ``Conv.-Wert``, ``Währungscode``, ``Anzeigengruppen-ID``; figures as ``1.300,00``).
- Spanish: the help page in Spanish (https://support.google.com/google-ads/answer/2454071?hl=es and
  ``hl=es-419``: ``Impr.``, ``Clics``, ``Coste`` in Spain, ``Costo`` in Latin America) and a public reader
  of the "Informe de palabras clave de búsqueda" (``Estado de palabras clave``, ``Palabra clave``, ``Tipo de
  concordancia``, ``Campaña``, ``Grupo de anuncios``, ``Código de moneda``, ``Impr.``, ``Clics``,
  ``Costo``, ``Conversiones``, ``Porcentaje de impr. de búsqueda``, ``Nivel de calidad``; a Latin-American
  account writes ``1,244`` for one thousand two hundred forty-four, hence ``es-419``'s convention).

Names not seen in those sources are listed after the verified ones as best knowledge (the ID columns'
localised names and the localised "search keyword" names); a header the table does not know is reported
by name as missing, never guessed.

Status columns (``core.features.STATUS_COLUMNS``: the keyword's, its ad group's and its campaign's own
status, each Enabled / Paused / Removed, read into ENABLED / PAUSED / REMOVED), checked 2026-11-26:

- The UI's keyword report has two status columns. ``Keyword status`` is the status a person sets
  (Enabled, Paused, Removed): it is the first column of the "Search keyword report" download (public
  parsers of the download on GitHub and their test fixtures: ``Keyword status,Keyword,Match
  type,Campaign,…`` with ``Enabled``; the Spanish export's ``Estado de palabras clave`` holds
  ``Habilitado`` / ``Detenido`` next to a separate ``Estado`` / ``Motivos del estado``). ``Status`` is the
  serving status: "If several statuses apply to a keyword, we'll show you the most relevant status
  first" — ``Eligible``,
  ``Campaign paused``, ``Ad group paused``, ``Paused``, ``Removed``, ``Below first page bid``, …
  ("Keyword status: Definition", https://support.google.com/google-ads/answer/99482; "a keyword that's
  enabled, but the campaign the keyword belongs to is paused [...] We'll display that keyword's status as
  paused", https://support.google.com/adwords/answer/2453978). Astro reads ``Keyword status``, never
  ``Status``: one cell of ``Status`` names one of several statuses, so a keyword paused by a person in a
  paused campaign shows ``Campaign paused`` there, and reading it would make that keyword's pause look
  like nobody's. ``Status`` stays an ignored column.
- ``Ad group status`` / ``Campaign status``: the ad group's and the campaign's own status, with the same
  words. These two names were not found in a source (best knowledge, following ``Keyword status``): a
  report that names them otherwise has them ignored, and those statuses are unknown.
- The Google Ads API: ``ad_group_criterion.status``, ``ad_group.status``, ``campaign.status``, enums
  ENABLED / PAUSED / REMOVED, plus UNKNOWN ("the received value is not known in this version") and
  UNSPECIFIED, read as an unknown status (null)
  (https://developers.google.com/google-ads/api/reference/rpc/v26/AdGroupCriterionStatusEnum.AdGroupCriterionStatus;
  the Google Ads API team: "'ad_group_criterion.status' will get if you paused or removed the keyword,
  mapping to 'Removed' and 'Paused' in the UI",
  https://www.mail-archive.com/adwords-api@googlegroups.com/msg102318.html).
- Only the English UI's and the API's status columns are mapped. The French, German and Spanish names
  and words for "removed" were not found in a source, and a status word the table does not know refuses
  the file: those reports' status columns stay ignored (unknown status, as before).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

#: The day column's target name (``raw_features`` has no day column: each day is a partition).
DAY = "day"
#: The account currency column's target name (checked against the currency signs in money cells).
CURRENCY = "currency_code"


@dataclass(frozen=True)
class Language:
    """How the UI writes the keyword report in one language."""

    code: str
    #: raw_features column (or DAY / CURRENCY) -> header names, the current UI's first.
    columns: dict[str, tuple[str, ...]]
    #: The default number convention of the language (``report_numbers.LOCALES``).
    locale: str
    #: Labels that start a totals row (``Total: Keywords``), in any column.
    totals: tuple[str, ...] = ("Total",)
    #: Match type words -> EXACT / PHRASE / BROAD.
    match_types: dict[str, str] = field(default_factory=dict)
    #: Status words (case-folded) -> ENABLED / PAUSED / REMOVED, or None for a status the source
    #: itself calls unknown (a null: Astro treats it as not paused).
    statuses: dict[str, str | None] = field(default_factory=dict)


ENGLISH = Language(
    code="en",
    locale="en",
    columns={
        DAY: ("Day",),
        "campaign_id": ("Campaign ID",),
        "campaign_name": ("Campaign",),
        "ad_group_id": ("Ad group ID",),
        "ad_group_name": ("Ad group",),
        "keyword_id": ("Keyword ID",),
        "keyword_text": ("Search keyword", "Keyword"),
        "match_type": ("Search keyword match type", "Match type"),
        "impressions": ("Impr.", "Impressions"),
        "clicks": ("Clicks",),
        "cost_micros": ("Cost",),
        "conversions": ("Conversions",),
        "conversion_value": ("Conv. value", "Conversion value"),
        "quality_score": ("Quality Score",),
        "search_impression_share": ("Search impr. share", "Search impression share"),
        CURRENCY: ("Currency code",),
        "keyword_status": ("Keyword status",),
        "ad_group_status": ("Ad group status",),
        "campaign_status": ("Campaign status",),
    },
    totals=("Total",),
    statuses={"enabled": "ENABLED", "paused": "PAUSED", "removed": "REMOVED"},
    match_types={
        "exact match": "EXACT",
        "phrase match": "PHRASE",
        "broad match": "BROAD",
        "exact": "EXACT",
        "phrase": "PHRASE",
        "broad": "BROAD",
    },
)

FRENCH = Language(
    code="fr",
    locale="fr",
    columns={
        DAY: ("Jour",),
        "campaign_id": ("ID de la campagne",),
        "campaign_name": ("Campagne",),
        "ad_group_id": ("ID du groupe d'annonces",),
        "ad_group_name": ("Groupe d'annonces",),
        "keyword_id": ("ID du mot clé",),
        "keyword_text": ("Mot clé pour le Réseau de Recherche", "Mot clé"),
        "match_type": ("Type de correspondance du mot clé pour le Réseau de Recherche", "Type de correspondance"),
        "impressions": ("Impr.", "Impressions"),
        "clicks": ("Clics",),
        "cost_micros": ("Coût",),
        "conversions": ("Conversions",),
        "conversion_value": ("Valeur de conv.",),
        "quality_score": ("Niveau de qualité",),
        "search_impression_share": (
            "Taux d'impressions sur le Réseau de Recherche",
            "Part d'impr. (Réseau de Recherche)",
        ),
        CURRENCY: ("Code de la devise", "Code devise"),
    },
    totals=("Total",),
    match_types={
        "exacte": "EXACT",
        "correspondance exacte": "EXACT",
        "expression exacte": "PHRASE",
        "expression": "PHRASE",
        "requête large": "BROAD",
        "large": "BROAD",
    },
)

GERMAN = Language(
    code="de",
    locale="de",
    columns={
        DAY: ("Tag",),
        "campaign_id": ("Kampagnen-ID",),
        "campaign_name": ("Kampagne",),
        "ad_group_id": ("Anzeigengruppen-ID",),
        "ad_group_name": ("Anzeigengruppe",),
        "keyword_id": ("Keyword-ID",),
        "keyword_text": ("Keyword für das Suchnetzwerk", "Keyword"),
        "match_type": ("Keyword-Option für das Suchnetzwerk", "Keyword-Option", "Übereinstimmungstyp"),
        "impressions": ("Impr.", "Impressionen"),
        "clicks": ("Klicks",),
        "cost_micros": ("Kosten",),
        "conversions": ("Conversions",),
        "conversion_value": ("Conv.-Wert",),
        "quality_score": ("Qualitätsfaktor",),
        "search_impression_share": ("Anteil an möglichen Impressionen (Suchnetzwerk)", "Anteil mögl. Impr. (Suche)"),
        CURRENCY: ("Währungscode",),
    },
    totals=("Total", "Gesamt", "Summe"),
    match_types={
        "genau passend": "EXACT",
        "passende wortgruppe": "PHRASE",
        "weitgehend passend": "BROAD",
        "exakt": "EXACT",
        "wortgruppe": "PHRASE",
        "weitgehend": "BROAD",
    },
)

_SPANISH_COLUMNS: dict[str, tuple[str, ...]] = {
    DAY: ("Día",),
    "campaign_id": ("ID de campaña", "ID de la campaña"),
    "campaign_name": ("Campaña",),
    "ad_group_id": ("ID del grupo de anuncios", "ID de grupo de anuncios"),
    "ad_group_name": ("Grupo de anuncios",),
    "keyword_id": ("ID de palabra clave", "ID de la palabra clave"),
    "keyword_text": ("Palabra clave de búsqueda", "Palabra clave"),
    "match_type": ("Tipo de concordancia de la palabra clave de búsqueda", "Tipo de concordancia"),
    "impressions": ("Impr.", "Impresiones"),
    "clicks": ("Clics",),
    "cost_micros": ("Coste",),
    "conversions": ("Conversiones",),
    "conversion_value": ("Valor de conv.",),
    "quality_score": ("Nivel de calidad",),
    "search_impression_share": (
        "Porcentaje de impr. de búsqueda",
        "Cuota de impresiones de búsqueda",
        "% impr. de búsqueda",
    ),
    CURRENCY: ("Código de moneda",),
}
_SPANISH_MATCH_TYPES = {
    "concordancia exacta": "EXACT",
    "exacta": "EXACT",
    "concordancia de frase": "PHRASE",
    "frase": "PHRASE",
    "concordancia amplia": "BROAD",
    "amplia": "BROAD",
}
#: Spain: ``Coste``, figures as ``1.234,56``.
SPANISH = Language(code="es", locale="es", columns=_SPANISH_COLUMNS, match_types=_SPANISH_MATCH_TYPES)
#: Latin America: ``Costo``, figures as ``1,234.56``.
LATIN_AMERICAN_SPANISH = Language(
    code="es-419",
    locale="es-419",
    columns={**_SPANISH_COLUMNS, "cost_micros": ("Costo",)},
    match_types=_SPANISH_MATCH_TYPES,
)

LANGUAGES: tuple[Language, ...] = (ENGLISH, FRENCH, GERMAN, SPANISH, LATIN_AMERICAN_SPANISH)

#: The same report named by the Google Ads API's ``keyword_view`` fields (GAQL), as CSV or Parquet.
API = Language(
    code="api",
    locale="api",
    columns={
        DAY: ("segments.date",),
        "campaign_id": ("campaign.id",),
        "campaign_name": ("campaign.name",),
        "ad_group_id": ("ad_group.id",),
        "ad_group_name": ("ad_group.name",),
        "keyword_id": ("ad_group_criterion.criterion_id",),
        "keyword_text": ("ad_group_criterion.keyword.text",),
        "match_type": ("ad_group_criterion.keyword.match_type",),
        "impressions": ("metrics.impressions",),
        "clicks": ("metrics.clicks",),
        "cost_micros": ("metrics.cost_micros",),
        "conversions": ("metrics.conversions",),
        "conversion_value": ("metrics.conversions_value",),
        "quality_score": ("ad_group_criterion.quality_info.quality_score",),
        "search_impression_share": ("metrics.search_impression_share",),
        "keyword_status": ("ad_group_criterion.status",),
        "ad_group_status": ("ad_group.status",),
        "campaign_status": ("campaign.status",),
    },
    match_types={"exact": "EXACT", "phrase": "PHRASE", "broad": "BROAD"},
    statuses={"enabled": "ENABLED", "paused": "PAUSED", "removed": "REMOVED", "unknown": None, "unspecified": None},
)

#: Every match type word of every language (they do not clash).
MATCH_TYPE_WORDS: dict[str, str] = {
    word: target for language in (*LANGUAGES, API) for word, target in language.match_types.items()
}


def normal(name: str) -> str:
    """A header cell as compared: NFC, case-folded, curly apostrophes straight, runs of any space one space."""
    text = unicodedata.normalize("NFC", str(name)).replace("\u2019", "'").casefold()
    return re.sub(r"\s+", " ", text).strip()


def header_matches(cells: list[str], language: Language) -> dict[str, str]:
    """target -> the header cell of ``cells`` that names it in ``language`` (the first variant found)."""
    by_name = {normal(cell): cell for cell in cells}
    found = {}
    for target, names in language.columns.items():
        for name in names:
            if normal(name) in by_name:
                found[target] = by_name[normal(name)]
                break
    return found


def best_language(cells: list[str]) -> tuple[Language, dict[str, str]]:
    """The language (or the API naming) whose header names ``cells`` matches most, with its matches."""
    scored = [(language, header_matches(cells, language)) for language in (API, *LANGUAGES)]
    return max(scored, key=lambda pair: len(pair[1]))


def is_total_label(cell: str, language: Language) -> bool:
    """Whether a cell opens a totals row (``Total: Keywords``, ``Total : Compte``, ``Gesamt: …``)."""
    text = normal(cell)
    return any(re.match(rf"^{re.escape(normal(label))}\s*:", text) for label in language.totals)
