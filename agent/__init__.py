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

from typing import TYPE_CHECKING, Any, Optional

__version__ = "0.1.0"
__all__ = ["current", "flush", "labels", "record_invocation", "set_metadata", "start", "stop"]

if TYPE_CHECKING:
    from .profiler import Profiler
    from .profiler import labels as _labels


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


def labels(**labels: Any) -> _labels:
    """Context manager: ``labels`` go on the current thread's samples while inside."""
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
