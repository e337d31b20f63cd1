"""greenflame agent: runs inside the profiled process. Standard library only.

Start it with one line, ``greenflame.agent.start()``, configured by ``GREENFLAME_*`` variables
(see :mod:`greenflame.agent.config`) or keyword overrides::

    import greenflame.agent as agent
    agent.start(group="checkout", server="https://greenflame.example.com")
    with agent.labels(endpoint="/pay"):
        ...

Importing this package is cheap: the profiler's modules load on the first call.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = [
    "current",
    "flush",
    "labels",
    "pause",
    "profile_call",
    "record_invocation",
    "resume",
    "set_metadata",
    "start",
    "stop",
]

# Not ``typing.TYPE_CHECKING``: importing typing costs milliseconds at every cold start. mypy
# treats any name ``TYPE_CHECKING`` as true, so the block below is only read by type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

    from .profiler import Profiler
    from .profiler import labels as _labels
    from .profiler import profile_call as _profile_call


def start(**overrides: Any) -> Optional[Profiler]:
    """Start profiling (see :func:`greenflame.agent.profiler.start`); None when disabled."""
    from .profiler import start as _start

    return _start(**overrides)


def stop(flush: bool = True) -> None:
    """Stop profiling, exporting the last report first when ``flush``."""
    from .profiler import stop as _stop

    _stop(flush)


def flush() -> bool:
    """Drain and export now, on this thread; True when delivered."""
    from .profiler import flush as _flush

    return _flush()


def pause() -> bool:
    """Stop sampling, keeping what was collected; True if the profiler was running."""
    from .profiler import pause as _pause

    return _pause()


def resume() -> bool:
    """Sample again after :func:`pause`; True if the profiler was paused."""
    from .profiler import resume as _resume

    return _resume()


def profile_call() -> _profile_call:
    """Context manager around one call; the ``pyinstrument`` engine profiles a share of them."""
    from .profiler import profile_call as _profile_call_cls

    return _profile_call_cls()


def labels(**labels: Any) -> _labels:
    """Context manager: ``labels`` go on the samples taken inside, following the context (thread or asyncio task)."""
    from .profiler import labels as _labels_cls

    return _labels_cls(**labels)


def set_metadata(key: str, value: Any) -> None:
    """Merge ``key: value`` (JSON data) into every later report's metadata."""
    from .profiler import set_metadata as _set_metadata

    _set_metadata(key, value)


def record_invocation(duration_ms: float, cold_start: bool) -> None:
    """Count one invocation of ``duration_ms`` milliseconds in the current report."""
    from .profiler import record_invocation as _record_invocation

    _record_invocation(duration_ms, cold_start)


def current() -> Optional[Profiler]:
    """The running profiler, or None."""
    from .profiler import current as _current

    return _current()
