"""Plain data shared by the ticket modules: remote tickets, statuses and delivery errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

#: Remote ticket states as greenflame tracks them.
OPEN = "open"
CLOSED = "closed"

#: What one sync did for one finding (TicketStatus.action).
CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
CLOSED_ACTION = "closed"
REOPENED = "reopened"
RECOVERED = "recovered"
RESOLVED = "resolved"
SKIPPED = "skipped"
FAILED = "failed"
BUSY = "busy"

#: Kinds of delivery failure (DeliveryError.kind).
UNAVAILABLE = "unavailable"
AUTH = "auth"
REJECTED = "rejected"
RATE_LIMITED = "rate_limited"


def fingerprint_key(group: str, fingerprint: str) -> str:
    """The short hex key that names a finding on a tracker (hidden marker, label, store row)."""
    return hashlib.sha256(f"{group}\0{fingerprint}".encode()).hexdigest()[:32]


class DeliveryError(Exception):
    """A tracker call failed; the message is one line and never contains a credential.

    ``kind`` is one of UNAVAILABLE (network down, 5xx), AUTH (401/403), REJECTED
    (the tracker refused this request) or RATE_LIMITED; ``retry_after_s`` is the wait the
    tracker asked for, when it said.
    """

    def __init__(
        self, message: str, *, kind: str, status: Optional[int] = None, retry_after_s: Optional[float] = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def stops_channel(self) -> bool:
        """True when further calls to the same tracker in this run would fail the same way."""
        return self.kind in (UNAVAILABLE, AUTH, RATE_LIMITED)


@dataclass(frozen=True)
class RemoteTicket:
    """A ticket as the tracker reports it."""

    id: str
    url: Optional[str]
    state: str


@dataclass(frozen=True)
class TicketStatus:
    """The outcome of syncing one finding with one channel, for the UI and the CLI."""

    group: str
    channel: str
    fingerprint: str
    rule: str
    title: str
    action: str
    state: Optional[str]
    ticket_id: Optional[str] = None
    url: Optional[str] = None
    error: Optional[str] = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        """False when the tracker call failed (the error is kept and retried next time)."""
        return self.action != FAILED
