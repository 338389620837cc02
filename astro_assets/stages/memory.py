"""The peak memory of a process tree (the driver, its JVM, its Python workers, helper processes), as
``astro-bench`` and ``astro-training-budget`` report it. Imports nothing heavy: the sampler runs in a
process of its own, started with ``spawn``, and this module is all it loads."""

import multiprocessing
import os
import threading
import time


def _descendants(root: int, skip: int) -> list[int]:
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
        if pid != skip:
            found.append(pid)
            stack.extend(children.get(pid, []))
    return found


def tree_memory(root: int, skip: int = -1) -> int:
    """Resident bytes of ``root`` and its descendants (but ``skip`` and its own), counting pages shared
    between them once (proportional set size, from /proc/PID/smaps_rollup: exact, but the kernel walks
    every mapping, ~20 ms of CPU for a half-GiB JVM and more for a larger one)."""
    total = 0
    for pid in _descendants(root, skip):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def tree_resident(root: int, skip: int = -1) -> int:
    """The sum of the resident set sizes of ``root`` and its descendants (but ``skip``), from
    /proc/PID/statm: cheap (a few ms), and an upper bound of :func:`tree_memory` (a page shared by two
    processes counts twice)."""
    total = 0
    for pid in _descendants(root, skip):
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


_PAGE = os.sysconf("SC_PAGE_SIZE")
#: Proportional set size is sampled this often (seconds): each sample costs tens of ms of CPU.
PSS_INTERVAL = 0.5


def _every(interval: float, stop: threading.Event, sample, gaps: list[float]) -> None:
    previous = None
    while True:
        started = time.monotonic()
        if previous is not None:
            gaps.append(started - previous)
        previous = started
        sample()
        if stop.wait(max(0.0, interval - (time.monotonic() - started))):
            return


def _sample(root: int, interval: float, stop, conn) -> None:
    """The sampler process: the tree of ``root`` without itself, its resident sum every ``interval`` s
    and its proportional set size every ``PSS_INTERVAL`` s (two threads, so the slow one never delays
    the fast one) until ``stop``, then one last sample of each. Sends "ready" once both have sampled,
    and the peaks, sample counts, longest gap and the proportional set sizes with their times at the end."""
    me = os.getpid()
    peaks = {"pss": 0, "resident": 0}
    counts = {"pss": 0, "resident": 0}
    gaps: dict[str, list[float]] = {"pss": [], "resident": []}
    measure = {"pss": tree_memory, "resident": tree_resident}
    timeline: list[tuple[float, int]] = []

    def sampler(name: str):
        def sample() -> None:
            value = measure[name](root, skip=me)
            peaks[name] = max(peaks[name], value)
            counts[name] += 1
            if name == "pss":
                timeline.append((time.time(), value))

        return sample

    halt = threading.Event()
    threads = [
        threading.Thread(target=_every, args=(every, halt, sampler(name), gaps[name]), daemon=True)
        for name, every in (("resident", interval), ("pss", PSS_INTERVAL))
    ]
    for thread in threads:
        thread.start()
    while min(counts.values()) == 0:
        time.sleep(0.01)
    conn.send("ready")
    stop.wait()
    halt.set()
    for thread in threads:
        thread.join()
    for name in measure:
        sampler(name)()
    conn.send((peaks, counts, max(gaps["resident"], default=0.0), timeline))


class PeakMemory:
    """The peak memory of this process's tree over one phase (``with PeakMemory() as m: ...``).

    A sampler process of its own (so neither this process's GIL nor a long call into C delays it)
    samples from before the phase starts to after it ends, and is the only holder of the peaks until it
    hands them over when the phase ends. Each phase has a fresh sampler, so no figure is ever reset
    under a running sample (the race of a shared peak set to 0 while the sampler held a read of the
    previous phase's figure). The sampler's own memory is not counted.

    ``peak``: proportional set size (shared pages counted once), every ``PSS_INTERVAL`` s (0.5); ``peak_resident``:
    the sum of resident set sizes, every ``interval`` s (0.1), an upper bound of ``peak`` that a short
    spike between two PSS samples cannot escape. ``longest_gap``: the longest time between two resident
    samples (a machine with every core busy can stretch the interval). ``timeline``: every PSS sample as
    (Unix time, bytes), so that a caller can say which step of the phase held the peak (``peak_between``)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0
        self.peak_resident = 0
        self.samples = 0
        self.longest_gap = 0.0
        self.timeline: list[tuple[float, int]] = []

    def peak_between(self, start: float, end: float) -> int:
        """The largest PSS sampled from Unix time ``start`` to ``end`` (0 if no sample fell in it)."""
        return max((value for at, value in self.timeline if start <= at <= end), default=0)

    def __enter__(self) -> "PeakMemory":
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._conn, child = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_sample, args=(os.getpid(), self.interval, self._stop, child), name="peak-memory", daemon=True
        )
        self._process.start()
        child.close()
        if not self._conn.poll(120) or self._conn.recv() != "ready":
            raise RuntimeError("the memory sampler did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        peaks, counts, self.longest_gap, self.timeline = self._conn.recv()
        self.peak, self.peak_resident, self.samples = peaks["pss"], peaks["resident"], counts["resident"]
        self._process.join()
        self._conn.close()
