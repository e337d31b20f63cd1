"""The profiler's engines behind one protocol: the profiler holds one and never asks which it is.

- ``thread`` (:class:`ThreadEngine`): the sampler thread and the SIGPROF handler sample every
  thread (:mod:`.sampler`);
- ``pyinstrument`` (:class:`CallEngine`): a random share of the calls wrapped in
  ``profile_call()`` is profiled precisely (:mod:`.callprofiler`).

(py-spy is no engine here: it runs outside the process, see ``greenflame attach``.)
"""

from __future__ import annotations

# Declared for the type checker only (typing.Protocol): importing typing would cost every cold start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Protocol, Set

    from .aggregator import Aggregator
    from .budget import CpuBudget
    from .callprofiler import CallProfiler
    from .config import Config
    from .drops import DropCounter
    from .sampler import ThreadSampler

    class Engine(Protocol):
        """What the profiler needs of an engine."""

        @property
        def name(self) -> str:
            """The engine's name in each report's ``metadata["engine"]``."""

        @property
        def cpu_source(self) -> str:
            """Where the ``cpu`` column comes from, in ``metadata["cpu_source"]``."""

        @property
        def call_profiler(self) -> Optional[CallProfiler]:
            """What ``profile_call()`` uses, or None when the engine samples everything anyway."""

        def start(self) -> None:
            """Start sampling (at start and resume)."""

        def stop(self, timeout_s: float) -> None:
            """Stop sampling (at pause and stop), waiting up to ``timeout_s`` for a thread."""

        def close(self) -> None:
            """Release what the engine holds (after the last report, or in a forked child)."""

        def is_alive(self) -> bool:
            """Whether it samples: between :meth:`start` and :meth:`stop`, its thread alive."""

        def collect(self) -> None:
            """Move samples kept aside into the aggregator (before a report)."""

        def report_metadata(self) -> Dict[str, Any]:
            """The engine's own metadata for the next report (after the budget's window)."""

        def signal_stats(self) -> Dict[str, int]:
            """What a SIGPROF trigger did since the start (``calls``, ``cpu_ns``, ``samples``)."""

        def native_ids(self) -> List[Optional[int]]:
            """The kernel ids of the engine's own threads (their CPU counts against the budget)."""

        def invocation(self, active: bool) -> bool:
            """A Lambda invocation starts (``active``) or ends (the wait between them is not sampled);
            for ``active``, whether the process was waiting between invocations."""


_NO_SIGNAL = {"calls": 0, "cpu_ns": 0, "samples": 0}


class ThreadEngine:
    """The ``thread`` engine: a :class:`~.sampler.ThreadSampler`."""

    call_profiler = None

    def __init__(self, sampler: ThreadSampler) -> None:
        from .sampler import ENGINE

        self.name = ENGINE
        self.sampler = sampler
        self._signal_samples_seen = 0

    @property
    def cpu_source(self) -> str:
        """The CPU probe the sampler uses."""
        return self.sampler.probe.name

    def start(self) -> None:
        """Start the sampler thread (and the SIGPROF trigger, when configured)."""
        self.sampler.start()

    def stop(self, timeout_s: float) -> None:
        """Stop the sampler thread and the trigger."""
        self.sampler.stop(timeout_s)

    def close(self) -> None:
        """Close the CPU probe (its open files)."""
        self.sampler.probe.close()

    def is_alive(self) -> bool:
        """Whether the sampler thread runs."""
        return self.sampler.is_alive()

    def collect(self) -> None:
        """Aggregate what the SIGPROF handler recorded: its samples belong in this report."""
        self.sampler.process_pending()

    def report_metadata(self) -> Dict[str, Any]:
        """``signal_samples``: how many of the report's samples the SIGPROF handler took; ``signal_clock``:
        what its timer counts (when it samples); on the wall clock ``signal_wake_ns``, what a signal
        costs the main thread it wakes from a wait, and ``signal_wakes_measured``; ``skipped_hz``, when
        some were, the due samples per second the sampler thread left untaken, waking late by more than
        a period (waiting for the GIL): the report turns it into the rate achieved."""
        taken = self.sampler.signal_stats()["samples"]
        added, self._signal_samples_seen = taken - self._signal_samples_seen, taken
        metadata: Dict[str, Any] = {"signal_samples": added}
        skipped = round(self.sampler.take_lateness(), 3)
        if skipped > 0:
            metadata["skipped_hz"] = skipped
        clock = self.sampler.take_signal_clock()
        if clock is not None:
            metadata["signal_clock"] = clock
        if clock == "wall":
            metadata["signal_wake_ns"], metadata["signal_wakes_measured"] = self.sampler.wake_cost()
        return metadata

    def signal_stats(self) -> Dict[str, int]:
        """See :meth:`~.sampler.ThreadSampler.signal_stats`."""
        return self.sampler.signal_stats()

    def native_ids(self) -> List[Optional[int]]:
        """The sampler thread's."""
        return [self.sampler.native_id]

    def invocation(self, active: bool) -> bool:
        """See :meth:`~.sampler.ThreadSampler.invocation`."""
        return self.sampler.invocation(active)


class CallEngine:
    """The ``pyinstrument`` engine: a :class:`~.callprofiler.CallProfiler`; no thread of its own."""

    def __init__(self, call_profiler: CallProfiler) -> None:
        from .callprofiler import CPU_SOURCE, ENGINE

        self.name = ENGINE
        self.cpu_source = CPU_SOURCE  # the call's thread CPU clock
        self.call_profiler = call_profiler
        self._running = False

    def start(self) -> None:
        """Calls are profiled from now on."""
        self._running = True

    def stop(self, timeout_s: float) -> None:
        """Nothing runs in the background: only the state changes."""
        self._running = False

    def close(self) -> None:
        """Nothing held."""

    def is_alive(self) -> bool:
        """Between :meth:`start` and :meth:`stop`."""
        return self._running

    def collect(self) -> None:
        """Each profiled call is aggregated as it ends: nothing kept aside."""

    def report_metadata(self) -> Dict[str, Any]:
        """The configured rate (pyinstrument's interval) and the share of calls profiled."""
        return {"sample_rate_hz": self.call_profiler.rate_hz, "call_share": self.call_profiler.share}

    def signal_stats(self) -> Dict[str, int]:
        """No SIGPROF trigger: zeros."""
        return dict(_NO_SIGNAL)

    def native_ids(self) -> List[Optional[int]]:
        """No thread of its own: its cost is the profiled calls'."""
        return []

    def invocation(self, active: bool) -> bool:
        """Nothing to do: only the profiled calls are sampled."""
        return False


def build_engine(
    config: Config,
    aggregator: Aggregator,
    drops: DropCounter,
    budget: CpuBudget,
    excluded: Callable[[], Set[Optional[int]]],
) -> Engine:
    """The engine ``config.engine`` names, sampling into ``aggregator``; ``excluded()`` names the
    agent's other threads (never sampled). The one place that asks which engine it is."""
    if config.engine == "pyinstrument":
        from .callprofiler import CallProfiler

        share, rate, depth = config.call_share, config.rate_hz, config.max_depth
        return CallEngine(CallProfiler(aggregator, share, rate, depth, config.auto_labels))
    from .cpuprobe import select_probe
    from .sampler import ThreadSampler

    sampler = ThreadSampler(
        aggregator,
        drops,
        select_probe(),
        rate_hz=config.rate_hz,
        max_threads=config.max_threads,
        max_depth=config.max_depth,
        excluded=excluded,
        auto_labels=config.auto_labels,
        budget=budget,
        signal_trigger=config.signal_trigger,
    )
    return ThreadEngine(sampler)
