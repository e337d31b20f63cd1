"""The mapping from (group, channel, fingerprint) to a tracker ticket, in the server's database.

SQLAlchemy Core on the server's database URL (SQLite by default, PostgreSQL in deployments).
Several server processes may sync at once: rows are created with insert-or-ignore under a
unique constraint, and a process works on a row only after taking its lease with one
conditional UPDATE, so two processes never post the same finding twice. No state is kept
in memory between calls.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..db import make_engine, upgrade_database
from ..schema import ticket_links
from .credentials import redact

DEFAULT_LEASE_S = 300.0


@dataclass(frozen=True)
class TicketLink:
    """One row: a finding's ticket on one channel, and how its delivery went."""

    id: int
    group: str
    channel: str
    fingerprint_key: str
    fingerprint: str
    rule: str
    title: str
    ticket_id: Optional[str]
    url: Optional[str]
    state: Optional[str]
    numbers: Dict[str, Optional[float]]
    last_action: Optional[str]
    last_error: Optional[str]
    attempts: int
    next_attempt_unix_ns: Optional[int]
    lease_token: Optional[str]
    created_unix_ns: int
    updated_unix_ns: int


class TicketStore:
    """Ticket links in SQL; safe to share between threads and processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        upgrade_database(engine)

    @classmethod
    def open(cls, database_url: str) -> TicketStore:
        """A store on ``database_url`` (an SQLAlchemy URL), upgrading the database to the current schema."""
        return cls(make_engine(database_url))

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"TicketStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def get(self, group: str, channel: str, key: str) -> Optional[TicketLink]:
        """The link for one finding on one channel, or None."""
        query = select(ticket_links).where(_identity(group, channel, key))
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return _link(row) if row is not None else None

    def links(self, group: Optional[str] = None, channel: Optional[str] = None) -> List[TicketLink]:
        """Links, optionally for one group and channel, oldest first."""
        query = select(ticket_links).order_by(ticket_links.c.group_name, ticket_links.c.id)
        if group is not None:
            query = query.where(ticket_links.c.group_name == group)
        if channel is not None:
            query = query.where(ticket_links.c.channel == channel)
        with self.engine.connect() as connection:
            return [_link(row) for row in connection.execute(query).mappings()]

    def acquire(
        self,
        group: str,
        channel: str,
        key: str,
        fingerprint: str,
        rule: str,
        title: str,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Optional[TicketLink]:
        """The link with its lease taken by this caller (created if missing); None if another holds it."""
        now = time.time_ns()
        self._insert_missing(group, channel, key, fingerprint, rule, title, now)
        token = uuid.uuid4().hex
        free = or_(ticket_links.c.lease_token.is_(None), ticket_links.c.lease_until_unix_ns < now)
        statement = (
            update(ticket_links)
            .where(and_(_identity(group, channel, key), free))
            .values(lease_token=token, lease_until_unix_ns=now + int(lease_s * 1e9), rule=rule, title=title[:300])
        )
        with self.engine.begin() as connection:
            if connection.execute(statement).rowcount != 1:
                return None
        link = self.get(group, channel, key)
        return link if link is not None and link.lease_token == token else None

    def release(self, link: TicketLink, **changes: Any) -> bool:
        """Write ``changes`` (column names; ``numbers`` as a dict) and give the lease back."""
        if "numbers" in changes:
            changes["numbers_json"] = json.dumps(changes.pop("numbers"), sort_keys=True)
        if changes.get("last_error"):  # the last line of defence: no credential form is ever stored
            changes["last_error"] = redact(changes["last_error"])
        values = {**changes, "lease_token": None, "lease_until_unix_ns": None, "updated_unix_ns": time.time_ns()}
        statement = (
            update(ticket_links)
            .where(and_(ticket_links.c.id == link.id, ticket_links.c.lease_token == link.lease_token))
            .values(**values)
        )
        with self.engine.begin() as connection:
            return bool(connection.execute(statement).rowcount == 1)

    def _insert_missing(
        self, group: str, channel: str, key: str, fingerprint: str, rule: str, title: str, now: int
    ) -> None:
        if self.get(group, channel, key) is not None:
            return
        row = {
            "group_name": group,
            "channel": channel,
            "fingerprint_key": key,
            "fingerprint": fingerprint,
            "rule": rule,
            "title": title[:300],
            "attempts": 0,
            "created_unix_ns": now,
            "updated_unix_ns": now,
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(ticket_links).values(**row))
        except IntegrityError:
            pass  # another process inserted it first: the unique constraint is the arbiter


def _identity(group: str, channel: str, key: str) -> Any:
    return and_(
        ticket_links.c.group_name == group, ticket_links.c.channel == channel, ticket_links.c.fingerprint_key == key
    )


def _link(row: Any) -> TicketLink:
    numbers = json.loads(row["numbers_json"]) if row["numbers_json"] else {}
    return TicketLink(
        id=row["id"],
        group=row["group_name"],
        channel=row["channel"],
        fingerprint_key=row["fingerprint_key"],
        fingerprint=row["fingerprint"],
        rule=row["rule"],
        title=row["title"],
        ticket_id=row["ticket_id"],
        url=row["url"],
        state=row["state"],
        numbers=numbers if isinstance(numbers, dict) else {},
        last_action=row["last_action"],
        last_error=row["last_error"],
        attempts=row["attempts"] or 0,
        next_attempt_unix_ns=row["next_attempt_unix_ns"],
        lease_token=row["lease_token"],
        created_unix_ns=row["created_unix_ns"],
        updated_unix_ns=row["updated_unix_ns"],
    )
