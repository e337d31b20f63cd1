"""What a wall-clock SIGPROF costs the main thread it wakes from a wait, measured in the process.

A signal that finds the main thread waiting (``time.sleep``, a socket's ``recv``) wakes it: the
kernel's wake-up, the return from the interrupted call, CPython's dispatch to the handler, the
wait resumed afterwards. That cost is not in the handler's own time, and it depends on the machine
(waking an idle virtual CPU costs most), so :class:`WakeMeter` measures it where it happens: when two
handler calls in a row find the main thread at the same wait (the same frame object at the same
call instruction, a call site known to wait), everything the thread ran between the first call's
end and the second call's start is that cost, read from the thread's own CPU clock. A thread that
went round a loop back to the same wait in between adds the loop's work too, which can only make
the figure higher: the budget errs on the side of sampling less.

Until :data:`MIN_MEASURED` such pairs are seen, the default :data:`DEFAULT_WAKE_NS` stands:
measured on the project machine with idle CPUs, where a wake-up costs most
(``benchmarks/lambda/README.md``). Waits shorter than a sampling period give few pairs, so until
then a call that finds a wait asks for a *probe* (:meth:`WakeMeter.probe_delay`): the next signal
comes :data:`PROBE_S` later, takes no sample when none is due, and measures the wake-up if the wait
still lasts. At most :data:`MAX_PROBES` in a process; one that finds the thread waiting is charged as
a wake-up (:attr:`WakeMeter.probe_wakes`), one that finds it running costs a handler call. Without them a
loop of 6 ms waits was charged the default for the whole of a 10-s run, twice what its waits
really cost it (``benchmarks/agent/README.md``). A wait the kernel restarts after the signal (a
blocking ``recv``) gives no pair at all, the handler running only once it returns: the sampler
thread measures those signals itself (:meth:`WakeMeter.add_restart`), which stand where pairs are
too few.
"""

from __future__ import annotations

import time
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, FrameType
    from typing import Callable, Deque, Optional, Sequence

#: The cost of a wake-up assumed until enough are measured.
DEFAULT_WAKE_NS = 120_000
#: Measurements kept (the most recent), and how many make a figure.
KEPT = 31
MIN_MEASURED = 5
#: A gap longer than this is not a wake-up: the thread did work between two visits to the wait.
MAX_WAKE_NS = 1_000_000
#: How soon after a call that found a wait a probe comes, and how many probes a process gets.
PROBE_S = 0.002
MAX_PROBES = 64

# Bound once: read in the SIGPROF handler, which runs cold.
_thread_cpu_ns = time.thread_time_ns


class WakeMeter:
    """Measures the main thread's CPU between two handler calls that find it at the same wait.

    ``is_wait(code, offset)`` tells whether the instruction at ``offset`` of ``code`` is a call
    site known to wait (it must answer from what it knows, without classifying new code: it runs in
    the SIGPROF handler). ``extra_ns``, taken off each measurement, is what is already counted apart
    for every signal (its delivery).
    """

    def __init__(self, is_wait: Callable[[CodeType, int], bool], extra_ns: int = 0) -> None:
        self._is_wait = is_wait
        self._extra_ns = extra_ns
        self._measured: Deque[int] = deque(maxlen=KEPT)
        self._restarts: Deque[int] = deque(maxlen=KEPT)  # see add_restart
        self._frame: Optional[FrameType] = None  # the wait the last call found, until the next call
        self._offset = -1
        self._cpu_out = 0  # the main thread's CPU clock as that call ended
        self._at_wait = False  # the call in progress found the main thread at a wait
        self._probing = False  # the call in progress is a probe
        self.probes = 0  # probes asked for
        self.probe_wakes = 0  # probes that found the main thread at a wait: each woke it

    def call_started(self, frame: Optional[FrameType]) -> None:
        """A handler call starts with the main thread at ``frame``: a second visit to the same wait
        measures the wake-up that brought the thread here."""
        if frame is not None and frame is self._frame and frame.f_lasti == self._offset:
            gap = _thread_cpu_ns() - self._cpu_out
            if gap <= MAX_WAKE_NS:
                self._measured.append(max(0, gap - self._extra_ns))
        self._frame = None

    def probe_delay(self, frame: Optional[FrameType], delay: float) -> float:
        """The delay to set the timer to as the handler call that found the main thread at ``frame``
        ends: ``delay``, or :data:`PROBE_S` when that is sooner, the call found a wait and too few
        wake-ups are measured yet (probes left)."""
        at_wait = self._at_wait = frame is not None and self._is_wait(frame.f_code, frame.f_lasti)
        if self._probing:
            self._probing = False
            if at_wait:
                self.probe_wakes += 1
        if at_wait and delay > PROBE_S and len(self._measured) < MIN_MEASURED and self.probes < MAX_PROBES:
            self.probes += 1
            self._probing = True
            return PROBE_S
        return delay

    def call_ended(self, frame: Optional[FrameType]) -> None:
        """The handler call that found the main thread at ``frame`` ends (after :meth:`probe_delay` and
        the timer's setting)."""
        if frame is not None and self._at_wait:
            self._frame, self._offset = frame, frame.f_lasti
            self._cpu_out = _thread_cpu_ns()

    def forget(self) -> None:
        """Drop the frame held (the timer stops: it would keep the frame's locals alive)."""
        self._frame = None
        self._probing = False  # the probe asked for will not come

    def add_restart(self, ns: int) -> None:
        """A signal that the kernel absorbed in a wait it restarts (a ``recv`` on a blocking socket: the
        handler runs only once the call returns, so no two calls find the thread at that wait) cost the
        main thread ``ns``, measured by the sampler thread across a due time while the main thread
        stayed blocked (see ``ThreadSampler``)."""
        if 0 <= ns <= MAX_WAKE_NS:
            self._restarts.append(ns)

    def wants_restarts(self) -> bool:
        """Whether a measurement of :meth:`add_restart` would still count: too few of either kind."""
        return len(self._measured) < MIN_MEASURED and len(self._restarts) < MIN_MEASURED

    def wake_ns(self) -> int:
        """The median of the recent wake-ups measured; where none can pair, of the restarts measured;
        :data:`DEFAULT_WAKE_NS` until there are enough of either. A wake-up costs more than a restart
        (the wait's return and CPython's dispatch come on top), so pairs win when there are both."""
        standing = self._standing()
        if not standing:
            return DEFAULT_WAKE_NS
        ordered = sorted(standing)
        return ordered[len(ordered) // 2]

    def measured(self) -> int:
        """How many measurements :meth:`wake_ns` rests on (at most :data:`KEPT`; 0: the default)."""
        return len(self._standing())

    def _standing(self) -> Sequence[int]:
        """The measurements the figure rests on: the pairs', else the restarts', once enough; else none."""
        for measured in (self._measured, self._restarts):
            if len(measured) >= MIN_MEASURED:
                return measured
        return ()
