"""How fast onnxruntime alone scores this model on this machine: the bound the benchmark compares
Astro's scoring with (``astro-bench``), and the spread of repeated measurements.

The bound is the best of a sweep: every batch size of ``BOUND_BATCH_SIZES`` in two set-ups that use
both cores, one process whose session has two intra-op threads, and two processes with one thread
each. The two processes score one half each of the same features; they wait on one
``multiprocessing.Barrier`` after their warm-up, and the pair is timed together: from the earliest
start after the barrier to the later end (``CLOCK_MONOTONIC`` is one clock for every process of the
machine), so the rate is the pair's, not one child's. Warm-up runs (``WARMUP_RUNS`` batches at the
batch size being measured) are never timed.
"""

import multiprocessing
import queue
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from astro_assets.core import scoring

BOUND_BATCH_SIZES = (500, 1_000, 2_000, 5_000, 10_000)
WARMUP_RUNS = 3
ONE_PROCESS = "1 process × 2 threads"
TWO_PROCESSES = "2 processes × 1 thread"


def spread(samples: Sequence[float]) -> dict[str, float | list[float]]:
    """Median, min and max of repeated measurements, and the samples in the order they were taken."""
    if not samples:
        raise ValueError("no samples")
    return {
        "median": float(statistics.median(samples)),
        "min": float(min(samples)),
        "max": float(max(samples)),
        "samples": [float(s) for s in samples],
    }


def setup_name(setup: str, batch: int) -> str:
    return f"{setup}, {batch:,} rows per run"


def _now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _score(session, features: np.ndarray, batch: int, runs: int | None = None) -> None:
    stop = len(features) if runs is None else min(len(features), runs * batch)
    for i in range(0, stop, batch):
        session.run(None, {"features": features[i : i + batch]})


def _one_process_rate(model_bytes: bytes, features: np.ndarray, batch: int) -> float:
    session = scoring.onnx_session(model_bytes, "bound-one-process-two-threads", threads=2)
    _score(session, features, batch, WARMUP_RUNS)
    begin = _now()
    _score(session, features, batch)
    return len(features) / (_now() - begin)


def _child(path: str, start: int, stop: int, model_bytes: bytes, barrier, commands, results) -> None:
    """One of the pair: its half of the features in its own memory, one single-thread session; for
    every batch size it is sent: warm up, wait for the other, score the half, report (start, end)."""
    features = np.ascontiguousarray(np.load(path, mmap_mode="r")[start:stop])
    session = scoring.onnx_session(model_bytes, "bound-two-processes", threads=1)
    while (batch := commands.get()) is not None:
        _score(session, features, batch, WARMUP_RUNS)
        barrier.wait(timeout=600)
        begin = _now()
        _score(session, features, batch)
        results.put((begin, _now()))


class ProcessPair:
    """Two fresh processes holding one half each of the features saved at ``path`` (``.npy``)."""

    def __init__(self, model_bytes: bytes, path: Path, rows: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.rows = rows
        self._barrier = context.Barrier(2)
        self._results = context.Queue()
        self._commands = [context.Queue(), context.Queue()]
        half = rows // 2
        halves = [(0, half), (half, rows)]
        self._processes = [
            context.Process(
                target=_child,
                args=(str(path), start, stop, model_bytes, self._barrier, commands, self._results),
                daemon=True,
            )
            for (start, stop), commands in zip(halves, self._commands, strict=True)
        ]

    def __enter__(self) -> "ProcessPair":
        for process in self._processes:
            process.start()
        return self

    def rate(self, batch: int) -> float:
        for commands in self._commands:
            commands.put(batch)
        spans = [self._result() for _ in self._processes]
        return self.rows / (max(end for _, end in spans) - min(begin for begin, _ in spans))

    def _result(self) -> tuple[float, float]:
        while True:
            try:
                return self._results.get(timeout=1)
            except queue.Empty:
                dead = [p.exitcode for p in self._processes if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"a process of the onnxruntime bound ended (exit codes {dead})") from None

    def __exit__(self, *exc) -> None:
        for commands in self._commands:
            commands.put(None)
        for process in self._processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()


def bound_sweep(
    model_bytes: bytes, features: np.ndarray, scratch: Path, batch_sizes: Sequence[int] = BOUND_BATCH_SIZES
) -> dict[str, float]:
    """One pass of the sweep: rows per second of every set-up (``setup_name``) on ``features`` ([rows,
    T, F] float32, in memory), warm-up excluded."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    rates = {setup_name(ONE_PROCESS, b): _one_process_rate(model_bytes, features, b) for b in batch_sizes}
    path = scratch / "bound_features.npy"
    np.save(path, features)
    try:
        with ProcessPair(model_bytes, path, len(features)) as pair:
            rates.update({setup_name(TWO_PROCESSES, b): pair.rate(b) for b in batch_sizes})
    finally:
        path.unlink(missing_ok=True)
    return rates


def best_setup(sweeps: Sequence[dict[str, float]]) -> tuple[str, list[float]]:
    """The set-up with the highest median over the repeated sweeps, and its samples: the bound."""
    by_setup = {name: [sweep[name] for sweep in sweeps] for name in sweeps[0]}
    winner = max(by_setup, key=lambda name: statistics.median(by_setup[name]))
    return winner, by_setup[winner]
