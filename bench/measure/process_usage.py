"""CPU seconds and peak memory of process trees, grouped by kind (API, worker, PostgreSQL...).

A tree's CPU is its root's and every live descendant's own time plus what each of them has
reaped: a gunicorn worker that exits inside the window moves its time into its parent's
children counters, so deltas around the window still include it.

A kind with a selector (PostgreSQL on a server other clients share) is measured process by
process instead: only the descendants the selector picks, sampled every 0.25 s, each counted
from its first sample (or from zero if it was born in the window) to its last. A process that
lives less than a sampling interval is missed; that is the price of leaving others' load out.
Its memory is resident memory less shared pages (see _private_rss).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import psutil

SAMPLE_INTERVAL_S = 0.25
Selector = Callable[[psutil.Process], bool]


def _tree(root: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [root, *root.children(recursive=True)]
    return []


def _own_cpu(process: psutil.Process) -> float | None:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return times.user + times.system
    return None


def _cpu_with_reaped(process: psutil.Process) -> float:
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    return 0.0


def _rss(process: psutil.Process) -> int:
    with contextlib.suppress(psutil.Error):
        return process.memory_info().rss
    return 0


def _private_rss(process: psutil.Process) -> int:
    """Resident memory less shared pages: every Postgres backend maps the shared buffers, so
    its plain RSS counts them once per backend."""
    with contextlib.suppress(psutil.Error):
        memory = process.memory_info()
        return memory.rss - memory.shared
    return 0


def tree_cpu_seconds(roots: Sequence[psutil.Process]) -> float:
    """CPU seconds the trees under `roots` have used since they started."""
    return sum(_cpu_with_reaped(p) for root in roots for p in _tree(root))


@dataclass
class Usage:
    """One window's figures for one kind of process."""

    cpu_s: float
    peak_rss_mb: float


@dataclass
class _Selected:
    """Per-process CPU of a selected kind: first and last sample of each pid."""

    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)

    def seconds(self) -> float:
        return sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last)


@dataclass
class ProcessUsageMeter:
    """Measures the kinds in `groups` (kind -> root processes) between start() and stop()."""

    groups: Mapping[str, Sequence[psutil.Process]]
    selectors: Mapping[str, Selector] = field(default_factory=dict)
    _start_cpu: dict[str, float] = field(default_factory=dict)
    _selected: dict[str, _Selected] = field(default_factory=dict)
    _peak_rss: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    def start(self) -> None:
        self._start_cpu = {
            kind: tree_cpu_seconds(roots)
            for kind, roots in self.groups.items()
            if kind not in self.selectors
        }
        self._selected = {kind: _Selected() for kind in self.selectors if kind in self.groups}
        self._peak_rss = dict.fromkeys(self.groups, 0)
        self._sample(first=True)
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample_loop, name="usage", daemon=True)
        self._sampler.start()

    def stop(self) -> dict[str, Usage]:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self._sample(first=False)
        usage = {}
        for kind, roots in self.groups.items():
            if kind in self._selected:
                cpu = self._selected[kind].seconds()
            else:
                cpu = tree_cpu_seconds(roots) - self._start_cpu[kind]
            usage[kind] = Usage(cpu_s=cpu, peak_rss_mb=self._peak_rss[kind] / 2**20)
        return usage

    def _sample_loop(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._sample(first=False)

    def _sample(self, first: bool) -> None:
        for kind, roots in self.groups.items():
            processes = [p for root in roots for p in _tree(root)]
            selector = self.selectors.get(kind)
            measure = _rss
            if selector is not None:
                processes = [p for p in processes if _picked(selector, p)]
                self._record(self._selected[kind], processes, first)
                measure = _private_rss
            # The peak of a kind is the peak of its processes' sum: what the box must hold.
            resident = sum(measure(p) for p in processes)
            self._peak_rss[kind] = max(self._peak_rss[kind], resident)

    @staticmethod
    def _record(selected: _Selected, processes: list[psutil.Process], first: bool) -> None:
        for process in processes:
            cpu = _own_cpu(process)
            if cpu is None:
                continue
            if first:
                selected.first[process.pid] = cpu
            selected.last[process.pid] = cpu


def _picked(selector: Selector, process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return selector(process)
    return False
