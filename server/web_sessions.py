"""Web UI sessions: when a signed-in browser's session started, and the ones signed out early.

The session cookie is signed, so the server keeps no row per session. Each session carries a
random id and the time it started; a session is current while it is younger than
``GREENFLAME_SESSION_MAX_AGE_S`` (counted from signing in, however often the cookie is sent
again) and its id is not in ``ended_sessions``. Signing out records the id there until the
session would have ended by itself: a copy of the cookie, or a response already on its way that
sets it again, then signs nobody in, in any process sharing the database.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any, Callable, Dict, Optional

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .schema import ended_sessions

_SESSION_ID = re.compile(r"[0-9a-f]{32}")
#: The session fields this module adds to what a session names.
ID_FIELD = "sid"
STARTED_FIELD = "at"


def new_session_fields(clock: Callable[[], float] = time.time) -> Dict[str, Any]:
    """A new session's id and start (whole seconds since the epoch)."""
    return {ID_FIELD: secrets.token_hex(16), STARTED_FIELD: int(clock())}


def session_id(who: Dict[str, Any]) -> Optional[str]:
    """The session's id, or None when it has none of the right shape."""
    value = who.get(ID_FIELD)
    return value if isinstance(value, str) and _SESSION_ID.fullmatch(value) else None


def session_start_s(who: Dict[str, Any]) -> Optional[int]:
    """When the session started (seconds since the epoch), or None without a start."""
    started = who.get(STARTED_FIELD)
    return None if isinstance(started, bool) or not isinstance(started, int) else started


class SessionLedger:
    """The sessions signed out before their end, in the server's database."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def is_current(self, who: Dict[str, Any], max_age_s: int) -> bool:
        """Whether the session ``who`` has started, not yet ended by age, and not been signed out."""
        identifier, started = session_id(who), session_start_s(who)
        now = self.clock()
        if identifier is None or started is None or started > now + 60 or now >= started + max_age_s:
            return False  # the 60 s let processes whose clocks differ a little share sessions
        query = select(ended_sessions.c.session_id).where(ended_sessions.c.session_id == identifier)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is None

    def end(self, who: Dict[str, Any], max_age_s: int) -> None:
        """Sign the session ``who`` out for good; forget sessions that have ended by themselves."""
        identifier, started = session_id(who), session_start_s(who)
        if identifier is None or started is None:
            return
        now_ns = int(self.clock() * 1e9)
        row = {"session_id": identifier, "ended_unix_ns": now_ns, "expires_unix_ns": (started + max_age_s) * 10**9}
        with self.engine.begin() as conn:
            conn.execute(delete(ended_sessions).where(ended_sessions.c.expires_unix_ns < now_ns))
        try:
            with self.engine.begin() as conn:
                conn.execute(ended_sessions.insert().values(**row))
        except IntegrityError:
            pass  # signed out twice (two tabs): it has ended already
