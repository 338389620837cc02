"""``python -m astro_assets.cli.bench`` (``astro-bench``): the daily cycle at scale, against references
measured in the same run.

Builds N keywords of synthetic history (days in parallel processes, not timed), runs the daily cycle
for one new day through Dagster with the same assets and checks as production (raw -> preprocessed ->
predictions -> bid file), then measures on the same features and the same model, in a process of its
own, ``--repeats`` times interleaved (the order rotates every repetition, so no path always runs first
or on the warmest JVM):

- Astro: the ``daily_predictions`` code path (``stages.predict.score_day``);
- the bound: onnxruntime alone on the features in memory, the best of a sweep of batch sizes and of
  1 process × 2 threads / 2 processes × 1 thread (``model.throughput``);
- Spark's own way: ``pyspark.ml.functions.predict_batch_udf`` with the same session, model and batch;
- the naive way from the original talk: the model loaded for every row (a small sample).

Prints a table of medians with their min–max; ``--json PATH`` writes the figures with every sample.
``--keywords 10000000,100000000`` runs the cycle for each size (linearity) and the references on the largest
size up to ``--reference-keywords`` (10M), right after its cycle; each size's data is removed once done
(unless ``--data-dir``). ``--repeats 0`` runs the cycles alone. ``--cycles N`` runs each size's daily cycle
N times on the same history, each from nothing: the figures are their medians with min, max and samples.
"""

import argparse
import datetime as dt
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from astro_assets.stages.memory import PSS_INTERVAL, PeakMemory  # PeakMemory: also astro-training-budget's
from astro_assets.storage import BID_FILE, DAILY_ASSETS, DAILY_PREDICTIONS, PREPROCESSED_FEATURES, RAW_FEATURES

CYCLE_STAGES = DAILY_ASSETS
STAGE_NAMES = {
    RAW_FEATURES: "raw",
    PREPROCESSED_FEATURES: "preprocessed",
    DAILY_PREDICTIONS: "predictions",
    BID_FILE: "bids",
}
SEED = 7
#: The references are measured at the largest size run up to this many keywords (``--reference-keywords``).
REFERENCE_KEYWORDS = 10_000_000
#: The measured paths, in the order of the first repetition (each next repetition starts one later).
PATHS = ("predict", "predict_batch_udf", "ort_bound", "naive")


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


# -- the cycle ------------------------------------------------------------------------------------


def _history_day(args: tuple[str, dt.date, int]) -> None:
    """One day of synthetic history written as a raw partition (in a worker process)."""
    from astro_assets.sources import synthetic
    from astro_assets.storage import DataLayout
    from astro_assets.storage.raw import write_raw_partition

    data_dir, day, keywords = args
    write_raw_partition(DataLayout(data_dir), day, synthetic.report_day(SEED, keywords, day))


def write_history(data_dir: Path, day: dt.date, keywords: int, workers: int) -> float:
    """The LAGS - 1 raw days before ``day``, ``workers`` days at a time in fresh processes (each builds
    the keyword population once for all its days); returns the seconds taken."""
    from astro_assets.core.features import LAGS

    days = [(str(data_dir), day - dt.timedelta(days=LAGS - i), keywords) for i in range(1, LAGS)]
    started = time.perf_counter()
    if workers <= 1:
        for args in days:
            _history_day(args)
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_history_day, days))
    return time.perf_counter() - started


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds of each step of a Dagster run, from the instance's step statistics."""
    return {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run_id) if s.end_time}


def step_peaks(instance, run_id: str, memory: PeakMemory) -> dict[str, int]:
    """The largest PSS sampled during each step of a Dagster run (its start to its end, from the
    instance's step statistics): which step holds the cycle's peak."""
    return {
        s.step_key: memory.peak_between(s.start_time, s.end_time)
        for s in instance.get_run_step_stats(run_id)
        if s.start_time and s.end_time
    }


def run_cycles(
    keywords: int, day: dt.date, data_dir: Path, model_bytes: bytes, history_workers: int, log, repeats: int = 1
) -> list[dict]:
    """History for ``day`` (not timed), then the daily cycle of ``day`` through Dagster (timed)
    ``repeats`` times on that history, each from nothing (the day's partitions removed before it), in a
    process of its own (``in_own_process``) with its own memory sampler; one dict per cycle."""
    from astro_assets.storage import DataLayout

    layout = DataLayout(data_dir)
    with PeakMemory() as history_memory:
        history_seconds = write_history(data_dir, day, keywords, history_workers)
    layout.onnx_dir().mkdir(parents=True, exist_ok=True)
    layout.onnx_model().write_bytes(model_bytes)
    log(f"bench: {keywords:,} keywords, history in {history_seconds:.0f} s ({history_workers} processes)")
    history = {"history_seconds": round(history_seconds, 2), "history_peak_rss_bytes": history_memory.peak}
    cycles = []
    for repetition in range(1, repeats + 1):
        for asset in CYCLE_STAGES:  # a repetition starts where the first did: only the history there
            shutil.rmtree(layout.partition_dir(asset, day), ignore_errors=True)
        cycle = in_own_process(run_cycle, keywords, day, data_dir)
        cycles.append({**cycle, "repetition": repetition, **history})
    return cycles


def in_own_process(function, *args):
    """``function(*args)`` in a new interpreter (spawned, so nothing of this one is inherited), and its
    result. A scheduled day runs as a Dagster run in a process of its own (the instance's default run
    launcher; a backfill is a run per day), with its own JVM: so does each measured cycle. Cycles run
    one after another in one process measured memory that process kept from the cycle before (a
    second 100M cycle peaked at 11.06 GiB, the first at 7.27; README "Benchmark")."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _say(message: str) -> None:
    print(message, flush=True)


def run_cycle(keywords: int, day: dt.date, data_dir: Path, log=_say) -> dict:
    """The daily cycle of ``day`` through Dagster, timed, with its own memory sampler (the history and
    the model are in ``data_dir``)."""
    import dagster as dg

    from astro_assets.defs import build_definitions
    from astro_assets.defs.freshness import DEADLINE_ASSETS, FRESHNESS_CHECK
    from astro_assets.defs.resources import AstroStorage, SyntheticKeywordSource
    from astro_assets.settings import load_settings
    from astro_assets.stages.benchmark import disk_bytes
    from astro_assets.storage import DataLayout

    layout = DataLayout(data_dir)
    defs = build_definitions(load_settings())
    resources = {
        **defs.resources,
        "storage": AstroStorage(data_dir=str(data_dir)),
        "keyword_source": SyntheticKeywordSource(seed=SEED, keywords=keywords),
    }
    # The freshness checks judge the wall clock (is yesterday's partition there?), not the data: the
    # measured day is a fixed past day, so they would fail by construction.
    freshness = [dg.AssetCheckKey(dg.AssetKey(a), FRESHNESS_CHECK) for a in DEADLINE_ASSETS]
    instance = dg.DagsterInstance.ephemeral()
    with PeakMemory() as memory:  # the daily cycle alone
        started = time.perf_counter()
        result = dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=dg.AssetSelection.assets(*CYCLE_STAGES) - dg.AssetSelection.checks(*freshness),
            partition_key=day.isoformat(),
            resources=resources,
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        total = time.perf_counter() - started
    steps = step_seconds(instance, result.run_id)
    peaks = step_peaks(instance, result.run_id, memory)
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
    predictions = result.asset_materializations_for_node(DAILY_PREDICTIONS)[0].metadata
    disk = {STAGE_NAMES[a]: disk_bytes(layout.partition_dir(a, day)) / keywords for a in CYCLE_STAGES}
    return {
        "keywords": keywords,
        "process_id": os.getpid(),
        "cycle_seconds": round(total, 2),
        "stages": stages,
        "checks_seconds": checks,
        "check_seconds": {k: round(v, 2) for k, v in check_seconds.items()},
        "failed_checks": failed,
        "predict_rows_per_s": float(predictions["rows_per_second"].value),
        "rows": int(predictions["rows"].value),
        "peak_rss_bytes": memory.peak,
        # A stage's step includes the checks of its staged data (write-audit-publish).
        "stage_peak_rss_bytes": {STAGE_NAMES.get(k, k): v for k, v in peaks.items()},
        "peak_resident_sum_bytes": memory.peak_resident,
        "memory_samples": memory.samples,
        "memory_sample_longest_gap_s": round(memory.longest_gap, 3),
        "disk_bytes_per_keyword_day": {
            **{k: round(v, 1) for k, v in disk.items()},
            "total": round(sum(disk.values()), 1),
        },
    }


# -- the references, interleaved ------------------------------------------------------------------


def measure_paths(layout, day: dt.date, model_bytes: bytes, scratch: Path, args, log=_say) -> dict:
    """Every path ``args.repeats`` times on the same features, the order rotating each repetition;
    returns the samples (rows per second of ``predict`` and ``predict_batch_udf``, the bound sweep's
    rates by set-up, the naive way's (rate, rows scored)), the batch and row counts used and the id of
    the process that measured them. The bench runs it with ``in_own_process``: its Spark session (a JVM
    and its Python workers, ~2 GB) ends with it instead of idling beside the next size's cycles."""
    from astro_assets.defs.resources import spark_session
    from astro_assets.model.throughput import bound_sweep
    from astro_assets.settings import load_settings
    from astro_assets.stages.benchmark import astro_rate, features_in_memory, naive_rate, predict_batch_udf_rate
    from astro_assets.stages.spark import run_shard_tasks

    spark = spark_session(load_settings())  # configured as the cycle's resource configures it
    run_shard_tasks(spark, range(spark.sparkContext.defaultParallelism), lambda shard: 0)  # workers up, not timed
    batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))
    features = features_in_memory(layout, day, args.bound_rows)
    measure = {
        "predict": lambda: astro_rate(spark, layout, day, model_bytes, batch_rows, scratch),
        "predict_batch_udf": lambda: predict_batch_udf_rate(spark, layout, day, model_bytes, batch_rows, scratch),
        "ort_bound": lambda: bound_sweep(model_bytes, features, scratch, args.bound_batches),
        "naive": lambda: naive_rate(spark, layout, day, model_bytes, args.naive_rows),
    }
    samples: dict[str, list] = {name: [] for name in PATHS}
    for r in range(args.repeats):
        for name in PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]:
            log(f"bench: repetition {r + 1}/{args.repeats}: {name}")
            samples[name].append(measure[name]())
    return {
        "samples": samples,
        "predict_batch_rows": batch_rows,
        "bound_rows": len(features),
        "process_id": os.getpid(),
    }


def summarise(measured: dict) -> dict:
    """The figures of the interleaved repetitions: each path's median, min, max and samples; the bound
    is the set-up with the best median; ratios are taken per repetition (paired), then summarised."""
    from astro_assets.model.throughput import best_setup, spread

    samples = measured["samples"]
    winner, bound = best_setup(samples["ort_bound"])
    naive = [rate for rate, _ in samples["naive"]]
    setups = {name: [sweep[name] for sweep in samples["ort_bound"]] for name in samples["ort_bound"][0]}
    predict, udf = samples["predict"], samples["predict_batch_udf"]
    return {
        **_flat("predict_rows_per_s", rounded(spread(predict))),
        **_flat("ort_bound_rows_per_s", rounded(spread(bound))),
        "ort_bound_setup": winner,
        "ort_bound_detail": {name: rounded(spread(rates)) for name, rates in setups.items()},
        **_flat("predict_batch_udf_rows_per_s", rounded(spread(udf))),
        **_flat("naive_rows_per_s", rounded(spread(naive), 1)),
        "naive_rows_scored": [rows for _, rows in samples["naive"]],
        "predict_over_bound": rounded(spread([a / b for a, b in zip(predict, bound, strict=True)]), 3),
        "predict_over_predict_batch_udf": rounded(spread([a / b for a, b in zip(predict, udf, strict=True)]), 3),
        "predict_batch_rows": measured["predict_batch_rows"],
        "bound_rows": measured["bound_rows"],
        "reference_process_id": measured["process_id"],
    }


def rounded(spread: dict, digits: int = 0) -> dict:
    """A ``model.throughput.spread`` rounded for the JSON (whole numbers as int)."""

    def r(value: float) -> float:
        return round(value) if digits == 0 else round(value, digits)

    return {k: [r(x) for x in v] if k == "samples" else r(v) for k, v in spread.items()}


def _flat(key: str, spread: dict) -> dict:
    """``key``: the median (the name the bench's JSON always had), ``key_min``, ``key_max``, ``key_samples``."""
    return {key: spread["median"], **{f"{key}_{k}": spread[k] for k in ("min", "max", "samples")}}


# -- the run --------------------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    return [int(k.replace("_", "")) for k in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    from astro_assets.model.throughput import BOUND_BATCH_SIZES

    parser = argparse.ArgumentParser(prog="astro-bench", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--keywords", type=_sizes, default=[10_000_000], help="keywords, or a comma list")
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved repetitions of every path (0: the cycles alone)"
    )
    parser.add_argument(
        "--cycles", type=int, default=1, help="daily cycles per size on the same history (median, min and max)"
    )
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--data-dir", help="keep the data here (default: a temporary folder, removed)")
    parser.add_argument("--naive-rows", type=int, default=300, help="rows the naive way scores per repetition")
    parser.add_argument(
        "--bound-rows", type=int, default=2_000_000, help="rows of the day's features the bound scores (in memory)"
    )
    parser.add_argument(
        "--bound-batches", type=_sizes, default=list(BOUND_BATCH_SIZES), help="batch sizes of the bound's sweep"
    )
    parser.add_argument("--history-workers", type=int, default=2, help="processes writing the history days")
    parser.add_argument(
        "--reference-keywords",
        type=int,
        default=REFERENCE_KEYWORDS,
        help="measure the references on the largest size run that is at most this many keywords (the smallest if "
        "none is), right after its cycle",
    )
    args = parser.parse_args(argv)
    if args.repeats < 0:
        parser.error("--repeats must be 0 or more")
    if args.cycles < 1:
        parser.error("--cycles must be 1 or more")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    day = dt.date(2026, 3, 20)
    root = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="astro-bench-"))
    try:
        from astro_assets.storage import DataLayout

        model_bytes = small_model()
        cycles = []
        measured, reference_peak = {}, 0
        reference = reference_size(args.keywords, args.reference_keywords)
        for n in args.keywords:
            cycles += run_cycles(n, day, root / str(n), model_bytes, args.history_workers, _say, args.cycles)
            if args.repeats and n == reference:
                with PeakMemory() as reference_memory:
                    samples = in_own_process(measure_paths, DataLayout(root / str(n)), day, model_bytes, root, args)
                measured, reference_peak = {"reference_keywords": n, **summarise(samples)}, reference_memory.peak
            if not args.data_dir:
                shutil.rmtree(root / str(n), ignore_errors=True)  # a day of 100M keywords is ~50 GB of disk
    finally:
        if not args.data_dir:
            shutil.rmtree(root, ignore_errors=True)
    figures = {**bench_figures(args.repeats, measured, cycles, reference_peak), "bench_process_id": os.getpid()}
    print(table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def reference_size(sizes: list[int], at_most: int) -> int:
    """The size the references are measured at: the largest of ``sizes`` that is at most ``at_most``
    (the issue's prediction targets are at 10M; the references at 100M would take hours), else the smallest."""
    return max((n for n in sizes if n <= at_most), default=min(sizes))


def bench_figures(repeats: int, measured: dict, cycles: list[dict], reference_peak: int) -> dict:
    """The figures of the largest size: with several cycles of it (``--cycles``), the median of their
    times (per stage too) with min, max and samples, the highest of their peaks, every check that failed
    in any; the rest (memory by step, disk) from its cycle of median time. ``cycles`` keeps every cycle."""
    from astro_assets.model.throughput import spread

    runs = [c for c in cycles if c["keywords"] == cycles[-1]["keywords"]]
    middle = sorted(runs, key=lambda c: c["cycle_seconds"])[(len(runs) - 1) // 2]
    return {
        "keywords": middle["keywords"],
        "repeats": repeats,
        **measured,
        "cycle_predict_rows_per_s": round(middle["predict_rows_per_s"]),
        "stages": {k: round(statistics.median(c["stages"][k] for c in runs), 2) for k in middle["stages"]},
        "stage_seconds_spread": {k: spread([c["stages"][k] for c in runs]) for k in middle["stages"]},
        "checks_seconds": round(statistics.median(c["checks_seconds"] for c in runs), 2),
        **_flat("cycle_seconds", rounded(spread([c["cycle_seconds"] for c in runs]), 2)),
        "failed_checks": sorted({name for c in runs for name in c["failed_checks"]}),
        "peak_rss_bytes": max(c["peak_rss_bytes"] for c in runs),
        "peak_rss_bytes_samples": [c["peak_rss_bytes"] for c in runs],
        "stage_peak_rss_bytes": middle["stage_peak_rss_bytes"],
        "peak_resident_sum_bytes": max(c["peak_resident_sum_bytes"] for c in runs),
        "memory_sample_longest_gap_s": max(c["memory_sample_longest_gap_s"] for c in runs),
        "reference_peak_rss_bytes": reference_peak,
        "history_seconds": middle["history_seconds"],
        "history_peak_rss_bytes": middle["history_peak_rss_bytes"],
        "disk_bytes_per_keyword_day": middle["disk_bytes_per_keyword_day"],
        "cycles": cycles,
    }


def table(f: dict) -> str:
    lines = prediction_table(f) + [""] if f["repeats"] else []
    lines += cycle_table(f)
    return "\n".join(lines)


def prediction_table(f: dict) -> list[str]:
    bound = f["ort_bound_rows_per_s"]
    rows = [
        ("Astro daily_predictions (score_day)", "predict_rows_per_s"),
        ("onnxruntime bound (best of sweep)", "ort_bound_rows_per_s"),
        ("Spark predict_batch_udf", "predict_batch_udf_rows_per_s"),
        (f"naive (model per row, {max(f['naive_rows_scored']):,} rows)", "naive_rows_per_s"),
    ]
    title = f"predictions, {f['reference_keywords']:,} keywords, median of {f['repeats']}"
    lines = [f"{title:<44}{'rows/s':>12}{'min – max':>26}{'× bound':>9}"]
    for name, key in rows:
        digits = 1 if f[key] < 100 else 0  # the naive way: tens of rows per second
        spread = f"{f[key + '_min']:,.{digits}f} – {f[key + '_max']:,.{digits}f}"
        lines.append(f"{name:<44}{f[key]:>12,.{digits}f}{spread:>26}{f[key] / bound:>9.3f}")
    lines.append(f"bound: {f['ort_bound_setup']} (of {len(f['ort_bound_detail'])} set-ups, {f['bound_rows']:,} rows)")
    for name, key in (("bound", "predict_over_bound"), ("predict_batch_udf", "predict_over_predict_batch_udf")):
        r = f[key]
        lines.append(f"Astro / {name}, paired by repetition: {r['median']:.2f}× ({r['min']:.2f}–{r['max']:.2f})")
    lines.append(f"Astro inside the cycle (one sample): {f['cycle_predict_rows_per_s']:,} rows/s")
    return lines


def cycle_table(f: dict) -> list[str]:
    lines = []
    lines.append(
        f"{'cycle':<14}{'raw':>8}{'preproc':>9}{'predict':>9}{'bids':>8}{'checks':>8}{'total s':>9}{'peak GiB':>10}"
    )
    repeated = any(c.get("repetition", 1) > 1 for c in f["cycles"])
    for c in f["cycles"]:
        s = c["stages"]
        name = f"{c['keywords']:,}" + (f" #{c['repetition']}" if repeated else "")
        lines.append(
            f"{name:<14}{s['raw']:>8.1f}{s['preprocessed']:>9.1f}{s['predictions']:>9.1f}"
            f"{s['bids']:>8.1f}{c['checks_seconds']:>8.1f}{c['cycle_seconds']:>9.1f}{gib(c['peak_rss_bytes']):>7.2f}"
        )
    seconds: dict[int, list[float]] = {}
    for c in f["cycles"]:
        seconds.setdefault(c["keywords"], []).append(c["cycle_seconds"])
    if repeated:
        for n, times in seconds.items():
            lines.append(
                f"cycle of {n:,}: median {statistics.median(times):.1f} s of {len(times)} "
                f"({min(times):.1f} – {max(times):.1f})"
            )
    first, last = min(seconds), max(seconds)
    if len(seconds) > 1:
        times = statistics.median(seconds[last]) / statistics.median(seconds[first])
        lines.append(
            f"cycle {last:,} / {first:,}{' (medians)' if repeated else ''}: {times:.2f}× "
            f"for {last / first:.0f}× the keywords"
        )
    disk = ", ".join(f"{k} {v:,.0f}" for k, v in f["disk_bytes_per_keyword_day"].items())
    lines.append(f"disk per keyword-day, bytes: {disk}")
    lines.append(
        f"peak memory of the cycle (driver + JVM + workers): {gib(f['peak_rss_bytes']):.2f} GiB PSS (every "
        f"{PSS_INTERVAL:g} s), {gib(f['peak_resident_sum_bytes']):.2f} GiB summed resident sets (every 0.1 s, "
        f"longest gap {f['memory_sample_longest_gap_s']:.2f} s)"
    )
    by_step = ", ".join(f"{k} {gib(v):.2f}" for k, v in f["stage_peak_rss_bytes"].items())
    lines.append(f"PSS peak by step of the cycle, GiB (a stage's step includes its staged checks): {by_step}")
    references = f"{gib(f['reference_peak_rss_bytes']):.2f} GiB" if f["repeats"] else "not measured (--repeats 0)"
    lines.append(
        f"PSS peak while measuring the references: {references}; while writing the "
        f"history: {gib(f['history_peak_rss_bytes']):.2f} GiB ({f['history_seconds']:.0f} s, not timed)"
    )
    if f["failed_checks"]:
        lines.append(f"FAILED checks: {', '.join(f['failed_checks'])}")
    return lines


def gib(value: int) -> float:
    return value / 2**30


if __name__ == "__main__":
    sys.exit(main())
