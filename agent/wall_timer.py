"""A one-shot timer of wall-clock time that sends SIGPROF to one thread (Linux, through ``ctypes``).

Why: ``ITIMER_PROF`` counts the process's CPU time, so its SIGPROF never comes while the main
thread waits (``time.sleep``, a socket's ``poll``) and the sampler thread has to wake up for the
samples of every wait, with a GIL hand-over when the main thread runs again. In a Lambda function,
whose main thread alternates between its handler's work and its waits, this timer lets the main
thread take every sample itself, on time: a signal that finds it running costs a few microseconds;
one that finds it waiting wakes it, and CPython runs the handler in the interrupted call (PEP 475
calls resume their wait afterwards), which classifies the sample as idle.

The standard library has no such timer (``signal.setitimer(ITIMER_REAL)`` sends SIGALRM to the
process, the signal and the timer of ``signal.alarm``, which programs use for their own timeouts),
so :class:`WallTimer` calls ``timer_create`` with ``SIGEV_THREAD_ID``: the signal goes to the thread
named and nowhere else, and SIGPROF stays the agent's only signal. Nothing here is imported on a
cold start's critical path: the sampler thread imports ``ctypes`` first (:mod:`.thread_imports`),
and :meth:`WallTimer.create` gives up while it has not.

A POSIX timer is not inherited by a forked child: :meth:`WallTimer.close` deletes it only in the
process that created it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional

_CLOCK_MONOTONIC = 1
_SIGEV_THREAD_ID = 4
_TIMER_ABSTIME = 1
#: Longest wait for another thread's call into the C library on the same timer (it holds the lock
#: for one call, and the GIL to return from it); beyond it the setting is skipped, never the host stalled.
SETTIME_WAIT_S = 1.0
#: The shortest wait a timer is set to (zero would disarm it). Short: a sample due as an invocation
#: starts must come before an invocation shorter than a millisecond ends (a 1 ms floor left such
#: functions without a sample once one was due at an invocation's end).
MIN_DELAY_S = 0.00002
#: The handler's re-arm sets the timer from ready-made settings, one per step of this many seconds up
#: to :data:`PRESETS` steps (20 ms: a sampling period drawn around 10 ms): a single call into the C
#: library, with no setting to compute or fields to fill, each of which costs microseconds in a
#: handler that runs with cold caches. Longer waits are set exactly.
PRESET_STEP_S = 0.0001
PRESETS = 200

_clock_ns = time.perf_counter_ns


def _types() -> Any:
    """The ``ctypes`` structures: ``(timespec, itimerspec, sigevent)``."""
    import ctypes

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    class Itimerspec(ctypes.Structure):
        _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]

    class Sigevent(ctypes.Structure):
        # glibc and musl: the value, the signal, how to notify, then a 48-byte union whose first int
        # is the thread id of SIGEV_THREAD_ID (64 bytes in all on 64-bit machines, more here is harmless).
        _fields_ = [
            ("sigev_value", ctypes.c_void_p),
            ("sigev_signo", ctypes.c_int),
            ("sigev_notify", ctypes.c_int),
            ("sigev_notify_thread_id", ctypes.c_int),
            ("padding", ctypes.c_int * 13),
        ]

    return ctypes, Timespec, Itimerspec, Sigevent


_STEPS_PER_S = 1.0 / PRESET_STEP_S


def _preset_maker(ctypes: Any, itimerspec: Any) -> Callable[[int], Any]:
    """A function that makes the reference to a one-shot setting of ``step`` steps (0: :data:`MIN_DELAY_S`)."""

    def make(step: int) -> Any:
        spec = itimerspec()
        spec.it_value.tv_nsec = int(step * PRESET_STEP_S * 1e9) if step else int(MIN_DELAY_S * 1e9)
        return ctypes.byref(spec)  # a reference keeps its structure alive

    return make


def _library(ctypes: Any) -> Any:
    """The C library that has ``timer_create``: glibc 2.34+ and musl in libc, older glibc in librt.

    Its functions are called without ``argtypes`` and without saving ``errno``, with arguments that
    are already C values (the timer id, a ``byref``, ints): converting them on each call nearly
    doubled the cost of a cold call (the handler's re-arm runs with cold caches)."""
    for name in (None, "librt.so.1"):
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(library, "timer_create") and hasattr(library, "timer_settime"):
            return library
    return None


class WallTimer:
    """A one-shot ``CLOCK_MONOTONIC`` timer that sends SIGPROF to one thread when it expires."""

    def __init__(
        self, library: Any, timer_id: Any, spec: Any, spec_ref: Any, make_preset: Callable[[int], Any]
    ) -> None:
        self._settime = library.timer_settime
        self._delete = library.timer_delete
        self._id = timer_id
        self._spec = spec  # kept alive: spec_ref points into it
        self._ref = spec_ref
        self._value = spec.it_value
        # References to settings of 0, 1, 2... steps from now, each made when first used (making all
        # 200 at once took 0.4 ms, in a Lambda function's first invocation).
        self._presets: List[Any] = [None] * PRESETS
        self._make_preset = make_preset
        self._pid = os.getpid()
        # Held around each call into the C library: the call releases the GIL, and the timer must not
        # be deleted by another thread while the main thread's handler sets it (in older glibc a
        # timer_t points to memory that timer_delete frees). Reentrant: a signal from a timer just set
        # can run the handler again inside the handler, on the same thread; its setting is the one
        # that counts (with a plain lock it was skipped, and the one-shot timer, fired, was never set
        # again). Waited for, briefly, when another thread holds it: the sampler thread sets the
        # timer too, and a handler that skipped its re-arm then (the timer, just set, fired before
        # that thread got the GIL back to release the lock) left the timer stopped for good.
        self._busy = threading.RLock()

    @classmethod
    def create(cls, native_thread_id: int) -> Optional[WallTimer]:
        """A timer that signals the thread whose kernel id is ``native_thread_id``, or None where there is
        none to be had: not Linux, ``ctypes`` not imported yet or missing, ``timer_create`` failing."""
        if not sys.platform.startswith("linux") or sys.modules.get("ctypes") is None:
            return None
        try:
            ctypes, _, itimerspec, sigevent = _types()
            library = _library(ctypes)
            if library is None:
                return None
            event = sigevent(None, signal.SIGPROF, _SIGEV_THREAD_ID, native_thread_id)
            timer_id = ctypes.c_void_p()
            if library.timer_create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(timer_id)) != 0:
                return None
            spec = itimerspec()
            return cls(library, timer_id, spec, ctypes.byref(spec), _preset_maker(ctypes, itimerspec))
        except (AttributeError, ImportError, OSError, TypeError, ValueError):
            return None

    def set(self, seconds: float) -> None:
        """Fire once, ``seconds`` from now (at least :data:`MIN_DELAY_S`); replaces the previous setting."""
        if seconds < MIN_DELAY_S:
            seconds = MIN_DELAY_S
        whole = int(seconds)
        self._settime_locked(0, self._ref, whole, int((seconds - whole) * 1e9))

    def set_after(self, seconds: float, since_ns: int) -> None:
        """Fire once, ``seconds`` after ``since_ns`` (``time.perf_counter_ns()``: CLOCK_MONOTONIC on Linux),
        at least :data:`MIN_DELAY_S` after it: a timer set at the end of the SIGPROF handler then fires
        when the sample is due rather than the handler's own duration later. Within :data:`PRESETS`
        steps of now, at the next :data:`PRESET_STEP_S` step (never early)."""
        # The next step up: a signal a little early would find no sample due, and cost a call more.
        step = int((seconds - (_clock_ns() - since_ns) * 1e-9) * _STEPS_PER_S) + 1
        presets = self._presets
        if step < len(presets):
            if step < 0:
                step = 0
            preset = presets[step]
            if preset is None:
                preset = presets[step] = self._make_preset(step)
            self._settime_locked(0, preset)
            return
        if seconds < MIN_DELAY_S:
            seconds = MIN_DELAY_S
        sec, nsec = divmod(since_ns + int(seconds * 1e9), 1_000_000_000)
        self._settime_locked(_TIMER_ABSTIME, self._ref, sec, nsec)

    def stop(self) -> None:
        """Do not fire (a signal already sent still arrives)."""
        self._settime_locked(0, self._ref, 0, 0)

    def _settime_locked(self, flags: int, setting: Any, sec: int = -1, nsec: int = 0) -> None:
        """``timer_settime`` from ``setting``, a ready-made one or (``sec`` >= 0) this timer's own, filled
        with ``sec`` and ``nsec`` first; unless the timer is deleted, or being deleted (then nothing is
        left to set)."""
        busy = self._busy
        if not busy.acquire(True, SETTIME_WAIT_S):
            return
        try:
            if self._id is not None:
                if sec >= 0:
                    value = self._value
                    value.tv_sec, value.tv_nsec = sec, nsec
                self._settime(self._id, flags, setting, None)
        finally:
            busy.release()

    def close(self) -> None:
        """Stop and delete the timer (in the process that created it; a forked child has none); from any
        thread: a call of the main thread's handler in progress finishes first."""
        with self._busy:
            if self._id is not None and os.getpid() == self._pid:
                self._settime_locked(0, self._ref, 0, 0)  # reentrant: this thread holds the lock already
                self._delete(self._id)
            self._id = None
