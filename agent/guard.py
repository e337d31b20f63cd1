"""The guard: the agent never raises into the program it profiles.

Every agent entry point and thread loop runs its own code inside :func:`guard` (or a
function wrapped by :func:`guarded`). An exception raised *by the agent* there is logged on
the ``greenflame.agent`` logger and swallowed; ``KeyboardInterrupt`` and ``SystemExit`` are never
swallowed, and user code is never run inside a guard, so user exceptions always propagate.

Each swallowed exception is also recorded (bounded) so that tests can fail when the agent had a
bug that the guard hid: see :func:`swallowed` and ``tests/fixtures_agent.py``.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
from typing import Any, Callable, Deque, Iterator, List, NamedTuple, Set, Tuple, TypeVar

logger = logging.getLogger("greenflame.agent")

_MAX_RECORDS = 100


class Swallowed(NamedTuple):
    """One exception the guard swallowed, and where."""

    where: str
    error: BaseException


_records: Deque[Swallowed] = collections.deque(maxlen=_MAX_RECORDS)
_logged: Set[Tuple[str, str]] = set()


def report(where: str, error: Exception) -> None:
    """Record and log an exception the agent swallowed at ``where`` (for loops that cannot use :func:`guard`)."""
    _report(where, error)


def _report(where: str, error: Exception) -> None:
    _records.append(Swallowed(where, error))
    signature = (where, type(error).__name__)
    # No lock (it could be held across a fork): a race only logs one traceback twice.
    first = signature not in _logged
    _logged.add(signature)
    try:
        # The first occurrence of each kind with its traceback; repeats only at debug level,
        # so that a failing sampler loop cannot flood the host's logs.
        level = logging.WARNING if first else logging.DEBUG
        logger.log(level, "greenflame agent error in %s (ignored): %r", where, error, exc_info=error)
    except Exception:  # pragma: no cover - a broken logging handler must not escape either
        pass


@contextlib.contextmanager
def guard(where: str) -> Iterator[None]:
    """Run the block, logging and swallowing any ``Exception`` it raises."""
    try:
        yield
    except Exception as error:
        _report(where, error)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(where: str, default: Any = None) -> Callable[[F], F]:
    """Decorate an agent function: on an exception, report it and return ``default``."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as error:
                _report(where, error)
                return default

        return wrapper  # type: ignore[return-value]

    return decorate


def swallowed() -> List[Swallowed]:
    """The exceptions swallowed since the last :func:`clear` (at most the last 100)."""
    return list(_records)


def clear() -> None:
    """Forget the recorded exceptions (and which ones were already logged)."""
    _records.clear()
    _logged.clear()
