"""The request's bearer token, and per-client rate limits (who may do what is :mod:`.access`).

Wrong tokens are counted per client address: past ``GREENFLAME_AUTH_FAILURE_LIMIT`` in a
minute, the client gets 429 (before any check) until the oldest failure is a minute old, so
guessing keys is slow. Anomaly feedback is limited the same way (``GREENFLAME_FEEDBACK_LIMIT``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from typing import Callable, Deque, Optional

from flask import current_app, request

from .context import get_settings
from .errors import ApiError

AUTH_FAILURES = "auth_failures"
FEEDBACK = "feedback"
WINDOW_S = 60.0
#: Clients remembered per limiter; the least recently seen are forgotten first.
MAX_CLIENTS = 10_000


def bearer_token() -> Optional[str]:
    """The token of an ``Authorization: Bearer`` header, or None."""
    auth = request.authorization
    if auth is None or auth.type != "bearer" or not auth.token:
        return None
    return auth.token


class RateLimiter:
    """At most ``limit`` events per client in any ``window_s`` seconds (a sliding log); thread-safe."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._events: OrderedDict[str, Deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after_s(self, client: str) -> Optional[float]:
        """Seconds until ``client`` may act again, or None when it may now."""
        with self._lock:
            events = self._recent(client)
            if len(events) < self.limit:
                return None
            return max(0.0, events[0] + self.window_s - self._clock())

    def record(self, client: str) -> None:
        """Count one event of ``client`` now."""
        with self._lock:
            self._recent(client).append(self._clock())
            self._events.move_to_end(client)
            while len(self._events) > MAX_CLIENTS:
                self._events.popitem(last=False)

    def _recent(self, client: str) -> Deque[float]:
        events = self._events.setdefault(client, deque())
        cutoff = self._clock() - self.window_s
        while events and events[0] <= cutoff:
            events.popleft()
        return events


def _limiter(name: str) -> RateLimiter:
    limiters = current_app.extensions.setdefault("greenflame.rate_limits", {})
    if name not in limiters:
        settings = get_settings()
        limit = settings.auth_failure_limit if name == AUTH_FAILURES else settings.feedback_limit
        limiters.setdefault(name, RateLimiter(limit))
    limiter: RateLimiter = limiters[name]
    return limiter


def _client() -> str:
    return request.remote_addr or "unknown"


def check_rate(name: str) -> None:
    """A 429 ApiError (with Retry-After) when this client is over limiter ``name``'s limit."""
    wait_s = _limiter(name).retry_after_s(_client())
    if wait_s is not None:
        seconds = max(1, math.ceil(wait_s))
        message = f"too many {name.replace('_', ' ')} from this client; retry in {seconds} s"
        raise ApiError(429, "too_many_requests", message, {"Retry-After": str(seconds)})


def record(name: str) -> None:
    """Count one event of this client on limiter ``name``."""
    _limiter(name).record(_client())


def take(name: str) -> None:
    """:func:`check_rate`, then :func:`record`: for actions limited whether they succeed or not."""
    check_rate(name)
    record(name)
