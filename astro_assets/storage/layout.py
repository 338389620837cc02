"""Where every asset lives under ``ASTRO_DATA_DIR``: the one owner of every path and file name.

Daily assets are Hive-style ``<asset>/date=YYYY-MM-DD/`` folders of Parquet so Spark (and any other
tool) reads them directly; a folder counts only once published (``publish.SUCCESS``). Raw days are
stored in keyword shards (``shard-SSSSS-of-NNNNN.parquet``), the stages after them write one
``part-SSSSS.parquet`` per shard.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from pathlib import Path

from astro_assets.storage.publish import SUCCESS, MissingPartitionError, is_published

#: Asset names: the Dagster asset keys and the folder names under the storage root.
RAW_FEATURES = "raw_features"
PREPROCESSED_FEATURES = "preprocessed_features"
TRAINED_MODEL = "trained_model"
ONNX_MODEL = "onnx_model"
DAILY_PREDICTIONS = "daily_predictions"
BID_FILE = "bid_file"
BACKTEST = "backtest"
#: The Google Ads API upload of a day's changed bids (its upload log).
BID_UPLOAD = "bid_upload"
#: The daily-partitioned assets, in the order a day flows through them.
DAILY_ASSETS = (RAW_FEATURES, PREPROCESSED_FEATURES, DAILY_PREDICTIONS, BID_FILE)

#: Keywords per shard of a raw partition (``storage.raw.write_raw_partition``).
ROWS_PER_SHARD = 400_000

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SHARD_FILE = re.compile(r"^shard-(\d{5})-of-(\d{5})\.parquet$")


def partition_date(partition_key: str) -> dt.date:
    """The date of a daily partition key; refuses anything that is not YYYY-MM-DD."""
    if not _DATE.match(partition_key):
        raise ValueError(f"partition key {partition_key!r} is not a date YYYY-MM-DD")
    return dt.date.fromisoformat(partition_key)


def shard_count(rows: int) -> int:
    """Shards for a day of ``rows`` keywords: a power of two (so day-to-day drift in the keyword
    count rarely changes it), at least 2 (both cores busy)."""
    needed = max(2, math.ceil(rows / ROWS_PER_SHARD))
    return 1 << (needed - 1).bit_length()


def shard_file_name(shard: int, shards: int) -> str:
    return f"shard-{shard:05d}-of-{shards:05d}.parquet"


def part_file_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


class DataLayout:
    """Paths of the assets below one storage root."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()

    # -- daily partitions -------------------------------------------------------------------------

    def asset_dir(self, asset: str) -> Path:
        return self.root / asset

    def partition_dir(self, asset: str, day: dt.date) -> Path:
        return self.asset_dir(asset) / f"date={day.isoformat()}"

    def existing_days(self, asset: str) -> list[dt.date]:
        """Days that have a published (complete) partition of ``asset``, oldest first."""
        base = self.asset_dir(asset)
        if not base.is_dir():
            return []
        days = []
        for child in base.iterdir():
            name = child.name
            if name.startswith("date=") and _DATE.match(name[5:]) and (child / SUCCESS).exists():
                days.append(dt.date.fromisoformat(name[5:]))
        return sorted(days)

    def require_published(self, asset: str, day: dt.date) -> Path:
        """The published partition folder of ``asset`` for ``day``; :class:`MissingPartitionError`
        naming it when there is none."""
        folder = self.partition_dir(asset, day)
        if not is_published(folder):
            raise MissingPartitionError(f"{asset} has no partition for {day} at {folder}; materialize it first.")
        return folder

    def require_days(self, asset: str, days: list[dt.date], purpose: str) -> None:
        """Every day of ``days`` has a published partition of ``asset``, or one error listing the missing
        ones (``purpose`` says what needs them)."""
        present = set(self.existing_days(asset))
        missing = [d.isoformat() for d in days if d not in present]
        if missing:
            raise MissingPartitionError(
                f"{asset} has no partition for {', '.join(missing)} under {self.asset_dir(asset)}: "
                f"{len(missing)} of the {len(days)} days needed for {purpose} ({days[0]} .. {days[-1]}). "
                f"Materialize (backfill) {asset} for those days first."
            )

    def part_files(self, folder: Path) -> list[Path]:
        """The per-shard Parquet files of a partition folder of the stages after raw, in shard order."""
        return sorted(folder.glob("part-*.parquet"))

    def parquet_files(self, folder: Path) -> list[Path]:
        return sorted(folder.glob("*.parquet"))

    # -- raw keyword shards -----------------------------------------------------------------------

    def shard_files(self, folder: Path) -> dict[int, tuple[int, Path]]:
        """The shard files of a raw partition folder: shard -> (shard count, path)."""
        found = {}
        for path in sorted(folder.glob("shard-*.parquet")):
            match = _SHARD_FILE.match(path.name)
            if match:
                found[int(match.group(1))] = (int(match.group(2)), path)
        return found

    def raw_shard_paths(self, day: dt.date, shard: int, shards: int) -> list[str]:
        """The files to read for keyword shard ``shard`` of ``shards`` of raw day ``day``: that shard's
        file when the day was written with ``shards`` shards, else every file of the day (read whole
        and filtered by ``core.lagging.read_keyword_shard``)."""
        files = self.shard_files(self.require_published(RAW_FEATURES, day))
        if not files:
            raise MissingPartitionError(f"no shard files in raw partition {self.partition_dir(RAW_FEATURES, day)}")
        if all(count == shards for count, _ in files.values()):
            if shard in files:
                return [str(files[shard][1])]
            return []
        return [str(path) for _, path in files.values()]

    def raw_shards(self, day: dt.date) -> int:
        """The shard count raw day ``day`` was written with (1 if it has no shard files)."""
        files = self.shard_files(self.partition_dir(RAW_FEATURES, day))
        return next(iter(files.values()))[0] if files else 1

    # -- the bid file -----------------------------------------------------------------------------

    # A day's bids are one partition folder, ``bid_file/date=YYYY-MM-DD/`` (``partition_dir(BID_FILE,
    # day)``): the keyword table, Astro's pauses, the Google Ads Editor files and their manifest. The
    # methods take the folder, staged or published.

    def bid_keywords_file(self, folder: Path) -> Path:
        """One row per keyword of the day: its bid, status and whether it changed (the API upload reads it)."""
        return folder / "keywords.parquet"

    def bid_pauses_file(self, folder: Path) -> Path:
        """Every keyword Astro has paused and not yet enabled again, scored that day or not."""
        return folder / "paused_by_astro.parquet"

    def bid_manifest_file(self, folder: Path) -> Path:
        return folder / "manifest.json"

    def bid_editor_file(self, folder: Path, kind: str, campaign_id: int, part: int) -> Path:
        """A Google Ads Editor file: ``kind`` ``bids`` (every keyword) or ``changes`` (only what changed),
        one campaign, part ``part`` (a campaign too large for one file is split)."""
        return folder / f"{kind}-campaign-{campaign_id}-{part:04d}.csv"

    def bid_editor_files(self, folder: Path, kind: str) -> list[Path]:
        return sorted(folder.glob(f"{kind}-campaign-*.csv"))

    def bid_upload_log(self, folder: Path) -> Path:
        """One row per operation sent to the Google Ads API for the day, accepted or with the API's error."""
        return folder / "upload_log.parquet"

    # -- the model --------------------------------------------------------------------------------

    def onnx_dir(self) -> Path:
        return self.asset_dir(ONNX_MODEL)

    def onnx_model(self) -> Path:
        return self.onnx_dir() / "model.onnx"

    def onnx_version(self, version: str) -> Path:
        return self.onnx_dir() / "versions" / f"{version}.onnx"

    def published_policy(self) -> Path:
        """Which policy the daily predictions use (``{"policy": ..., "version": ...}``): the ONNX model
        (``model``, ``trailing_mean``) or the careful analyst's table (``analyst``). Absent: the ONNX model."""
        return self.onnx_dir() / "published_policy.json"

    def analyst_policy(self, version: str) -> Path:
        """A published careful-analyst table (``core.analyst_rule``: one row per ad group)."""
        return self.onnx_dir() / "analyst" / f"{version}.parquet"

    def trained_model_dir(self) -> Path:
        return self.asset_dir(TRAINED_MODEL)

    def trained_analyst_policy(self, version: str) -> Path:
        """The careful-analyst table computed by training run ``version`` (published by onnx_model when
        the gate picks the analyst)."""
        return self.trained_model_dir() / "analyst" / f"{version}.parquet"

    def trained_model_version_dir(self, version: str) -> Path:
        return self.trained_model_dir() / version

    def latest_trained_model(self) -> Path:
        """The pointer to the newest trained model version (``{"version": ...}``)."""
        return self.trained_model_dir() / "latest.json"

    def training_sample_dir(self, end: dt.date) -> Path:
        """The working folder of one training run's sample (``model.sampling``): memory-mapped arrays
        written by the Spark tasks, removed when the run ends."""
        return self.trained_model_dir() / f"_sample-{end.isoformat()}"

    def training_budget_curve(self) -> Path:
        """The measured training budget curve (``astro_assets.cli.training_budget``): JSON and its plot."""
        return self.trained_model_dir() / "budget_curve.json"

    # -- evaluation -------------------------------------------------------------------------------

    def backtest_json(self) -> Path:
        return self.asset_dir(BACKTEST) / "backtest.json"
