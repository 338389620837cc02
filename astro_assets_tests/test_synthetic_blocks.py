"""A synthetic account larger than ``synthetic.POPULATION_BLOCK`` keywords is drawn block by block, so that
a day of it never needs the whole account in one process's memory (issue 16), and the raw stage writes
it block by block. Here the block is made small (1,000 keywords) so that a 2,600-keyword account has
three blocks: the blocks are one account (ids, ad groups, campaigns, shared criteria within a block),
the blocks' shards hold exactly the rows one table would, a block out of order is refused, and the
daily cycle through Dagster runs on such an account with every check passing. Accounts of one block are
drawn exactly as before (not tested here: every other test's figures pin them)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from astro_assets.core.calendar import lag_window
from astro_assets.core.features import LAGS
from astro_assets.sources import synthetic
from astro_assets.storage import BID_FILE, DAILY_ASSETS, RAW_FEATURES, DataLayout, shard_count
from astro_assets.storage.raw import RawBlocks, write_raw_blocks, write_raw_partition, write_raw_shards

SEED, KEYWORDS, BLOCK = 5, 2_600, 1_000
DAY = dt.date(2026, 5, 20)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(synthetic, "POPULATION_BLOCK", BLOCK)
    synthetic.release_blocks()
    synthetic._account_constants.cache_clear()
    yield
    synthetic.release_blocks()
    synthetic._account_constants.cache_clear()


def test_an_account_of_several_blocks_is_one_account(small_blocks):
    assert synthetic.blocks(KEYWORDS) == 3
    with pytest.raises(ValueError, match="3 blocks"):
        synthetic.keyword_population(SEED, KEYWORDS)
    with pytest.raises(ValueError, match="block 3"):
        synthetic.keyword_report(SEED, KEYWORDS, DAY, block=3)
    parts = [synthetic.keyword_report(SEED, KEYWORDS, DAY, block=b) for b in range(3)]
    whole = synthetic.keyword_report(SEED, KEYWORDS, DAY)
    assert whole.equals(pa.concat_tables(parts))
    pairs = list(zip(whole["ad_group_id"].to_pylist(), whole["keyword_id"].to_pylist(), strict=True))
    assert len(set(pairs)) == len(pairs) == whole.num_rows > 0.6 * KEYWORDS
    campaigns = {}
    for b in range(3):
        pop = synthetic.keyword_population(SEED, KEYWORDS, b)
        first = synthetic.FIRST_KEYWORD_ID + b * BLOCK
        assert len(pop.keyword_id) == min(BLOCK, KEYWORDS - b * BLOCK)
        # ids and shared criteria stay in the block: a repeat takes the id of an earlier keyword of it
        assert pop.keyword_id.min() == first and pop.keyword_id.max() < first + BLOCK
        assert 0 < len(pop.keyword_id) - len(np.unique(pop.keyword_id)) < 0.15 * len(pop.keyword_id)
        for group, campaign in zip(pop.ad_group_index, pop.campaign_index, strict=True):
            assert campaigns.setdefault(int(group), int(campaign)) == campaign
    assert len(campaigns) == (KEYWORDS + synthetic.KEYWORDS_PER_AD_GROUP - 1) // synthetic.KEYWORDS_PER_AD_GROUP
    assert max(campaigns.values()) + 1 == synthetic.campaign_count(KEYWORDS)
    # campaign 0 spans blocks 0 and 1: its value per conversion is the same campaign value in both (the
    # keywords' own spread is lognormal(0, 0.3), so the geometric means of hundreds agree within a few %)
    values = []
    for b in (0, 1):
        pop = synthetic.keyword_population(SEED, KEYWORDS, b)
        values.append(np.exp(np.log(pop.value_per_conversion[pop.campaign_index == 0]).mean()))
    assert (pop.campaign_index == 0).sum() >= 250
    assert abs(values[1] / values[0] - 1) < 0.06


def test_the_blocks_shards_hold_what_one_table_would(small_blocks, tmp_path):
    day = synthetic.report_day(SEED, KEYWORDS, DAY)
    assert isinstance(day, RawBlocks) and day.expected_rows == KEYWORDS
    whole = synthetic.keyword_report(SEED, KEYWORDS, DAY)
    (tmp_path / "blocks").mkdir()
    (tmp_path / "table").mkdir()
    assert write_raw_shards(tmp_path / "table", whole) == whole.num_rows
    rows, nulls = write_raw_blocks(tmp_path / "blocks", day.blocks, shards=shard_count(whole.num_rows))
    assert rows == whole.num_rows
    assert nulls == {name: whole[name].null_count for name in nulls} and sum(nulls.values()) > 0
    names = sorted(p.name for p in (tmp_path / "table").glob("shard-*"))
    assert names == sorted(p.name for p in (tmp_path / "blocks").glob("shard-*")) and len(names) >= 2
    for name in names:
        got, expected = pq.read_table(tmp_path / "blocks" / name), pq.read_table(tmp_path / "table" / name)
        assert got.equals(expected), name
        assert got.schema.metadata == expected.schema.metadata
        assert pq.ParquetFile(tmp_path / "blocks" / name).num_row_groups == 3  # one per block


def test_a_block_out_of_order_is_refused(small_blocks, tmp_path):
    parts = [synthetic.keyword_report(SEED, KEYWORDS, DAY, block=b) for b in range(3)]
    with pytest.raises(ValueError, match="raw block 1: its pairs do not all sort after"):
        write_raw_blocks(tmp_path, iter([parts[2], parts[0]]), shards=2)


@pytest.mark.spark
def test_the_daily_cycle_runs_on_an_account_of_several_blocks(small_blocks, tmp_path):
    """History written block by block, then raw → preprocessed → predictions → bid file for one day
    through Dagster with every check: each passes, and the raw day holds the account's rows."""
    import torch

    from astro_assets.core.features import N_FEATURES
    from astro_assets.defs import build_definitions
    from astro_assets.defs.freshness import DEADLINE_ASSETS, FRESHNESS_CHECK
    from astro_assets.model.export import export_onnx
    from astro_assets.model.network import ValuePerClickModel
    from astro_assets.settings import load_settings

    settings = dataclasses.replace(load_settings(), data_dir=str(tmp_path / "data"), keywords=KEYWORDS, seed=SEED)
    layout = DataLayout(settings.data_dir)
    for day in lag_window(DAY - dt.timedelta(days=1), LAGS - 1):
        write_raw_partition(layout, day, synthetic.report_day(SEED, KEYWORDS, day))
    layout.onnx_dir().mkdir(parents=True)
    torch.manual_seed(0)
    model = ValuePerClickModel(N_FEATURES, 8, np.zeros(N_FEATURES), np.ones(N_FEATURES)).eval()
    layout.onnx_model().write_bytes(export_onnx(model, "20260520-blocks", {"end_date": "2026-05-19"}))
    defs = build_definitions(settings)
    freshness = [dg.AssetCheckKey(dg.AssetKey(a), FRESHNESS_CHECK) for a in DEADLINE_ASSETS]
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        result = dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=dg.AssetSelection.assets(*DAILY_ASSETS) - dg.AssetSelection.checks(*freshness),
            partition_key=DAY.isoformat(),
            resources=defs.resources,
            instance=instance,
        )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) >= 8 and all(e.passed for e in evaluations), [e.check_name for e in evaluations]
    raw = pq.read_table(layout.partition_dir(RAW_FEATURES, DAY))
    expected = synthetic.keyword_report(SEED, KEYWORDS, DAY)
    assert raw.num_rows == expected.num_rows
    assert pc.sum(raw["clicks"]).as_py() == pc.sum(expected["clicks"]).as_py()
    keywords = pq.read_table(layout.bid_keywords_file(layout.partition_dir(BID_FILE, DAY)))
    assert keywords.num_rows > 0.6 * KEYWORDS
