"""When to retry an HTTP delivery, and how long to wait: one policy for every sender.

By HTTP semantics a request is worth sending again when the server says so or when the failure
was on the way: ``408`` Request Timeout, ``425`` Too Early, ``429`` Too Many Requests, ``502``
Bad Gateway, ``503`` Service Unavailable and ``504`` Gateway Timeout, plus ``500``: an internal
error is often transient and, with an ``Idempotency-Key``, a second try is safe. Every other
status of 400 or more (``501``, ``505``, ``401``, ``413``, ...) is final, and so is a redirect:
a ``POST`` must not silently become a ``GET`` elsewhere. Network failures (refused, reset, timed
out, an answer that is not HTTP) are worth retrying.

:data:`RETRYABLE_STATUSES` and :func:`retry_after_s` are shared with the server's ticket
transport (``greenflame.server.tickets.transport``); this module is standard library only and
imports nothing at load time beyond ``math``.
"""

from __future__ import annotations

import math

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

#: Outcomes of one delivery attempt.
DELIVERED = "delivered"
RETRY = "retry"
REJECTED = "rejected"


class Verdict:
    """What one attempt came to: ``outcome`` (:data:`DELIVERED`, :data:`RETRY`, :data:`REJECTED`),
    a one-line ``detail``, the HTTP ``status`` if any and the server's ``retry_after_s`` if any."""

    __slots__ = ("detail", "outcome", "retry_after_s", "status")

    def __init__(
        self, outcome: str, detail: str, status: Optional[int] = None, retry_after_s: Optional[float] = None
    ) -> None:
        self.outcome = outcome
        self.detail = detail
        self.status = status
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return f"Verdict({self.outcome!r}, {self.detail!r})"


def classify(status: int, retry_after: Optional[str], now: float) -> Verdict:
    """The verdict on an HTTP answer: 2xx delivered, :data:`RETRYABLE_STATUSES` retry, else rejected.

    ``retry_after`` is the answer's ``Retry-After`` header (or None); ``now`` is the wall-clock time
    (``time.time()``) against which an HTTP date is read.
    """
    if 200 <= status < 300:
        return Verdict(DELIVERED, f"server answered HTTP {status}", status)
    if status in RETRYABLE_STATUSES:
        return Verdict(RETRY, f"server answered HTTP {status}", status, retry_after_s(retry_after, now))
    return Verdict(REJECTED, f"server answered HTTP {status}", status)


#: Longest piece of a server's own text kept in a verdict (and so in the agent's log line).
MAX_REASON_CHARS = 200


def unreachable(reason: object) -> Verdict:
    """The verdict on a network failure (refused, reset, timed out, not HTTP): retry."""
    return Verdict(RETRY, f"cannot reach the server: {printable(str(reason))}")


def printable(text: str) -> str:
    """``text`` safe for one log line: control characters (NUL, CR, LF, ESC...) shown escaped, cut short.

    A reason may quote what the server sent (a status line that is not HTTP), so it is not trusted.
    """
    cut = text[:MAX_REASON_CHARS]
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return shown + ("..." if len(text) > MAX_REASON_CHARS else "")


def retry_after_s(value: Optional[str], now: float) -> Optional[float]:
    """``Retry-After`` as seconds to wait (delta-seconds or an HTTP date; never negative), or None.

    ``now`` is the wall-clock time (``time.time()``) an HTTP date is measured from.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_date(text, now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _seconds_until_date(text: str, now: float) -> Optional[float]:
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


class RetryPolicy:
    """How hard one sender tries: attempts per call, backoff, the shortest attempt worth starting.

    The wait after failed attempt ``n`` (from 0) is the server's ``Retry-After`` when it gave one,
    else a full-jitter exponential backoff, uniform in ``[0, min(cap_s, base_s * 2**n)]``: a fleet
    of agents that lost the server at the same moment does not come back in step. A wait is
    never slept past the caller's deadline; the sender gives up instead. Once the server asked
    for a wait, no attempt is started before it is over (at most ``max_hold_s``), in later calls
    too. Each attempt's timeout is the time left, at most ``timeout_s``.
    """

    __slots__ = ("base_s", "cap_s", "max_attempts", "max_hold_s", "min_attempt_s", "timeout_s")

    def __init__(
        self,
        max_attempts: int = 4,
        base_s: float = 0.5,
        cap_s: float = 8.0,
        min_attempt_s: float = 0.05,
        timeout_s: float = math.inf,
        max_hold_s: float = 600.0,
    ) -> None:
        self.max_attempts = max_attempts
        self.base_s = base_s
        self.cap_s = cap_s
        self.min_attempt_s = min_attempt_s
        self.timeout_s = timeout_s
        self.max_hold_s = max_hold_s

    def backoff_s(self, attempt: int, rng: Callable[[], float]) -> float:
        """The full-jitter wait after failed attempt number ``attempt`` (from 0); ``rng()`` in [0, 1)."""
        return rng() * min(self.cap_s, self.base_s * 2**attempt)

    def wait_s(self, attempt: int, verdict: Verdict, rng: Callable[[], float]) -> float:
        """The wait before the next attempt: the server's ``Retry-After``, else the backoff."""
        if verdict.retry_after_s is not None:
            return verdict.retry_after_s
        return self.backoff_s(attempt, rng)

    def hold_s(self, verdict: Verdict) -> float:
        """How long no attempt may start after ``verdict`` (the server's wait, capped)."""
        return min(verdict.retry_after_s or 0.0, self.max_hold_s)

    def attempt_timeout_s(self, remaining_s: float) -> float:
        """The timeout of an attempt started with ``remaining_s`` left before the deadline."""
        return min(self.timeout_s, remaining_s)
