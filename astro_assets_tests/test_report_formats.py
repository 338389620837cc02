"""Google Ads keyword reports as they really come: every export (UTF-8 ± BOM, UTF-16 "Excel .csv", comma or
tab), each UI language's headers, figures by locale (stored micros asserted), ``--`` metrics, match notation,
totals rows, currencies, one criterion in two ad groups, and files that cannot be read — all as real bytes
through ``astro-ingest``."""

import hashlib
import io
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from astro_assets.cli.ingest import main

DATA = Path(__file__).parent / "data"
UI_REPORT = DATA / "google_ads_ui_keyword_report.csv"
NBSP, NNBSP = "\u00a0", "\u202f"
JAPANESE = "ランニング"  # a multi-byte keyword of the UI report


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("ASTRO_DATA_DIR", str(root))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("ASTRO_ACCOUNT_TIMEZONE", raising=False)
    return root


def day_table(root: Path, day: str) -> pd.DataFrame:
    frame = pq.read_table(root / "raw_features" / f"date={day}").to_pandas()
    return frame.sort_values(["ad_group_id", "keyword_id"], ignore_index=True)


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def export(rows: list[list[str]], header: list[str], delimiter: str = ",", title: str = "Keyword report") -> str:
    """A report laid out as the UI downloads it: a title line, a date-range line, the header, the rows,
    and a totals row."""

    def line(cells: list[str]) -> str:
        quoted = []
        for cell in cells:
            needs = delimiter in cell or '"' in cell or "\n" in cell
            quoted.append('"' + cell.replace('"', '""') + '"' if needs else cell)
        return delimiter.join(quoted)

    total = ["Total: Account"] + [""] * (len(header) - 1)
    return (
        "\n".join([title, "November 22, 2026 - November 23, 2026", line(header), *map(line, rows), line(total)]) + "\n"
    )


ENGLISH = ["Day", "Campaign ID", "Campaign", "Ad group ID", "Ad group", "Keyword ID", "Keyword", "Match type",
           "Currency code", "Impr.", "Clicks", "Cost", "Conversions", "Conv. value", "Quality Score",
           "Search impr. share"]  # fmt: skip
#: Keyword rows in English notation: (day, campaign id, campaign, ad group id, ad group, criterion id, text, match,
#: currency, impressions, clicks, cost, conversions, conv. value, quality score, impression share)
ROWS_EN = [
    ["2026-11-22", "11", "Shoes", "101", "Running", "1001", "running shoes", "Exact match", "EUR", "1,234", "56",
     "1,078.90", "3.00", "1,234.50", "7", "45.12%"],
    ["2026-11-22", "11", "Shoes", "102", "Trail", "1001", "running shoes", "Exact match", "EUR", "310", "12",
     "9.60", "0.00", "0.00", "--", "< 10%"],
    ["2026-11-23", "11", "Shoes", "101", "Running", "1001", "running shoes", "Exact match", "EUR", "1,180", "49",
     "70.56", "2.00", "812.00", "7", "> 90%"],
]  # fmt: skip


def english_rows(transform=lambda cell, column: cell) -> list[list[str]]:
    return [[transform(cell, column) for cell, column in zip(row, ENGLISH, strict=True)] for row in ROWS_EN]


def expected_first_day() -> list[tuple]:
    """(ad group, criterion, impressions, clicks, cost micros, conversions, value, share) of 2026-11-22."""
    return [(101, 1001, 1234, 56, 1_078_900_000, 3.0, 1234.5, 0.4512), (102, 1001, 310, 12, 9_600_000, 0.0, 0.0, 0.05)]


def stored(root: Path, day: str = "2026-11-22") -> list[tuple]:
    frame = day_table(root, day)
    columns = ["ad_group_id", "keyword_id", "impressions", "clicks", "cost_micros", "conversions", "conversion_value",
               "search_impression_share"]  # fmt: skip
    return [
        tuple(pytest.approx(v) if isinstance(v, float) else v for v in row)
        for row in frame[columns].itertuples(index=False)
    ]


@pytest.mark.parametrize(
    "encoding, delimiter",
    [
        ("utf-8", ","),
        ("utf-8-sig", ","),
        ("utf-8", "\t"),
        ("utf-16", "\t"),
        ("utf-16-be-bom", "\t"),
        ("utf-8-sig", ";"),
    ],
    ids=["utf8-comma", "utf8-bom", "utf8-tab", "excel-csv-utf16le-tab", "utf16be-tab", "utf8-bom-semicolon"],
)
def test_every_export_of_the_ui_reads_the_same(data_dir, tmp_path, capsys, encoding, delimiter):
    text = export(english_rows(), ENGLISH, delimiter)
    if encoding == "utf-16-be-bom":
        data = b"\xfe\xff" + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)  # Python's "utf-16" writes the BOM, little-endian here
    report = tmp_path / "report.csv"
    report.write_bytes(data)
    if encoding == "utf-16":
        assert data[:2] == b"\xff\xfe"
    assert main([str(report)]) == 0, capsys.readouterr().err
    assert stored(data_dir) == expected_first_day()
    out = capsys.readouterr().out
    assert "ingested 3 rows for 2 days" in out and "Quality Score 1" in out


def test_one_criterion_in_two_ad_groups_is_two_keywords(data_dir, tmp_path):
    report = tmp_path / "report.csv"
    report.write_text(export(english_rows(), ENGLISH))
    assert main([str(report)]) == 0
    first = day_table(data_dir, "2026-11-22")
    assert first[["ad_group_id", "keyword_id"]].values.tolist() == [[101, 1001], [102, 1001]]
    assert first.ad_group_name.tolist() == ["Running", "Trail"]


FRENCH = ["Jour", "ID de la campagne", "Campagne", "ID du groupe d'annonces", "Groupe d'annonces", "ID du mot clé",
          "Mot clé", "Type de correspondance", "Code de la devise", "Impr.", "Clics", "Coût", "Conversions",
          "Valeur de conv.", "Niveau de qualité", "Taux d'impressions sur le Réseau de Recherche"]  # fmt: skip
GERMAN = ["Tag", "Kampagnen-ID", "Kampagne", "Anzeigengruppen-ID", "Anzeigengruppe", "Keyword-ID", "Keyword",
          "Keyword-Option", "Währungscode", "Impr.", "Klicks", "Kosten", "Conversions", "Conv.-Wert",
          "Qualitätsfaktor", "Anteil an möglichen Impressionen (Suchnetzwerk)"]  # fmt: skip
SPANISH = ["Día", "ID de campaña", "Campaña", "ID del grupo de anuncios", "Grupo de anuncios", "ID de palabra clave",
           "Palabra clave", "Tipo de concordancia", "Código de moneda", "Impr.", "Clics", "Coste", "Conversiones",
           "Valor de conv.", "Nivel de calidad", "Porcentaje de impr. de búsqueda"]  # fmt: skip
MATCH = {
    "fr": {"Exact match": "Exacte"},
    "de": {"Exact match": "Genau passend"},
    "es": {"Exact match": "Concordancia exacta"},
    "es-419": {"Exact match": "Concordancia exacta"},
}
METRICS = {"Impr.", "Clicks", "Cost", "Conversions", "Conv. value", "Search impr. share"}


def localised(decimal: str, group: str, language: str, money_sign: str = ""):
    """Rewrite the English rows' figures in another convention (``1,078.90`` -> ``1 078,90`` ...)."""

    def transform(cell: str, column: str) -> str:
        if column == "Match type":
            return MATCH[language].get(cell, cell)
        if column not in METRICS or cell in ("--", "< 10%", "> 90%"):
            return cell.replace("%", f"{NBSP}%") if column == "Search impr. share" and decimal == "," else cell
        number = cell.rstrip("%")
        number = number.replace(",", "\0").replace(".", decimal).replace("\0", group)
        if cell.endswith("%"):
            return f"{number}{NBSP}%" if decimal == "," else f"{number}%"
        if column in ("Cost", "Conv. value") and money_sign:
            return f"{number}{NBSP}{money_sign}"
        return number

    return transform


@pytest.mark.parametrize(
    "language, header, decimal, group, sign",
    [
        ("fr", FRENCH, ",", NNBSP, "€"),  # 1 078,90 € with a narrow no-break space
        ("fr", FRENCH, ",", NBSP, ""),  # 1 078,90 with a no-break space
        ("de", GERMAN, ",", ".", "€"),  # 1.078,90 €
        ("es", SPANISH, ",", ".", ""),  # 1.078,90 (Spain: Coste)
        ("es-419", [*SPANISH[:11], "Costo", *SPANISH[12:]], ".", ",", ""),  # 1,078.90 (Latin America: Costo)
    ],
    ids=["fr-nnbsp-euro", "fr-nbsp", "de", "es", "es-419"],
)
def test_each_language_and_its_number_convention(data_dir, tmp_path, capsys, language, header, decimal, group, sign):
    report = tmp_path / f"{language}.csv"
    title = {"fr": "Rapport sur les mots clés", "de": "Keyword-Bericht"}.get(language, "Informe de palabras clave")
    text = export(english_rows(localised(decimal, group, language, sign)), header, title=title)
    report.write_text(text.replace("Total: Account", {"fr": "Total : Compte"}.get(language, "Total: Cuenta")))
    assert main([str(report)]) == 0, capsys.readouterr().err
    assert stored(data_dir) == expected_first_day()  # cost 1 078,90 -> 1_078_900_000 micros, never 107_890_...


def test_a_french_report_with_english_figures_is_refused_by_name(data_dir, tmp_path, capsys):
    report = tmp_path / "fr.csv"
    report.write_text(export(english_rows(lambda c, col: MATCH["fr"].get(c, c)), FRENCH))
    assert main([str(report)]) == 2
    err = capsys.readouterr().err
    assert "nothing written" in err and f"{report}: column 'Coût': 3 values are written in the en" in err
    assert "(e.g. '1,078.90', '9.60', '70.56')" in err and "pass --locale en" in err
    assert not data_dir.exists()
    assert main([str(report), "--locale", "en"]) == 0  # the user says which: read as written
    assert stored(data_dir) == expected_first_day()


def test_ambiguous_figures_are_refused_until_the_locale_is_given(data_dir, tmp_path, capsys):
    """``1,234`` is 1.234 in French and 1234 in English; a French file with nothing else to decide is refused."""
    rows = [
        ["2026-11-22", "11", "Shoes", "101", "Running", "1001", "running shoes", "Exacte", "EUR", "1,234", "56",
         "2,500", "3", "1,250", "7", "45%"],
    ]  # fmt: skip
    report = tmp_path / "fr.csv"
    report.write_text(export(rows, FRENCH))
    assert main([str(report)]) == 2
    err = capsys.readouterr().err
    for column in ("Impr.", "Coût", "Valeur de conv."):
        assert f"{report}: column '{column}': 1 values read differently in fr and en" in err, err
    assert "pass --locale fr or --locale en" in err and not data_dir.exists()
    assert main([str(report), "--locale", "en"]) == 0
    row = day_table(data_dir, "2026-11-22").iloc[0]
    assert (row.impressions, row.cost_micros, row.conversion_value) == (1234, 2_500_000_000, 1250.0)


def test_a_european_decimal_is_never_read_as_a_whole_number(data_dir, tmp_path, capsys):
    """The old reader turned ``12,34`` into 1234: in an English report it is refused, in a French one 12.34."""
    rows = [["2026-11-22", "11", "Shoes", "101", "Running", "1001", "running shoes", "Exact match", "EUR", "100",
             "5", "12,34", "1", "50", "7", "45%"]]  # fmt: skip
    report = tmp_path / "en.csv"
    report.write_text(export(rows, ENGLISH))
    assert main([str(report)]) == 2
    assert f"{report}: column 'Cost': 1 values are written in the de" in capsys.readouterr().err
    assert main([str(report), "--locale", "fr"]) == 0
    assert day_table(data_dir, "2026-11-22").cost_micros.tolist() == [12_340_000]


def test_dashes_in_metrics_are_nulls_counted_in_the_summary(data_dir, tmp_path, capsys):
    rows = english_rows()
    rows[0][12] = rows[1][12] = "--"  # the UI prints -- where it has no figure
    report = tmp_path / "report.csv"
    report.write_text(export(rows, ENGLISH))
    assert main([str(report)]) == 0
    out = capsys.readouterr().out
    assert "Conversions 2" in out
    assert day_table(data_dir, "2026-11-22").conversions.isna().all()
    assert day_table(data_dir, "2026-11-22").conversion_value.tolist() == [1234.5, 0.0]  # value kept: null policy


def test_search_keyword_header_and_match_notation(data_dir, tmp_path):
    header = [("Search keyword" if c == "Keyword" else c) for c in ENGLISH if c != "Match type"]
    rows = [[c for c, col in zip(row, ENGLISH, strict=True) if col != "Match type"] for row in ROWS_EN]
    rows[0][6], rows[1][6] = "[running shoes]", '"running shoes"'
    rows[2][6] = "running shoes"
    report = tmp_path / "report.csv"
    report.write_text(export(rows, header))
    assert main([str(report)]) == 0
    first, second = day_table(data_dir, "2026-11-22"), day_table(data_dir, "2026-11-23")
    assert first.match_type.tolist() == ["EXACT", "PHRASE"] and second.match_type.tolist() == ["BROAD"]
    assert set(first.keyword_text) == {"running shoes"}


def test_totals_rows_in_any_column_are_dropped(data_dir, tmp_path):
    text = export(english_rows(), ENGLISH)
    middle = "," * 6 + "Total: Search" + "," * (len(ENGLISH) - 7)
    report = tmp_path / "report.csv"
    report.write_text(text + middle + "\n")
    assert main([str(report)]) == 0
    assert len(day_table(data_dir, "2026-11-22")) == 2


def test_a_currency_sign_that_contradicts_the_currency_code_is_refused(data_dir, tmp_path, capsys):
    def pounds(cell, column):
        return f"£{cell}" if column == "Cost" else cell

    report = tmp_path / "report.csv"
    report.write_text(export(english_rows(pounds), ENGLISH))
    assert main([str(report)]) == 2
    err = capsys.readouterr().err
    assert f"{report}: column 'Cost': 3 values carry a currency that is not the row's 'Currency code'" in err
    assert "'£' with EUR" in err

    def euros(cell, column):
        return f"€{cell}" if column == "Cost" else cell

    report.write_text(export(english_rows(euros), ENGLISH))
    assert main([str(report)]) == 0
    assert stored(data_dir) == expected_first_day()


def _cut_before(marker: bytes, extra: int = 0) -> bytes:
    """The UI report's bytes up to ``marker`` (plus ``extra`` bytes of it): a download cut short there."""
    data = UI_REPORT.read_bytes()
    return data[: data.index(marker) + extra]


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("report.csv", UI_REPORT.read_text())
    return buffer.getvalue()


UNREADABLE = [
    ("binary", lambda: bytes(range(256)) * 40, "neither UTF-8 nor UTF-16"),
    ("nul bytes", lambda: b"Day,Keyword ID\x00\x00\x00,Clicks\n" * 5, "binary data"),
    ("zip", _zip_bytes, "a zip archive (an .xlsx workbook or a compressed download)"),
    ("utf-16 cut short", lambda: UI_REPORT.read_text().encode("utf-16")[:-1], "odd number of bytes: it was cut short"),
    ("utf-8 cut mid-character", lambda: _cut_before(JAPANESE.encode(), 1), "cut short in the middle of a character"),
    ("cut mid-row", lambda: _cut_before(b"Course,1002,12,102,2026-11-23"), "the file was cut short"),
    ("latin-1", lambda: UI_REPORT.read_text().replace("ランニングシューズ", "café").replace("ランニング", "thé")
     .encode("latin-1"), "neither UTF-8 nor UTF-16"),
    ("parquet cut short", lambda: _parquet_bytes()[:-10], "a Parquet file cut short"),
    ("gzip", lambda: __import__("gzip").compress(UI_REPORT.read_bytes()), "gzip-compressed"),
]  # fmt: skip


def _parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pd.read_csv(DATA / "google_ads_api_keyword_view.csv").to_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("make, message", [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE])
def test_a_file_that_cannot_be_read_is_refused_in_one_line(data_dir, tmp_path, capsys, make, message):
    assert main([str(UI_REPORT)]) == 0
    before = snapshot(data_dir)
    bad = tmp_path / "download.csv"
    bad.write_bytes(make())
    capsys.readouterr()
    assert main([str(UI_REPORT), str(bad)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[0] == "astro ingest: nothing written." and len(lines) == 2, err
    assert lines[1].startswith(f"{bad}: ") and message in lines[1], err
    assert "Traceback" not in err
    assert snapshot(data_dir) == before
