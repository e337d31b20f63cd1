"""The ``pyinstrument`` engine: precise profiles of a sampled share of calls.

Instead of a background sampler, :meth:`CallProfiler.call` profiles one call (a request, a
Lambda invocation) with pyinstrument, for a random ``call_share`` of the calls; the other calls
run untouched and cost one random draw. pyinstrument is imported when the engine is built, never
with the agent, and a missing pyinstrument is a one-line :class:`ConfigError`.

Each profiled call's tree becomes ``[wall, cpu, idle]`` counts per stack, in units of the
sampling interval: ``wall`` from pyinstrument's self time per frame; ``idle`` for time whose
innermost frame is a built-in idle call (``sleep``, ``select``, ``acquire``... see
:data:`greenflame.agent.idle.IDLE_CALLS`); ``cpu`` spreads the call's measured CPU time (the
thread's CPU clock around the call) over the stacks that were not idle, in proportion to their
time, so the CPU column adds up to the CPU really used (``metadata.cpu_source`` is
``call-cputime``). The call runs in the user's thread: its whole cost counts as the agent's.
"""

from __future__ import annotations

import importlib
import random
import threading
import time

from . import threadlabels
from .aggregator import Aggregator, FrameKey, Stack
from .config import ConfigError
from .idle import IDLE_CALLS
from .stacks import TRUNCATED

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, Tuple


ENGINE = "pyinstrument"
CPU_SOURCE = "call-cputime"


def load_pyinstrument() -> Any:
    """The ``pyinstrument`` module, or a one-line :class:`ConfigError` saying how to install it."""
    try:
        return importlib.import_module("pyinstrument")
    except ImportError:
        raise ConfigError(
            "GREENFLAME_ENGINE=pyinstrument needs pyinstrument, which is not installed: pip install pyinstrument"
        ) from None


class CallProfiler:
    """Profiles a random ``share`` of the calls wrapped in :meth:`call` into ``aggregator``."""

    def __init__(
        self, aggregator: Aggregator, share: float, rate_hz: float, max_depth: int, auto_labels: bool = True
    ) -> None:
        self.aggregator = aggregator
        self.share = share
        self.rate_hz = rate_hz
        self._interval = 1.0 / rate_hz
        self._max_depth = max_depth
        self._auto_labels = auto_labels
        self._pyinstrument = load_pyinstrument()
        self._active = threading.local()
        self.profiled = 0
        self.calls = 0

    def call(self) -> _Call:
        """A context manager around one call; it is profiled with probability ``share``."""
        return _Call(self)

    def record(self, session: Any, cpu_ns: int) -> None:
        """Add a finished pyinstrument session (``cpu_ns``: the thread's CPU time during it)."""
        seconds: Dict[Stack, List[float]] = {}
        root = session.root_frame()
        if root is not None:
            for stack, self_time, idle in _leaves(root, self._max_depth):
                column = seconds.setdefault(stack, [0.0, 0.0])
                column[1 if idle else 0] += self_time
        busy = sum(value[0] for value in seconds.values())
        cpu_per_busy_second = (cpu_ns / 1e9) / busy if busy > 0 else 0.0
        labels = self._labels()
        counted = []
        for stack, (busy_s, idle_s) in seconds.items():
            wall = round((busy_s + idle_s) / self._interval)
            if wall:
                cpu = min(wall, round(busy_s * cpu_per_busy_second / self._interval))
                counted.append((stack, labels, (wall, cpu, round(idle_s / self._interval))))
        self.aggregator.add_counts(counted)

    def _labels(self) -> threadlabels.LabelKey:
        labels = threadlabels.current()
        if not self._auto_labels:
            return labels
        values = dict(labels)
        values.setdefault("thread", threading.current_thread().name)
        return tuple(sorted(values.items()))


class _Call:
    """``with profiler.call():`` profiles the block when the draw says so."""

    __slots__ = ("_cpu_start", "_owner", "_profiler")

    def __init__(self, owner: CallProfiler) -> None:
        self._owner = owner
        self._profiler: Any = None
        self._cpu_start = 0

    def __enter__(self) -> _Call:
        owner = self._owner
        owner.calls += 1
        if getattr(owner._active, "on", False) or random.random() >= owner.share:
            return self  # not drawn, or nested inside a profiled call
        from .guard import guard

        with guard("profile_call start"):
            profiler = owner._pyinstrument.Profiler(interval=owner._interval, async_mode="disabled")
            profiler.start()
            self._profiler = profiler
            owner._active.on = True
            self._cpu_start = time.thread_time_ns()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        profiler, self._profiler = self._profiler, None
        if profiler is None:
            return
        from .guard import guard

        with guard("profile_call stop"):
            cpu_ns = time.thread_time_ns() - self._cpu_start
            self._owner._active.on = False
            session = profiler.stop()
            self._owner.profiled += 1
            self._owner.record(session, cpu_ns)


def _leaves(root: Any, max_depth: int) -> Iterator[Tuple[Stack, float, bool]]:
    """(stack, self time, idle) for every frame of a pyinstrument tree with time of its own."""
    pending: List[Tuple[Any, Tuple[FrameKey, ...]]] = [(root, ())]
    while pending:
        frame, parents = pending.pop()
        key: FrameKey = (str(frame.function), str(frame.file_path or ""), int(frame.line_no or 0))
        stack = (*parents, key)
        own = float(frame.time)
        for child in frame.children:
            if child.is_synthetic:
                continue  # "[self]", "[await]": their time is the parent's own
            own -= float(child.time)
            pending.append((child, stack))
        if own > 1e-9:
            idle = frame.file_path == "<built-in>" and frame.function in IDLE_CALLS
            if len(stack) > max_depth:
                stack = (*stack[: max_depth - 1], TRUNCATED)
            yield stack, own, idle
