"""A keyword is (ad group id, criterion id), as Google Ads identifies it: the same criterion in two ad
groups is two keywords in every layer (lagging, shards, training labels, the synthetic account)."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from astro_assets.core.features import LAGS, RAW_SCHEMA
from astro_assets.core.lagging import keyword_shard, lagged_features, read_keyword_shard
from astro_assets.model.datasets import labelled_set
from astro_assets.sources import synthetic
from astro_assets.storage import DataLayout
from astro_assets.storage.raw import write_raw_partition

DAY = dt.date(2026, 5, 10)


def rows(pairs: list[tuple[int, int]], **values) -> pa.Table:
    base = {
        "campaign_id": 1,
        "campaign_name": "C",
        "ad_group_name": "AG",
        "keyword_text": "running shoes",
        "match_type": "EXACT",
        "impressions": 100,
        "clicks": 10,
        "cost_micros": 5_000_000,
        "conversions": 1.0,
        "conversion_value": 20.0,
        "quality_score": 7,
        "search_impression_share": 0.5,
    }
    return pa.Table.from_pylist(
        [{**base, **values, "ad_group_id": a, "keyword_id": k} for a, k in pairs], schema=RAW_SCHEMA
    )


def test_one_criterion_in_two_ad_groups_is_two_keywords_with_their_own_history():
    tables = [rows([]) for _ in range(LAGS)]
    tables[LAGS - 2] = rows([(20, 7)], clicks=4)
    tables[LAGS - 1] = pa.concat_tables([rows([(10, 7)], clicks=1), rows([(20, 7)], clicks=9)])
    table = lagged_features(DAY, tables)
    assert list(zip(table.column("ad_group_id").to_pylist(), table.column("keyword_id").to_pylist(), strict=True)) == [
        (10, 7),
        (20, 7),
    ]
    assert table.column("clicks_in_window").to_pylist() == [1, 13]


def test_labels_join_on_the_pair():
    tables = [rows([]) for _ in range(LAGS - 1)] + [rows([(10, 7), (20, 7), (20, 8)])]
    features = lagged_features(DAY, tables)
    next_day = pa.concat_tables(
        [rows([(20, 7)], clicks=4, conversion_value=12.0), rows([(10, 7)], clicks=2, conversion_value=2.0)]
    )
    labelled = labelled_set(features, next_day)
    assert labelled.target.tolist() == [1.0, 3.0]  # (10, 7): 2 / 2, then (20, 7): 12 / 4
    assert labelled.clicks.tolist() == [2.0, 4.0]


def test_shards_are_decided_by_both_ids_and_read_back_whole(tmp_path):
    ad_groups = np.repeat(np.arange(100, 140), 25)
    ids = np.tile(np.arange(1_000, 1_025), 40)  # every criterion in 40 ad groups
    shard = keyword_shard(ad_groups, ids, 8)
    assert np.array_equal(shard, keyword_shard(ad_groups, ids, 8))  # deterministic
    for criterion in (1_000, 1_013):
        assert len(set(shard[ids == criterion].tolist())) > 1  # one criterion id spreads over the shards
    counts = np.bincount(shard, minlength=8)
    assert counts.min() > 0.5 * counts.mean()
    table = rows(list(zip(ad_groups.tolist(), ids.tolist(), strict=True)))
    layout = DataLayout(tmp_path)
    write_raw_partition(layout, DAY, table)
    shards = layout.raw_shards(DAY)
    read = [read_keyword_shard(layout.raw_shard_paths(DAY, s, shards), s, shards) for s in range(shards)]
    assert sum(t.num_rows for t in read) == table.num_rows
    every = [str(path) for _, path in layout.shard_files(layout.partition_dir("raw_features", DAY)).values()]
    for s, part in enumerate(read):  # the same rows when the day is read whole and filtered
        assert read_keyword_shard(every, s, shards).equals(part)
        pairs = list(zip(part.column("ad_group_id").to_pylist(), part.column("keyword_id").to_pylist(), strict=True))
        assert pairs == sorted(pairs)
    assert pq.read_schema(every[0]).metadata[b"astro.shard_key"] == b"ad_group_id,keyword_id"


def test_the_synthetic_account_repeats_some_keywords_across_ad_groups():
    report = synthetic.keyword_report(5, 20_000, dt.date(2026, 6, 1))
    frame = report.select(["ad_group_id", "keyword_id", "keyword_text", "match_type", "campaign_id"]).to_pandas()
    assert not frame.duplicated(["ad_group_id", "keyword_id"]).any()
    shared = frame[frame.duplicated("keyword_id", keep=False)]
    assert 0.02 < len(shared) / len(frame) < 0.15
    per_id = shared.groupby("keyword_id").agg(
        texts=("keyword_text", "nunique"), matches=("match_type", "nunique"), ad_groups=("ad_group_id", "nunique")
    )
    assert (per_id.texts == 1).all() and (per_id.matches == 1).all() and (per_id.ad_groups > 1).all()
