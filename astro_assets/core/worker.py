"""What a Spark Python worker keeps from one task to the next, and a fixed cost it stops paying.

The executor-side modules travel by value (``stages.spark``): every task unpickles its own copy of
their functions and of the globals those functions use, so a module-level cache would last one
task. What must outlive a task (the onnxruntime session: the model is loaded once per worker) is
kept in :func:`process_cache`, which the worker process holds in ``sys.modules``.

Standard library only: this runs on the executors.
"""

import os
import sys
import types
import zipimport

#: The name under which the worker process holds Astro's caches (not an importable module).
_HOLDER = "astro_assets_worker_state"


def process_cache(name: str) -> dict:
    """The dict ``name`` of this process: created on first use, then the same object for every later
    task the process (a Spark Python worker, or the driver) runs, whatever copy of the calling
    module the task unpickled."""
    holder = sys.modules.get(_HOLDER)
    if holder is None:
        holder = types.ModuleType(_HOLDER, "Astro's caches in this process (astro_assets.core.worker)")
        sys.modules[_HOLDER] = holder
    return vars(holder).setdefault(name, {})


_MARK = "_astro_rereads_when_changed"


def reread_zip_archives_only_when_changed() -> None:
    """Make ``importlib.invalidate_caches()`` re-read a zip archive on ``sys.path`` only when the file
    changed (its size or modification time), in this process, once.

    PySpark's worker calls ``importlib.invalidate_caches()`` at the start of every task
    (``pyspark.worker_util.setup_spark_files``, pyspark 4.1). On Python 3.10-3.12 every
    ``zipimporter`` then re-reads its archive's whole directory (CPython gh-103200, reported by a
    Spark developer; lazy from 3.13), and a worker imports from three archives (pyspark.zip, py4j's
    zip, spark-core's jar) through ~16 importers. Measured here (pyspark 4.1.4, Python 3.11.7, 2
    cores): ~0.17 CPU-s a task; 16 empty tasks took 2.2-2.6 s, 0.62-0.69 s once the workers
    had this. Spark 4.2 calls it only when ``sys.path`` changed (SPARK-54744, apache/spark#53518), but
    Great Expectations 1.x supports Spark below 4.2 only. The first task of a worker still pays once."""
    if sys.version_info >= (3, 13):
        return
    importer = zipimport.zipimporter
    if getattr(importer.invalidate_caches, _MARK, False):
        return
    reread = importer.invalidate_caches

    def invalidate_caches(self) -> None:
        try:
            status = os.stat(self.archive)
            stamp = (status.st_mtime_ns, status.st_size)
        except OSError:
            stamp = None  # gone or unreadable: Python's own method decides
        if stamp is None or getattr(self, "_astro_archive_stamp", None) != stamp:
            reread(self)
            self._astro_archive_stamp = stamp

    setattr(invalidate_caches, _MARK, True)
    invalidate_caches.__doc__ = reread.__doc__
    importer.invalidate_caches = invalidate_caches
