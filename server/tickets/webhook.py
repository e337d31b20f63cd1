"""A generic JSON webhook: one signed POST per ticket event.

Headers on every request:

- ``X-Greenflame-Event``: ``finding.opened``, ``finding.updated``, ``finding.commented``,
  ``finding.resolved`` or ``finding.reopened``
- ``X-Greenflame-Delivery``: a unique id per request (deduplicate retries on it)
- ``X-Greenflame-Timestamp``: Unix seconds when the request was signed
- ``X-Greenflame-Signature-256``: ``sha256=`` + hex HMAC-SHA256 with the shared secret over
  ``<timestamp>.<raw body bytes>``

A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares it in
constant time and rejects stale timestamps; :func:`verify_signature` does exactly that.
A webhook cannot be searched, so the ticket id is the fingerprint key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any, Dict, Mapping, Optional

from . import render_markdown
from .channel import Channel
from .config import ChannelConfig
from .document import TicketContent
from .models import CLOSED, OPEN, RemoteTicket

EVENT_HEADER = "X-Greenflame-Event"
DELIVERY_HEADER = "X-Greenflame-Delivery"
TIMESTAMP_HEADER = "X-Greenflame-Timestamp"
SIGNATURE_HEADER = "X-Greenflame-Signature-256"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_S = 300


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(
    secret: bytes,
    body: bytes,
    timestamp: Optional[str],
    signature: Optional[str],
    *,
    now: Optional[float] = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when ``signature`` is the HMAC of ``body`` at ``timestamp`` and the timestamp is fresh."""
    if not timestamp or not signature:
        return False
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel(Channel):
    """Ticket events as signed JSON POSTs to one URL."""

    tracker_name = "webhook"

    @staticmethod
    def auth_headers(config: ChannelConfig) -> Dict[str, str]:
        """Nothing static: each request is signed on its own."""
        return {"Accept": "application/json"}

    def create(self, content: TicketContent) -> RemoteTicket:
        self._send("finding.opened", content.key, content=content)
        return RemoteTicket(id=content.key, url=None, state=OPEN)

    def update(self, ticket_id: str, content: TicketContent) -> RemoteTicket:
        self._send("finding.updated", ticket_id, content=content)
        return RemoteTicket(id=ticket_id, url=None, state=OPEN)

    def comment(self, ticket_id: str, text: str) -> None:
        self._send("finding.commented", ticket_id, comment=text)

    def close(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        self._send("finding.resolved", ticket_id, comment=comment)
        return RemoteTicket(id=ticket_id, url=None, state=CLOSED)

    def reopen(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        self._send("finding.reopened", ticket_id, comment=comment)
        return RemoteTicket(id=ticket_id, url=None, state=OPEN)

    def find(self, key: str) -> Optional[RemoteTicket]:
        return None

    def _send(
        self, event: str, key: str, *, content: Optional[TicketContent] = None, comment: Optional[str] = None
    ) -> None:
        body = json.dumps(payload(event, key, content, comment), sort_keys=True, default=str).encode("utf-8")
        assert self.config.token is not None
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: event,
            DELIVERY_HEADER: uuid.uuid4().hex,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.config.token.reveal().encode("utf-8"), timestamp, body),
        }
        self.transport.call("POST", self.config.target, data=body, headers=headers)


def payload(
    event: str, key: str, content: Optional[TicketContent] = None, comment: Optional[str] = None
) -> Dict[str, Any]:
    """The JSON document of one webhook event."""
    data: Dict[str, Any] = {"event": event, "fingerprint_key": key, "sent_at_unix": int(time.time())}
    if comment:
        data["comment"] = comment
    if content is not None:
        data.update(
            group=content.group,
            fingerprint=content.fingerprint,
            rule=content.rule,
            title=content.title,
            markdown=render_markdown.render(content),
            flamegraph_url=content.flamegraph_url,
            evidence_svg=content.svg,
            finding=_json_safe(content.subject.data),
        )
    return data


def _json_safe(finding: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(dict(finding), default=str))
