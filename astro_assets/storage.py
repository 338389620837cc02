"""Where every asset lives under ``ASTRO_DATA_DIR``, and how files are published atomically.

Daily assets are Hive-style ``<asset>/date=YYYY-MM-DD/`` folders of Parquet so Spark (and any other
tool) reads them directly. Every publish writes beside its destination first and renames into place:
a crash leaves either the previous version or the new one, never a mix.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def partition_date(partition_key: str) -> dt.date:
    """The date of a daily partition key; refuses anything that is not YYYY-MM-DD."""
    if not _DATE.match(partition_key):
        raise ValueError(f"partition key {partition_key!r} is not a date YYYY-MM-DD")
    return dt.date.fromisoformat(partition_key)


class DataLayout:
    """Paths of the assets below one storage root."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()

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
            if name.startswith("date=") and _DATE.match(name[5:]) and (child / "_SUCCESS").exists():
                days.append(dt.date.fromisoformat(name[5:]))
        return sorted(days)

    def bid_file(self, day: dt.date) -> Path:
        return self.asset_dir("bid_file") / f"{day.isoformat()}.csv"

    def onnx_dir(self) -> Path:
        return self.asset_dir("onnx_model")

    def onnx_model(self) -> Path:
        return self.onnx_dir() / "model.onnx"

    def trained_model_dir(self) -> Path:
        return self.asset_dir("trained_model")


#: Keywords per shard of a raw partition (see raw.write_raw_partition).
ROWS_PER_SHARD = 400_000


def shard_count(rows: int) -> int:
    """Shards for a day of ``rows`` keywords: a power of two (so day-to-day drift in the keyword
    count rarely changes it), at least 2 (both cores busy)."""
    needed = max(2, math.ceil(rows / ROWS_PER_SHARD))
    return 1 << (needed - 1).bit_length()


def _staging_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.staging-{uuid.uuid4().hex[:8]}")


@contextmanager
def publishing_file(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success rename it over ``final`` atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _staging_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def publishing_dir(final: Path) -> Iterator[Path]:
    """Yield a staging folder path beside ``final``; on success swap it into place.

    The previous version is renamed aside, the new one renamed in, then the old one removed; if the
    process dies between the two renames, :func:`recover_dir` (called on every publish) puts the
    previous version back.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(final)
    tmp = _staging_name(final)
    try:
        yield tmp
        if not tmp.is_dir():
            raise RuntimeError(f"nothing was written to {tmp} for {final}")
        backup = final.with_name(f".{final.name}.previous")
        if final.exists():
            os.replace(final, backup)
        os.replace(tmp, final)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def recover_dir(final: Path) -> None:
    """Restore the previous version of ``final`` if a publish died between its two renames, and
    remove the staging folders of publishes of ``final`` that died before renaming. A partition has
    one writer at a time (a run writes each of its partitions once; the instance's concurrency limits
    keep Spark runs apart), so a staging folder found here belongs to a dead run."""
    for stale in final.parent.glob(f".{final.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    backup = final.with_name(f".{final.name}.previous")
    if backup.exists():
        if final.exists():
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(backup, final)
