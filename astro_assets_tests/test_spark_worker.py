"""A Spark Python worker loads the model once and keeps it for its next tasks, and stops re-reading
the zip archives on its path at every task (``core.worker``): in a real local Spark, and on a real
zip archive in this process."""

import importlib
import os
import sys
import zipfile
import zipimport

import numpy as np
import pytest
from onnx import TensorProto, helper

from astro_assets.core import scoring, worker
from astro_assets.stages.spark import run_shard_tasks
from astro_assets_tests.conftest import loopback_spark

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

lazy_already = pytest.mark.skipif(sys.version_info >= (3, 13), reason="Python 3.13+ re-reads lazily itself")


def tiny_model() -> bytes:
    """A real ONNX model (the sum of each row), enough for a session."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["y"], axes=[1], keepdims=0)],
        "row_sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    return model.SerializeToString()


def _write_zip(path, modules: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, source in modules.items():
            archive.writestr(f"{name}.py", source)


@lazy_already
def test_a_zip_archive_is_reread_only_once_it_changed(tmp_path, monkeypatch):
    archive = tmp_path / "probe.zip"
    _write_zip(archive, {"astro_probe_first": "VALUE = 1\n"})
    monkeypatch.syspath_prepend(str(archive))
    monkeypatch.setattr(zipimport.zipimporter, "invalidate_caches", zipimport.zipimporter.invalidate_caches)
    reads = []
    read_directory = zipimport._read_directory
    monkeypatch.setattr(zipimport, "_read_directory", lambda path: reads.append(path) or read_directory(path))
    assert importlib.import_module("astro_probe_first").VALUE == 1
    importer = sys.path_importer_cache[str(archive)]
    assert isinstance(importer, zipimport.zipimporter)

    opened = reads.count(str(archive))  # the importer read the directory when it was made
    importer.invalidate_caches()  # Python's own: re-reads the directory every time
    importer.invalidate_caches()
    assert reads.count(str(archive)) == opened + 2

    worker.reread_zip_archives_only_when_changed()
    worker.reread_zip_archives_only_when_changed()  # installed once
    before = reads.count(str(archive))
    importlib.invalidate_caches()  # the first call under the new method reads once more
    importlib.invalidate_caches()
    importlib.invalidate_caches()
    assert reads.count(str(archive)) == before + 1

    _write_zip(archive, {"astro_probe_first": "VALUE = 1\n", "astro_probe_second": "VALUE = 2\n"})
    importlib.invalidate_caches()
    assert reads.count(str(archive)) == before + 2
    assert importlib.import_module("astro_probe_second").VALUE == 2  # the new archive's contents

    for name in ("astro_probe_first", "astro_probe_second"):
        sys.modules.pop(name, None)


def test_the_process_cache_outlives_the_module_copy(tmp_path):
    cache = worker.process_cache("astro_test_cache")
    cache["kept"] = True
    assert worker.process_cache("astro_test_cache") is cache
    model = tiny_model()
    session = scoring.onnx_session(model, "tiny")
    assert scoring.onnx_session(model, "tiny") is session
    assert scoring.onnx_session(model, "tiny", threads=2) is not session  # another set-up, another session
    assert session.run(None, {"x": np.ones((2, 3), np.float32)})[0].tolist() == [3.0, 3.0]


@lazy_already
def test_a_worker_keeps_the_session_and_skips_rereads_between_tasks():
    spark = loopback_spark("local[2]")
    model = tiny_model()
    digest = "astro-test-row-sum"  # this test's own key in the workers' caches

    def task(shard: int) -> int:
        order = worker.process_cache("astro_test_tasks")
        order["seen"] = order.get("seen", 0) + 1
        created = (digest, 1) not in worker.process_cache("onnx_sessions")
        session = scoring.onnx_session(model, digest)
        scored = session.run(None, {"x": np.full((4, 3), shard, np.float32)})[0]
        # What the next task's start (pyspark's importlib.invalidate_caches()) costs now: directory reads.
        reads = []
        read_directory = zipimport._read_directory
        zipimport._read_directory = lambda path: reads.append(path) or read_directory(path)
        try:
            importlib.invalidate_caches()
        finally:
            zipimport._read_directory = read_directory
        zips = sum(isinstance(f, zipimport.zipimporter) for f in sys.path_importer_cache.values())
        assert scored.tolist() == [3.0 * shard] * 4
        return os.getpid() * 10**8 + order["seen"] * 10**4 + min(zips, 99) * 100 + min(len(reads), 9) * 10 + created

    results = run_shard_tasks(spark, range(12), task).values()
    by_worker: dict[int, list[tuple[int, int, int, int]]] = {}
    for value in results:
        pid, rest = divmod(value, 10**8)
        by_worker.setdefault(pid, []).append((rest // 10**4, rest // 100 % 100, rest // 10 % 10, rest % 10))
    assert sum(len(tasks) for tasks in by_worker.values()) == 12
    for tasks in by_worker.values():
        tasks.sort()
        assert [created for *_, created in tasks] == [1] + [0] * (len(tasks) - 1)  # loaded once per worker
        assert all(zips > 0 for _, zips, _, _ in tasks)  # the worker imports from zip archives
        # ... and re-reads them in its first task only (the method's first call reads each archive once)
        assert all(reads == 0 for _, _, reads, _ in tasks[1:])
