"""The SIGPROF handler's work, in the main thread: a sample when one is due (see :mod:`.sigprof`).

:func:`build_handler` makes the handler: it samples a main thread that is the only thread to
sample itself, inline; otherwise :class:`ThreadCapture` records every thread.

The hot path of the SIGPROF trigger. As little as possible runs here, and in as few calls as
possible, because it runs cold (the program's work between two samples evicts the agent's code
and data from the CPU caches, and every statement costs a microsecond or more): no lock waited
for, no import, no aggregation, no bookkeeping (the sampler thread derives it from the samples'
times). Code objects are recorded rather than frames, which would keep the locals of returned
calls alive until the thread gets to them.

The handler is a closure over the parts it reads (the policy's due time, the thread table, the
handler buffer's deque): each read is one variable and at most one attribute, as ``self._due``
was when the handler was a method of the sampler, while each field stays in the part that owns it.
Measured against that method in one process, alternating, the caches flushed before each call:
4.7-5.4 us per call against 4.8-5.6 us (a subclass of the policy holding copies of the table's
fields, tried too, cost 0-8% more).
"""

from __future__ import annotations

import sys
import threading
import time

from . import frame_guard, threadlabels
from .handler_buffer import PENDING_LIMIT
from .thread_table import ACTIVE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Callable, Dict, List, Optional

    from .cpuprobe import CpuProbe
    from .handler_buffer import Captured, HandlerBuffer
    from .thread_table import ThreadTable
    from .trigger_policy import TriggerPolicy

    Handler = Callable[[Optional[FrameType]], float]

# Bound once: the handler runs cold, where each module attribute looked up costs.
_MODULES = sys.modules
_BY_THREAD = threadlabels.by_thread()
#: The running tasks when asyncio is not imported: none.
NO_TASKS: Dict[int, object] = {}
#: The most due times one late sample of the wall-clock handler stands for (at 100 Hz: 100 s).
MAX_WEIGHT = 10_000


def build_handler(
    policy: TriggerPolicy,
    table: ThreadTable,
    buffer: HandlerBuffer,
    capture: Callable[[float, Optional[FrameType]], None],
    clock: Callable[[], float],
) -> Handler:
    """The function the SIGPROF trigger calls with the main thread's interrupted frame; it returns the
    seconds until the next sample is due.

    When the main thread is the only thread to sample, it samples it alone, inline; otherwise
    ``capture(now, frame)`` records every thread (and schedules the next sample). ``clock`` is the
    sampler's monotonic clock, ``policy.draw`` its random source.
    """
    pending, count_drop, draw = buffer.pending, buffer.count_drop, policy.draw

    def _on_signal(frame: Optional[FrameType]) -> float:
        now = clock()
        due = policy.due
        owed = policy.owed
        if (now < due and not owed) or table.count < 0:
            delay = due - now
            step = policy.handler_step
            return delay if delay < step else step
        if "asyncio" in _MODULES and _MODULES["asyncio"].events._get_running_loop() is not None:
            buffer.main_loop_running = True  # the thread retires the trigger at the window's end
            return policy.period
        if owed:
            policy.owed = owed - 1  # a sample the thread left to the handler: the schedule has moved on
        solo = table.solo_active
        if solo < 0 or frame is None or ACTIVE is None or len(ACTIVE) != solo:
            capture(now, frame)  # other threads to sample
            delay = policy.due - now
            step = policy.handler_step
            return delay if delay < step else step
        # The main thread is the only one to sample: its frame is at hand, so no sys._current_frames()
        # (which visits every thread), no thread table, and no lock: the sampler thread re-checks the
        # due time under its lock before it samples. TriggerPolicy.schedule(), inlined.
        weight = 1
        if not owed:
            period = policy.period
            if policy.wall_clock:
                # The timer fired at the due time at the latest, and a pending signal is handled at the
                # main thread's next bytecode: every due time since passed inside the C call it stands
                # on (a blocking recv restarted after the signal, a long C function), so the sample
                # stands for each of them rather than for one.
                due += (0.5 + draw()) * period
                while due <= now and weight < MAX_WEIGHT:
                    weight += 1
                    due += (0.5 + draw()) * period
                if due <= now:  # MAX_WEIGHT reached
                    due = now + (0.5 + draw()) * period
                policy.due = due
            else:
                policy.due = due = max(due, now - period) + (0.5 + draw()) * period
        delay = due - now
        step = policy.handler_step
        if delay > step:
            delay = step
        if len(pending) >= PENDING_LIMIT:
            count_drop("signal_backlog", 1)
            return delay
        codes = []
        walk: Optional[FrameType] = frame
        while walk is not None:
            codes.append(walk.f_code)
            walk = walk.f_back
        main = table.main_ident or 0
        record = (main, codes, 1, frame.f_code, frame.f_lasti, _BY_THREAD.get(main, ()), None)
        pending.append((now, [record], weight))
        return delay

    return _on_signal


class ThreadCapture:
    """The handler's way when the main thread is not alone (:meth:`record`): a sample of every thread
    but the agent's, recorded as plain data for the sampler thread to aggregate later."""

    def __init__(
        self, policy: TriggerPolicy, table: ThreadTable, buffer: HandlerBuffer, probe: CpuProbe, lock: threading.Lock
    ) -> None:
        self._policy = policy
        self._table = table
        self._buffer = buffer
        self._probe = probe
        self._lock = lock

    def record(self, now: float, main_frame: Optional[FrameType]) -> None:
        """Record a sample taken at ``now`` (``main_frame``: the main thread's interrupted frame) and
        schedule the next; skipped when the sampler thread holds ``lock`` (sampling or aggregating:
        the timer tries again in a moment)."""
        if not self._lock.acquire(blocking=False):
            return
        paused = frame_guard.pause()  # other threads' frames are read: see frame_guard
        try:
            self._record_locked(now, main_frame)
        finally:
            frame_guard.resume(paused)
            self._lock.release()

    def _record_locked(self, now: float, main_frame: Optional[FrameType]) -> None:
        self._policy.schedule(now)
        buffer, table = self._buffer, self._table
        if len(buffer.pending) >= PENDING_LIMIT:
            buffer.count_drop("signal_backlog", 1)
            return
        frames = sys._current_frames()
        main = threading.get_ident()
        if main_frame is None:
            frames.pop(main, None)
        else:
            frames[main] = main_frame
        if len(frames) != table.count:
            table.refresh_wanted = True  # enumerating threads takes a lock: the thread does it
        threads = table.select(frames)
        del frames
        now_ns = time.monotonic_ns()
        probe = self._probe
        probe.begin_tick(now_ns)
        native, on_cpu, by_thread = table.native, probe.on_cpu, threadlabels.by_thread()
        tasks = threadlabels.running_tasks() if "asyncio" in sys.modules else NO_TASKS
        records: List[Captured] = []
        for ident, frame in threads:
            # The main thread runs this handler: it is on a CPU, no clock needed.
            cpu = 1 if ident == main else on_cpu(native.get(ident), now_ns)
            leaf, offset = frame.f_code, frame.f_lasti
            codes = []
            walk: Optional[FrameType] = frame
            while walk is not None:
                codes.append(walk.f_code)
                walk = walk.f_back
            task = tasks.get(ident) if tasks else None
            records.append((ident, codes, cpu, leaf, offset, by_thread.get(ident, ()), task))
        buffer.pending.append((now, records, 1))
