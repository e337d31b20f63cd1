"""Whether a sampled thread was running on a CPU: the ``cpu`` column of each sample.

Three probes, chosen once by :func:`select_probe`, best first; the chosen one is named in each
report's ``metadata["cpu_source"]``:

``thread-cputime`` (Linux)
    Reads the thread's own CPU clock (``clock_gettime`` on the clock id the kernel derives from
    the thread id) and credits the thread with the CPU time it used since its previous sample,
    in units of the sampler's mean tick interval; a sample is counted as CPU when the accumulated
    credit reaches one half, so the CPU samples add up to the CPU time really used (dividing by
    each interval instead would be biased: ticks are irregular). A thread whose CPU clock did not move
    since its previous sample is never counted (its credit waits for its next running sample), nor is
    one that stands on an idle call (:mod:`.idle`): its clock moved before the wait.
    Measured at about 1 us per thread and tick, and it does not release the GIL. A thread that has exited
    makes the kernel answer EINVAL, never a crash.
``proc-stat`` (Linux without per-thread clocks)
    The state letter of ``/proc/self/task/<tid>/stat`` (``R`` = running or runnable), read with
    ``os.pread`` on a file kept open per thread. The read itself is a few microseconds, but it
    releases the GIL: with a busy Python thread running, each read waited for the GIL again and
    was measured at about 300 us, which is why this is only the fallback.
``none``
    No per-thread information: every sample has ``cpu = 0``; readers can tell from the metadata.
"""

from __future__ import annotations

import os
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional

_PROC_TASKS = "/proc/self/task"
_MAX_TICK_NS = 1_000_000_000
_MAX_CREDIT = 2.0


class CpuProbe:
    """Interface: ``on_cpu`` returns 1 when the thread counts as on a CPU for this sample, else 0."""

    name = "none"

    def begin_tick(self, now_ns: int) -> None:
        """Called once per sampler tick, before ``on_cpu`` for each thread."""

    def on_cpu(self, native_id: Optional[int], now_ns: int) -> int:
        """1 if thread ``native_id`` counts as running for the sample taken at ``now_ns``."""
        return 0

    def off_cpu(self, native_id: Optional[int], now_ns: int) -> None:
        """Thread ``native_id`` waits in an idle call at ``now_ns``: not on a CPU, whatever its clock
        says; the CPU time it used since its previous sample is not carried to a later sample."""

    def forget_others(self, alive: Iterable[int]) -> None:
        """Drop the state kept for threads that are not in ``alive`` (native ids)."""

    def close(self) -> None:
        """Release any resource (open files)."""


def thread_clock_id(native_id: int) -> int:
    """The Linux CPU-time clock id of thread ``native_id`` (CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD)."""
    return ((~native_id) << 3) | 6


def thread_cpu_ns(native_id: int) -> Optional[int]:
    """CPU time used so far by thread ``native_id`` of this process, or None when unknown.

    The thread's CPU clock where the platform has one, else the first field of
    ``/proc/self/task/<tid>/schedstat`` (nanoseconds on a CPU).
    """
    try:
        return time.clock_gettime_ns(thread_clock_id(native_id))
    except (OSError, OverflowError, AttributeError):
        pass
    try:
        with open(f"{_PROC_TASKS}/{native_id}/schedstat", "rb") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class ThreadClockProbe(CpuProbe):
    """CPU time of each thread, turned into per-sample counts by a credit that carries over."""

    name = "thread-cputime"

    def __init__(self) -> None:
        # native id -> [cpu_ns at the previous sample, wall ns at the previous sample, credit, clock id]
        self._state: Dict[int, List[float]] = {}
        self._last_tick_ns = 0
        self._tick_ns = 0.0  # moving average of the interval between ticks

    @staticmethod
    def available() -> bool:
        """Whether this platform has per-thread CPU clocks for the calling process's threads."""
        if not sys.platform.startswith("linux"):
            return False
        try:
            time.clock_gettime_ns(thread_clock_id(threading.get_native_id()))
        except (OSError, OverflowError, AttributeError):
            return False
        return True

    def begin_tick(self, now_ns: int) -> None:
        interval = now_ns - self._last_tick_ns
        self._last_tick_ns = now_ns
        if not 0 < interval < _MAX_TICK_NS:
            return  # the first tick, or a pause (a frozen Lambda) that says nothing of the rate
        self._tick_ns = interval if not self._tick_ns else 0.9 * self._tick_ns + 0.1 * interval

    def on_cpu(self, native_id: Optional[int], now_ns: int) -> int:
        if native_id is None:
            return 0
        state = self._state.get(native_id)
        try:
            if state is None:
                clock = thread_clock_id(native_id)
                self._state[native_id] = [time.clock_gettime_ns(clock), now_ns, 0.0, clock]
                return 0
            cpu_ns = time.clock_gettime_ns(int(state[3]))
        except OSError:
            self._state.pop(native_id, None)
            return 0
        used, elapsed = cpu_ns - state[0], now_ns - state[1]
        state[0], state[1] = cpu_ns, now_ns
        if used <= 0 or elapsed <= 0:
            return 0  # certainly not running now; the credit waits for a sample where it is
        credit = state[2] + used / (self._tick_ns or elapsed)
        if credit > _MAX_CREDIT:
            credit = _MAX_CREDIT
        if credit >= 0.5:
            state[2] = credit - 1.0
            return 1
        state[2] = credit
        return 0

    def off_cpu(self, native_id: Optional[int], now_ns: int) -> None:
        # The CPU time since the previous sample was used before the wait, by stacks this sample does
        # not show: counting it here would charge the wait, carrying it would charge the next stack.
        state = self._state.get(native_id) if native_id is not None else None
        if state is None:
            return
        try:
            state[0] = time.clock_gettime_ns(int(state[3]))
        except OSError:
            self._state.pop(native_id, None)  # type: ignore[arg-type]
            return
        state[1] = now_ns

    def forget_others(self, alive: Iterable[int]) -> None:
        keep = set(alive)
        for native_id in [n for n in self._state if n not in keep]:
            del self._state[native_id]


class ProcStatProbe(CpuProbe):
    """The scheduler state of each thread from ``/proc/self/task/<tid>/stat``, one open file per thread."""

    name = "proc-stat"

    def __init__(self) -> None:
        self._fds: Dict[int, int] = {}

    @staticmethod
    def available() -> bool:
        """Whether ``/proc/self/task`` can be read."""
        return os.path.isdir(_PROC_TASKS)

    def on_cpu(self, native_id: Optional[int], now_ns: int) -> int:
        if native_id is None:
            return 0
        try:
            fd = self._fds.get(native_id)
            if fd is None:
                fd = self._fds[native_id] = os.open(f"{_PROC_TASKS}/{native_id}/stat", os.O_RDONLY)
            data = os.pread(fd, 128, 0)
        except OSError:
            self._close(native_id)
            return 0
        # "tid (comm) S ...": comm may itself contain ')' so the state follows the last one.
        end = data.rfind(b")")
        return 1 if end >= 0 and data[end + 2 : end + 3] == b"R" else 0

    def forget_others(self, alive: Iterable[int]) -> None:
        keep = set(alive)
        for native_id in [n for n in self._fds if n not in keep]:
            self._close(native_id)

    def close(self) -> None:
        for native_id in list(self._fds):
            self._close(native_id)

    def _close(self, native_id: int) -> None:
        fd = self._fds.pop(native_id, None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def select_probe() -> CpuProbe:
    """The best probe this platform supports."""
    if ThreadClockProbe.available():
        return ThreadClockProbe()
    if ProcStatProbe.available():
        return ProcStatProbe()
    return CpuProbe()
