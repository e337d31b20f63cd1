"""API tokens and one-time sign-in links, kept in the ``api_tokens`` table.

A token has a scope (``read``, ``ingest`` or ``admin``) and a group (None: every group). Its
secret is shown once, when it is made; the database keeps only its SHA-256 (the secrets are
256 random bits, so a plain hash suffices, as for ingest keys). Revoking a token stamps it, so
every server process sharing the database refuses it from the next request on.

A sign-in link (kind ``link``) is a token that signs one browser in, once, before it expires;
it is never accepted as a bearer token. The browser's session then refers to the link's row,
so revoking the link signs that browser out too.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Engine

from greenflame.analyzer.errors import UserError

from .schema import api_tokens
from .storage import hash_key

READ = "read"
INGEST = "ingest"
ADMIN = "admin"
SCOPES = (READ, INGEST, ADMIN)
TOKEN = "token"
LINK = "link"
KINDS = (TOKEN, LINK)
TOKEN_PREFIX = "gft_"
LINK_PREFIX = "gfl_"
#: A sign-in link not used within this long stops working (unless the creator says otherwise).
DEFAULT_LINK_TTL_S = 3600
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class TokenRecord:
    """One token or link as stored (never its secret)."""

    id: str
    name: str
    kind: str
    scope: str
    group: Optional[str]
    created_unix_ns: int
    expires_unix_ns: Optional[int]
    used_unix_ns: Optional[int]
    revoked_unix_ns: Optional[int]

    def to_dict(self) -> Dict[str, Any]:
        """The API form (the secret is never part of it)."""
        return asdict(self)


@dataclass(frozen=True)
class NewToken:
    """A token just made: its record and its secret (shown this once)."""

    record: TokenRecord
    secret: str


def check_request(scope: Any, group: Any, name: Any, kind: Any = TOKEN, expires_in_s: Any = None) -> None:
    """Raise UserError (one line) when these are not a valid token to make."""
    if scope not in SCOPES:
        raise UserError(f"scope must be one of {', '.join(SCOPES)}")
    if kind not in KINDS:
        raise UserError(f"kind must be one of {', '.join(KINDS)}")
    if kind == LINK and scope == INGEST:
        raise UserError("a sign-in link gives read or admin scope (an ingest token cannot sign in)")
    if group is not None and not isinstance(group, str):
        raise UserError("group must be a group name, or null for every group")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise UserError(f"name must be 1 to {MAX_NAME_CHARS} printable characters")
    if expires_in_s is not None and (
        isinstance(expires_in_s, bool) or not isinstance(expires_in_s, int) or not 1 <= expires_in_s <= 10 * 365 * 86400
    ):
        raise UserError("expires_in_s must be a whole number of seconds from 1 to 315360000")


class TokenStore:
    """Make, find, list and revoke tokens and sign-in links in the server's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        scope: str,
        group: Optional[str] = None,
        name: str = "token",
        kind: str = TOKEN,
        expires_in_s: Optional[int] = None,
    ) -> NewToken:
        """Make a token (or sign-in link) and return it with its secret."""
        check_request(scope, group, name, kind, expires_in_s)
        if kind == LINK and expires_in_s is None:
            expires_in_s = DEFAULT_LINK_TTL_S
        now = time.time_ns()
        secret = (LINK_PREFIX if kind == LINK else TOKEN_PREFIX) + secrets.token_urlsafe(32)
        record = TokenRecord(
            id=uuid.uuid4().hex,
            name=name,
            kind=kind,
            scope=scope,
            group=group,
            created_unix_ns=now,
            expires_unix_ns=None if expires_in_s is None else now + expires_in_s * 10**9,
            used_unix_ns=None,
            revoked_unix_ns=None,
        )
        row = {**_row(record), "token_sha256": hash_key(secret)}
        with self.engine.begin() as conn:
            conn.execute(api_tokens.insert().values(**row))
        return NewToken(record, secret)

    def find_bearer(self, secret: str) -> Optional[TokenRecord]:
        """The live token (not a link) whose secret is ``secret``, or None."""
        record = self._by_hash(hash_key(secret))
        if record is None or record.kind != TOKEN or not _live(record, time.time_ns()):
            return None
        return record

    def get(self, token_id: str) -> Optional[TokenRecord]:
        """The token or link with this id (revoked or not), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first()
        return None if row is None else _record(row)

    def session_record(self, token_id: str) -> Optional[TokenRecord]:
        """The token or link a browser session signed in with, if it still allows that session."""
        record = self.get(token_id)
        if record is None or record.revoked_unix_ns is not None:
            return None
        if record.kind == TOKEN and not _live(record, time.time_ns()):
            return None  # an expired token ends its sessions too; a used link's session lives on
        return record

    def use_link(self, secret: str) -> Optional[TokenRecord]:
        """Mark the sign-in link ``secret`` used and return it; None if unknown, used, revoked or expired."""
        now = time.time_ns()
        t = api_tokens.c
        query = (
            update(api_tokens)
            .where(
                t.token_sha256 == hash_key(secret),
                t.kind == LINK,
                t.used_unix_ns.is_(None),
                t.revoked_unix_ns.is_(None),
                or_(t.expires_unix_ns.is_(None), t.expires_unix_ns > now),
            )
            .values(used_unix_ns=now)
        )
        with self.engine.begin() as conn:
            used = conn.execute(query).rowcount == 1
        return self._by_hash(hash_key(secret)) if used else None

    def list(self) -> List[TokenRecord]:
        """Every token and link, newest first."""
        query = select(api_tokens).order_by(api_tokens.c.created_unix_ns.desc(), api_tokens.c.id)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

    def revoke(self, token_id: str) -> Optional[TokenRecord]:
        """Revoke a token or link (again: no change); None when there is no such id."""
        t = api_tokens.c
        with self.engine.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(t.id == token_id, t.revoked_unix_ns.is_(None))
                .values(revoked_unix_ns=time.time_ns())
            )
        return self.get(token_id)

    def _by_hash(self, digest: str) -> Optional[TokenRecord]:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_sha256 == digest)).mappings().first()
        return None if row is None else _record(row)


def _live(record: TokenRecord, now_ns: int) -> bool:
    return record.revoked_unix_ns is None and (record.expires_unix_ns is None or record.expires_unix_ns > now_ns)


def _row(record: TokenRecord) -> Dict[str, Any]:
    values = asdict(record)
    values["group_name"] = values.pop("group")
    return values


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        **{item.name: row["group_name" if item.name == "group" else item.name] for item in fields(TokenRecord)}
    )
