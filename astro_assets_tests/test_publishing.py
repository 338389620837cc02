"""Atomic publishing: a crash while writing leaves the previous version intact; paths stay inside."""

import datetime as dt

import pytest

from astro_assets.storage import DataLayout, partition_date, publishing_dir, publishing_file, recover_dir


def test_a_folder_is_replaced_whole(tmp_path):
    final = tmp_path / "asset" / "date=2026-05-01"
    for version in ("one", "two"):
        with publishing_dir(final) as staging:
            staging.mkdir(parents=True)
            (staging / "part-0").write_text(version)
    assert [p.name for p in final.iterdir()] == ["part-0"] and (final / "part-0").read_text() == "two"
    assert [p.name for p in final.parent.iterdir()] == ["date=2026-05-01"]


def test_a_crash_halfway_keeps_the_previous_version_and_the_next_run_succeeds(tmp_path):
    final = tmp_path / "date=2026-05-01"
    with publishing_dir(final) as staging:
        staging.mkdir()
        (staging / "part-0").write_text("old")
    with pytest.raises(RuntimeError, match="fault"):
        with publishing_dir(final) as staging:
            staging.mkdir()
            (staging / "part-0").write_text("new half")
            raise RuntimeError("injected fault after half the parts")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["date=2026-05-01"]  # no staging left
    assert (final / "part-0").read_text() == "old"
    with publishing_dir(final) as staging:
        staging.mkdir()
        (staging / "part-0").write_text("new")
    assert (final / "part-0").read_text() == "new"


def test_a_dead_publish_leaves_staging_that_the_next_publish_removes(tmp_path):
    final = tmp_path / "date=2026-05-01"
    dead = tmp_path / ".date=2026-05-01.staging-deadbeef"
    dead.mkdir()
    (dead / "part-0").write_text("half")
    other_day = tmp_path / ".date=2026-05-02.staging-cafecafe"
    other_day.mkdir()
    with publishing_dir(final) as staging:
        staging.mkdir()
        (staging / "part-0").write_text("new")
    assert not dead.exists() and other_day.exists()


def test_a_crash_between_the_two_renames_is_recovered(tmp_path):
    final = tmp_path / "date=2026-05-01"
    backup = tmp_path / ".date=2026-05-01.previous"
    backup.mkdir()
    (backup / "part-0").write_text("previous")
    recover_dir(final)
    assert (final / "part-0").read_text() == "previous" and not backup.exists()


def test_a_file_is_replaced_atomically_or_not_at_all(tmp_path):
    final = tmp_path / "bid_file" / "2026-05-01.csv"
    with publishing_file(final) as tmp:
        tmp.write_text("v1")
    with pytest.raises(OSError):
        with publishing_file(final) as tmp:
            tmp.write_text("v2 half")
            raise OSError("disk full")
    assert final.read_text() == "v1"
    assert [p.name for p in final.parent.iterdir()] == ["2026-05-01.csv"]


@pytest.mark.parametrize("key", ["../../etc", "2026-05-01/..", "yesterday", "2026-5-1", ""])
def test_partition_keys_cannot_escape_the_data_folder(key):
    with pytest.raises(ValueError, match="not a date"):
        partition_date(key)


def test_only_complete_partitions_count(tmp_path):
    layout = DataLayout(tmp_path)
    for day, complete in (("2026-05-01", True), ("2026-05-02", False), ("2026-05-03", True)):
        folder = layout.partition_dir("raw_features", dt.date.fromisoformat(day))
        folder.mkdir(parents=True)
        if complete:
            (folder / "_SUCCESS").touch()
    (layout.asset_dir("raw_features") / ".date=2026-05-04.staging-1234").mkdir()
    assert layout.existing_days("raw_features") == [dt.date(2026, 5, 1), dt.date(2026, 5, 3)]
