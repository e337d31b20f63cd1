"""The CPU budget: the agent may use at most ``cpu_budget`` cores.

At the end of each of the sampler thread's windows (0.5 to 1 s) :class:`CpuBudget` reads the CPU
clocks of the agent's threads (:func:`greenflame.agent.cpuprobe.thread_cpu_ns`), adds what the
agent's code cost in the program's own threads (``extra_cpu_ns``: the SIGPROF handler), and
compares the CPU used with the wall time that passed. The agent's cost grows with the rate, so
what is kept is its cost per sample per second (its share of a core over the rate), smoothed over
the checks: when that cost at the current rate is above the budget, the rate is lowered to where it
is :data:`_TARGET` of it, down to :data:`MIN_RATE_HZ`; below the configured rate it climbs back
towards that point, by half at a time. One costly window (a report built, a burst of wake-ups) moves
the smoothed cost by half its excess, so it no longer holds the rate down for good: before, the
rate climbed back only while the projected cost stayed under 80% of the budget, and an agent
that cost 85% of it at the full rate, once lowered by a noisy window, stayed lowered (measured in
``benchmarks/agent/README.md``). The first interval is not judged: it holds the agent's
start-up (its threads, first imports), a one-off that would lower the rate for seconds (it is
still in ``agent_cpu_ns``). Each lowering is logged (a warning at most once a minute, then debug)
and reported in the window's metadata (``rate_limited``), with the agent's CPU time
(``agent_cpu_ns``) and the time-weighted mean rate of the window.
"""

from __future__ import annotations

import threading
import time

from .cpuprobe import thread_cpu_ns
from .guard import logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, Optional

MIN_RATE_HZ = 1.0
CHECK_INTERVAL_S = 0.5
#: The rate is set where the smoothed cost is this share of the budget: the margin absorbs the cost's
#: noise from one check to the next.
_TARGET = 0.95
_RAISE_FACTOR = 1.5
#: The weight of the newest check in the smoothed cost per sample per second.
_SMOOTHING = 0.5
_WARN_EVERY_S = 60.0
_MIN_ELAPSED_S = 0.25


class CpuBudget:
    """Measures the agent threads' CPU and decides the sampling rate that keeps it in budget."""

    def __init__(
        self,
        budget_cores: float,
        rate_hz: float,
        agent_threads: Callable[[], Iterable[Optional[int]]],
        clock: Callable[[], float] = time.monotonic,
        extra_cpu_ns: Callable[[], int] = lambda: 0,
        cpu_of: Callable[[int], Optional[int]] = thread_cpu_ns,
    ) -> None:
        self.budget_cores = budget_cores
        self.configured_hz = rate_hz
        self.rate_hz = rate_hz
        self._agent_threads = agent_threads
        self._extra_cpu_ns = extra_cpu_ns
        self._clock = clock
        self._cpu_of = cpu_of
        self._lock = threading.Lock()
        self._last_cpu: Dict[int, int] = {}
        self._total = 0
        self._total_at_check = 0
        self._total_at_window = 0
        self._excused = 0  # CPU ns the budget's own warnings cost (the first imports logging)
        self._per_hz: Optional[float] = None  # smoothed share of a core per sample per second
        self._primed = False  # the first interval (the start-up) has passed
        now = clock()
        self._checked_at = now
        self._last_warning = -_WARN_EVERY_S
        self._reset_window(now)

    def forget_threads(self) -> None:
        """Drop the clock readings of threads that no longer exist (after a fork or a restart)."""
        with self._lock:
            self._last_cpu = {}

    def _reset_window(self, now: float) -> None:
        self._window_start = now
        self._rate_since = now
        self._rate_seconds = 0.0  # integral of the rate over the window's time
        self._lowered = 0
        self._lowest = self.rate_hz

    @property
    def share(self) -> Optional[float]:
        """The share of one core the agent uses at the current rate, by its smoothed cost (None before
        the first check judged)."""
        return None if self._per_hz is None else self._per_hz * self.rate_hz

    def check(self) -> float:
        """Measure, adjust and return the rate to sample at."""
        with self._lock:
            now = self._clock()
            elapsed = now - self._checked_at
            if elapsed < _MIN_ELAPSED_S:
                return self.rate_hz  # too short to tell a share of a core from start-up noise
            total = self._read() - self._excused
            used, self._total_at_check = total - self._total_at_check, total
            self._checked_at = now
            if elapsed <= 0:
                return self.rate_hz
            if not self._primed:
                self._primed = True
                return self.rate_hz
            per_hz = used / 1e9 / elapsed / self.rate_hz  # the rate is constant between two checks
            smoothed = self._per_hz
            self._per_hz = per_hz if smoothed is None else _SMOOTHING * per_hz + (1 - _SMOOTHING) * smoothed
            self._adjust(now, self._per_hz)
            return self.rate_hz

    def take_window(self) -> Dict[str, Any]:
        """This window's ``agent_cpu_ns``, mean ``sample_rate_hz`` and ``rate_limited`` (if lowered); resets."""
        with self._lock:
            now = self._clock()
            total = self._read()
            result: Dict[str, Any] = {
                "agent_cpu_ns": total - self._total_at_window,
                "sample_rate_hz": round(self._mean_rate(now), 3),
            }
            if self._lowered:
                result["rate_limited"] = {
                    "cpu_budget_cores": self.budget_cores,
                    "lowest_rate_hz": round(self._lowest, 3),
                    "times": self._lowered,
                }
            self._total_at_window = total
            self._reset_window(now)
            return result

    # -- internals ----------------------------------------------------------------------

    def _read(self) -> int:
        """The agent threads' CPU ns so far (threads that ended keep what they had used)."""
        for native_id in self._agent_threads():
            if native_id is None:
                continue
            cpu = self._cpu_of(native_id)
            if cpu is None:
                continue
            previous = self._last_cpu.get(native_id)
            self._last_cpu[native_id] = cpu
            # An agent thread seen for the first time counts in full: all its CPU is the agent's.
            self._total += max(0, cpu - previous) if previous is not None else cpu
        return self._total + self._extra_cpu_ns()

    def _mean_rate(self, now: float) -> float:
        seconds = self._rate_seconds + self.rate_hz * (now - self._rate_since)
        span = now - self._window_start
        return seconds / span if span > 0 else self.rate_hz

    def _set_rate(self, now: float, rate: float) -> None:
        self._rate_seconds += self.rate_hz * (now - self._rate_since)
        self._rate_since = now
        self.rate_hz = rate

    def _adjust(self, now: float, per_hz: float) -> None:
        """Lower the rate when its cost, ``per_hz`` per sample per second, is above the budget; raise it
        towards the rate that fits while under the configured one."""
        fits = self.budget_cores * _TARGET / per_hz if per_hz > 0 else self.configured_hz
        share = per_hz * self.rate_hz
        if share > self.budget_cores and self.rate_hz > MIN_RATE_HZ:
            rate = max(min(MIN_RATE_HZ, self.configured_hz), fits)
            self._lowered += 1
            self._lowest = min(self._lowest, rate)
            self._log_lowered(now, share, rate)
            self._set_rate(now, rate)
        elif self.rate_hz < self.configured_hz and fits > self.rate_hz:
            rate = min(self.configured_hz, fits, self.rate_hz * _RAISE_FACTOR)
            logger.debug("greenflame: agent CPU back under budget: sampling at %.1f Hz", rate)
            self._set_rate(now, rate)

    def _log_lowered(self, now: float, share: float, rate: float) -> None:
        warn = now - self._last_warning >= _WARN_EVERY_S
        if warn:
            self._last_warning = now
        # The first warning imports logging (tens of ms): a one-off of the message, not of sampling,
        # which would keep the rate low long after. Still in the reports' agent_cpu_ns.
        started = time.thread_time_ns()
        try:
            self._log_line(warn, share, rate)
        finally:
            self._excused += time.thread_time_ns() - started

    def _log_line(self, warn: bool, share: float, rate: float) -> None:
        logger.log(
            30 if warn else 10,
            "greenflame: agent CPU %.2f%% of a core is above its budget of %.2f%%: sampling rate lowered from "
            "%.1f Hz to %.1f Hz",
            share * 100,
            self.budget_cores * 100,
            self.rate_hz,
            rate,
        )
