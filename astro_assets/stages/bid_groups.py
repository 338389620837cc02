"""The bid stage's day in campaign groups: its memory is a property of the group size, not of the
account (issue 16: 100M keywords a day on one small machine).

The day's scored keywords are stored by keyword shard (a hash of the pair, ``core.lagging``), so every
shard holds keywords of every campaign. But a keyword's bid depends on its ad group (shrinkage toward
the ad group's mean), its Editor file is its campaign's, and a paused or removed ad group or campaign is
seen on any of its rows. So the stage regroups the day before deciding it:

1. ``campaign_groups``: the keywords per campaign (the ``campaign_id`` column of each shard, counted
   shard by shard), cut into contiguous ranges of campaign ids of about ``rows`` keywords each. A
   campaign is never split (its ad groups and its Editor files stay whole), so a group holds more than
   ``rows`` keywords only when one campaign does (Google Ads allows 5 million keywords per account,
   "About your Google Ads account limits", https://support.google.com/google-ads/answer/6372658).
2. ``spill_groups``: each shard's keywords (its predictions joined to its features' attributes on the
   pair) and each raw shard's status rows are appended to one Arrow IPC file per group (lz4); one
   shard is in memory at a time.
3. The caller decides each group on its own (``stages.bids.build_bid_partition``), reading the group's
   files and the last published day's rows of the group's campaign ids only: the published keyword
   table and Astro's pauses are ordered by campaign, so a range filter reads only their row groups.

Ranges are contiguous and ordered, so the groups' tables written one after the other are the day's
table in campaign order, as one table would be.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from astro_assets.core.features import KEYWORD_PAIR, STATUS_COLUMNS
from astro_assets.storage import DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES, DataLayout
from astro_assets.storage.publish import is_published

#: Keywords the bid stage decides at once (a campaign is never split, so a group holds more when one
#: campaign does). The bid stage's peak memory follows this, not the account: 1.2 GiB at 10M keywords
#: against 3.5 GiB for the whole day in memory (README "Scale").
GROUP_ROWS = 1_000_000
#: What each scored keyword carries into the bid stage: its identity, campaign, names, text, match type
#: and clicks in its window (for shrinkage), from the features; its prediction, from the predictions.
ATTRIBUTES = (*KEYWORD_PAIR, "campaign_id", "campaign_name", "ad_group_name", "keyword_text", "match_type")
EVIDENCE = "clicks_in_window"
PREDICTION = "predicted_value_per_click"
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


def shard_keywords(features: Path, predictions: Path) -> pa.Table:
    """One shard's scored keywords: the predictions file joined to the features file of the same shard
    on the pair (ATTRIBUTES, EVIDENCE, PREDICTION)."""
    keys = [k for k in KEYWORD_PAIR if k in pq.read_schema(predictions).names]
    scored = pq.read_table(predictions, columns=[*keys, PREDICTION])
    described = pq.read_table(features / predictions.name, columns=[*ATTRIBUTES, EVIDENCE])
    return described.join(scored, keys, join_type="inner", use_threads=False)


def keyword_shards(layout: DataLayout, day: dt.date) -> Iterator[pa.Table]:
    """The day's scored keywords, shard by shard (predictions keep the shards of the features)."""
    features = layout.require_published(PREPROCESSED_FEATURES, day)
    predictions = layout.require_published(DAILY_PREDICTIONS, day)
    for path in layout.part_files(predictions):
        yield shard_keywords(features, path)


def empty_keywords() -> pa.Table:
    types = {"campaign_name": pa.string(), "ad_group_name": pa.string(), "keyword_text": pa.string()}
    types |= {"match_type": pa.string(), PREDICTION: pa.float32()}
    return pa.table({c: pa.array([], types.get(c, pa.int64())) for c in [*ATTRIBUTES, EVIDENCE, PREDICTION]})


def status_files(layout: DataLayout, day: dt.date) -> tuple[list[Path], list[str]]:
    """The day's raw files and the status columns (``STATUS_COLUMNS``) their report gives; no files
    when the raw partition is not published or has no status column."""
    folder = layout.partition_dir(RAW_FEATURES, day)
    files = layout.parquet_files(folder) if is_published(folder) else []
    if not files:
        return [], []
    present = [c for c in STATUS_COLUMNS if c in pq.read_schema(files[0]).names]
    return (files, present) if present else ([], [])


def read_statuses(path: Path, present: list[str]) -> pa.Table:
    return pq.read_table(path, columns=[*KEYWORD_PAIR, "campaign_id", *present])


# -- the groups -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignGroups:
    """Contiguous ranges of campaign ids: group ``g`` holds the ids from ``starts[g]`` (the first group
    from the smallest id there is) to ``starts[g + 1]`` excluded (the last one to the largest)."""

    starts: np.ndarray  # int64, ascending; starts[0] is ignored (the first group has no lower bound)
    keywords: np.ndarray  # the day's keywords per group (the features' campaign column of the scored shards)

    def __len__(self) -> int:
        return len(self.starts)

    def of(self, campaign_ids: np.ndarray) -> np.ndarray:
        """The group of each campaign id."""
        return np.maximum(np.searchsorted(self.starts, campaign_ids, side="right") - 1, 0)

    def bounds(self, group: int) -> tuple[int | None, int | None]:
        """The group's campaign ids as (first, end excluded); None where the range is open."""
        first = int(self.starts[group]) if group > 0 else None
        end = int(self.starts[group + 1]) if group + 1 < len(self.starts) else None
        return first, end

    def filters(self, group: int) -> list[tuple] | None:
        """A Parquet filter on ``campaign_id`` for the group's range (None: the only group, everything)."""
        first, end = self.bounds(group)
        parts = [("campaign_id", ">=", first)] if first is not None else []
        parts += [("campaign_id", "<", end)] if end is not None else []
        return parts or None


def group_campaigns(per_campaign: dict[int, int], rows: int) -> CampaignGroups:
    """Campaigns (id -> keywords), in id order, cut into ranges of about ``rows`` keywords: a new group
    starts at the campaign that would take the current one past ``rows`` (never splitting a campaign)."""
    if rows < 1:
        raise ValueError(f"rows={rows} must be at least 1")
    starts, sizes, size = [np.iinfo(np.int64).min], [], 0
    for campaign in sorted(per_campaign):
        count = per_campaign[campaign]
        if size and size + count > rows:
            starts.append(campaign)
            sizes.append(size)
            size = 0
        size += count
    sizes.append(size)
    return CampaignGroups(np.asarray(starts, dtype=np.int64), np.asarray(sizes, dtype=np.int64))


def campaign_groups(layout: DataLayout, day: dt.date, rows: int = GROUP_ROWS) -> CampaignGroups:
    """The day's groups, from the features' ``campaign_id`` column of every shard with predictions."""
    features = layout.require_published(PREPROCESSED_FEATURES, day)
    per_campaign: Counter[int] = Counter()
    for path in layout.part_files(layout.require_published(DAILY_PREDICTIONS, day)):
        counts = pc.value_counts(pq.read_table(features / path.name, columns=["campaign_id"])["campaign_id"])
        campaigns, keywords = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        per_campaign.update(dict(zip(campaigns, keywords, strict=True)))
    per_campaign.pop(None, None)  # a keyword without a campaign id sorts into the first group
    return group_campaigns(dict(per_campaign), rows)


# -- the spill ------------------------------------------------------------------------------------


class _GroupFiles:
    """One Arrow IPC file per group, opened on its first rows."""

    def __init__(self, folder: Path, name: str, groups: CampaignGroups):
        self.folder, self.name, self.groups = folder, name, groups
        self.writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}

    def path(self, group: int) -> Path:
        return self.folder / f"{self.name}-{group:05d}.arrow"

    def append(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        campaigns = pc.fill_null(table["campaign_id"], np.iinfo(np.int64).min).to_numpy()
        group = self.groups.of(campaigns)
        order = np.argsort(group, kind="stable")
        table, group = table.take(pa.array(order)), group[order]
        bounds = np.searchsorted(group, np.arange(len(self.groups) + 1))
        for g in range(len(self.groups)):
            if bounds[g + 1] > bounds[g]:
                if g not in self.writers:
                    self.writers[g] = pa.ipc.new_file(self.path(g), table.schema, options=_IPC)
                self.writers[g].write_table(table.slice(bounds[g], bounds[g + 1] - bounds[g]))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def read(self, group: int, schema: pa.Schema | None = None) -> pa.Table | None:
        """The group's rows (None when it has none and no ``schema`` says what an empty one is)."""
        if group not in self.writers:
            return schema.empty_table() if schema is not None else None
        with pa.memory_map(str(self.path(group))) as source:
            table = pa.ipc.open_file(source).read_all()
        return table.combine_chunks()


@dataclass
class SpilledDay:
    """A day's scored keywords and report statuses, one file each per campaign group."""

    groups: CampaignGroups
    keywords: _GroupFiles
    statuses: _GroupFiles | None
    keyword_schema: pa.Schema

    def group_keywords(self, group: int) -> pa.Table:
        return self.keywords.read(group, self.keyword_schema)

    def group_statuses(self, group: int) -> pa.Table | None:
        return self.statuses.read(group) if self.statuses is not None else None


def spill_groups(layout: DataLayout, day: dt.date, groups: CampaignGroups, scratch: Path) -> SpilledDay:
    """Write the day's scored keywords and the report's status rows into ``scratch``, one Arrow file
    per group, reading one shard at a time."""
    keywords = _GroupFiles(scratch, "keywords", groups)
    schema = empty_keywords().schema
    try:
        for table in keyword_shards(layout, day):
            schema = table.schema
            keywords.append(table)
    finally:
        keywords.close()
    files, present = status_files(layout, day)
    statuses = _GroupFiles(scratch, "statuses", groups) if files else None
    if statuses is not None:
        try:
            for path in files:
                statuses.append(read_statuses(path, present))
        finally:
            statuses.close()
    return SpilledDay(groups, keywords, statuses, schema)
