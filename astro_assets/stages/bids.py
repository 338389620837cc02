"""``bid_file``: one explicit row per scored keyword, for Google Ads Editor and for the API upload.

A day's bids are one partition folder (``DataLayout.partition_dir(BID_FILE, day)``), written into a
staging folder the caller gives and publishes as a unit:

- ``keywords.parquet``: every keyword scored that day, exactly once, identified by the pair
  (ad_group_id, keyword_id): its bid (``max_cpc``, ``max_cpc_micros``; 0 when no bid is written), its
  ``status`` (ENABLED / PAUSED / REMOVED), ``paused_by_astro``, and ``changed`` (bid or status differs
  from the last published day). The API upload sends the rows with ``changed``, the status only where
  ``writes_status``.
- ``paused_by_astro.parquet``: every keyword Astro has paused and not enabled again, including those
  not scored that day, so that Astro undoes its own pauses, and only those, whenever they come back.
- Google Ads Editor files, one campaign per file (split further above ``MAX_EDITOR_ROWS`` rows):
  ``bids-…`` (every keyword not removed) and ``changes-…`` (only the changed ones, what a team imports
  daily), and ``manifest.json`` listing them (name, kind, campaign, part, rows, bytes, sha256) with the
  day's counts. Where every keyword of a campaign group changed (an account's first day), its
  ``changes-…`` files are hard links to its ``bids-…`` files: the same bytes, encoded and stored once.

**Removed keywords.** A keyword the day's report says is REMOVED, or whose ad group or campaign is
(``removed_in_account``; an ad group or campaign removed on any of its rows counts for all its
keywords), or that the last published day already recorded as REMOVED (removal is final, and a removed
keyword has no impressions, so the next days' reports usually have no row for it), cannot be changed:
Google Ads refuses any operation on a removed resource (``OPERATION_NOT_PERMITTED_FOR_REMOVED_RESOURCE``).
It keeps its one row in ``keywords.parquet`` (the contract: one row per scored keyword, so the table
still accounts for every prediction) with ``status`` REMOVED — the report's own word, in the column that
already holds the keyword's status after the day, rather than a new boolean beside an ENABLED/PAUSED
that would be false — and nothing to write: ``max_cpc``, ``max_cpc_micros`` and
``max_cpc_before_change_cap`` 0, ``writes_status``, ``changed``, ``paused_by_astro`` and
``paused_by_account`` false. It gets no row in the Editor files (``bids-…`` nor ``changes-…``) and,
``changed`` being false, no operation in the API upload (which also skips any REMOVED row outright). A
pause Astro had recorded for it ends (it leaves ``paused_by_astro.parquet``, also for a removed keyword
not scored that day): Astro can never undo it. The manifest counts them: ``removed_in_account`` (of
which ``removed_on_previous_day`` carried over) and ``astro_pauses_ended_by_removal``.

The bid comes from the bid rule and its guardrails (``core.bid_rule``); the status from
``core.bid_rule.keyword_states``: a keyword no bid can earn on (below the floor, invalid prediction) is
paused instead of being left with yesterday's bid; a keyword Astro paused is enabled again once it can
earn; a keyword, ad group or campaign the report says is paused and that Astro did not pause keeps its
status; a removed keyword is left out (above). Keywords absent from the day's data get no row: the
account keeps their state, and the manifest counts them.

The Editor format, from Google's Ads Editor help, "Import a CSV file in Google Ads Editor — CSV file
columns" (https://support.google.com/google-ads/editor/answer/57747) and its format guidelines
(https://support.google.com/google-ads/editor/topic/2986631): the first row is the header; headers
are English names, matched ignoring case and spaces; one item (here a keyword) per row; a blank field
means "make no change" (so a row without ``Max CPC`` leaves the bid and one without ``Status`` leaves
the status as the account has them). Files are UTF-16 little-endian with a byte-order mark and
tab-separated, as Editor's own exports are. Status values are Editor's spellings ``Enabled`` /
``Paused``, match types ``Exact`` / ``Phrase`` / ``Broad``, Max CPC a decimal in the account currency
("12.34": a dot, no currency sign, no thousands separator). The rows carry ``Campaign ID``,
``Ad group ID`` and ``Keyword ID`` beside the names, so that an item renamed in the account is still
the same item.

What Google's help was found to say, and what it was not (searched again 2026-11-26; the search tool
returns only the opening of each help page, in every language and mirror tried):

- Verified (57747, its opening, English, German, Chinese and Japanese versions and an older "AdWords
  Editor" copy): English headers, case and spaces ignored; a blank field makes no change; ``[]``
  erases a value; the article covers "how to retain version history when making edits" — the section
  where ID columns would be described — but that section, the keyword rows of its column table
  (``Keyword``, ``Criterion Type``, ``Max CPC``, ``Keyword ID``, ...) and the Status values lie beyond
  the part retrieved.
- Not verified from Google: whether Editor matches an imported keyword row by ``Campaign ID`` /
  ``Ad group ID`` / ``Keyword ID`` or by names; the column names ``Criterion Type``, ``Max CPC``,
  ``Status`` and the values ``Enabled`` / ``Paused`` (public Editor-import builders on GitHub write
  exactly these, e.g. ``Campaign,Ad Group,Keyword,Criterion Type,Status`` with ``Enabled`` /
  ``Paused`` and ``Action,...,Criterion Type,Status,Max CPC``: consistent, but not Google's word); the
  UTF-16 tab-separated encoding (Editor's own exports, per the issue); any import size limit (none was
  found: ``MAX_EDITOR_ROWS`` is a conservative choice). If Editor matches by names only, a campaign or
  ad group renamed after the report no longer matches until the next report has the new name (README
  "Publishing bids").
- The statuses Astro reads come from the report, not from Editor: ``sources.report_languages``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv as pacsv

from astro_assets.core.bid_rule import (
    ENABLED,
    INACTIVE_STATUSES,
    PAUSED,
    REMOVED,
    BidRule,
    format_money,
    guarded_bid_units,
    keyword_states,
    lookup,
    previous_units_of,
    units_to_micros,
)
from astro_assets.core.editor import (  # the format and its reading are in core: the checks' Spark tasks read files
    EDITOR_BOM,
    EDITOR_COLUMNS,
    EDITOR_ENCODING,
    EDITOR_MATCH_TYPES,
    EDITOR_SEPARATOR,
    EDITOR_STATUSES,
    read_editor_file,
)
from astro_assets.core.features import KEYWORD_PAIR, STATUS_COLUMNS
from astro_assets.stages.bid_groups import (
    GROUP_ROWS,
    CampaignGroups,
    campaign_groups,
    empty_keywords,
    keyword_shards,
    read_statuses,
    spill_groups,
    status_files,
)
from astro_assets.storage import BID_FILE, DataLayout

#: Rows per Editor file at most. The Editor help pages this project could retrieve state no import
#: size limit; Google Ads allows 20,000 keywords per ad group and 5 million per account ("About your
#: Google Ads account limits", https://support.google.com/google-ads/answer/6372658). Files are split
#: per campaign, and a campaign above this many rows into parts (~20 MB each in UTF-16).
MAX_EDITOR_ROWS = 100_000
#: The two kinds of Editor files: every keyword, and only those whose bid or status changed.
EDITOR_KINDS = ("bids", "changes")
#: Editor rows the asset shows as a preview.
PREVIEW_ROWS = 10

KEYWORDS_SCHEMA = pa.schema(
    [
        ("ad_group_id", pa.int64()),
        ("keyword_id", pa.int64()),
        ("campaign_id", pa.int64()),
        ("campaign_name", pa.string()),
        ("ad_group_name", pa.string()),
        ("keyword_text", pa.string()),
        ("match_type", pa.string()),
        ("predicted_value_per_click", pa.float64()),
        ("max_cpc", pa.float64()),
        ("max_cpc_micros", pa.int64()),
        ("status", pa.string()),
        ("paused_by_astro", pa.bool_()),
        ("changed", pa.bool_()),
        ("max_cpc_before_change_cap", pa.float64()),
        ("writes_status", pa.bool_()),
        ("paused_by_account", pa.bool_()),
    ]
)
PAUSES_SCHEMA = pa.schema([("ad_group_id", pa.int64()), ("keyword_id", pa.int64()), ("campaign_id", pa.int64())])


# -- inputs ---------------------------------------------------------------------------------------


def keywords_to_bid(layout: DataLayout, day: dt.date) -> pa.Table:
    """The day's predictions with each keyword's campaign, ad group, text, match type and clicks in
    its window, joined on the pair (ad_group_id, keyword_id) shard by shard (predictions keep the
    shards of the preprocessed features), as one table: the whole day in memory. The stage itself reads
    the day in campaign groups (``build_bid_partition``)."""
    parts = list(keyword_shards(layout, day))
    return pa.concat_tables(parts) if parts else empty_keywords()


def account_statuses(layout: DataLayout, day: dt.date) -> pa.Table | None:
    """The statuses the day's report gives (``features.STATUS_COLUMNS``: keyword, ad group, campaign),
    with the pair and the campaign; None when the day's raw partition has none of them."""
    files, present = status_files(layout, day)
    return pa.concat_tables(read_statuses(f, present) for f in files) if files else None


def _one_of(values: pa.ChunkedArray, words: tuple[str, ...]) -> pa.ChunkedArray:
    return pc.fill_null(pc.is_in(pc.utf8_upper(values), value_set=pa.array(list(words))), False)


def _status_in_account(
    keywords: pa.Table, statuses: pa.Table | None, words: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """For each keyword: whether the report gives it one of ``words`` as its own status, and whether
    it gives one to its ad group or campaign (seen on any row of the ad group / campaign)."""
    n = keywords.num_rows
    own, parent = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if statuses is None or statuses.num_rows == 0 or n == 0:
        return own, parent
    if "keyword_status" in statuses.column_names:
        marked = statuses.select(list(KEYWORD_PAIR)).append_column("hit", _one_of(statuses["keyword_status"], words))
        found, hit = lookup(keywords, marked, "hit")
        own = found & np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)
    for column, key in (("ad_group_status", "ad_group_id"), ("campaign_status", "campaign_id")):
        if column not in statuses.column_names:
            continue
        groups = statuses.select([key]).append_column("hit", _one_of(statuses[column], words))
        hit_groups = pc.unique(groups.filter(groups["hit"])[key])
        parent |= np.asarray(pc.is_in(keywords[key], value_set=hit_groups).to_numpy(zero_copy_only=False))
    return own, parent


def paused_in_account(keywords: pa.Table, statuses: pa.Table | None) -> tuple[np.ndarray, np.ndarray]:
    """For each keyword: whether the report says it is paused (or removed), and whether its ad group
    or campaign is. A paused ad group or campaign seen on any of its keywords' rows counts for all of
    its keywords; a keyword absent from the report has no status of its own (not paused, as far as
    the report says)."""
    return _status_in_account(keywords, statuses, INACTIVE_STATUSES)


def removed_in_account(keywords: pa.Table, statuses: pa.Table | None) -> np.ndarray:
    """For each keyword (``ad_group_id``, ``keyword_id``, ``campaign_id``): whether the report says it,
    its ad group or its campaign is REMOVED (a removed ad group or campaign seen on any of its rows
    counts for all its keywords). Such a keyword can no longer be changed (module docstring)."""
    own, parent = _status_in_account(keywords, statuses, (REMOVED,))
    return own | parent


def has_removed_status(statuses: pa.Table | None) -> bool:
    """Whether the report gives REMOVED anywhere (keyword, ad group or campaign): cheap, so that
    callers can skip the per-keyword work on a day without removals."""
    if statuses is None:
        return False
    return any(
        bool(pc.any(_one_of(statuses[c], (REMOVED,))).as_py()) for c in STATUS_COLUMNS if c in statuses.column_names
    )


def removed_scored_keywords(layout: DataLayout, day: dt.date) -> pa.Table:
    """The pairs of the day's scored keywords the day's report says are removed, themselves or through
    their ad group or campaign (as ``removed_in_account`` on the whole day), reading the report's
    statuses file by file and the scored keywords shard by shard: memory follows the removals, not the
    day. A day without any REMOVED status reads the statuses only."""
    files, present = status_files(layout, day)
    own, parents = [], {"ad_group_id": [], "campaign_id": []}
    for path in files:
        statuses = read_statuses(path, present)
        if not has_removed_status(statuses):
            continue
        if "keyword_status" in statuses.column_names:
            own.append(statuses.filter(_one_of(statuses["keyword_status"], (REMOVED,))).select(list(KEYWORD_PAIR)))
        for column, key in (("ad_group_status", "ad_group_id"), ("campaign_status", "campaign_id")):
            if column in statuses.column_names:
                parents[key].append(pc.unique(statuses.filter(_one_of(statuses[column], (REMOVED,)))[key]))
    empty = pa.table({key: pa.array([], pa.int64()) for key in KEYWORD_PAIR})
    if not own and not any(parents.values()):
        return empty
    own_pairs = pa.concat_tables(own).cast(empty.schema).group_by(list(KEYWORD_PAIR)).aggregate([]) if own else empty
    marked = own_pairs.append_column("hit", pa.array(np.ones(own_pairs.num_rows, dtype=bool)))
    removed = [empty]
    for keywords in keyword_shards(layout, day):
        hit, _ = lookup(keywords, marked, "hit")
        for key, ids in parents.items():
            if ids:
                values = pc.unique(pa.chunked_array(ids, pa.int64()))
                hit = hit | np.asarray(pc.is_in(keywords[key], value_set=values).to_numpy(zero_copy_only=False))
        removed.append(keywords.filter(pa.array(hit)).select(list(KEYWORD_PAIR)).cast(empty.schema))
    return pa.concat_tables(removed)


@dataclass(frozen=True)
class PreviousDay:
    """The last published bid partition before the day: its keyword table and Astro's pauses."""

    day: dt.date
    keywords: pa.Table  # ad_group_id, keyword_id, max_cpc, max_cpc_micros, status
    pauses: pa.Table  # PAUSES_SCHEMA


def _previous_folder(layout: DataLayout, day: dt.date) -> tuple[dt.date, Path] | None:
    """The newest published bid partition before ``day`` that has a keyword table, and its folder."""
    earlier = [d for d in layout.existing_days(BID_FILE) if d < day]
    for candidate in reversed(earlier):
        folder = layout.partition_dir(BID_FILE, candidate)
        if layout.bid_keywords_file(folder).exists():
            return candidate, folder
    return None


def previous_day(layout: DataLayout, day: dt.date) -> PreviousDay | None:
    """The newest published bid partition before ``day``, whole (None if there is none)."""
    found = _previous_folder(layout, day)
    return _read_previous(layout, found, None, 0) if found is not None else None


def _read_previous(
    layout: DataLayout, found: tuple[dt.date, Path], groups: CampaignGroups | None, group: int
) -> PreviousDay:
    """The previous day's keyword table and Astro's pauses, whole or in one group's campaign range
    (both are ordered by campaign, so the range filter reads only the row groups that hold it)."""
    candidate, folder = found
    columns = [*KEYWORD_PAIR, "campaign_id", "max_cpc", "max_cpc_micros", "status"]
    filters = groups.filters(group) if groups is not None else None
    keywords = pq.read_table(layout.bid_keywords_file(folder), columns=columns, filters=filters)
    pauses_path = layout.bid_pauses_file(folder)
    if pauses_path.exists():
        pauses = pq.read_table(pauses_path, filters=filters).select(PAUSES_SCHEMA.names).cast(PAUSES_SCHEMA)
    else:
        pauses = PAUSES_SCHEMA.empty_table()
    return PreviousDay(candidate, keywords, pauses)


def removed_on_previous_day(layout: DataLayout, day: dt.date) -> pa.Table:
    """The pairs the newest published bid partition before ``day`` says are REMOVED (read with a filter
    on ``status``, so a day without removals costs the row groups' statistics only). Removal is final, and
    a removed keyword has no impressions, so the next days' reports usually have no row for it: what the
    last published day says carries over (``bid_table``)."""
    found = _previous_folder(layout, day)
    if found is None:
        return pa.table({key: pa.array([], pa.int64()) for key in KEYWORD_PAIR})
    path = layout.bid_keywords_file(found[1])
    return pq.read_table(path, columns=list(KEYWORD_PAIR), filters=[("status", "==", REMOVED)])


# -- the rows ---------------------------------------------------------------------------------------


def bid_table(
    keywords: pa.Table,
    rule: BidRule,
    previous: PreviousDay | None = None,
    statuses: pa.Table | None = None,
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """The day's keyword table (``KEYWORDS_SCHEMA``, one row per keyword, ordered by campaign, ad group
    and keyword), Astro's pauses after the day (``PAUSES_SCHEMA``), and counts of what was paused,
    enabled again, capped and changed. ``keywords``: keywords_to_bid's columns (clicks_in_window
    optional, for shrinkage); ``previous``: the last published day, for the change cap, Astro's pauses
    and ``changed``; ``statuses``: the report's statuses (``account_statuses``)."""
    order = pc.sort_indices(keywords, [(c, "ascending") for c in ("campaign_id", *KEYWORD_PAIR)])
    keywords = keywords.take(order)
    n = keywords.num_rows
    predicted = keywords["predicted_value_per_click"].to_numpy(zero_copy_only=False).astype(np.float64)
    has_evidence = "clicks_in_window" in keywords.column_names
    guarded = guarded_bid_units(
        predicted,
        rule,
        clicks=keywords["clicks_in_window"].to_numpy(zero_copy_only=False) if has_evidence else None,
        ad_group=keywords["ad_group_id"].to_numpy() if has_evidence else None,
        previous_units=previous_units_of(keywords, previous.keywords, rule) if previous else None,
    )
    units = guarded.units
    limit = rule.break_even(predicted)
    keyword_paused, parent_paused = paused_in_account(keywords, statuses)
    reported_removed = removed_in_account(keywords, statuses)
    if previous is not None:
        found, previous_micros = lookup(keywords, previous.keywords, "max_cpc_micros")
        _, previous_status = lookup(keywords, previous.keywords, "status")
        previous_status = np.asarray(pc.fill_null(previous_status, "").to_numpy(zero_copy_only=False))
    else:
        found, previous_status = np.zeros(n, dtype=bool), np.full(n, "", dtype=object)
    # Removal is final and a removed keyword has no impressions (so usually no report row the next
    # days): a keyword the last published day says is REMOVED stays removed.
    removed = reported_removed | (previous_status == REMOVED)
    if previous is not None and previous.pauses.num_rows:
        before, _ = lookup(keywords, previous.pauses, "campaign_id")
    else:
        before = np.zeros(n, dtype=bool)
    states = keyword_states(units > 0, keyword_paused, parent_paused, before, removed)
    written = np.where(states.writes_bid, units, 0)
    micros = units_to_micros(written, rule)
    status = np.where(removed, REMOVED, np.where(states.paused, PAUSED, ENABLED))
    if previous is not None:
        same = (
            found
            & (np.nan_to_num(previous_micros.to_numpy(zero_copy_only=False).astype(np.float64)) == micros)
            & (previous_status == status)
        )
        changed = ~same & ~removed  # nothing can be changed on a removed keyword
        absent = previous.keywords.num_rows - int(found.sum())
    else:
        changed, absent = ~removed, 0
    table = pa.table(
        {
            "ad_group_id": keywords["ad_group_id"],
            "keyword_id": keywords["keyword_id"],
            "campaign_id": keywords["campaign_id"],
            "campaign_name": keywords["campaign_name"],
            "ad_group_name": keywords["ad_group_name"],
            "keyword_text": keywords["keyword_text"],
            "match_type": keywords["match_type"],
            "predicted_value_per_click": pa.array(predicted),
            "max_cpc": pa.array(written * rule.currency_unit),
            "max_cpc_micros": pa.array(micros),
            "status": pa.array(status),
            "paused_by_astro": pa.array(states.paused_by_astro),
            "changed": pa.array(changed),
            "max_cpc_before_change_cap": pa.array(
                np.where(states.writes_bid, guarded.before_change_cap, 0) * rule.currency_unit
            ),
            "writes_status": pa.array(states.writes_status),
            "paused_by_account": pa.array(states.paused_by_account),
        }
    ).cast(KEYWORDS_SCHEMA)
    pauses, carried_removed = _pauses_after(table, previous, statuses)
    active = ~removed
    counts = {
        "keywords": n,
        "bids": int(states.writes_bid.sum()),
        "enabled": int((~states.paused & active).sum()),
        "paused": int(states.paused.sum()),
        "paused_below_floor": int(((units == 0) & np.isfinite(limit) & active).sum()),
        "paused_invalid_prediction": int((~np.isfinite(limit) & active).sum()),
        "capped_at_ceiling": int(((limit > rule.ceiling) & active).sum()),
        **guarded.effects,
        **states.effects,
        "removed_on_previous_day": int((removed & ~reported_removed).sum()),
        "astro_pauses_ended_by_removal": int((before & removed).sum()) + carried_removed,
        "changed": int(changed.sum()),
        "keywords_absent_kept": absent,
        "astro_pauses_carried": pauses.num_rows - int(states.paused_by_astro.sum()),
    }
    return table, pauses, counts


def _pauses_after(table: pa.Table, previous: PreviousDay | None, statuses: pa.Table | None) -> tuple[pa.Table, int]:
    """Astro's pauses after the day: the day's, and the previous ones of keywords not scored today
    (kept until the keyword comes back and can earn) unless the report says they are removed; and how
    many of those were dropped as removed."""
    today = table.filter(table["paused_by_astro"]).select(PAUSES_SCHEMA.names)
    if previous is None or previous.pauses.num_rows == 0:
        return today.cast(PAUSES_SCHEMA), 0
    scored, _ = lookup(
        previous.pauses, table.select(list(KEYWORD_PAIR)).append_column("_", pa.array(np.zeros(table.num_rows))), "_"
    )
    carried = previous.pauses.filter(pa.array(~scored)).select(PAUSES_SCHEMA.names).cast(PAUSES_SCHEMA)
    removed = removed_in_account(carried, statuses)
    carried = carried.filter(pa.array(~removed))
    merged = pa.concat_tables([today.cast(PAUSES_SCHEMA), carried])
    return merged.take(pc.sort_indices(merged, [(c, "ascending") for c in ("campaign_id", *KEYWORD_PAIR)])), int(
        removed.sum()
    )


def editor_keywords(table: pa.Table) -> pa.Table:
    """The rows of ``table`` (``KEYWORDS_SCHEMA``) that go into the Editor files: every keyword not
    removed in the account (a removed one cannot be changed; module docstring)."""
    return table.filter(pc.not_equal(table["status"], REMOVED))


def editor_rows(table: pa.Table, rule: BidRule) -> pa.Table:
    """The Editor rows of ``table`` (``KEYWORDS_SCHEMA``): every column a string, Max CPC blank where
    no bid is written, Status blank where the account's status is left as it is."""
    units = np.rint(table["max_cpc_micros"].to_numpy() / (rule.currency_unit * 1_000_000)).astype(np.int64)
    money = format_money(units, rule)
    has_bid = pc.greater(table["max_cpc_micros"], 0)
    match = pc.index_in(table["match_type"], value_set=pa.array(list(EDITOR_MATCH_TYPES)))
    status = pc.if_else(pc.equal(table["status"], PAUSED), EDITOR_STATUSES[PAUSED], EDITOR_STATUSES[ENABLED])
    return pa.table(
        {
            "Campaign ID": pc.cast(table["campaign_id"], pa.string()),
            "Campaign": table["campaign_name"],
            "Ad group ID": pc.cast(table["ad_group_id"], pa.string()),
            "Ad group": table["ad_group_name"],
            "Keyword ID": pc.cast(table["keyword_id"], pa.string()),
            "Keyword": table["keyword_text"],
            "Criterion Type": pa.array(list(EDITOR_MATCH_TYPES.values())).take(match),
            "Max CPC": pc.if_else(has_bid, money, ""),
            "Status": pc.if_else(table["writes_status"], status, ""),
        }
    )


# -- the Editor format ------------------------------------------------------------------------------


def encode_editor_file(rows: pa.Table) -> bytes:
    """``rows`` (strings, ``EDITOR_COLUMNS``) as Editor's exports are: a UTF-16 LE byte-order mark, a
    header row, tab-separated fields, fields quoted only where they contain a tab, a quote or a line
    break."""
    text = io.BytesIO()
    try:  # Arrow quotes a header row whatever the quoting style: the header is written here instead
        options = pacsv.WriteOptions(delimiter=EDITOR_SEPARATOR, quoting_style="none", include_header=False)
        pacsv.write_csv(rows, text, write_options=options)
        body = EDITOR_SEPARATOR.join(rows.column_names) + "\n" + text.getvalue().decode("utf-8")
    except pa.ArrowInvalid:  # a value with a tab, a quote or a line break: quote those (RFC 4180)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=EDITOR_SEPARATOR, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(rows.column_names)
        writer.writerows(zip(*(c.to_pylist() for c in rows.columns), strict=True))
        body = out.getvalue()
    return EDITOR_BOM + body.encode(EDITOR_ENCODING)


def read_editor_files(layout: DataLayout, folder: Path, kind: str = "bids") -> pa.Table:
    """Every Editor file of ``kind`` in a bid partition folder, read back and concatenated, with the
    file each row came from (``file``)."""
    tables = []
    for path in layout.bid_editor_files(folder, kind):
        table = read_editor_file(path.read_bytes(), str(path))
        tables.append(table.append_column("file", pa.array([path.name] * table.num_rows, pa.string())))
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in (*EDITOR_COLUMNS, "file")})
    return pa.concat_tables(tables)


# -- the partition ----------------------------------------------------------------------------------


def write_editor_files(
    layout: DataLayout, folder: Path, kind: str, table: pa.Table, rule: BidRule, max_rows: int
) -> list[dict]:
    """``table``'s Editor rows into ``folder``, one file per campaign (parts of at most ``max_rows``);
    ``table`` is ordered by campaign. Returns the manifest entries."""
    entries = []
    if table.num_rows == 0:
        return entries
    campaigns = table["campaign_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, campaigns[1:] != campaigns[:-1]])
    ends = np.r_[starts[1:], len(campaigns)]
    for start, end in zip(starts, ends, strict=True):
        campaign = int(campaigns[start])
        for part, offset in enumerate(range(start, end, max_rows)):
            rows = editor_rows(table.slice(offset, min(max_rows, end - offset)), rule)
            data = encode_editor_file(rows)
            path = layout.bid_editor_file(folder, kind, campaign, part)
            path.write_bytes(data)
            entries.append(
                {
                    "name": path.name,
                    "kind": kind,
                    "campaign_id": campaign,
                    "part": part,
                    "rows": rows.num_rows,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
    return entries


def link_editor_files(layout: DataLayout, folder: Path, entries: list[dict], kind: str) -> list[dict]:
    """Files of ``kind`` that are the files of ``entries`` byte for byte (a group in which every keyword
    changed: its ``changes-…`` files are its ``bids-…`` files), as hard links: no second encoding and no
    second copy on disk (at 100M keywords, a first day's Editor files are ~15 GB each kind). Returns their
    manifest entries."""
    linked = []
    for entry in entries:
        path = layout.bid_editor_file(folder, kind, entry["campaign_id"], entry["part"])
        path.hardlink_to(folder / entry["name"])
        linked.append({**entry, "name": path.name, "kind": kind})
    return linked


def manifest_of(
    layout: DataLayout,
    folder: Path,
    day: dt.date,
    counts: dict[str, int],
    files: list[dict],
    previous: dt.date | None,
    max_rows: int,
) -> dict:
    """The partition's manifest: the day, the previous day it was compared with, its files' names, the
    Editor format, the day's counts and every Editor file (name, kind, campaign, part, rows, bytes, sha256)."""
    return {
        "day": day.isoformat(),
        "previous_day": previous.isoformat() if previous else None,
        "keywords_file": layout.bid_keywords_file(folder).name,
        "pauses_file": layout.bid_pauses_file(folder).name,
        "format": {
            "encoding": "UTF-16LE with byte-order mark",
            "separator": "tab",
            "columns": list(EDITOR_COLUMNS),
            "statuses": list(EDITOR_STATUSES.values()),
            "max_rows_per_file": max_rows,
            "split": "one campaign per file, parts of at most max_rows_per_file rows",
        },
        "counts": counts,
        "files": files,
    }


@dataclass
class BidDistribution:
    """The day's bids counted by value in whole currency units (index = units), published and as they
    were before the change cap, over the keywords with a bid: the asset's plot, mean and median,
    exactly, without holding the day's bids."""

    unit: float
    published: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    before_change_cap: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, table: pa.Table) -> None:
        bids = table.filter(pc.greater(table["max_cpc_micros"], 0))
        self.published = _counted(self.published, bids["max_cpc"], self.unit)
        self.before_change_cap = _counted(self.before_change_cap, bids["max_cpc_before_change_cap"], self.unit)

    @property
    def bids(self) -> int:
        return int(self.published.sum())

    def values(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bid values present and how many keywords have each."""
        present = np.flatnonzero(counts)
        return present * self.unit, counts[present]

    def mean(self) -> float:
        if not self.bids:
            return 0.0
        return float((np.arange(len(self.published)) * self.published).sum() / self.bids * self.unit)

    def median(self) -> float:
        """As ``np.median`` of the bids: the middle one, or the mean of the two middle ones (0 without bids)."""
        if not self.bids:
            return 0.0
        cumulative = np.cumsum(self.published)
        middle = np.searchsorted(cumulative, [(self.bids - 1) // 2, self.bids // 2], side="right")
        return float(middle.mean() * self.unit)


def _counted(counts: np.ndarray, money: pa.ChunkedArray, unit: float) -> np.ndarray:
    units = np.rint(money.to_numpy() / unit).astype(np.int64)
    more = np.bincount(units, minlength=len(counts))
    more[: len(counts)] += counts
    return more


@dataclass(frozen=True)
class BidDay:
    """What the stage wrote: the keyword rows, the day's counts, the manifest, the previous day the bids
    were compared with, the bid distribution and the first Editor-settable rows (``KEYWORDS_SCHEMA``)."""

    rows: int
    counts: dict[str, int]
    manifest: dict
    previous: dt.date | None
    distribution: BidDistribution
    preview: pa.Table


def build_bid_partition(
    layout: DataLayout,
    day: dt.date,
    rule: BidRule,
    folder: Path,
    max_rows: int = MAX_EDITOR_ROWS,
    group_rows: int = GROUP_ROWS,
) -> BidDay:
    """The stage: decide every keyword's row and write the partition into ``folder`` (a staging folder;
    publishing is the caller's): the keyword table, Astro's pauses, the Editor files of every keyword not
    removed and of the changed ones, and the manifest (written last).

    The day is decided in campaign groups of about ``group_rows`` keywords (``stages.bid_groups``): each
    group's scored keywords, the report's statuses of its campaigns and the last published day's rows of
    its campaigns, then its rows appended to the keyword table and Astro's pauses, its campaigns' Editor
    files written. Memory follows the group, not the day; the tables come out as one table would."""
    if max_rows < 1:
        raise ValueError(f"max_rows={max_rows} must be at least 1")
    groups = campaign_groups(layout, day, group_rows)
    found = _previous_folder(layout, day)
    counts: dict[str, int] = {}
    files: dict[str, list[dict]] = {kind: [] for kind in EDITOR_KINDS}
    distribution, previews = BidDistribution(rule.currency_unit), [KEYWORDS_SCHEMA.empty_table()]
    with (
        tempfile.TemporaryDirectory(prefix=".bid-groups-", dir=folder.parent) as scratch,
        pq.ParquetWriter(layout.bid_keywords_file(folder), KEYWORDS_SCHEMA) as keyword_table,
        pq.ParquetWriter(layout.bid_pauses_file(folder), PAUSES_SCHEMA) as pause_table,
    ):
        spilled = spill_groups(layout, day, groups, Path(scratch))
        for group in range(len(groups)):
            previous = _read_previous(layout, found, groups, group) if found is not None else None
            table, pauses, group_counts = bid_table(
                spilled.group_keywords(group), rule, previous, spilled.group_statuses(group)
            )
            for writer, rows in ((keyword_table, table), (pause_table, pauses)):
                if rows.num_rows:
                    writer.write_table(rows)
            counts = {k: counts.get(k, 0) + v for k, v in group_counts.items()}
            settable = editor_keywords(table)
            written = write_editor_files(layout, folder, "bids", settable, rule, max_rows)
            files["bids"] += written
            changes = settable.filter(settable["changed"])
            if changes.num_rows == settable.num_rows:  # every keyword of the group changed: the same files
                files["changes"] += link_editor_files(layout, folder, written, "changes")
            else:
                files["changes"] += write_editor_files(layout, folder, "changes", changes, rule, max_rows)
            distribution.add(table)
            if sum(p.num_rows for p in previews) < PREVIEW_ROWS:
                previews.append(settable.slice(0, PREVIEW_ROWS))
    previous_date = found[0] if found is not None else None
    manifest = manifest_of(layout, folder, day, counts, files["bids"] + files["changes"], previous_date, max_rows)
    layout.bid_manifest_file(folder).write_text(json.dumps(manifest, indent=2) + "\n")
    preview = pa.concat_tables(previews).slice(0, PREVIEW_ROWS)
    return BidDay(counts.get("keywords", 0), counts, manifest, previous_date, distribution, preview)
