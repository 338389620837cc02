"""``python -m astro_assets.cli.bench`` (``astro-bench``): the daily cycle at scale, against references
measured in the same run.

Builds N keywords of synthetic history, runs the daily cycle for one new day through Dagster with the
same assets and checks as production (raw -> preprocessed -> predictions -> bid file), then measures
on the same features and the same model:

- the bound: onnxruntime alone on the features already in memory as numpy, both cores used the best
  way (1 process × 2 threads, or 2 processes × 1 thread);
- Spark's own way: ``pyspark.ml.functions.predict_batch_udf`` with the same session and model;
- the naive way from the original talk: the model loaded for every row (a small sample);
- Astro: the ``daily_predictions`` code path.

Prints a table; ``--json PATH`` writes the figures. ``--keywords 1000000,10000000`` runs the cycle for
each size (linearity), the references on the largest.
"""

import argparse
import datetime as dt
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from astro_assets.storage import BID_FILE, DAILY_ASSETS, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES

CYCLE_STAGES = DAILY_ASSETS
STAGE_NAMES = {
    RAW_FEATURES: "raw",
    PREPROCESSED_FEATURES: "preprocessed",
    DAILY_PREDICTIONS: "predictions",
    BID_FILE: "bids",
}


# -- memory ---------------------------------------------------------------------------------------


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _tree_memory(root: int) -> int:
    """Resident bytes of ``root`` and its descendants (driver, JVM, Python workers), counting pages
    shared between them once (proportional set size, from /proc/PID/smaps_rollup)."""
    total = 0
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


class PeakMemory:
    """Samples the process tree's resident memory every 0.25 s in a background thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_memory(os.getpid()))
            self._stop.wait(0.25)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# -- model ----------------------------------------------------------------------------------------


def small_model(seed: int = 7) -> bytes:
    """A GRU trained briefly on a small synthetic account with the production code (numpy path, no
    Spark): the benchmark measures throughput, which does not depend on how well the model learnt."""
    from astro_assets.core import lagging
    from astro_assets.core.features import LAGS
    from astro_assets.model.datasets import labelled_set
    from astro_assets.model.export import export_onnx
    from astro_assets.model.network import TrainingParams, train
    from astro_assets.sources import synthetic

    keywords, day = 5_000, dt.date(2026, 3, 1)
    days = [day - dt.timedelta(days=LAGS - 1 - i) for i in range(LAGS + 1)]
    tables = [synthetic.keyword_report(seed, keywords, d) for d in days]
    lagged = lagging.lagged_features(days[LAGS - 1], tables[:LAGS])
    data = labelled_set(lagged, tables[LAGS])  # joined on the keyword (ad group id, keyword id)
    model, _ = train(data, TrainingParams(epochs=2, hidden_size=32), log=lambda _: None)
    return export_onnx(model, "20260301-benchmark", {"end_date": "2026-03-01"})


# -- references -----------------------------------------------------------------------------------


def _ort_rate(model_bytes: bytes, features: np.ndarray, threads: int, batch: int = 10_000) -> float:
    from astro_assets.core import scoring

    session = scoring.onnx_session(model_bytes, f"bound-{threads}", threads)
    start = time.perf_counter()
    for i in range(0, len(features), batch):
        session.run(None, {"features": features[i : i + batch]})
    return len(features) / (time.perf_counter() - start)


def _ort_slice(args: tuple[str, bytes, int, int]) -> float:
    """Score rows [start, stop) of the memory-mapped features with one thread (in a child process)."""
    path, model_bytes, start, stop = args
    features = np.load(path, mmap_mode="r")[start:stop]
    features = np.ascontiguousarray(features)  # into this process's memory before the clock starts
    from astro_assets.core import scoring

    session = scoring.onnx_session(model_bytes, "bound-process", 1)
    begin = time.perf_counter()
    for i in range(0, len(features), 10_000):
        session.run(None, {"features": features[i : i + 10_000]})
    return time.perf_counter() - begin


def ort_bound(model_bytes: bytes, features: np.ndarray, scratch: Path) -> dict[str, float]:
    """onnxruntime alone on in-memory features: 1 process × 2 threads, and 2 processes × 1 thread
    (fresh processes, each scoring half; their clocks start once their half is in memory), taking
    the better."""
    one_process = _ort_rate(model_bytes, features, threads=2)
    path = scratch / "bound_features.npy"
    np.save(path, features)
    half = len(features) // 2
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        seconds = pool.map(
            _ort_slice, [(str(path), model_bytes, 0, half), (str(path), model_bytes, half, len(features))]
        )
    path.unlink()
    two_processes = len(features) / max(seconds)
    return {
        "one_process_two_threads": one_process,
        "two_processes_one_thread": two_processes,
        "best": max(one_process, two_processes),
    }


def predict_batch_udf_rate(spark, features_path: str, model_bytes: bytes, out: str) -> float:
    """Spark's own way: ``predict_batch_udf`` with the same model, reading and writing like Astro."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import FloatType

    from astro_assets.core.features import LAGS, N_FEATURES

    model = spark.sparkContext.broadcast(model_bytes)

    def make_predict_fn():
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model.value, options, providers=["CPUExecutionProvider"])

        def predict(inputs: np.ndarray) -> np.ndarray:
            return session.run(None, {"features": inputs.reshape(-1, LAGS, N_FEATURES).astype(np.float32)})[0]

        return predict

    udf = predict_batch_udf(
        make_predict_fn, return_type=FloatType(), batch_size=10_000, input_tensor_shapes=[[LAGS * N_FEATURES]]
    )
    frame = spark.read.parquet(features_path)
    rows = frame.count()
    start = time.perf_counter()
    frame.select("keyword_id", udf("features").alias("predicted_value_per_click")).write.mode("overwrite").parquet(out)
    return rows / (time.perf_counter() - start)


def naive_rate(spark, features_path: str, model_bytes: bytes, rows: int) -> float:
    """The talk's naive way: load the model for every row (a sample of ``rows`` rows)."""
    from astro_assets.core.features import LAGS, N_FEATURES

    model = spark.sparkContext.broadcast(model_bytes)

    def per_row(row):
        import onnxruntime as ort

        session = ort.InferenceSession(model.value, providers=["CPUExecutionProvider"])
        features = np.asarray(row.features, dtype=np.float32).reshape(1, LAGS, N_FEATURES)
        return row.keyword_id, float(session.run(None, {"features": features})[0][0])

    sample = spark.read.parquet(features_path).limit(rows).repartition(2).cache()
    sample.count()
    start = time.perf_counter()
    sample.rdd.map(per_row).count()
    return rows / (time.perf_counter() - start)


# -- the cycle ------------------------------------------------------------------------------------


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds of each step of a Dagster run, from the instance's step statistics."""
    return {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run_id) if s.end_time}


def run_cycle(keywords: int, day: dt.date, data_dir: Path, model_bytes: bytes, log, memory: "PeakMemory") -> dict:
    """History for ``day`` (not timed), then the daily cycle of ``day`` through Dagster (timed)."""
    import dagster as dg

    from astro_assets.core.features import LAGS
    from astro_assets.defs import build_definitions
    from astro_assets.defs.resources import AstroStorage, SyntheticKeywordSource
    from astro_assets.settings import load_settings
    from astro_assets.sources import synthetic
    from astro_assets.storage import DataLayout
    from astro_assets.storage.raw import write_raw_partition

    layout = DataLayout(data_dir)
    started = time.perf_counter()
    for i in range(1, LAGS):
        d = day - dt.timedelta(days=LAGS - i)
        write_raw_partition(layout, d, synthetic.keyword_report(7, keywords, d))
    layout.onnx_dir().mkdir(parents=True, exist_ok=True)
    layout.onnx_model().write_bytes(model_bytes)
    log(f"bench: {keywords:,} keywords, {LAGS - 1} days of history in {time.perf_counter() - started:.0f} s")

    defs = build_definitions(load_settings())
    resources = {
        **defs.resources,
        "storage": AstroStorage(data_dir=str(data_dir)),
        "keyword_source": SyntheticKeywordSource(seed=7, keywords=keywords),
    }
    instance = dg.DagsterInstance.ephemeral()
    memory.peak = 0  # from here on: the cycle
    started = time.perf_counter()
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(*CYCLE_STAGES),
        partition_key=day.isoformat(),
        resources=resources,
        instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    total = time.perf_counter() - started
    steps = step_seconds(instance, result.run_id)
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    # Write-audit-publish: an asset's step includes its checks on the staged data (metadata
    # check_seconds); checks defined apart from their asset run as steps of their own.
    inline = {
        a: float(m.metadata["check_seconds"].value)
        for a in CYCLE_STAGES
        for m in result.asset_materializations_for_node(a)[:1]
        if "check_seconds" in m.metadata
    }
    stages = {STAGE_NAMES[a]: round(steps.get(a, 0.0) - inline.get(a, 0.0), 2) for a in CYCLE_STAGES}
    separate = {k: v for k, v in steps.items() if k not in CYCLE_STAGES}
    check_seconds = {**{f"{a} (staged)": v for a, v in inline.items()}, **separate}
    checks = round(sum(check_seconds.values()), 2)
    log(f"bench: cycle of {keywords:,} keywords in {total:.0f} s: {stages}, checks {checks} s")
    predictions = result.asset_materializations_for_node("daily_predictions")[0].metadata
    return {
        "keywords": keywords,
        "cycle_seconds": round(total, 2),
        "stages": stages,
        "checks_seconds": checks,
        "check_seconds": {k: round(v, 2) for k, v in check_seconds.items()},
        "failed_checks": failed,
        "predict_rows_per_s": float(predictions["rows_per_second"].value),
        "rows": int(predictions["rows"].value),
        "peak_rss_bytes": memory.peak,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="astro-bench", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--keywords", default="10000000", help="keywords, or a comma list for linearity")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--data-dir", help="keep the data here (default: a temporary folder, removed)")
    parser.add_argument("--naive-rows", type=int, default=300)
    args = parser.parse_args(argv)
    sizes = [int(k.replace("_", "")) for k in args.keywords.split(",")]
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    day = dt.date(2026, 3, 20)
    log = lambda m: print(m, flush=True)  # noqa: E731
    root = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="astro-bench-"))
    figures: dict = {}
    try:
        model_bytes = small_model()
        cycles = []
        for n in sizes:
            with PeakMemory() as memory:  # the daily cycle alone, history excluded
                cycles.append(run_cycle(n, day, root / str(n), model_bytes, log, memory))
        largest = cycles[-1]
        with PeakMemory() as reference_memory:
            from pyspark.sql import SparkSession

            from astro_assets.model.datasets import features_array
            from astro_assets.storage import DataLayout

            spark = SparkSession.builder.getOrCreate()  # the session the cycle's resource created
            layout = DataLayout(root / str(sizes[-1]))
            features_path = str(layout.partition_dir(PREPROCESSED_FEATURES, day))
            log("bench: reference: predict_batch_udf")
            udf_rate = predict_batch_udf_rate(spark, features_path, model_bytes, str(root / "udf_out"))
            log("bench: reference: naive (model loaded per row)")
            naive = naive_rate(spark, features_path, model_bytes, args.naive_rows)
            log("bench: reference: onnxruntime alone on in-memory features")
            import pyarrow.parquet as pq

            in_memory = np.ascontiguousarray(features_array(pq.read_table(features_path, columns=["features"])))
            bound = ort_bound(model_bytes, in_memory, root)
        figures = {
            "keywords": largest["keywords"],
            "predict_rows_per_s": round(largest["predict_rows_per_s"]),
            "ort_bound_rows_per_s": round(bound["best"]),
            "ort_bound_detail": {k: round(v) for k, v in bound.items()},
            "predict_batch_udf_rows_per_s": round(udf_rate),
            "naive_rows_per_s": round(naive, 1),
            "stages": largest["stages"],
            "checks_seconds": largest["checks_seconds"],
            "cycle_seconds": largest["cycle_seconds"],
            "failed_checks": largest["failed_checks"],
            "peak_rss_bytes": largest["peak_rss_bytes"],
            "reference_peak_rss_bytes": reference_memory.peak,
            "cycles": cycles,
        }
    finally:
        if not args.data_dir:
            shutil.rmtree(root, ignore_errors=True)
    print(table(figures, cycles))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def table(f: dict, cycles: list[dict]) -> str:
    bound = f["ort_bound_rows_per_s"]
    rows = [
        ("Astro daily_predictions", f["predict_rows_per_s"]),
        ("onnxruntime bound (in memory)", bound),
        ("Spark predict_batch_udf", f["predict_batch_udf_rows_per_s"]),
        ("naive (model per row)", f["naive_rows_per_s"]),
    ]
    lines = [f"{'predictions, ' + format(f['keywords'], ',') + ' keywords':<40}{'rows/s':>12}{'× bound':>10}"]
    lines += [f"{name:<40}{rate:>12,.0f}{rate / bound:>10.3f}" for name, rate in rows]
    lines.append(f"Astro / predict_batch_udf: {f['predict_rows_per_s'] / f['predict_batch_udf_rows_per_s']:.2f}×")
    lines.append("")
    lines.append(f"{'cycle':<14}{'raw':>8}{'preproc':>9}{'predict':>9}{'bids':>8}{'checks':>8}{'total s':>9}")
    for c in cycles:
        s = c["stages"]
        lines.append(
            f"{c['keywords']:<14,}{s['raw']:>8.1f}{s['preprocessed']:>9.1f}{s['predictions']:>9.1f}"
            f"{s['bids']:>8.1f}{c['checks_seconds']:>8.1f}{c['cycle_seconds']:>9.1f}"
        )
    if len(cycles) > 1:
        lines.append(
            f"cycle {cycles[-1]['keywords']:,} / {cycles[0]['keywords']:,}: "
            f"{cycles[-1]['cycle_seconds'] / cycles[0]['cycle_seconds']:.2f}× "
            f"for {cycles[-1]['keywords'] / cycles[0]['keywords']:.0f}× the keywords"
        )
    lines.append(
        f"peak memory of the cycle (driver + JVM + workers, PSS): {f['peak_rss_bytes'] / 2**30:.2f} GiB; "
        f"while measuring the references: {f['reference_peak_rss_bytes'] / 2**30:.2f} GiB"
    )
    if f["failed_checks"]:
        lines.append(f"FAILED checks: {', '.join(f['failed_checks'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
