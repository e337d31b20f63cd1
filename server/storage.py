"""Storage behind one interface: groups and profile index in SQL, profile bodies in a blob store.

SQLAlchemy Core keeps the SQL portable: SQLite by default, PostgreSQL with the same code.
Profile bodies are stored as gzipped wire-format JSON under keys made from the profile id,
never from user text.
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple, Union

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from greenflame.analyzer.formats import greenflame_json, wire_summary
from greenflame.analyzer.formats.wire_summary import DocumentSummary
from greenflame.analyzer.model import CPU, WALL, Profile

from .blobs import BlobStore, open_blob_store
from .context import SETTINGS_KEY
from .db import make_engine, upgrade_database
from .events import ProfileStored, profile_stored
from .known_keys import KnownKeys
from .schema import groups, profiles, rollup_buckets

INGEST_KEY_PREFIX = "gfi_"
#: One statement for every report's row (its compiled form is cached; the values are bound).
_INSERT_PROFILE = profiles.insert()


class GroupExistsError(Exception):
    """A group with this name already exists."""


@dataclass(frozen=True)
class GroupSummary:
    """A profiling group and what the server holds for it."""

    name: str
    created_unix_ns: int
    profile_count: int
    first_seen_unix_ns: Optional[int]
    last_seen_unix_ns: Optional[int]
    last_received_unix_ns: Optional[int]


@dataclass(frozen=True)
class StoredProfile:
    """The index row of one stored profile."""

    id: str
    group: str
    start_time_unix_ns: int
    duration_ns: int
    received_unix_ns: int
    blob_key: str


@dataclass(frozen=True)
class StoredBucket:
    """A compacted hourly or daily profile of a group (:mod:`.retention`): its row."""

    group: str
    resolution_s: int
    bucket_start_unix_s: int
    blob_key: str
    profile_count: int
    wall_samples: int
    cpu_samples: int
    start_time_unix_ns: int
    end_time_unix_ns: int
    updated_unix_ns: int = 0


def hash_key(key: str) -> str:
    """The stored form of an ingest key (keys are random, so a plain SHA-256 suffices)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Storage:
    """Groups, ingest keys and profiles: the one interface the HTTP layer uses."""

    def __init__(self, engine: Engine, blobs: BlobStore) -> None:
        self.engine = engine
        self.blobs = blobs
        self.known_keys = KnownKeys()

    @classmethod
    def open(cls, database_url: str, blobs_url: str) -> Storage:
        """Connect to the database and blob store, upgrading the database to the current schema."""
        storage = cls(make_engine(database_url), open_blob_store(blobs_url))
        upgrade_database(storage.engine)
        return storage

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    # -- groups ---------------------------------------------------------------
    def create_group(self, name: str) -> str:
        """Create group ``name`` and return its new ingest key (shown once, stored hashed)."""
        key = INGEST_KEY_PREFIX + secrets.token_urlsafe(32)
        row = {"name": name, "ingest_key_sha256": hash_key(key), "created_unix_ns": time.time_ns()}
        try:
            with self.engine.begin() as conn:
                conn.execute(groups.insert().values(**row))
        except IntegrityError:
            raise GroupExistsError(name) from None
        return key

    def group_for_key(self, key: str) -> Optional[str]:
        """The group whose ingest key is ``key``, or None (a key matched lately is not looked up again:
        see :mod:`.known_keys`)."""
        key_hash = hash_key(key)
        group = self.known_keys.group(key_hash)
        if group is None:
            with self.engine.connect() as conn:
                query = select(groups.c.name).where(groups.c.ingest_key_sha256 == key_hash)
                group = conn.execute(query).scalar_one_or_none()
            if group is not None:
                self.known_keys.remember(key_hash, group)
        return group

    def list_groups(self) -> List[GroupSummary]:
        """Every group with its profile count and time span, by name."""
        return self._group_summaries(None)

    def get_group(self, name: str) -> Optional[GroupSummary]:
        """One group's summary, or None if it does not exist."""
        found = self._group_summaries(name)
        return found[0] if found else None

    def _group_summaries(self, name: Optional[str]) -> List[GroupSummary]:
        p = profiles.c
        stats = (
            select(
                p.group_name,
                func.count().label("count"),
                func.min(p.start_time_unix_ns).label("first"),
                func.max(p.start_time_unix_ns + p.duration_ns).label("last"),
                func.max(p.received_unix_ns).label("received"),
            )
            .group_by(p.group_name)
            .subquery()
        )
        query = (
            select(
                groups.c.name, groups.c.created_unix_ns, stats.c.count, stats.c.first, stats.c.last, stats.c.received
            )
            .select_from(groups.outerjoin(stats, stats.c.group_name == groups.c.name))
            .order_by(groups.c.name)
        )
        if name is not None:
            query = query.where(groups.c.name == name)
        c = rollup_buckets.c
        compacted = select(
            c.group_name,
            func.sum(c.profile_count),
            func.min(c.start_time_unix_ns),
            func.max(c.end_time_unix_ns),
        ).group_by(c.group_name)
        if name is not None:
            compacted = compacted.where(c.group_name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            older = {row[0]: row[1:] for row in conn.execute(compacted)}
        return [
            _with_compacted(GroupSummary(row[0], row[1], row[2] or 0, row[3], row[4], row[5]), older) for row in rows
        ]

    # -- profiles -------------------------------------------------------------
    def add_profile(
        self,
        group: str,
        profile: Union[Profile, DocumentSummary],
        idempotency_key: Optional[str],
        body_gz: Optional[bytes] = None,
    ) -> Tuple[str, bool]:
        """Store ``profile`` (or a checked document's summary) for ``group``; return ``(id, duplicate)``.

        ``body_gz``, when given, is ``profile``'s gzipped wire-format document as received
        (stored as it is instead of written anew).

        A second report with the same idempotency key in the same group is not stored
        again: the first one's id comes back with ``duplicate`` true. The key is not looked up
        first: the row's unique key finds a retried report when it is inserted (retries are rare;
        a lookup per report was a database round trip each). A new profile is announced with
        :data:`.events.profile_stored` once its row is committed.
        """
        profile_id = uuid.uuid4().hex
        blob_key = f"profiles/{profile_id[:2]}/{profile_id}.json.gz"
        if body_gz is None:
            built = profile.profile() if isinstance(profile, DocumentSummary) else profile
            body_gz = gzip.compress(greenflame_json.dumps(built), compresslevel=6, mtime=0)
        self.blobs.put(blob_key, body_gz)
        row = _profile_row(profile_id, group, profile, idempotency_key, blob_key)
        try:
            with self.engine.begin() as conn:
                conn.execute(_INSERT_PROFILE, row)
        except IntegrityError:
            # A report with the same key was stored first (a retry, or a request racing this
            # one): keep its copy only.
            self.blobs.delete(blob_key)
            existing = self._id_for_idempotency_key(group, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return existing, True
        self._stored(row, profile)
        return profile_id, False

    def _stored(self, row: dict, content: Union[Profile, DocumentSummary, None] = None) -> None:
        """Tell the app's parts (rollups, the pipeline) about a newly committed profile row."""
        event = ProfileStored(
            group=row["group_name"],
            profile_id=row["id"],
            start_time_unix_ns=row["start_time_unix_ns"],
            end_time_unix_ns=row["start_time_unix_ns"] + row["duration_ns"],
            received_unix_ns=row["received_unix_ns"],
            blob_key=row["blob_key"],
            content=content,
        )
        profile_stored.send(self, profile=event)

    def _id_for_idempotency_key(self, group: str, key: str) -> Optional[str]:
        query = select(profiles.c.id).where(profiles.c.group_name == group, profiles.c.idempotency_key == key)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def find_profiles(
        self, group: str, start_ns: Optional[int] = None, end_ns: Optional[int] = None, limit: Optional[int] = None
    ) -> List[StoredProfile]:
        """Profiles of ``group`` whose window overlaps ``[start_ns, end_ns)``, oldest first."""
        p = profiles.c
        query = select(p.id, p.group_name, p.start_time_unix_ns, p.duration_ns, p.received_unix_ns, p.blob_key)
        query = query.where(p.group_name == group).order_by(p.start_time_unix_ns, p.id)
        if end_ns is not None:
            query = query.where(p.start_time_unix_ns < end_ns)
        if start_ns is not None:
            query = query.where(p.start_time_unix_ns + p.duration_ns >= start_ns)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [StoredProfile(row[0], row[1], row[2], row[3], row[4], row[5]) for row in rows]

    def find_buckets(
        self,
        group: str,
        resolution_s: Optional[int] = None,
        start_ns: Optional[int] = None,
        end_ns: Optional[int] = None,
    ) -> List[StoredBucket]:
        """Compacted profiles of ``group`` (one resolution, or all) overlapping ``[start_ns, end_ns)``, oldest first."""
        c = rollup_buckets.c
        query = select(rollup_buckets).where(c.group_name == group).order_by(c.bucket_start_unix_s, c.resolution_s)
        if resolution_s is not None:
            query = query.where(c.resolution_s == resolution_s)
        if end_ns is not None:
            query = query.where(c.start_time_unix_ns < end_ns)
        if start_ns is not None:
            query = query.where(c.end_time_unix_ns >= start_ns)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredBucket(
                row.group_name,
                row.resolution_s,
                row.bucket_start_unix_s,
                row.blob_key,
                row.profile_count,
                row.wall_samples,
                row.cpu_samples,
                row.start_time_unix_ns,
                row.end_time_unix_ns,
                row.updated_unix_ns,
            )
            for row in rows
        ]

    def load_profile(self, stored: StoredProfile) -> Profile:
        """The profile body of an index row."""
        return wire_summary.loads(self._body(stored))

    def load_summary(self, stored: StoredProfile) -> DocumentSummary:
        """The profile body of an index row as a checked document (no object per sample or frame)."""
        return wire_summary.summarize(self._body(stored))

    def _body(self, stored: StoredProfile) -> bytes:
        """The stored body of an index row, decompressed."""
        return gzip.decompress(self.blobs.get(stored.blob_key))


def _with_compacted(summary: GroupSummary, compacted: dict) -> GroupSummary:
    """``summary`` counting the group's compacted profiles too (retention keeps their totals)."""
    found = compacted.get(summary.name)
    if found is None:
        return summary
    count, first, last = found
    firsts = [t for t in (summary.first_seen_unix_ns, first) if t is not None]
    lasts = [t for t in (summary.last_seen_unix_ns, last) if t is not None]
    return replace(
        summary,
        profile_count=summary.profile_count + int(count or 0),
        first_seen_unix_ns=min(firsts) if firsts else None,
        last_seen_unix_ns=max(lasts) if lasts else None,
    )


def _profile_row(
    profile_id: str,
    group: str,
    profile: Union[Profile, DocumentSummary],
    idempotency_key: Optional[str],
    blob_key: str,
) -> dict:
    summary = profile if isinstance(profile, DocumentSummary) else DocumentSummary.of(profile)
    return {
        "id": profile_id,
        "group_name": group,
        "start_time_unix_ns": profile.start_time_unix_ns,
        "duration_ns": profile.duration_ns,
        "received_unix_ns": time.time_ns(),
        "idempotency_key": idempotency_key or None,
        "blob_key": blob_key,
        "stack_count": summary.sample_count,
        "wall_samples": summary.total(WALL) if summary.has_type(WALL) else 0,
        "cpu_samples": summary.total(CPU) if summary.has_type(CPU) else 0,
    }


# -- Flask integration --------------------------------------------------------

EXTENSION_KEY = "greenflame.storage"


def init_app(app: Flask) -> None:
    """Open the storage named by the app's settings and close it when the process exits."""
    settings = app.config[SETTINGS_KEY]
    storage = Storage.open(settings.resolved_database_url(), settings.resolved_blobs_url())
    app.extensions[EXTENSION_KEY] = storage
    atexit.register(storage.close)


def get_storage() -> Storage:
    """The storage of the current app."""
    storage: Storage = current_app.extensions[EXTENSION_KEY]
    return storage
