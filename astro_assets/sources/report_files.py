"""Google Ads report files as they are downloaded, recognised from their bytes (never from the file name).

- Parquet (``PAR1`` at both ends; a file that opens with it but does not end with it is truncated);
- text: UTF-8 with or without a byte-order mark, or UTF-16 with a BOM (little- or big-endian: the UI's
  "Excel .csv" download is UTF-16 LE, tab-separated); the header row, found within the first lines (the UI
  puts a title and a date-range line above it), decides the delimiter (tab, comma or semicolon) and the
  language (``report_languages``);
- anything else is refused in one line that names the file and says what it is: a zip archive (an
  ``.xlsx`` workbook or a compressed download), gzip, binary data, text in another encoding (e.g. Latin-1),
  or a file cut short (a UTF-16 file with an odd number of bytes, a multi-byte character or a quoted cell
  cut at the end, a last row with fewer cells than the header).

``.xlsx`` is not read: a maintained reader (openpyxl) would be a new dependency for a format the UI also
offers as CSV; the refusal says to download CSV.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.sources.report_languages import API, Language, best_language

#: Lines above the header that are searched for it (the UI's title and date range take two).
HEADER_SEARCH_LINES = 15
#: Fewest known column names a header row must have.
MIN_HEADER_MATCHES = 3
DELIMITERS = ("\t", ",", ";")
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8", "UTF-8 with BOM"),
    (b"\xff\xfe", "utf-16-le", "UTF-16 LE"),
    (b"\xfe\xff", "utf-16-be", "UTF-16 BE"),
)


class UnreadableReport(ValueError):
    """A file that is not a report Astro can read; the message is one line naming it."""


@dataclass(frozen=True)
class ReportFile:
    """A report's table (strings for text files, typed for Parquet) and how it was read."""

    path: Path
    frame: pd.DataFrame
    language: Language
    encoding: str  # "parquet", "UTF-8", "UTF-8 with BOM", "UTF-16 LE", ...
    delimiter: str | None


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            body = data[len(bom) :]
            if codec.startswith("utf-16") and len(body) % 2:
                raise UnreadableReport(f"{path}: a {name} file with an odd number of bytes: it was cut short")
            try:
                return body.decode(codec), name
            except UnicodeDecodeError as error:
                raise UnreadableReport(
                    f"{path}: not valid {name} text ({error.reason} at byte {error.start})"
                ) from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as error:
        if error.reason == "unexpected end of data":
            raise UnreadableReport(f"{path}: UTF-8 text cut short in the middle of a character") from None
        raise UnreadableReport(
            f"{path}: neither UTF-8 nor UTF-16 with a byte-order mark (byte {error.start}: {error.reason}); "
            "download the report again as CSV or 'Excel .csv' from Google Ads"
        ) from None


def _kind_of_bytes(path: Path, data: bytes) -> str | None:
    """What a non-text file is, from its first bytes (None: look at it as text)."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "a zip archive (an .xlsx workbook or a compressed download), not a CSV or Parquet report"
    if data.startswith(b"\x1f\x8b"):
        return "gzip-compressed: decompress it first"
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old Excel (.xls) workbook, not a CSV or Parquet report"
    return None


def _header(lines: list[str]) -> tuple[int, str, Language] | None:
    """(line index, delimiter, language) of the header row: the line of the first lines whose cells name
    the most known columns (at least MIN_HEADER_MATCHES)."""
    best: tuple[int, int, str, Language] | None = None
    for index, line in enumerate(lines[:HEADER_SEARCH_LINES]):
        for delimiter in DELIMITERS:
            if delimiter not in line:
                continue
            cells = next(csv.reader([line], delimiter=delimiter), [])
            language, found = best_language(cells)
            if len(found) >= MIN_HEADER_MATCHES and (best is None or len(found) > best[0]):
                best = (len(found), index, delimiter, language)
    return None if best is None else best[1:]


def _read_text(path: Path, text: str, encoding: str) -> ReportFile:
    if "\x00" in text:
        raise UnreadableReport(f"{path}: binary data, not a text report ({encoding} text holds NUL characters)")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found = _header(lines)
    if found is None:
        raise UnreadableReport(
            f"{path}: no header row naming the report's columns (e.g. 'Keyword ID', 'Impr.', 'Cost') in its "
            f"first {HEADER_SEARCH_LINES} lines ({encoding} text)"
        )
    index, delimiter, language = found
    try:
        rows = list(csv.reader(io.StringIO("\n".join(lines[index:]), newline=""), delimiter=delimiter, strict=True))
    except csv.Error as error:
        if "end of data" in str(error) or "EOF" in str(error):
            raise UnreadableReport(f"{path}: a quoted cell is never closed: the file was cut short") from None
        raise UnreadableReport(
            f"{path}: not a well-formed report below its header (line {index + 1}): {error}"
        ) from None
    header = rows[0]
    kept = [(number, row) for number, row in enumerate(rows[1:], start=index + 2) if any(c.strip() for c in row)]
    for position, (number, row) in enumerate(kept):
        if len(row) == len(header):
            continue
        if position == len(kept) - 1 and len(row) < len(header):
            raise UnreadableReport(
                f"{path}: its last row (line {number}) has {len(row)} cells for {len(header)} columns: "
                "the file was cut short"
            )
        raise UnreadableReport(f"{path}: line {number} has {len(row)} cells for the header's {len(header)} columns")
    rows = [row for _, row in kept]
    frame = pd.DataFrame([r for r in rows if any(c.strip() for c in r)], columns=header, dtype="string")
    return ReportFile(path, frame, language, encoding, delimiter)


def read_report_file(path: str | os.PathLike[str]) -> ReportFile:
    """Read a report file whatever its export format; :class:`UnreadableReport` (one line) when it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableReport(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UnreadableReport(f"{path}: cannot be read ({error.strerror})") from None
    if not data.strip():
        raise UnreadableReport(f"{path}: an empty file")
    if data.startswith(b"PAR1"):
        if not data.endswith(b"PAR1"):
            raise UnreadableReport(f"{path}: a Parquet file cut short (no footer)")
        try:
            table = pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as error:
            raise UnreadableReport(f"{path}: a damaged Parquet file ({str(error).splitlines()[0]})") from None
        frame = table.to_pandas()
        language, _ = best_language(list(frame.columns))
        return ReportFile(path, frame, language, "parquet", None)
    kind = _kind_of_bytes(path, data)
    if kind is not None:
        raise UnreadableReport(f"{path}: {kind}")
    text, encoding = _decode(path, data)
    return _read_text(path, text, encoding)


def is_api_naming(report: ReportFile) -> bool:
    return report.language is API
