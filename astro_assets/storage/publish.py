"""Atomic publishing: every file and partition is written beside its destination, then renamed.

A crash leaves either the previous version or the new one, never a mix. A published partition folder
holds a ``_SUCCESS`` marker (:data:`SUCCESS`); readers trust only folders that have one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The marker of a complete, published partition folder.
SUCCESS = "_SUCCESS"


class MissingPartitionError(RuntimeError):
    """A partition (or file) an asset needs has not been published."""


def is_published(folder: Path) -> bool:
    return (folder / SUCCESS).exists()


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


@contextmanager
def publish_partition(final: Path) -> Iterator[Path]:
    """Yield a new, empty staging folder for the partition at ``final``; when the block ends without
    an error, mark it complete (``_SUCCESS``) and swap it into place (:func:`publishing_dir`)."""
    with publishing_dir(final) as staging:
        staging.mkdir(parents=True)
        yield staging
        (staging / SUCCESS).touch()


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
