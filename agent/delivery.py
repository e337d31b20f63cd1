"""Report delivery: send with retries, and a disk queue used in one of two modes.

A :class:`Sender` makes attempts through a ``post(body, key, timeout_s) -> Verdict`` callable
(:class:`~greenflame.agent.http_post.HttpPost` in production) under a
:class:`~greenflame.agent.delivery_policy.RetryPolicy`, before the caller's ``time.monotonic()``
deadline; its clock, sleep and random source are injected so tests need no real waiting.

A :class:`Delivery` adds a :class:`~greenflame.agent.diskqueue.DiskQueue`:

- :data:`ON_FAILURE` (long-running services): send first; only a report that could not be sent
  is queued, and the queue is drained, oldest first, after the next successful send. A report
  lost because the queue could not be written is counted as ``<queue name>_failed``; a queued
  report the server refuses for good as ``<queue name>_rejected``.
- :data:`WRITE_AHEAD` (AWS Lambda, where the process may be frozen or killed mid-send): queue
  first, then drain the queue, so a report whose send was cut off is still on disk for the next
  call or the next process. Every report goes through the queue, so a refused one is counted
  as ``export_rejected``, like any refused export. When the queue cannot be written the report is
  sent directly.

A drain makes one attempt per queued report and stops at the first that must wait (the server is
unreachable or busy): the rest wait for the next call.
"""

from __future__ import annotations

import random
import time

from .delivery_policy import DELIVERED, REJECTED, RETRY, RetryPolicy, Verdict

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional

    from .diskqueue import DiskQueue

    Post = Callable[[bytes, str, float], Verdict]

ON_FAILURE = "on_failure"
WRITE_AHEAD = "write_ahead"
#: A :class:`Delivery` outcome besides the policy's: not sent yet, kept in the disk queue.
QUEUED = "queued"


class Sender:
    """Attempts to send encoded reports within deadlines, as ``policy`` says (see module doc)."""

    def __init__(
        self,
        post: Post,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.post = post
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        #: When an attempt was last considered (clock time), sent or not.
        self.last_attempt = 0.0
        #: No attempt starts before this clock time: the server asked for a wait.
        self.hold_until = 0.0

    def can_attempt(self, deadline: float) -> bool:
        """Whether an attempt may start now: no wait asked for, enough time before ``deadline``."""
        now = self._clock()
        self.last_attempt = now
        return now >= self.hold_until and deadline - now >= self.policy.min_attempt_s

    def attempt(self, body: bytes, key: str, deadline: float) -> Verdict:
        """One attempt, if one may start now (else a :data:`RETRY` verdict saying why not)."""
        if not self.can_attempt(deadline):
            return Verdict(RETRY, self._why_not())
        verdict = self.post(body, key, self.policy.attempt_timeout_s(deadline - self.last_attempt))
        if verdict.retry_after_s is not None:
            self.hold_until = self._clock() + self.policy.hold_s(verdict)
        return verdict

    def send(self, body: bytes, key: str, deadline: float) -> Verdict:
        """Attempts until delivered, refused, out of attempts, or the next wait would pass ``deadline``."""
        attempts = 0
        while True:
            verdict = self.attempt(body, key, deadline)
            attempts += 1
            if verdict.outcome != RETRY or attempts >= self.policy.max_attempts:
                return verdict
            now = self._clock()
            wait = max(self.policy.wait_s(attempts - 1, verdict, self._rng), self.hold_until - now)
            if now + wait + self.policy.min_attempt_s > deadline:
                return verdict
            self._sleep(wait)

    def _why_not(self) -> str:
        if self.last_attempt < self.hold_until:
            return f"the server asked to wait {self.hold_until - self.last_attempt:.1f} s more"
        return "no attempt fitted before the deadline"


class Delivery:
    """A :class:`Sender` with an optional disk queue in :data:`ON_FAILURE` or :data:`WRITE_AHEAD` mode."""

    def __init__(self, sender: Sender, queue: Optional[DiskQueue] = None, mode: str = ON_FAILURE) -> None:
        if mode not in (ON_FAILURE, WRITE_AHEAD):
            raise ValueError(f"unknown delivery mode: {mode!r}")
        if mode == WRITE_AHEAD and queue is None:
            raise ValueError("write-ahead delivery needs a disk queue")
        self.sender = sender
        self.queue = queue
        self.mode = mode

    def deliver(self, body: bytes, key: str, deadline: float) -> Verdict:
        """Deliver ``body`` with idempotency ``key`` before ``deadline``, queueing it as the mode says.

        The outcome is :data:`DELIVERED`, :data:`REJECTED`, :data:`QUEUED` (kept for a later
        send) or :data:`RETRY` (neither sent nor kept: lost unless the caller keeps it).
        """
        if self.mode == WRITE_AHEAD:
            return self._deliver_write_ahead(body, key, deadline)
        verdict = self.sender.send(body, key, deadline)
        if verdict.outcome == DELIVERED:
            self.drain(deadline)
        elif verdict.outcome == RETRY and self._keep_failed(body, key):
            return Verdict(QUEUED, verdict.detail, verdict.status, verdict.retry_after_s)
        return verdict

    def drain(self, deadline: float) -> bool:
        """Send queued reports oldest first, one attempt each, until one must wait; True when none is left."""
        if self.queue is None:
            return True
        for path in self.queue.pending():
            if not self.sender.can_attempt(deadline):
                return False
            claim = self.queue.claim(path)
            if claim is None:
                continue  # another sender took it
            verdict = self.sender.attempt(claim.body, claim.key, deadline)
            if verdict.outcome == RETRY:
                self.queue.release(claim)
                return False
            if verdict.outcome == REJECTED:
                self.queue.drops.add(self._rejected_reason())
            self.queue.remove(claim)
        return True

    def _deliver_write_ahead(self, body: bytes, key: str, deadline: float) -> Verdict:
        if not self._keep_ahead(body, key):
            verdict = self.sender.send(body, key, deadline)
            if verdict.outcome != DELIVERED:
                return verdict
        if self.drain(deadline):
            return Verdict(DELIVERED, "every queued report was sent")
        return Verdict(QUEUED, "kept in the queue for a later send")

    def _keep_ahead(self, body: bytes, key: str) -> bool:
        assert self.queue is not None
        try:
            return self.queue.put(body, key)
        except OSError:
            return False  # sent directly: the report is lost only if that fails too

    def _keep_failed(self, body: bytes, key: str) -> bool:
        if self.queue is None:
            return False
        try:
            return self.queue.put(body, key)
        except OSError:
            self.queue.drops.add(f"{self.queue.name}_failed")
            return False

    def _rejected_reason(self) -> str:
        assert self.queue is not None
        return "export_rejected" if self.mode == WRITE_AHEAD else f"{self.queue.name}_rejected"
