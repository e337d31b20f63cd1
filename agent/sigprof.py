"""The SIGPROF trigger: the main thread takes samples between two of its own bytecodes.

Why: a sampler thread must wake up and take the GIL for every sample. On the project's virtual
machine that costs 90 to 130 us of CPU per tick (timer programming, waking an idle vCPU, the GIL
hand-over), ten times the work of the tick itself, while a signal delivered to a thread that is
already running costs about 3.5 us (``benchmarks/agent/README.md``). So while the main thread
is running Python code, ``ITIMER_PROF`` (process CPU time) raises SIGPROF and the handler, which
CPython runs in the main thread, takes the sample; the sampler thread only wakes a few times a
second to check that this still happens (:class:`greenflame.agent.sampler.ThreadSampler`).

In Lambda invocations the same handler runs on a wall-clock timer instead (:meth:`ProfSignalTrigger.use_wall_clock`,
:mod:`.wall_timer`): the main thread then also samples its own waits, and the timer is parked
between invocations.

Only used when it cannot disturb the program:

- set up from the main thread, with SIGPROF at its default action and ``ITIMER_PROF`` unused
  (another profiler may own them);
- ``SA_RESTART`` is set, so a system call interrupted in another thread is restarted rather than
  failing with ``EINTR`` (Python's own calls retry either way, PEP 475);
- once installed, the handler stays installed after :meth:`disarm` (it then does nothing): a
  SIGPROF still in flight must never meet the default action, which ends the process;
- when the program replaces the handler, the trigger notices; its one-shot timer, which only its
  own handler re-arms, fires at most once more.
"""

from __future__ import annotations

import signal
import threading
import time

from .wake_meter import DEFAULT_WAKE_NS, WakeMeter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, FrameType
    from typing import Callable, List, Optional, Tuple

    from .wall_timer import WallTimer

_MAX_ERRORS = 10
_MIN_DELAY_S = 0.001

#: CPU one SIGPROF costs the interrupted thread outside the handler's Python code (kernel delivery,
#: CPython's C handler, the eval loop's pending-call check): measured at 3.3-3.5 us including a
#: ``pthread_kill`` system call on the project machine (``benchmarks/agent/README.md``), rounded up.
DELIVERY_NS = 4_000

# Bound once: the handler runs cold, where each module attribute looked up costs.
_clock_ns = time.perf_counter_ns
_setitimer: Callable[[int, float], object] = getattr(signal, "setitimer", lambda which, seconds: None)
_ITIMER_PROF = getattr(signal, "ITIMER_PROF", 0)


def _set_cpu_timer(seconds: float) -> None:
    """Fire the one-shot ``ITIMER_PROF`` after ``seconds`` (at least 1 ms) of the process's CPU time."""
    _setitimer(_ITIMER_PROF, seconds if seconds > _MIN_DELAY_S else _MIN_DELAY_S)


def _rearm_cpu_timer(seconds: float, since_ns: int) -> None:
    """The handler's re-arm on CPU time: from now (CPU time is not counted from a point in time)."""
    _setitimer(_ITIMER_PROF, seconds if seconds > _MIN_DELAY_S else _MIN_DELAY_S)


class ProfSignalTrigger:
    """Calls ``on_signal(frame)`` in the main thread after ``interval_s`` of process CPU time (or of
    wall-clock time, after :meth:`use_wall_clock`), then again after as many seconds as each call returns.

    The timer is one-shot, re-armed by the handler: one signal per sample (a periodic timer would
    deliver signals that find no sample due), at the random intervals the sampler chooses, and a
    main thread that stops running Python stops the timer by itself. ``frame`` is the main
    thread's frame that the signal interrupted. Exceptions raised by ``on_signal`` are kept (see
    :meth:`take_errors`) rather than logged from inside the handler, where the main thread may hold
    the logging module's locks; ``KeyboardInterrupt`` and other ``BaseException`` pass through.
    """

    def __init__(
        self,
        interval_s: float,
        on_signal: Callable[[Optional[FrameType]], float],
        is_wait: Optional[Callable[[CodeType, int], bool]] = None,
    ) -> None:
        self.interval_s = interval_s
        self._on_signal = on_signal
        self._armed = False
        self._parked = False  # armed, but the wall-clock timer waits for restart() (between invocations)
        self._wall: Optional[WallTimer] = None
        self._set_timer: Callable[[float], object] = _set_cpu_timer  # by clock: CPU time or wall-clock time
        self._rearm: Callable[[float, int], None] = _rearm_cpu_timer  # the handler's (seconds, since when)
        self._program_frame: Optional[FrameType] = None  # while the handler runs: the frame it interrupted
        self._handler = self._handle  # one bound method, so that identity tells it is installed
        # On the wall clock: what the signals that wake the main thread from a wait cost it.
        self._wakes = WakeMeter(is_wait, DELIVERY_NS) if is_wait is not None else None
        self._errors: List[Tuple[str, Exception]] = []
        self.calls = 0  # handler calls while armed
        self.handler_ns = 0  # time spent in the handler while armed (the main thread runs: wall = CPU)

    @staticmethod
    def unusable_reason() -> Optional[str]:
        """Why the trigger cannot be set up from this thread now, or None when it can."""
        if not hasattr(signal, "setitimer") or not hasattr(signal, "SIGPROF"):
            return "no SIGPROF interval timer on this platform"
        if threading.current_thread() is not threading.main_thread():
            return "the agent was not started from the main thread"
        current = signal.getsignal(signal.SIGPROF)
        if current is not signal.SIG_DFL and not _is_ours(current):
            return "SIGPROF already has a handler (another profiler?)"
        if signal.getitimer(signal.ITIMER_PROF) != (0.0, 0.0):
            return "ITIMER_PROF is already in use"
        return None

    @property
    def armed(self) -> bool:
        """Whether the timer runs."""
        return self._armed

    def arm(self) -> bool:
        """Install the handler if needed (main thread only) and start the timer; False when it cannot."""
        if self._armed:
            return True
        if not self.installed():
            if self.unusable_reason() is not None:
                return False
            signal.signal(signal.SIGPROF, self._handler)
            signal.siginterrupt(signal.SIGPROF, False)
        elif signal.getitimer(signal.ITIMER_PROF) != (0.0, 0.0):
            return False
        self._armed = True
        self._parked = False
        self._set_timer(self.interval_s)
        return True

    @property
    def wall_clock(self) -> bool:
        """Whether the timer counts wall-clock time (:meth:`use_wall_clock`) rather than CPU time."""
        return self._wall is not None

    def use_wall_clock(self, timer: WallTimer) -> None:
        """From now on count wall-clock time with ``timer`` (which sends SIGPROF to the main thread): the
        handler samples the main thread's waits too. The CPU-time timer stops; the caller re-arms
        with :meth:`restart`."""
        if self._armed and self.installed():
            signal.setitimer(signal.ITIMER_PROF, 0.0)
        self._wall = timer
        self._set_timer = timer.set
        self._rearm = timer.set_after

    def park(self) -> None:
        """Wall clock only: no signal until :meth:`restart` (the process waits between invocations,
        where a signal would wake it for nothing). The CPU-time timer needs none: it waits by itself."""
        wall = self._wall
        if wall is not None and self._armed:
            self._parked = True  # first: a handler running before the stop does not re-arm
            wall.stop()
            self._forget_frames()

    def close(self) -> None:
        """Stop the timer and release the wall-clock timer (after :meth:`disarm`, for good)."""
        self.disarm()
        wall, self._wall = self._wall, None
        self._set_timer = _set_cpu_timer
        self._rearm = _rearm_cpu_timer
        if wall is not None:
            wall.close()

    def disarm(self) -> None:
        """Stop the timer (from any thread); the handler stays installed and does nothing."""
        if not self._armed:
            return
        self._armed = False
        self._parked = False
        self._forget_frames()
        if self._wall is not None:
            self._wall.stop()
        # When the program took SIGPROF over, the timer may be its own: ours fires once at most.
        elif self.installed():
            signal.setitimer(signal.ITIMER_PROF, 0.0)

    def restart(self, delay_s: float) -> None:
        """Fire after ``delay_s`` of CPU time (or wall-clock time) from now, if armed (the handler's last
        delay is replaced; a parked timer runs again)."""
        if self._armed:
            self._parked = False
            self._set_timer(delay_s)  # each timer keeps its own floor

    def retime(self, interval_s: float) -> None:
        """Wait ``interval_s`` before the first signal after :meth:`arm` (and after a failed call)."""
        self.interval_s = interval_s

    def wake_ns(self) -> int:
        """What one signal costs the main thread it wakes from a wait (see :mod:`.wake_meter`)."""
        return self._wakes.wake_ns() if self._wakes is not None else DEFAULT_WAKE_NS

    def wants_restarts(self) -> bool:
        """On the wall clock: whether the wake meter still wants a restart measured (see :mod:`.wake_meter`)."""
        return self._wall is not None and self._wakes is not None and self._wakes.wants_restarts()

    def add_restart(self, ns: int) -> None:
        """A restart measured by the sampler thread (see ``WakeMeter.add_restart``)."""
        if self._wakes is not None:
            self._wakes.add_restart(ns)

    def probe_wakes(self) -> int:
        """How many signals that came only to measure a wake-up woke the main thread from a wait (see
        :mod:`.wake_meter`)."""
        return self._wakes.probe_wakes if self._wakes is not None else 0

    def wakes_measured(self) -> int:
        """How many of those wake-ups were measured (none: the default stands)."""
        return self._wakes.measured() if self._wakes is not None else 0

    def _forget_frames(self) -> None:
        if self._wakes is not None:
            self._wakes.forget()

    def cpu_ns(self) -> int:
        """What the handler has cost the main thread so far: time in it plus :data:`DELIVERY_NS` per call."""
        return self.handler_ns + self.calls * DELIVERY_NS

    def installed(self) -> bool:
        """Whether SIGPROF still calls this trigger (the program may have replaced the handler)."""
        return signal.getsignal(signal.SIGPROF) is self._handler

    def take_errors(self) -> List[Tuple[str, Exception]]:
        """The exceptions ``on_signal`` raised since the last call, for the caller to report."""
        errors, self._errors = self._errors, []
        return errors

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if not self._armed:
            return
        started = _clock_ns()
        delay = self.interval_s
        # A signal from the timer the handler just set can run the handler again inside itself (CPython
        # runs it between two of the handler's bytecodes): it samples the program's frame, which the
        # first call interrupted, never the agent's.
        outer = self._program_frame
        if outer is not None:
            frame = outer
        else:
            while frame is not None and frame.f_code is _HANDLE_CODE:
                frame = frame.f_back  # came before the first call had noted the frame, or after
            self._program_frame = frame
        wakes = self._wakes if self._wall is not None and outer is None else None
        if wakes is not None:
            wakes.call_started(frame)
        try:
            delay = self._on_signal(frame)
        except Exception as error:
            if len(self._errors) < _MAX_ERRORS:
                self._errors.append(("sampler signal", error))
        finally:
            if self._armed and not self._parked:
                if wakes is not None:
                    delay = wakes.probe_delay(frame, delay)
                self._rearm(delay, started)
                if wakes is not None:
                    wakes.call_ended(frame)  # after the timer's setting: the gap to the next call is the wake
            if outer is None:
                self._program_frame = None
            self.calls += 1
            self.handler_ns += _clock_ns() - started


_HANDLE_CODE = ProfSignalTrigger._handle.__code__


def _is_ours(handler: object) -> bool:
    """Whether ``handler`` is the bound handler of some trigger (one left by an earlier start)."""
    return getattr(handler, "__func__", None) is ProfSignalTrigger._handle
