"""``raw_features`` from the Google Ads API: GAQL on ``keyword_view`` through ``GoogleAdsService.SearchStream``.

The rows are named by their GAQL field paths (``segments.date``, ``metrics.cost_micros``, ...), which are the
column names of an API-named report file, and then validated by the file ingest's own functions
(:func:`astro_assets.sources.google_ads_report.normalise` and ``to_day_tables``): a day read from the API and
the same day exported to a file become the same ``raw_features`` table, and bad data is refused with the same
messages (naming ``google-ads-api keyword_view <day>`` instead of a file).

The selected fields are the file ingest's :data:`~astro_assets.sources.google_ads_report.API_COLUMNS` (one
place owns the field list: ``report_languages.API``), which include the keyword's, its ad group's and its
campaign's status (``ad_group_criterion.status``, ``ad_group.status``, ``campaign.status``): they become the
``raw_features`` status columns (``core.features.STATUS_COLUMNS``; ENABLED / PAUSED / REMOVED, UNKNOWN and
UNSPECIFIED read as unknown) that the bid file reads so that Astro never enables what a person paused. The
client is a
``google.ads.googleads.client.GoogleAdsClient`` created with ``use_proto_plus=False``: rows arrive as plain
protobuf messages, which Google recommends for large result sets (proto-plus wraps every field access;
https://developers.google.com/google-ads/api/docs/client-libs/python/proto-getters). Each row's fields are
read through the protobuf descriptors, so optional fields without a value (quality score, impression share,
conversion value) become nulls and enums their names (``EXACT``, ``ENABLED``).

A stream that fails with a transient status (``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``, ...) is read again from
the start after a back-off (``google_ads_retry.call_with_retries``); rows of a broken stream are discarded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from astro_assets.core.features import STATUS_COLUMNS
from astro_assets.sources.google_ads_report import API_COLUMNS, normalise, to_day_tables
from astro_assets.sources.google_ads_retry import RetryPolicy, call_with_retries
from astro_assets.sources.report_languages import API

#: The Google Ads API version Astro speaks (a module of the google-ads package: google.ads.googleads.v26).
API_VERSION = "v26"
#: Status fields read with every row (keyword, ad group and campaign status as the account has them),
#: in ``core.features.STATUS_COLUMNS`` order; they are part of API_COLUMNS.
STATUS_FIELDS: tuple[str, ...] = tuple(API.columns[c][0] for c in STATUS_COLUMNS)
#: Seconds a SearchStream call may take before it is cancelled (and retried).
SEARCH_TIMEOUT_SECONDS = 3600.0


def report_fields() -> tuple[str, ...]:
    """The GAQL fields selected: the file ingest's API columns (the status fields among them)."""
    fields = list(API_COLUMNS)
    fields += [f for f in STATUS_FIELDS if f not in fields]
    return tuple(fields)


def keyword_view_query(day: dt.date, fields: Sequence[str] | None = None) -> str:
    """The GAQL query of one day of ``keyword_view`` (``day`` is a date, so nothing else reaches the query)."""
    fields = report_fields() if fields is None else fields
    return f"SELECT {', '.join(fields)} FROM keyword_view WHERE segments.date = '{day.isoformat()}'"


def _reader(descriptor: Any, path: str) -> Callable[[Any], Any]:
    """A function reading field ``path`` (``a.b.c``) of a ``GoogleAdsRow`` protobuf: None where an
    optional field or a parent message is not set, the name of an enum value."""
    steps = []
    for part in path.split("."):
        field = descriptor.fields_by_name.get(part) if descriptor is not None else None
        if field is None:
            raise ValueError(
                f"GAQL field {path!r}: {part!r} is not a field of GoogleAdsRow in Google Ads API {API_VERSION}"
            )
        steps.append(field)
        descriptor = field.message_type
    last = steps[-1]
    enum_names = {v.number: v.name for v in last.enum_type.values} if last.enum_type is not None else None

    def read(row: Any) -> Any:
        message = row
        for field in steps[:-1]:
            if not message.HasField(field.name):
                return None
            message = getattr(message, field.name)
        if last.has_presence and not message.HasField(last.name):
            return None
        value = getattr(message, last.name)
        return enum_names.get(value, str(value)) if enum_names is not None else value

    return read


def rows_to_frame(rows: Iterable[Any], fields: Sequence[str], row_descriptor: Any) -> pd.DataFrame:
    """``GoogleAdsRow`` protobuf messages -> a frame with one column per GAQL field path."""
    readers = [_reader(row_descriptor, f) for f in fields]
    columns: list[list[Any]] = [[] for _ in fields]
    for row in rows:
        for column, read in zip(columns, readers, strict=True):
            column.append(read(row))
    frame = pd.DataFrame({f: pd.Series(c, dtype=object) for f, c in zip(fields, columns, strict=True)})
    for field in fields:  # numbers as numbers (nullable), as a Parquet report has them
        values = frame[field].dropna()
        if len(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            frame[field] = pd.to_numeric(frame[field]).astype(
                "Int64" if all(isinstance(v, int) for v in values) else "float64"
            )
    return frame


def stream_rows(client: Any, customer_id: str, query: str) -> list[Any]:
    """Every ``GoogleAdsRow`` of ``query`` through ``GoogleAdsService.SearchStream`` (one attempt)."""
    service = client.get_service("GoogleAdsService", version=API_VERSION)
    rows: list[Any] = []
    for batch in service.search_stream(customer_id=customer_id, query=query, timeout=SEARCH_TIMEOUT_SECONDS):
        rows.extend(batch.results)
    return rows


def source_label(day: dt.date) -> Path:
    """What the validation's messages name instead of a file (no customer id: ids stay out of messages)."""
    return Path(f"google-ads-api keyword_view {day.isoformat()}")


def keyword_report_frame(
    client: Any, customer_id: str, day: dt.date, retry: RetryPolicy | None = None, log: Callable[[str], None] = print
) -> pd.DataFrame:
    """The day's ``keyword_view`` rows as a frame named by GAQL field paths (SearchStream, with retries)."""
    fields = report_fields()
    query = keyword_view_query(day, fields)
    rows = call_with_retries(
        lambda: stream_rows(client, customer_id, query), retry or RetryPolicy(), log, "SearchStream"
    )
    row_type = type(client.get_type("GoogleAdsRow", version=API_VERSION))
    return rows_to_frame(rows, fields, row_type.DESCRIPTOR)


def keyword_report(
    client: Any,
    customer_id: str,
    day: dt.date,
    today: dt.date | None = None,
    first_day: dt.date = dt.date.min,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] = print,
) -> pa.Table:
    """The ``raw_features`` table of ``day`` read from the API and validated as file ingest validates a
    report (:class:`~astro_assets.sources.google_ads_report.IngestError` listing every problem)."""
    frame = keyword_report_frame(client, customer_id, day, retry, log)
    today = today or dt.datetime.now(dt.UTC).date()
    report = normalise(source_label(day), "api", frame, today, first_day)
    return to_day_tables([report])[day]
