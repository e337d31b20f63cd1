"""No garbage collection while the agent reads another thread's frames (CPython 3.11 and later).

Since CPython 3.11 a frame object is made on demand: ``sys._current_frames()`` and ``frame.f_back``
create one for a thread's frame that has none yet. On 3.11 the collector can run inside that
allocation, and a collection runs finalizers that may release the GIL (a socket or file closed
in ``__del__``). The thread that owns the frame may then run on and return from it; when the
reader resumes, the new frame object is tied to a frame that no longer exists, and reading it
(``f_code``, ``f_back``) reads freed memory: the process crashes. Seen as a segmentation fault
in the sampler thread of a Lambda function making HTTP calls on a loaded machine (see
docs/agent.md); the same class of crash is reported against other in-process Python samplers on 3.11.

The agent's frame reads of other threads happen between :func:`pause` and :func:`resume`:
without a collection nothing in them can release the GIL in the middle of making a frame
object. Reading one's own frames needs no guard (they cannot return while being read).
The program's garbage is collected at its next allocation after :func:`resume`. A process forked
by another thread during a pause starts with the collector running.

On 3.9 and 3.10 frame objects always exist and reading them allocates nothing: both calls do nothing.
"""

from __future__ import annotations

import gc
import os
import sys

__all__ = ["pause", "resume"]

if sys.version_info >= (3, 11):
    _enabled = gc.isenabled
    _disable = gc.disable
    _enable = gc.enable
    #: Whether the collector is stopped by a pause: a process forked meanwhile (by another thread)
    #: must not inherit it stopped, with nobody left to restart it.
    _PAUSED = [False]

    def pause() -> bool:
        """Stop the collector if it runs; whether it did (pass it to :func:`resume`)."""
        if _enabled():
            _disable()
            _PAUSED[0] = True
            return True
        return False

    def resume(paused: bool) -> None:
        """Restart the collector if :func:`pause` stopped it."""
        if paused:
            _PAUSED[0] = False
            _enable()

    def _after_fork_in_child() -> None:
        if _PAUSED[0]:
            _PAUSED[0] = False
            _enable()

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)

else:  # pragma: no cover - exercised on Python 3.9 and 3.10

    def pause() -> bool:
        """Nothing to do: frame objects exist already."""
        return False

    def resume(paused: bool) -> None:
        """Nothing to do."""
