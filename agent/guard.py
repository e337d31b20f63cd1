"""The guard: the agent never raises into the program it profiles.

Every agent entry point and thread loop runs its own code inside :func:`guard` (or a
function wrapped by :func:`guarded`). An exception raised *by the agent* there is logged on
the ``greenflame.agent`` logger and swallowed; ``KeyboardInterrupt`` and ``SystemExit`` are never
swallowed, and user code is never run inside a guard, so user exceptions always propagate.

Each swallowed exception is also recorded (bounded) so that tests can fail when the agent had a
bug that the guard hid: see :func:`swallowed` and ``tests/fixtures_agent.py``.
"""

from __future__ import annotations

import sys

# No typing, logging, contextlib or functools at run time: the guard is imported on every cold
# start (see :class:`LazyLogger`). mypy treats any name ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Callable, List, NamedTuple, Optional, Set, Tuple, Type, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

    class Swallowed(NamedTuple):
        """One exception the guard swallowed, and where."""

        where: str
        error: BaseException

else:

    class Swallowed(tuple):
        """One exception the guard swallowed, and where: ``(where, error)``."""

        __slots__ = ()

        def __new__(cls, where, error):
            return tuple.__new__(cls, (where, error))

        where = property(lambda self: self[0])
        error = property(lambda self: self[1])

        def __repr__(self):
            return f"Swallowed(where={self[0]!r}, error={self[1]!r})"


LOGGER_NAME = "greenflame.agent"
_WARNING = 30
_MAX_RECORDS = 100


class LazyLogger:
    """The ``greenflame.agent`` logger, imported with :mod:`logging` only when a message can show.

    Until the program (or the agent's debug option) imports :mod:`logging`, no handler or level
    can have been configured, so the effective level is logging's default, WARNING: messages
    below it are dropped without importing the module; anything else goes to the real logger.
    """

    __slots__ = ()

    def _real(self) -> Any:
        import logging

        return logging.getLogger(LOGGER_NAME)

    def log(self, level: int, message: str, *args: Any, **kwargs: Any) -> None:
        """Log at ``level`` (an int, as :meth:`logging.Logger.log`)."""
        if level < _WARNING and "logging" not in sys.modules:
            return
        self._real().log(level, message, *args, **kwargs)

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Log at DEBUG level."""
        self.log(10, message, *args, **kwargs)

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Log at INFO level."""
        self.log(20, message, *args, **kwargs)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Log at WARNING level."""
        self.log(30, message, *args, **kwargs)

    def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR level."""
        self.log(40, message, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # handlers, setLevel, addHandler, ...
        return getattr(self._real(), name)


logger = LazyLogger()

_records: List[Swallowed] = []
_logged: Set[Tuple[str, str]] = set()


def report(where: str, error: Exception) -> None:
    """Record and log an exception the agent swallowed at ``where`` (for loops that cannot use :func:`guard`)."""
    _report(where, error)


def _report(where: str, error: Exception) -> None:
    _records.append(Swallowed(where, error))
    if len(_records) > _MAX_RECORDS:
        del _records[: len(_records) - _MAX_RECORDS]
    signature = (where, type(error).__name__)
    # No lock (it could be held across a fork): a race only logs one traceback twice.
    first = signature not in _logged
    _logged.add(signature)
    try:
        # The first occurrence of each kind with its traceback; repeats only at debug level,
        # so that a failing sampler loop cannot flood the host's logs.
        level = _WARNING if first else 10
        logger.log(level, "greenflame agent error in %s (ignored): %r", where, error, exc_info=error)
    except Exception:  # pragma: no cover - a broken logging handler must not escape either
        pass


class guard:  # a class used as a function: ``with guard("flush"):``
    """Run the block, logging and swallowing any ``Exception`` it raises."""

    __slots__ = ("_where",)

    def __init__(self, where: str) -> None:
        self._where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool:
        if isinstance(error, Exception):
            _report(self._where, error)
            return True
        return False


def guarded(where: str, default: Any = None) -> Callable[[F], F]:
    """Decorate an agent function: on an exception, report it and return ``default``."""

    def decorate(func: F) -> F:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as error:
                _report(where, error)
                return default

        copy_identity(func, wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def copy_identity(source: Any, wrapper: Any) -> None:
    """What :func:`functools.wraps` copies, without importing :mod:`functools` on a cold start."""
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, name, getattr(source, name))
        except AttributeError:
            pass
    wrapper.__dict__.update(getattr(source, "__dict__", {}))
    wrapper.__wrapped__ = source


def swallowed() -> List[Swallowed]:
    """The exceptions swallowed since the last :func:`clear` (at most the last 100)."""
    return list(_records)


def clear() -> None:
    """Forget the recorded exceptions (and which ones were already logged)."""
    _records.clear()
    _logged.clear()
