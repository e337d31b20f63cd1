"""HTTP to trackers: retries with exponential backoff and jitter, rate-limit headers, a deadline.

Every failure becomes a :class:`~.models.DeliveryError` with a one-line, redacted message;
nothing else escapes. Rate limits are recognised the way the trackers document them:
``429`` (all), ``403`` with ``x-ratelimit-remaining: 0`` or a rate-limit message (GitHub),
and the waits come from ``Retry-After`` (seconds or an HTTP date), ``x-ratelimit-reset``
(GitHub, epoch seconds), ``RateLimit-Reset`` (GitLab, epoch seconds) or
``X-RateLimit-Reset`` (Jira Cloud, ISO 8601).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple
from urllib.parse import urljoin, urlsplit

import requests

# The agent's delivery policy (standard library only) decides which statuses are transient and
# reads Retry-After, for trackers as for the ingest API: HTTP semantics are the same. What
# differs stays here: trackers' own rate-limit signals (GitHub's 403, the reset headers), the
# AUTH kind for 401/403, and the backoff (half to full jitter over longer waits: one server
# pacing itself against a rate-limited API, not a fleet of agents that must not return in step).
from greenflame.agent.delivery_policy import RETRYABLE_STATUSES, retry_after_s

from .credentials import Secret, header_secrets, redact
from .models import AUTH, RATE_LIMITED, REJECTED, UNAVAILABLE, DeliveryError

RESET_HEADERS = ("x-ratelimit-reset", "ratelimit-reset")
MAX_MESSAGE_CHARS = 300
USER_AGENT = "greenflame-tickets/1"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one call: attempts, backoff and the overall deadline, in seconds."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    deadline_s: float = 60.0
    timeout_s: float = 10.0

    def backoff_s(self, attempt: int, rng: Callable[[], float]) -> float:
        """Exponential backoff with jitter for the wait after failed attempt number ``attempt``."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return ceiling / 2 + rng() * ceiling / 2


class _Retry(Exception):
    """A failed attempt worth retrying, with the wait the tracker asked for (if any)."""

    def __init__(self, error: DeliveryError, wait_s: Optional[float]) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_s = wait_s


class Transport:
    """Sends requests to one tracker; retries what is worth retrying and raises DeliveryError."""

    def __init__(
        self,
        tracker: str,
        base_url: str,
        headers: Mapping[str, str],
        secrets: Sequence[Optional[Secret]] = (),
        policy: Optional[RetryPolicy] = None,
        session: Optional[requests.Session] = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.tracker = tracker
        self.base_url = base_url.rstrip("/") + "/"
        self._headers = {"User-Agent": USER_AGENT, **headers}
        self._secrets = [*secrets, *header_secrets(headers)]
        self.policy = policy or RetryPolicy()
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    def __repr__(self) -> str:
        return f"Transport({self.tracker!r}, {redact(self.base_url, self._secrets)!r})"

    def url(self, path: str) -> str:
        """An absolute URL for ``path`` under the API base URL."""
        return urljoin(self.base_url, path.lstrip("/"))

    def same_origin(self, url: str) -> bool:
        """True when ``url`` is on the API's host, so credentials may be sent to it."""
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        return (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc)

    def call(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """Send one request (``params``, ``json``, ``data``, ``files``, ``headers`` as in requests).

        Returns the first response below 400; raises DeliveryError when the tracker refuses,
        stays unavailable, or asks for a wait that does not fit in the deadline.
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        if not self.same_origin(url):
            raise DeliveryError(f"{self.tracker}: refusing to send credentials to another host", kind=REJECTED)
        headers = {**self._headers, **kwargs.pop("headers", {})}
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send_once(method, url, headers, kwargs)
            except _Retry as retry:
                self._give_up_or_wait(retry.error, retry.wait_s, attempt, started)

    def _send_once(self, method: str, url: str, headers: Dict[str, str], kwargs: Dict[str, Any]) -> requests.Response:
        """One request: the response below 400, _Retry when worth retrying, else DeliveryError."""
        try:
            response = self._session.request(method, url, headers=headers, timeout=self.policy.timeout_s, **kwargs)
        except requests.RequestException as error:
            host = redact(urlsplit(url).netloc, self._secrets)
            raise _Retry(
                DeliveryError(f"{self.tracker} unreachable at {host} ({type(error).__name__})", kind=UNAVAILABLE), None
            ) from None
        if response.status_code < 400:
            return response
        raise _Retry(*self._classify(response))

    def _classify(self, response: requests.Response) -> Tuple[DeliveryError, Optional[float]]:
        status = response.status_code
        detail = self._message(response)
        if is_rate_limited(response):
            wait_s = rate_limit_wait_s(response.headers, time.time())
            return DeliveryError(
                f"{self.tracker} rate limit reached ({status}{detail})",
                kind=RATE_LIMITED,
                status=status,
                retry_after_s=wait_s,
            ), wait_s
        if status in RETRYABLE_STATUSES:
            wait_s = retry_after_s(response.headers.get("Retry-After"), time.time())
            return DeliveryError(
                f"{self.tracker} unavailable ({status}{detail})", kind=UNAVAILABLE, status=status, retry_after_s=wait_s
            ), wait_s
        if status in (401, 403):
            message = f"{self.tracker} rejected the credentials ({status}{detail})"
            raise DeliveryError(message, kind=AUTH, status=status)
        raise DeliveryError(f"{self.tracker} rejected the request ({status}{detail})", kind=REJECTED, status=status)

    def _give_up_or_wait(self, failure: DeliveryError, wait_s: Optional[float], attempt: int, started: float) -> None:
        if attempt >= self.policy.max_attempts:
            raise failure
        delay = self.policy.backoff_s(attempt, self._rng)
        if wait_s is not None:
            delay = max(wait_s, 0.0) + self._rng() * min(1.0, self.policy.base_delay_s)
        if self._clock() - started + delay > self.policy.deadline_s:
            raise failure
        self._sleep(delay)

    def _message(self, response: requests.Response) -> str:
        text = redact(error_text(response), self._secrets)
        text = " ".join(text.split())[:MAX_MESSAGE_CHARS]
        return f": {text}" if text else ""


def error_text(response: requests.Response) -> str:
    """The tracker's own error message from a JSON error body (GitHub, GitLab, Jira shapes)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if not isinstance(body, dict):
        return response.reason or ""
    parts = []
    for key in ("message", "error", "error_description"):
        if isinstance(body.get(key), (str, dict)):
            parts.append(str(body[key]))
    parts.extend(str(item) for item in body.get("errorMessages") or [])
    if isinstance(body.get("errors"), (dict, list)):
        parts.append(str(body["errors"]))
    return "; ".join(parts) or (response.reason or "")


def is_rate_limited(response: requests.Response) -> bool:
    """True for 429, and for GitHub's 403 with no quota left or a rate-limit message."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    if response.headers.get("x-ratelimit-remaining") == "0" or "Retry-After" in response.headers:
        return True
    return "rate limit" in error_text(response).lower()


def rate_limit_wait_s(headers: Mapping[str, str], now: float) -> Optional[float]:
    """Seconds to wait from Retry-After, else from a rate-limit reset header; None if absent."""
    wait = retry_after_s(headers.get("Retry-After"), now)
    if wait is not None:
        return wait
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in RESET_HEADERS:
        if name in lowered:
            reset = reset_time(lowered[name], now)
            if reset is not None:
                return max(0.0, reset - now)
    return None


def reset_time(value: str, now: float) -> Optional[float]:
    """A reset header as an epoch time: epoch seconds, a delta in seconds, or ISO 8601."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return _iso_time(text)
    return number if number > 1e9 else now + number


def _iso_time(text: str) -> Optional[float]:
    candidate = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
