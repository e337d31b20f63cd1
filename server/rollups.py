"""Fast reads over many profiles: call-path rollups per profile and per hour, caches, time series.

A flame graph over 24 hours of 5-minute profiles would otherwise load and merge 288 blobs
per request. Instead every profile is folded once into its group's call-path index
(:mod:`.callpaths`) as a count array, and profiles are summed per hour of their start time
("rollups"). The work is paid at ingest, on a worker thread (the storage's
:data:`.events.profile_stored` signal): the new profile is folded and its hour's rollup rebuilt
from the folded profiles and written to the blob store, deleting the one it supersedes. A
rollup is keyed by the exact set of profile ids it holds, so it never goes stale: a late
profile changes the set and so the key. Stored rollups name call paths by content hash,
so another server process, or this one after a restart, reads one compact blob per hour.

A range then sums hour arrays (for an hour the range covers in part: the hour less the
profiles outside the range, or the profiles inside, whichever is fewer) and the flame
graph is pruned on the summed arrays. Profiles stored before rollups existed are folded on
first read. Merged ranges and finished API responses are kept in bounded in-memory caches.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Generic, Hashable, List, Optional, Sequence, Tuple, TypeVar

from flask import Flask, current_app
from sqlalchemy import func, select

from greenflame.analyzer.model import Profile, merge

from . import metrics
from .callpaths import (
    FORMAT_VERSION,
    MAX_BUCKET_PATHS,
    PathCounts,
    PathIndex,
    StoredFormatError,
    as_profile,
    cap,
    decode,
    encode,
    fold_profile,
    merge_counts,
)
from .events import ProfileStored, connect_storage, profile_stored
from .series import series_for
from .storage import Storage, StoredProfile, get_storage, profiles

HOUR_NS = 3600 * 10**9
#: How far back the rollups are read into memory when the server starts.
WARM_SPAN_NS = 24 * HOUR_NS
MAX_SERIES_POINTS = 400
#: A group's call-path index is started afresh beyond this many paths (memory stays bounded).
MAX_INDEX_PATHS = 500_000
PROFILE_CACHE_BYTES = 128 * 1024 * 1024
HOUR_CACHE_BYTES = 128 * 1024 * 1024
_NICE_STEPS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
log = logging.getLogger(__name__)


class LruCache(Generic[K, V]):
    """A thread-safe least-recently-used cache bounded by a total cost (entries by default)."""

    def __init__(self, capacity: int, cost: Callable[[V], int] = lambda _value: 1) -> None:
        self.capacity = capacity
        self._cost = cost
        self._items: OrderedDict[K, V] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> Optional[V]:
        """The value under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Store ``value``, evicting the least recently used entries beyond the capacity."""
        cost = self._cost(value)
        if cost > self.capacity:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._used -= self._cost(old)
            self._items[key] = value
            self._used += cost
            while self._used > self.capacity:
                _, evicted = self._items.popitem(last=False)
                self._used -= self._cost(evicted)


def fingerprint(rows: Sequence[StoredProfile]) -> str:
    """A short digest naming exactly this set of profiles (profiles are immutable once stored)."""
    digest = hashlib.sha256()
    for profile_id in sorted(row.id for row in rows):
        digest.update(profile_id.encode("ascii"))
    return digest.hexdigest()[:32]


class Worker:
    """One daemon thread running submitted jobs in order, off the request path (bounded queue)."""

    def __init__(self, name: str, capacity: int = 10_000) -> None:
        self._name = name
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(capacity)
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        #: Jobs refused because the queue was full (their work is then done on first read).
        self.dropped = 0

    @property
    def depth(self) -> int:
        """Jobs queued and not yet started."""
        return self._jobs.qsize()

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job``; when the queue is full it is dropped and counted."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.dropped += 1

    def drain(self, timeout_s: float) -> bool:
        """Wait until every queued job has run; False if ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._jobs.all_tasks_done.wait(left)
        return True

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # a failed rollup is rebuilt on read; keep the worker alive
                log.exception("rollup job failed")
            finally:
                self._jobs.task_done()


class Rollups:
    """Merged profiles of a group's ranges, from call-path count arrays per profile and per hour.

    :meth:`folded` (labels dropped, call-path counts attached) is the fast path for flame
    graphs; :meth:`merged` keeps labels and metadata, for label filters and recommendations.
    :meth:`on_profile_stored` folds a new profile and seals its hour on a worker thread.
    """

    def __init__(
        self, storage: Storage, max_bucket_paths: int = MAX_BUCKET_PATHS, max_index_paths: int = MAX_INDEX_PATHS
    ) -> None:
        self.storage = storage
        self.max_bucket_paths = max_bucket_paths
        self.max_index_paths = max_index_paths
        self._indexes: Dict[str, PathIndex] = {}
        self._indexes_lock = threading.Lock()
        self.profiles: LruCache[str, PathCounts] = LruCache(PROFILE_CACHE_BYTES, cost=lambda c: c.nbytes)
        self.hours: LruCache[str, PathCounts] = LruCache(HOUR_CACHE_BYTES, cost=lambda c: c.nbytes)
        self.folded_ranges: LruCache[str, Profile] = LruCache(16)
        self.ranges: LruCache[str, Profile] = LruCache(8)
        self.responses: LruCache[Hashable, bytes] = LruCache(64 * 1024 * 1024, cost=len)
        self._sealed: LruCache[Tuple[str, int], str] = LruCache(4096)
        self.worker = Worker("greenflame-rollups")

    def index(self, group: str) -> PathIndex:
        """The group's call-path index (replaced by an empty one once it holds too many paths)."""
        with self._indexes_lock:
            index = self._indexes.get(group)
            if index is None or len(index) > self.max_index_paths:
                index = self._indexes[group] = PathIndex()
            return index

    def folded(
        self, group: str, rows: Sequence[StoredProfile], start_ns: Optional[int], end_ns: Optional[int]
    ) -> Profile:
        """The label-less merge of ``rows`` (one group's profiles), carrying its call-path counts."""
        key = fingerprint(rows)
        found = self.folded_ranges.get(key)
        if found is not None:
            return found
        index = self.index(group)
        buckets: Dict[int, List[StoredProfile]] = {}
        for row in rows:
            buckets.setdefault(row.start_time_unix_ns // HOUR_NS, []).append(row)
        parts = []
        for hour, members in sorted(buckets.items()):
            covered = (start_ns is None or start_ns <= hour * HOUR_NS) and (
                end_ns is None or end_ns >= (hour + 1) * HOUR_NS
            )
            if covered:
                parts.append(self._hour(index, group, hour, members, write_now=False))
            else:
                parts.append(self._partial_hour(index, group, hour, members))
        result = as_profile(index, merge_counts(index, parts), group)
        self.folded_ranges.put(key, result)
        return result

    def merged(self, group: str, rows: Sequence[StoredProfile]) -> Profile:
        """The full merge of ``rows``: labels and metadata kept."""
        key = fingerprint(rows)
        found = self.ranges.get(key)
        if found is None:
            found = merge([self.storage.load_profile(row) for row in rows], group)
            self.ranges.put(key, found)
        return found

    def response(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """A finished response body from the cache, or built now and kept."""
        body = self.responses.get(key)
        if body is None:
            body = build()
            self.responses.put(key, body)
        return body

    # -- start-up -----------------------------------------------------------------
    def warm(self, now_ns: int, span_ns: int = WARM_SPAN_NS) -> None:
        """Read every group's hours of the last ``span_ns`` into the caches, on the worker thread.

        After a restart the first flame graph over the last day would otherwise read each
        sealed hour from the blob store on the request path.
        """
        self.worker.submit(lambda: self._warm(now_ns - span_ns, now_ns))

    def _warm(self, start_ns: int, end_ns: int) -> None:
        for group in self.storage.list_groups():
            index = self.index(group.name)
            for hour in range(start_ns // HOUR_NS, end_ns // HOUR_NS + 1):
                rows = self._hour_rows(group.name, hour)
                if rows:
                    self._hour(index, group.name, hour, rows, write_now=False)

    # -- ingest -----------------------------------------------------------------
    def on_profile_stored(self, _storage: Storage, profile: ProfileStored) -> None:
        """Fold a newly stored profile and re-seal its hour, on the worker thread."""
        row = StoredProfile(
            profile.profile_id,
            profile.group,
            profile.start_time_unix_ns,
            profile.duration_ns,
            profile.received_unix_ns,
            profile.blob_key,
        )
        self.worker.submit(metrics.lagged(metrics.ROLLUP_LAG_SECONDS, lambda: self._ingested(row)))

    def _ingested(self, row: StoredProfile) -> None:
        index = self.index(row.group)
        body = self.storage.load_profile(row)  # decoded once: folded here, added to its series bucket
        self._profile(index, row.group, row, write_now=True, body=body)
        series_for(self.storage).add(row, body)
        hour = row.start_time_unix_ns // HOUR_NS
        self._hour(index, row.group, hour, self._hour_rows(row.group, hour), write_now=True)

    def _hour_rows(self, group: str, hour: int) -> List[StoredProfile]:
        """Every stored profile of ``group`` starting within ``hour``."""
        found = self.storage.find_profiles(group, hour * HOUR_NS, (hour + 1) * HOUR_NS)
        return [row for row in found if row.start_time_unix_ns // HOUR_NS == hour]

    # -- buckets ----------------------------------------------------------------
    def _partial_hour(self, index: PathIndex, group: str, hour: int, rows: List[StoredProfile]) -> PathCounts:
        """Some of an hour's profiles: the hour's rollup less the others when they are fewer."""
        wanted = {row.id for row in rows}
        hour_rows = self._hour_rows(group, hour)
        others = [row for row in hour_rows if row.id not in wanted]
        if not others and len(hour_rows) == len(rows):
            return self._hour(index, group, hour, rows, write_now=False)
        whole = self._stored_hour(index, _rollup_key(group, f"hour/h{hour}-{fingerprint(hour_rows)}"))
        if whole is None or whole.capped or len(others) >= len(rows):
            parts = [self._profile(index, group, row, write_now=False) for row in rows]
        else:
            parts = [whole] + [_negated(self._profile(index, group, row, write_now=False)) for row in others]
        result = merge_counts(index, parts)
        result.start_ns = min(row.start_time_unix_ns for row in rows)
        result.end_ns = max(row.start_time_unix_ns + row.duration_ns for row in rows)
        return result

    def _hour(self, index: PathIndex, group: str, hour: int, rows: List[StoredProfile], write_now: bool) -> PathCounts:
        """All of an hour's profiles: from memory, the blob store, or built from its profiles.

        A newly built hour is stored (now, or by the worker), and the rollup of the same
        hour it supersedes (an earlier set of profiles) is deleted.
        """
        key = _rollup_key(group, f"hour/h{hour}-{fingerprint(rows)}")
        found = self._stored_hour(index, key)
        if found is not None:
            return found
        parts = [self._profile(index, group, row, write_now) for row in rows]
        found = cap(index, merge_counts(index, parts), self.max_bucket_paths)
        self.hours.put(f"{index.epoch}/{key}", found)
        if self._sealed.get((group, hour)) != key:
            counts = found
            if write_now:
                self._seal(index, group, hour, key, counts)
            else:
                self.worker.submit(lambda: self._seal(index, group, hour, key, counts))
        return found

    def _stored_hour(self, index: PathIndex, key: str) -> Optional[PathCounts]:
        """The hour rollup ``key`` from memory or the blob store (already sealed), else None."""
        memory_key = f"{index.epoch}/{key}"
        found = self.hours.get(memory_key)
        if found is None:
            found = self._read(index, key)
            if found is not None:
                self.hours.put(memory_key, found)
        return found

    def _seal(self, index: PathIndex, group: str, hour: int, key: str, counts: PathCounts) -> None:
        previous = self._sealed.get((group, hour))
        if previous == key:
            return
        self._write(index, key, counts)
        self._sealed.put((group, hour), key)
        if previous is not None:
            self.storage.blobs.delete(previous)

    def _profile(
        self, index: PathIndex, group: str, row: StoredProfile, write_now: bool, body: Optional[Profile] = None
    ) -> PathCounts:
        memory_key = f"{index.epoch}/{row.id}"
        found = self.profiles.get(memory_key)
        if found is not None:
            return found
        key = _rollup_key(group, f"profile/{row.id}")
        found = self._read(index, key)
        if found is None:
            found = fold_profile(index, body or self.storage.load_profile(row), self.max_bucket_paths)
            self._store(index, key, found, write_now)
        self.profiles.put(memory_key, found)
        return found

    def _store(self, index: PathIndex, key: str, counts: PathCounts, write_now: bool) -> None:
        if write_now:
            self._write(index, key, counts)
        else:
            self.worker.submit(lambda: self._write(index, key, counts))

    def _write(self, index: PathIndex, key: str, counts: PathCounts) -> None:
        self.storage.blobs.put(key, encode(index, counts))

    def _read(self, index: PathIndex, key: str) -> Optional[PathCounts]:
        try:
            return decode(index, self.storage.blobs.get(key))
        except KeyError:
            return None
        except StoredFormatError as error:
            log.warning("rebuilding rollup %s: %s", key, error)
            return None


def _rollup_key(group: str, name: str) -> str:
    group_digest = hashlib.sha256(group.encode("utf-8")).hexdigest()[:24]
    return f"rollups/paths-v{FORMAT_VERSION}/{group_digest}/{name}.bin"


def _negated(counts: PathCounts) -> PathCounts:
    return PathCounts(counts.types, counts.ids, -counts.values, counts.start_ns, counts.end_ns, -counts.capped)


def series_step_ns(start_ns: int, end_ns: int) -> int:
    """A round bucket width giving at most :data:`MAX_SERIES_POINTS` points over the span."""
    span_s = max((end_ns - start_ns) / 10**9, 1.0)
    for step in _NICE_STEPS_S:
        if span_s / step <= MAX_SERIES_POINTS:
            return step * 10**9
    return int(span_s / MAX_SERIES_POINTS + 1) * 10**9


def timeseries(storage: Storage, group: str, start_ns: int, end_ns: int, step_ns: int) -> List[Dict[str, Any]]:
    """CPU and wall samples and profile counts per ``step_ns`` bucket of profile start times.

    Only buckets holding profiles are returned (the chart draws gaps for the rest); read
    from the profile index alone, so it is fast for any range.
    """
    p = profiles.c
    bucket = ((p.start_time_unix_ns - start_ns) // step_ns).label("bucket")
    query = (
        select(bucket, func.sum(p.cpu_samples), func.sum(p.wall_samples), func.count())
        .where(p.group_name == group, p.start_time_unix_ns >= start_ns, p.start_time_unix_ns < end_ns)
        .group_by(bucket)
        .order_by(bucket)
    )
    with storage.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "start_unix_ns": start_ns + int(row[0]) * step_ns,
            "cpu": int(row[1] or 0),
            "wall": int(row[2] or 0),
            "profiles": int(row[3]),
        }
        for row in rows
    ]


def init_app(app: Flask) -> None:
    """Create the app's rollups, fold each profile its storage stores, and warm the last day.

    Ingest stays unaware of rollups: they listen to the storage's ``profile_stored`` signal.
    """
    with app.app_context():
        rollups = get_rollups(get_storage())
    connect_storage(app, profile_stored, rollups.storage, rollups.on_profile_stored)
    rollups.warm(time.time_ns())


EXTENSION_KEY = "greenflame.rollups"
_create_lock = threading.Lock()


def get_rollups(storage: Storage) -> Rollups:
    """The current app's rollups (created on first use, one per app)."""
    with _create_lock:
        rollups = current_app.extensions.get(EXTENSION_KEY)
        if rollups is None or rollups.storage is not storage:
            rollups = current_app.extensions[EXTENSION_KEY] = Rollups(storage)
    result: Rollups = rollups
    return result
