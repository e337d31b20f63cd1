"""The ``thread`` engine: a daemon thread that samples every thread's stack with ``sys._current_frames()``.

Ticks are spaced by a random interval of 0.5 to 1.5 times the period (mean: the period), so
that the sampler cannot lock on to a periodic pattern in the program (aliasing). The time a tick
takes, and how late the thread woke up (it waits for the GIL behind busy threads), are
subtracted from the next waits, so the mean rate stays close to ``rate_hz``.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from types import CodeType, FrameType
from typing import Callable, Dict, List, Optional, Set, Tuple

from . import threadlabels
from .aggregator import Aggregator, FrameKey, Observation, Stack
from .cpuprobe import CpuProbe
from .drops import DropCounter
from .worker import PeriodicWorker

ENGINE = "thread"
TRUNCATED: FrameKey = ("[truncated]", "", 0)

_FRAME_CACHE_LIMIT = 50_000
_NATIVE_REFRESH_NS = 1_000_000_000

if sys.version_info >= (3, 11):

    def _code_name(code: CodeType) -> str:
        return code.co_qualname

else:  # pragma: no cover - exercised on Python 3.9 and 3.10

    def _code_name(code: CodeType) -> str:
        return code.co_name


class StackReader:
    """Turns a frame into a root-first stack of frame keys, at most ``max_depth`` long."""

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth
        # id(code) -> (code, key). Holding the code object keeps its id from being reused while
        # cached, and lets every sample share one key tuple per function.
        self._cache: Dict[int, Tuple[CodeType, FrameKey]] = {}

    def read(self, frame: Optional[FrameType]) -> Stack:
        """The stack of ``frame``, root first; a too-deep one keeps the root side and ends in ``[truncated]``."""
        codes: List[CodeType] = []
        while frame is not None:
            codes.append(frame.f_code)
            frame = frame.f_back
        codes.reverse()
        if len(codes) > self._max_depth:
            return (*self._keys(codes[: self._max_depth - 1]), TRUNCATED)
        return tuple(self._keys(codes))

    def _keys(self, codes: List[CodeType]) -> List[FrameKey]:
        cache = self._cache
        if len(cache) > _FRAME_CACHE_LIMIT:
            cache.clear()
        keys = []
        for code in codes:
            entry = cache.get(id(code))
            if entry is None:
                entry = cache[id(code)] = (code, (_code_name(code), code.co_filename, code.co_firstlineno))
            keys.append(entry[1])
        return keys


class ThreadSampler:
    """Samples all threads but the agent's own at ``rate_hz`` into an :class:`Aggregator`."""

    def __init__(
        self,
        aggregator: Aggregator,
        drops: DropCounter,
        probe: CpuProbe,
        rate_hz: float = 100.0,
        max_threads: int = 64,
        max_depth: int = 128,
        excluded: Callable[[], Set[Optional[int]]] = set,
    ) -> None:
        self.aggregator = aggregator
        self.probe = probe
        self.rate_hz = rate_hz
        self._drops = drops
        self._period = 1.0 / rate_hz
        self._max_threads = max_threads
        self._excluded = excluded
        self._stacks = StackReader(max_depth)
        self._native: Dict[int, int] = {}
        self._unresolved: Set[int] = set()
        self._native_refreshed_ns = -_NATIVE_REFRESH_NS
        self._debt = 0.0  # seconds the schedule is behind: tick costs and late wake-ups
        self._wait_started: Optional[float] = None
        self._waited_for = 0.0
        self._ticks = 0
        self._worker = PeriodicWorker("greenflame-sampler", self.sample, self._next_delay)

    @property
    def ident(self) -> Optional[int]:
        """The sampler thread's identifier while it runs."""
        return self._worker.ident

    def is_alive(self) -> bool:
        """Whether the sampler thread runs."""
        return self._worker.is_alive()

    def start(self) -> None:
        """Start sampling (harmless when already started)."""
        self._worker.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop sampling, waiting up to ``timeout`` seconds for the thread."""
        self._worker.stop(timeout)

    def sample(self) -> None:
        """Take one sample of every thread (the sampler thread calls this at each tick)."""
        started = time.perf_counter()
        if self._wait_started is not None:
            self._debt += started - self._wait_started - self._waited_for
        now_ns = time.monotonic_ns()
        skip = self._excluded() | {threading.get_ident()}
        frames = sys._current_frames()
        threads = [(ident, frame) for ident, frame in frames.items() if ident not in skip]
        del frames
        native = self._native_ids([ident for ident, _ in threads], now_ns)
        self.probe.begin_tick(now_ns)
        observations: List[Observation] = []
        for ident, frame in self._rotate(threads):
            stack = self._stacks.read(frame)
            observations.append((stack, threadlabels.get(ident), self.probe.on_cpu(native.get(ident), now_ns)))
        del threads
        self.aggregator.add(observations)
        self._debt += time.perf_counter() - started

    def _rotate(self, threads: List[Tuple[int, FrameType]]) -> List[Tuple[int, FrameType]]:
        """At most ``max_threads`` threads, starting at a different one each tick so none is starved."""
        self._ticks += 1
        if len(threads) <= self._max_threads:
            return threads
        self._drops.add("max_threads", len(threads) - self._max_threads)
        start = self._ticks % len(threads)
        rotated = threads[start:] + threads[:start]
        return rotated[: self._max_threads]

    def _native_ids(self, idents: List[int], now_ns: int) -> Dict[int, int]:
        """Thread identifier -> kernel thread id; refreshed each second and whenever a new thread shows up."""
        stale = now_ns - self._native_refreshed_ns >= _NATIVE_REFRESH_NS
        if stale or any(i not in self._native and i not in self._unresolved for i in idents):
            self._native = {
                t.ident: t.native_id for t in threading.enumerate() if t.ident is not None and t.native_id is not None
            }
            # Threads started outside ``threading`` have no known kernel id: do not look again each tick.
            self._unresolved = {i for i in idents if i not in self._native}
            self._native_refreshed_ns = now_ns
            self.probe.forget_others(self._native.values())
        return self._native

    def _next_delay(self) -> float:
        planned = random.uniform(0.5, 1.5) * self._period
        delay = max(0.0, planned - self._debt)
        # Carry at most one period of debt, so a long stall (a frozen Lambda) causes no burst.
        self._debt = min(self._period, max(0.0, self._debt - planned))
        self._waited_for = delay
        self._wait_started = time.perf_counter()
        return delay
