"""Retention and compaction: raw profiles for a span, then hourly profiles, then daily ones.

Like CodeGuru's (5-minute data 15 days, hourly 60 days, daily 3 years), three spans, each a
declared setting: raw profiles (bodies and index rows) are kept ``GREENFLAME_RAW_RETENTION_S``
(counted from the end of their hour, and at least that long after they were received: a
backfill of old reports stays raw for the span too, as each later stage stays for its own);
then each whole hour of a group is merged into one hourly profile, a call-path rollup in the blob
store named by a ``rollup_buckets`` row with its totals, and its raw bodies, index rows and live
5-minute and hour rollups are deleted. Hourly profiles older than
``GREENFLAME_HOURLY_RETENTION_S`` are merged into daily ones the same way; daily ones older than
``GREENFLAME_DAILY_RETENTION_S`` are deleted. The 5-minute series rows (anomaly detection's input)
are summed into hourly rows and those into daily rows on the same schedule. Labels and metadata
do not survive compaction: a compacted hour serves unfiltered flame graphs and time series.

Reads include compacted buckets whose window overlaps the range, whole (a range cutting a
compacted hour gets all of it). A profile arriving for an hour already compacted is merged into
it at the next pass. Each bucket is written under a new blob key and its row committed together
with the deletion of what it replaces, so a reader sees either the raw profiles or the bucket
holding them, never both or neither; blobs are deleted after the commit (a crash between the two
leaves unreferenced blobs, never a missing one).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from flask import Flask
from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from greenflame.analyzer.model import CPU, WALL
from greenflame.analyzer.series_counts import BucketCounts

from .callpaths import PathCounts, PathIndex, cap, decode, encode, merge_counts
from .context import SETTINGS_KEY
from .rollups import HOUR_NS, SLOT_NS, Rollups, bucket_blob_key, get_rollups
from .schema import profiles, rollup_buckets, series_buckets
from .series import RESOLUTION_S, read_row, write_row
from .series import decode as decode_series
from .settings import Settings
from .storage import Storage, StoredBucket, StoredProfile, get_storage

log = logging.getLogger(__name__)

HOUR_S = 3600
DAY_S = 86400
#: Raw profiles compacted per group and pass at most (memory stays bounded; the next pass goes on).
MAX_PROFILES_PER_PASS = 5000


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each resolution is kept, in seconds."""

    raw_s: int
    hourly_s: int
    daily_s: int


class Compactor:
    """Compacts one storage's groups by :class:`RetentionPolicy` (see the module's docstring)."""

    def __init__(self, storage: Storage, rollups: Rollups, policy: RetentionPolicy) -> None:
        self.storage = storage
        self.rollups = rollups
        self.policy = policy

    def run(self, now_ns: Optional[int] = None) -> Dict[str, int]:
        """One pass over every group; what was done, counted."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        done = {"profiles": 0, "hours": 0, "days": 0, "deleted_days": 0}
        for group in self.storage.list_groups():
            for key, value in self.compact_group(group.name, now_ns).items():
                done[key] += value
        return done

    def compact_group(self, group: str, now_ns: int) -> Dict[str, int]:
        """Raw profiles past their span into hours, hours into days, old days deleted."""
        now_s = now_ns // 10**9
        raw_before_s = (now_s - self.policy.raw_s) // HOUR_S * HOUR_S
        hours_before_s = (now_s - self.policy.hourly_s) // DAY_S * DAY_S
        days_before_s = (now_s - self.policy.daily_s) // DAY_S * DAY_S
        done = {"profiles": 0, "hours": 0, "days": 0, "deleted_days": 0}
        rows = self._old_profiles(group, raw_before_s * 10**9, now_ns - self.policy.raw_s * 10**9)
        by_hour: Dict[int, List[StoredProfile]] = {}
        for row in rows:
            by_hour.setdefault(row.start_time_unix_ns // HOUR_NS, []).append(row)
        for hour, members in sorted(by_hour.items()):
            self._hour_from_profiles(group, hour, members)
            done["profiles"] += len(members)
            done["hours"] += 1
        kept_ns = now_ns - (self.policy.hourly_s - self.policy.raw_s) * 10**9
        old_hours = self.storage.find_buckets(group, HOUR_S, end_ns=hours_before_s * 10**9)
        old_hours = [bucket for bucket in old_hours if bucket.updated_unix_ns < kept_ns]
        by_day: Dict[int, List[StoredBucket]] = {}
        for bucket in old_hours:
            by_day.setdefault(bucket.bucket_start_unix_s // DAY_S, []).append(bucket)
        for day, hours in sorted(by_day.items()):
            self._day_from_hours(group, day, hours)
            done["days"] += 1
        done["deleted_days"] = self._delete_days(group, days_before_s)
        self._downsample_series(group, RESOLUTION_S, HOUR_S, raw_before_s)
        self._downsample_series(group, HOUR_S, DAY_S, hours_before_s)
        with self.storage.engine.begin() as conn:
            b = series_buckets.c
            conn.execute(
                delete(series_buckets).where(
                    b.group_name == group, b.resolution_s == DAY_S, b.bucket_start_unix_s < days_before_s
                )
            )
        return done

    def _old_profiles(self, group: str, started_before_ns: int, received_before_ns: int) -> List[StoredProfile]:
        """Raw profiles past retention: their hour ended and they were received at least the span ago."""
        p = profiles.c
        query = (
            select(p.id, p.group_name, p.start_time_unix_ns, p.duration_ns, p.received_unix_ns, p.blob_key)
            .where(
                p.group_name == group,
                p.start_time_unix_ns < started_before_ns,
                p.received_unix_ns < received_before_ns,
            )
            .order_by(p.start_time_unix_ns, p.id)
            .limit(MAX_PROFILES_PER_PASS)
        )
        with self.storage.engine.connect() as conn:
            return [StoredProfile(row[0], row[1], row[2], row[3], row[4], row[5]) for row in conn.execute(query)]

    # -- rollups ------------------------------------------------------------------------
    def _hour_from_profiles(self, group: str, hour: int, rows: Sequence[StoredProfile]) -> None:
        index = self.rollups.index(group)
        counts = self.rollups.bucket_sums(index, (group, HOUR_NS, hour), rows)
        replaced = self._write(group, HOUR_S, hour * HOUR_S, index, [counts], len(rows), profile_ids=rows)
        if replaced is None:
            return
        blobs = [row.blob_key for row in rows] + replaced
        blobs.append(bucket_blob_key((group, HOUR_NS, hour)))
        first_slot = hour * HOUR_NS // SLOT_NS
        blobs.extend(bucket_blob_key((group, SLOT_NS, slot)) for slot in range(first_slot, first_slot + 12))
        self._delete_blobs(blobs)

    def _day_from_hours(self, group: str, day: int, hours: Sequence[StoredBucket]) -> None:
        index = self.rollups.index(group)
        parts = [self._read(index, bucket) for bucket in hours]
        count = sum(bucket.profile_count for bucket in hours)
        replaced = self._write(group, DAY_S, day * DAY_S, index, parts, count, sub_buckets=hours)
        if replaced is not None:
            self._delete_blobs([bucket.blob_key for bucket in hours] + replaced)

    def _delete_days(self, group: str, before_s: int) -> int:
        days = self.storage.find_buckets(group, DAY_S, end_ns=before_s * 10**9)
        kept_ns = time.time_ns() - (self.policy.daily_s - self.policy.hourly_s) * 10**9
        old = [day for day in days if day.bucket_start_unix_s + DAY_S <= before_s and day.updated_unix_ns < kept_ns]
        if not old:
            return 0
        with self.storage.engine.begin() as conn:
            for day in old:
                conn.execute(delete(rollup_buckets).where(_bucket_where(group, DAY_S, day.bucket_start_unix_s)))
        self._delete_blobs([day.blob_key for day in old])
        return len(old)

    def _write(
        self,
        group: str,
        resolution_s: int,
        start_s: int,
        index: PathIndex,
        parts: List[PathCounts],
        profile_count: int,
        profile_ids: Sequence[StoredProfile] = (),
        sub_buckets: Sequence[StoredBucket] = (),
    ) -> Optional[List[str]]:
        """Merge ``parts`` (and the bucket already there) into the bucket; the blob keys it replaced
        (None: another process wrote the bucket first, and nothing was changed here)."""
        existing = self.storage.find_buckets(group, resolution_s, start_s * 10**9, (start_s + 1) * 10**9)
        existing = [b for b in existing if b.bucket_start_unix_s == start_s]
        if existing:
            parts = [self._read(index, existing[0]), *parts]
            profile_count += existing[0].profile_count
        counts = cap(index, merge_counts(index, parts), self.rollups.max_bucket_paths)
        counts.members = None
        blob_key = f"rollups/compacted/{_digest(group)}/{resolution_s}/{start_s}-{uuid.uuid4().hex[:12]}.bin"
        self.storage.blobs.put(blob_key, encode(index, counts))
        row = {
            "blob_key": blob_key,
            "profile_count": profile_count,
            "wall_samples": _total(counts, WALL),
            "cpu_samples": _total(counts, CPU),
            "start_time_unix_ns": counts.start_ns,
            "end_time_unix_ns": counts.end_ns,
            "updated_unix_ns": time.time_ns(),
        }
        try:
            self._commit(group, resolution_s, start_s, row, existing[0] if existing else None, profile_ids, sub_buckets)
        except (IntegrityError, _Conflict):  # another process compacted some of the same first: it has them
            self._delete_blobs([blob_key])
            return None
        return [existing[0].blob_key] if existing else []

    def _commit(
        self,
        group: str,
        resolution_s: int,
        start_s: int,
        row: Dict[str, object],
        existing: Optional[StoredBucket],
        profile_ids: Sequence[StoredProfile],
        sub_buckets: Sequence[StoredBucket],
    ) -> None:
        """The bucket's row written and what it replaces deleted, in one transaction; _Conflict (all
        rolled back) when another process changed the bucket or took any of them meanwhile."""
        with self.storage.engine.begin() as conn:
            where = _bucket_where(group, resolution_s, start_s)
            if existing is not None:
                unchanged = and_(where, rollup_buckets.c.updated_unix_ns == existing.updated_unix_ns)
                _expect(conn.execute(rollup_buckets.update().where(unchanged).values(**row)).rowcount, 1)
            else:
                conn.execute(
                    rollup_buckets.insert().values(
                        group_name=group, resolution_s=resolution_s, bucket_start_unix_s=start_s, **row
                    )
                )
            ids = [p.id for p in profile_ids]
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                _expect(conn.execute(delete(profiles).where(profiles.c.id.in_(part))).rowcount, len(part))
            for bucket in sub_buckets:
                older = and_(
                    _bucket_where(group, bucket.resolution_s, bucket.bucket_start_unix_s),
                    rollup_buckets.c.updated_unix_ns == bucket.updated_unix_ns,
                )
                _expect(conn.execute(delete(rollup_buckets).where(older)).rowcount, 1)

    def _read(self, index: PathIndex, bucket: StoredBucket) -> PathCounts:
        return decode(index, self.storage.blobs.get(bucket.blob_key))

    def _delete_blobs(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                self.storage.blobs.delete(key)
            except KeyError:
                pass

    # -- series -------------------------------------------------------------------------
    def _downsample_series(self, group: str, source_s: int, target_s: int, before_s: int) -> None:
        """Sum the ``source_s`` series rows starting before ``before_s`` into ``target_s`` rows."""
        b = series_buckets.c
        source = and_(b.group_name == group, b.resolution_s == source_s, b.bucket_start_unix_s < before_s)
        with self.storage.engine.begin() as conn:
            rows = conn.execute(select(b.bucket_start_unix_s, b.counts).where(source)).all()
            if not rows:
                return
            sums: Dict[int, BucketCounts] = {}
            for row in rows:
                _ids, counts = decode_series(bytes(row.counts))
                sums.setdefault(int(row.bucket_start_unix_s) // target_s * target_s, BucketCounts()).add(counts)
            for start, counts in sums.items():
                _merge_series_row(conn, group, target_s, start, counts)
            conn.execute(delete(series_buckets).where(source))


def _merge_series_row(conn: Connection, group: str, resolution_s: int, start: int, counts: BucketCounts) -> None:
    found = read_row(conn, group, resolution_s, start)
    if found is not None:
        counts.add(found[1])
    # Compacted rows name no profiles (theirs are gone): the counts alone.
    write_row(conn, group, resolution_s, start, frozenset(), counts, found is not None)


class _Conflict(Exception):
    """Another process compacted some of the same data first."""


def _expect(count: int, expected: int) -> None:
    if count != expected:
        raise _Conflict(f"{count} rows changed, not {expected}")


def _bucket_where(group: str, resolution_s: int, start_s: int) -> ColumnElement[bool]:
    c = rollup_buckets.c
    return and_(c.group_name == group, c.resolution_s == resolution_s, c.bucket_start_unix_s == start_s)


def _total(counts: PathCounts, name: str) -> int:
    names = [t.name for t in counts.types]
    return int(counts.values[:, names.index(name)].sum()) if name in names and len(counts.ids) else 0


def _digest(group: str) -> str:
    return hashlib.sha256(group.encode("utf-8")).hexdigest()[:24]


def policy_of(settings: Settings) -> RetentionPolicy:
    """The retention spans of ``settings``."""
    return RetentionPolicy(settings.raw_retention_s, settings.hourly_retention_s, settings.daily_retention_s)


def init_app(app: Flask) -> Compactor:
    """Run retention's pass on the app's rollup worker every ``GREENFLAME_COMPACTION_INTERVAL_S``."""
    settings: Settings = app.config[SETTINGS_KEY]
    with app.app_context():
        rollups = get_rollups(get_storage())
    compactor = Compactor(rollups.storage, rollups, policy_of(settings))
    rollups.compaction = (compactor.run, float(settings.compaction_interval_s))
    return compactor
