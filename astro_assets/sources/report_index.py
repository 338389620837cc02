"""Which days each Google Ads report in a folder holds, keyed by the file's content hash.

The ``GoogleAdsReportFolder`` source and the reports sensor both need "which files hold day D" and
"which days does this file hold"; reading and validating every file of the folder for every day
materialised is what this index saves. A file is parsed once per content (its SHA-256): an unchanged
file is only hashed again, a changed file (same name, new bytes) is parsed again. Parsing and validation
are ``google_ads_report.read_reports`` itself, so a file the index refuses is refused with the ingest's
own message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from astro_assets.sources.google_ads_report import IngestError, read_reports

#: The report files of a folder (what ``GoogleAdsReportFolder`` reads).
REPORT_PATTERNS = ("*.csv", "*.parquet")
_CHUNK = 1 << 20


def content_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def report_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The report files of ``folder``, sorted by name."""
    return sorted(p for pattern in REPORT_PATTERNS for p in Path(folder).glob(pattern) if p.is_file())


@dataclass(frozen=True)
class IndexedReport:
    """One file as the index knows it: its content hash and the days it holds, or why it is refused."""

    path: Path
    sha256: str
    days: tuple[dt.date, ...] = ()
    error: str | None = None

    @property
    def refused(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class _Parsed:
    days: tuple[dt.date, ...]
    error: str | None


class ReportIndex:
    """file -> days, remembered per (content hash, validation window) for the life of the process.

    ``today`` and ``first_day`` are the validation window of ``read_reports`` (a day not over yet, or
    before the first partition, is refused), so the same bytes indexed under another window are read
    again.
    """

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, dt.date, dt.date], _Parsed] = {}
        self._lock = threading.Lock()

    def entry(self, path: str | os.PathLike[str], today: dt.date, first_day: dt.date) -> IndexedReport:
        path = Path(path)
        sha = content_hash(path)
        key = (sha, today, first_day)
        with self._lock:
            parsed = self._parsed.get(key)
        if parsed is None:
            try:
                reports = read_reports([str(path)], today, first_day)
                days = sorted({day for report in reports for day in report.rows["day"]})
                parsed = _Parsed(tuple(days), None)
            except IngestError as error:
                parsed = _Parsed((), str(error))
            except (OSError, ValueError, UnicodeError) as error:  # the ingest's parser let it through
                parsed = _Parsed((), f"{path}: cannot be read as a report ({type(error).__name__}: {error})")
            with self._lock:
                self._parsed[key] = parsed
        return IndexedReport(path, sha, parsed.days, parsed.error)

    def folder(self, folder: str | os.PathLike[str], today: dt.date, first_day: dt.date) -> list[IndexedReport]:
        """Every report file of ``folder`` with its days (or its refusal)."""
        return [self.entry(path, today, first_day) for path in report_files(folder)]

    def files_for_day(
        self, folder: str | os.PathLike[str], day: dt.date, today: dt.date, first_day: dt.date
    ) -> tuple[list[str], list[IndexedReport]]:
        """The files of ``folder`` that hold ``day``, and the refused files of the folder."""
        entries = self.folder(folder, today, first_day)
        return [str(e.path) for e in entries if day in e.days], [e for e in entries if e.refused]


#: One index per process: the source and the sensor of a code location share what was parsed.
REPORT_INDEX = ReportIndex()
