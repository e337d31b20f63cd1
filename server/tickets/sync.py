"""One ticket per finding: create, update on material change, close when gone, reopen on return.

:func:`sync_subjects` is what the server calls after each analysis of a group. It never
raises for a tracker problem (down, rate limited, bad credentials, bad configuration): the
failure is recorded on the finding's row, returned as a ``failed`` status, and retried on
the next call.

Material change: a ticket is updated when any of cost per month, CO2e per month, share or
"times expected" moved by at least 10% of the larger value *and* by at least an absolute
floor ($1/month, 0.05 kg CO2e/month, 0.5 percentage points of share, 0.5x), or appeared or
disappeared.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import requests

from .channel import Channel, open_channel
from .config import ChannelConfig, ChannelConfigError
from .document import TicketContent, build_content
from .models import (
    BUSY,
    CLOSED,
    CLOSED_ACTION,
    CREATED,
    FAILED,
    OPEN,
    RECOVERED,
    REJECTED,
    REOPENED,
    RESOLVED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    DeliveryError,
    RemoteTicket,
    TicketStatus,
    fingerprint_key,
)
from .store import DEFAULT_LEASE_S, TicketLink, TicketStore
from .subject import TicketSubject

log = logging.getLogger(__name__)

MATERIAL_RELATIVE = 0.10
MATERIAL_FLOORS: Dict[str, float] = {
    "cost_usd_per_month": 1.0,
    "co2e_kg_per_month": 0.05,
    "share": 0.005,
    "times_expected": 0.5,
}
CLOSE_COMMENT = (
    "greenflame no longer sees this pattern in {group}, so this ticket is closed. "
    "It is reopened if the pattern comes back."
)
REOPEN_COMMENT = "greenflame sees this pattern again in {group}; the description has the current numbers."


def material_change(old: Mapping[str, Optional[float]], new: Mapping[str, Optional[float]]) -> bool:
    """True when the posted numbers ``old`` and the current ``new`` differ enough to update."""
    for name, floor in MATERIAL_FLOORS.items():
        before, after = old.get(name), new.get(name)
        if (before is None) != (after is None):
            return True
        if before is None or after is None:
            continue
        diff = abs(after - before)
        if diff >= floor and diff >= MATERIAL_RELATIVE * max(abs(before), abs(after)):
            return True
    return False


def worth_a_ticket(subject: TicketSubject, min_usd_per_month: float) -> bool:
    """True when the subject clears the channel's cost threshold (unknown cost clears only 0)."""
    if min_usd_per_month <= 0:
        return True
    cost = subject.cost_usd_per_month
    return cost is not None and cost >= min_usd_per_month


def sync_subjects(
    group: str,
    subjects: Sequence[TicketSubject],
    channel_config: ChannelConfig,
    store: TicketStore,
    *,
    svgs: Optional[Mapping[str, str]] = None,
    session: Optional[requests.Session] = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    lease_s: float = DEFAULT_LEASE_S,
) -> List[TicketStatus]:
    """Bring the tickets of ``group`` on one channel in line with ``subjects``; never raises for trackers.

    ``subjects`` are the current findings and anomalies (each with a ``fingerprint``); ``svgs``
    maps a fingerprint to its evidence SVG. Returns one status per current subject and per
    ticket closed or resolved.
    """
    run = _Run(group, channel_config, store, svgs or {}, lease_s)
    try:
        run.channel = open_channel(channel_config, session=session, sleep=sleep, clock=clock)
    except ChannelConfigError as error:
        run.stopped = f"not configured: {error}"
    current = _by_key(group, subjects)
    statuses = [run.present(key, subject) for key, subject in current.items()]
    for link in store.links(group, channel_config.channel_key):
        if link.fingerprint_key not in current and (link.state == OPEN or link.last_error):
            statuses.append(run.absent(link))
    return statuses


def _by_key(group: str, subjects: Sequence[TicketSubject]) -> Dict[str, TicketSubject]:
    by_key: Dict[str, TicketSubject] = {}
    for subject in subjects:
        if subject.fingerprint:
            by_key.setdefault(fingerprint_key(group, subject.fingerprint), subject)
        else:
            log.warning("tickets: a finding without a fingerprint in group %r was skipped", group)
    return by_key


class _Run:
    """One sync of one group with one channel; stops calling a tracker once it is down."""

    def __init__(
        self, group: str, config: ChannelConfig, store: TicketStore, svgs: Mapping[str, str], lease_s: float
    ) -> None:
        self.group = group
        self.config = config
        self.store = store
        self.svgs = svgs
        self.lease_s = lease_s
        self.channel: Optional[Channel] = None
        self.stopped: Optional[str] = None

    @property
    def channel_key(self) -> str:
        return self.config.channel_key

    def present(self, key: str, subject: TicketSubject) -> TicketStatus:
        """Create, recover, reopen or update the ticket of a finding the analysis reports."""
        content = build_content(
            self.group,
            subject,
            labels=self.config.labels,
            link_base=self.config.link_base,
            link_template=self.config.link_template,
            svg=self.svgs.get(subject.fingerprint),
        )
        existing = self.store.get(self.group, self.channel_key, key)
        if (existing is None or existing.ticket_id is None) and not worth_a_ticket(
            subject, self.config.min_usd_per_month
        ):
            return self._status(content, SKIPPED, existing)
        if existing is not None and _waiting(existing):
            return self._status(content, FAILED, existing, existing.last_error)
        link = self.store.acquire(
            self.group, self.channel_key, key, content.fingerprint, content.rule, content.title, self.lease_s
        )
        if link is None:
            return self._status(content, BUSY, existing)
        return self._deliver(link, content, lambda channel: self._post(channel, link, content))

    def absent(self, link: TicketLink) -> TicketStatus:
        """Close the ticket of a finding the analysis no longer reports."""
        leased = self.store.acquire(
            link.group, link.channel, link.fingerprint_key, link.fingerprint, link.rule, link.title, self.lease_s
        )
        if leased is None:
            return _link_status(link, BUSY)
        if leased.ticket_id is None or leased.state != OPEN:
            self.store.release(leased, last_error=None, attempts=0, next_attempt_unix_ns=None, last_action=RESOLVED)
            return _link_status(leased, RESOLVED)
        if _waiting(leased):
            self.store.release(leased)
            return _link_status(leased, FAILED, leased.last_error)
        comment = CLOSE_COMMENT.format(group=self.group)
        ticket_id = leased.ticket_id
        return self._deliver(leased, None, lambda channel: (CLOSED_ACTION, channel.close(ticket_id, comment)))

    def _post(self, channel: Channel, link: TicketLink, content: TicketContent) -> Any:
        if link.ticket_id is None:
            remote = channel.find(content.key)
            if remote is None:
                return CREATED, channel.create(content)
            if remote.state == CLOSED:
                channel.reopen(remote.id, REOPEN_COMMENT.format(group=self.group))
            return RECOVERED, channel.update(remote.id, content)
        if link.state == CLOSED:
            channel.reopen(link.ticket_id, REOPEN_COMMENT.format(group=self.group))
            return REOPENED, channel.update(link.ticket_id, content)
        if material_change(link.numbers, content.numbers):
            return UPDATED, channel.update(link.ticket_id, content)
        return UNCHANGED, None

    def _deliver(
        self, link: TicketLink, content: Optional[TicketContent], call: Callable[[Channel], Any]
    ) -> TicketStatus:
        """Run ``call`` on the channel, record the outcome on the leased row, release it."""
        try:
            if self.channel is None or self.stopped:
                raise DeliveryError(f"not attempted: {self.stopped}", kind=REJECTED)
            action, remote = call(self.channel)
        except DeliveryError as error:
            return self._failed(link, error)
        except ValueError:  # a 2xx whose body is not the JSON the tracker documents
            return self._failed(link, DeliveryError(f"{self.channel!r} returned an unreadable response", kind=REJECTED))
        except Exception:  # a bug must not block the analysis that called us: log it, show it, retry later
            log.exception("tickets: unexpected error syncing %s on %s", link.fingerprint_key, self.channel_key)
            return self._failed(link, DeliveryError("internal error; see the server log", kind=REJECTED))
        return self._succeeded(link, content, action, remote)

    def _succeeded(
        self, link: TicketLink, content: Optional[TicketContent], action: str, remote: Optional[RemoteTicket]
    ) -> TicketStatus:
        changes: Dict[str, Any] = {"last_error": None, "attempts": 0, "next_attempt_unix_ns": None}
        if action != UNCHANGED:
            changes["last_action"] = action
        if remote is not None:
            changes.update(ticket_id=remote.id, url=remote.url, state=remote.state)
        if content is not None and action != UNCHANGED:
            changes["numbers"] = content.numbers
        self.store.release(link, **changes)
        log.info("tickets: %s %s on %s (%s)", action, link.fingerprint_key, self.channel_key, changes.get("url"))
        final = self.store.get(link.group, link.channel, link.fingerprint_key) or link
        return _link_status(final, action)

    def _failed(self, link: TicketLink, error: DeliveryError) -> TicketStatus:
        if error.stops_channel and not self.stopped:
            self.stopped = str(error)
        wait_ns = int(error.retry_after_s * 1e9) if error.retry_after_s else None
        message = str(error)
        self.store.release(
            link,
            last_error=message,
            attempts=link.attempts + 1,
            next_attempt_unix_ns=time.time_ns() + wait_ns if wait_ns else None,
        )
        log.warning("tickets: %s on %s failed: %s", link.fingerprint_key, self.channel_key, message)
        final = self.store.get(link.group, link.channel, link.fingerprint_key) or link
        return _link_status(final, FAILED, message)

    def _status(
        self, content: TicketContent, action: str, link: Optional[TicketLink], error: Optional[str] = None
    ) -> TicketStatus:
        if link is not None:
            return _link_status(link, action, error)
        return TicketStatus(
            group=self.group,
            channel=self.channel_key,
            fingerprint=content.fingerprint,
            rule=content.rule,
            title=content.title,
            action=action,
            state=None,
            error=error,
        )


def _waiting(link: TicketLink) -> bool:
    """True while the tracker's rate limit asked us to wait before trying this row again."""
    return link.next_attempt_unix_ns is not None and link.next_attempt_unix_ns > time.time_ns()


def _link_status(link: TicketLink, action: str, error: Optional[str] = None) -> TicketStatus:
    return TicketStatus(
        group=link.group,
        channel=link.channel,
        fingerprint=link.fingerprint,
        rule=link.rule,
        title=link.title,
        action=action,
        state=link.state,
        ticket_id=link.ticket_id,
        url=link.url,
        error=error if error is not None else (link.last_error if action == FAILED else None),
        attempts=link.attempts,
    )
