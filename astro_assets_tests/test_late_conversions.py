"""Late conversions: re-downloading the last days every morning rewrites only the days whose content changed.

Unchanged days keep their files byte for byte and their modification times; the command says which days
changed; the Dagster instance records a new data version for the changed day only (the content hash), so
what the day feeds shows as stale there and nothing else does; and the raw_features asset reports the
same data version for the same content.
"""

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from astro_assets.cli.ingest import main
from astro_assets.defs import build_definitions
from astro_assets.defs.resources import AstroStorage, SyntheticKeywordSource
from astro_assets.settings import load_settings
from astro_assets.storage import RAW_FEATURES, DataLayout
from astro_assets.storage.raw import content_hash, write_raw_partition

DAYS = [dt.date(2026, 11, 18) + dt.timedelta(days=i) for i in range(5)]
HEADER = "Day,Campaign ID,Campaign,Ad group ID,Ad group,Keyword ID,Keyword,Match type,Impr.,Clicks,Cost,Conversions"


def report(conversions: dict[dt.date, str]) -> str:
    """Five days of two keywords (one criterion in two ad groups), as the UI exports them."""
    lines = ["Keyword report", "November 18, 2026 - November 22, 2026", HEADER]
    for day in DAYS:
        converted = conversions.get(day, "1.00")
        lines.append(f"{day},11,Shoes,101,Running,1001,running shoes,Exact match,120,9,4.50,{converted}")
        lines.append(f"{day},11,Shoes,102,Trail,1001,running shoes,Exact match,80,4,2.10,0.00")
    lines.append("Total: Account,,,,,,,,1000,65,33.00,5.00")
    return "\n".join(lines) + "\n"


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file with its hash and modification time, and the folder's own modification time."""
    files = {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    return {**files, ".": ("", folder.stat().st_mtime_ns)}


@pytest.fixture
def data_dir(tmp_path, monkeypatch, dagster_instance):
    root = tmp_path / "data"
    monkeypatch.setenv("ASTRO_DATA_DIR", str(root))
    monkeypatch.setenv("ASTRO_START_DATE", "2026-11-01")
    monkeypatch.setenv("DAGSTER_HOME", dagster_instance.root_directory)
    return root


def data_versions(instance: dg.DagsterInstance) -> dict[str, str]:
    versions = {}
    for day in DAYS:
        record = instance.get_latest_data_version_record(dg.AssetKey(RAW_FEATURES), partition_key=day.isoformat())
        versions[day.isoformat()] = record.asset_materialization.tags["dagster/data_version"]
    return versions


def materializations(instance: dg.DagsterInstance) -> int:
    return len(instance.fetch_materializations(dg.AssetKey(RAW_FEATURES), limit=100).records)


def test_a_late_reingest_rewrites_only_the_day_that_changed(data_dir, tmp_path, capsys, dagster_instance):
    path = tmp_path / "last_5_days.csv"
    path.write_text(report({}))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert f"changed: {', '.join(d.isoformat() for d in DAYS)}" in out
    layout = DataLayout(data_dir)
    folders = {day: layout.partition_dir(RAW_FEATURES, day) for day in DAYS}
    first = {day: snapshot(folder) for day, folder in folders.items()}
    versions = data_versions(dagster_instance)
    assert materializations(dagster_instance) == 5

    assert main([str(path)]) == 0  # the same download again: nothing changes, nothing is reported
    out = capsys.readouterr().out
    assert "changed: none" in out and "unchanged (left as they were): 2026-11-18, " in out
    assert {day: snapshot(folder) for day, folder in folders.items()} == first
    assert materializations(dagster_instance) == 5

    late = DAYS[2]  # two conversions of the 20th arrived after the first download
    path.write_text(report({late: "3.00"}))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert f"changed: {late}" in out.splitlines()
    after = {day: snapshot(folder) for day, folder in folders.items()}
    assert {d for d in DAYS if after[d] != first[d]} == {late}
    table = pq.read_table(folders[late]).to_pandas().sort_values("ad_group_id")
    assert table.conversions.tolist() == [3.0, 0.0]
    new_versions = data_versions(dagster_instance)
    assert {d for d in versions if new_versions[d] != versions[d]} == {late.isoformat()}
    assert materializations(dagster_instance) == 6


def test_write_raw_partition_compares_content_not_file_times(tmp_path):
    from astro_assets.sources import synthetic

    layout = DataLayout(tmp_path)
    table = synthetic.keyword_report(3, 500, DAYS[0])
    first = write_raw_partition(layout, DAYS[0], table)
    folder = layout.partition_dir(RAW_FEATURES, DAYS[0])
    before = snapshot(folder)
    again = write_raw_partition(layout, DAYS[0], table.take(list(reversed(range(table.num_rows)))))  # row order
    assert (first.changed, again.changed) == (True, False) and again.content_hash == first.content_hash
    assert snapshot(folder) == before and content_hash(folder) == first.content_hash
    changed = write_raw_partition(layout, DAYS[0], table.slice(1))
    assert changed.changed and changed.content_hash != first.content_hash and snapshot(folder) != before


def test_the_raw_features_asset_reports_its_content_as_data_version(tmp_path, dagster_instance):
    settings = dataclasses.replace(load_settings(), data_dir=str(tmp_path / "data"), keywords=400, seed=3)
    defs = build_definitions(settings)
    resources = {
        **defs.resources,
        "storage": AstroStorage(data_dir=str(tmp_path / "data")),
        "keyword_source": SyntheticKeywordSource(seed=3, keywords=400),
    }
    versions = []
    for _ in range(2):
        result = dg.materialize(
            [defs.get_assets_def(RAW_FEATURES)],
            partition_key=DAYS[0].isoformat(),
            instance=dagster_instance,
            resources=resources,
        )
        assert result.success
        materialization = result.asset_materializations_for_node(RAW_FEATURES)[0]
        versions.append(materialization.tags["dagster/data_version"])
    folder = DataLayout(tmp_path / "data").partition_dir(RAW_FEATURES, DAYS[0])
    assert versions[0] == versions[1] == content_hash(folder)[:16]


def test_dagster_shows_only_what_the_changed_day_feeds_as_stale(data_dir, tmp_path, dagster_instance):
    """Dagster's own stale-status resolver over a downstream daily asset (standing for the features, one
    partition per raw day) materialised after the first ingest: after a late re-ingest that changed one day,
    exactly that day's downstream partition is stale."""
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    partitions = dg.DailyPartitionsDefinition(start_date="2026-11-01")

    @dg.asset(name=RAW_FEATURES, partitions_def=partitions)
    def raw_features():  # written by astro-ingest only (runless materialisations with data versions)
        raise NotImplementedError

    @dg.asset(partitions_def=partitions, deps=[raw_features])
    def downstream() -> dg.MaterializeResult:
        return dg.MaterializeResult()

    path = tmp_path / "last_5_days.csv"
    path.write_text(report({}))
    assert main([str(path)]) == 0
    for day in DAYS:
        assert dg.materialize([downstream], partition_key=day.isoformat(), instance=dagster_instance).success
    path.write_text(report({DAYS[2]: "3.00"}))
    assert main([str(path)]) == 0

    graph = dg.Definitions(assets=[raw_features, downstream]).resolve_asset_graph()
    resolver = CachingStaleStatusResolver(dagster_instance, graph, LoadingContextForTest(dagster_instance))
    status = {d: resolver.get_status(dg.AssetKey("downstream"), d.isoformat()) for d in DAYS}
    assert {d for d, s in status.items() if s == StaleStatus.STALE} == {DAYS[2]}
    assert all(s == StaleStatus.FRESH for d, s in status.items() if d != DAYS[2])
