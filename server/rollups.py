"""Fast reads over many profiles: call-path rollups per 5 minutes and per hour, caches, time series.

A flame graph over 24 hours of 5-minute profiles would otherwise load and merge 288 blobs
per request. Instead every profile is folded once into its group's call-path index
(:mod:`.callpaths`) as a count array, and profiles are summed per 5-minute slot and per hour
of their start time ("buckets"). The work is paid at ingest, on a worker thread (the storage's
:data:`.events.profile_stored` signal): the new profile is folded from the columns the ingest
check already decoded (the stored body is not read again), added to its bucket sums in memory
(all profiles that arrived since the worker last looked at once: one sum per bucket), and each
changed bucket is written to the blob store at most once per :data:`SEAL_DELAY_S` (a round of
writes spread over the worker's ticks while reports wait; all whenever the worker is drained),
under one key per bucket. A stored bucket names the
profiles it holds, so it never goes stale: a reader wanting another set of profiles adds the
ones it lacks or subtracts the ones it has too many (whichever is fewer), and folds those few
from their bodies. Profiles are not stored one by one: a profile's counts are kept in memory
only, the buckets hold everything the reads need.

A range then sums bucket arrays (whole hours; for an hour the range covers in part, its
5-minute slots; a slot the range cuts, from the slot's sums or its profiles) and the flame
graph is pruned on the summed arrays. Merged ranges and finished API responses are kept in
bounded in-memory caches.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from functools import partial
from operator import itemgetter
from typing import AbstractSet, Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple

from flask import Flask, current_app
from sqlalchemy import func, select

from greenflame.analyzer.formats.wire_summary import DocumentSummary
from greenflame.analyzer.model import Profile, merge

from . import metrics
from .callpaths import (
    FORMAT_VERSION,
    MAX_BUCKET_PATHS,
    MAX_INDEX_PATHS,
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
from .fine_series import fine_series_for
from .labelled import indexes_for, labelled_for, of_document
from .lru import LruCache
from .members import Members
from .series import series_for
from .storage import Storage, StoredBucket, StoredProfile, get_storage, profiles
from .window_merge import merges_for

HOUR_NS = 3600 * 10**9
SLOT_NS = 300 * 10**9
#: The bucket widths kept, finest first: a range's part hours are summed from its slots.
WIDTHS_NS = (SLOT_NS, HOUR_NS)
_WIDTH_NAMES = {SLOT_NS: "5m", HOUR_NS: "hour"}
#: How far back the rollups are read into memory when the server starts.
WARM_SPAN_NS = 24 * HOUR_NS
MAX_SERIES_POINTS = 400
PROFILE_CACHE_BYTES = 128 * 1024 * 1024
BUCKET_CACHE_BYTES = 192 * 1024 * 1024
#: A changed bucket is written this long after its first change (later changes ride along).
SEAL_DELAY_S = 60.0
#: A tick's writes stop after this long while reports wait for the worker (the rest are written on
#: the next ticks), so a round of writes never holds the reports back for longer.
WRITE_BUDGET_S = 0.2
_NICE_STEPS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)

log = logging.getLogger(__name__)
#: (group, bucket width, bucket number)
BucketKey = Tuple[str, int, int]


def range_key(rows: Sequence[StoredProfile], compacted: Sequence[StoredBucket] = ()) -> str:
    """A short digest naming exactly these profiles and compacted buckets (each immutable once stored)."""
    key = fingerprint(rows)
    if compacted:
        names = "\0".join(sorted(bucket.blob_key for bucket in compacted))
        key = hashlib.sha256(f"{key}\0{names}".encode()).hexdigest()[:32]
    return key


def fingerprint(rows: Sequence[StoredProfile]) -> str:
    """A short digest naming exactly this set of profiles (profiles are immutable once stored)."""
    digest = hashlib.sha256()
    for profile_id in sorted(row.id for row in rows):
        digest.update(profile_id.encode("ascii"))
    return digest.hexdigest()[:32]


def _STOP() -> None:
    """Queued by :meth:`Worker.stop`: the worker's thread ends on it."""


class Worker:
    """One daemon thread running submitted jobs in order, off the request path (bounded queue).

    ``tick``, when given, runs between jobs at least every ``tick_s`` seconds (even when idle),
    and first thing in :meth:`drain`.
    """

    def __init__(
        self, name: str, capacity: int = 10_000, tick: Optional[Callable[[bool], None]] = None, tick_s: float = 1.0
    ) -> None:
        self._name = name
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue(capacity)
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._tick = tick
        self._tick_s = tick_s
        #: Jobs refused because the queue was full (their work is then done on first read).
        self.dropped = 0

    @property
    def depth(self) -> int:
        """Jobs queued and not yet started."""
        return self._jobs.qsize()

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job``; when the queue is full it is dropped, counted, and False returned."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def wait_for_room(self, limit: int, timeout_s: float) -> bool:
        """Wait until fewer than ``limit`` jobs are queued; False if ``timeout_s`` passed first."""
        jobs = self._jobs
        deadline = time.monotonic() + timeout_s
        with jobs.not_full:  # the queue's own lock (so len(queue), not qsize()); notified as each job is taken
            while len(jobs.queue) >= limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                jobs.not_full.wait(left)
        return True

    def drain(self, timeout_s: float) -> bool:
        """Wait until every queued job has run (then the tick, forced); False if ``timeout_s`` passed first."""
        tick = self._tick
        if tick is not None:
            self.submit(lambda: tick(True))
        deadline = time.monotonic() + timeout_s
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._jobs.all_tasks_done.wait(left)
        return True

    def stop(self, timeout_s: float) -> bool:
        """Run what is queued (as :meth:`drain`), then end the thread; False if ``timeout_s`` passed first."""
        drained = self.drain(timeout_s)
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(_STOP)
            thread.join(timeout_s)
        return drained

    def _run(self) -> None:
        next_tick = time.monotonic() + self._tick_s
        while True:
            try:
                job: Optional[Callable[[], None]] = self._jobs.get(timeout=self._tick_s if self._tick else None)
            except queue.Empty:
                job = None
            if job is _STOP:
                self._jobs.task_done()
                return
            if self._tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self._tick_s
                self._guarded(lambda: self._tick(False) if self._tick else None)
            if job is None:
                continue
            try:
                self._guarded(job)
            finally:
                self._jobs.task_done()

    @staticmethod
    def _guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # a failed rollup is rebuilt on read; keep the worker alive
            log.exception("rollup job failed")


class _Latest:
    """This process's newest sums of one bucket and the profiles they hold."""

    __slots__ = ("counts", "epoch")

    def __init__(self, epoch: int, counts: PathCounts) -> None:
        self.epoch = epoch
        self.counts = counts

    @property
    def members(self) -> AbstractSet[str]:
        members = self.counts.members
        return members if members is not None else frozenset()


@dataclass(frozen=True)
class _Arrival:
    """A profile just stored, with the request's fold (and its index's epoch) and its metadata, when
    the request folded it."""

    row: StoredProfile
    metadata: Optional[Dict[str, Any]]
    folded: Optional[Tuple[int, PathCounts]]


class Rollups:
    """Merged profiles of a group's ranges, from call-path count arrays per profile and per bucket.

    :meth:`folded` (labels dropped, call-path counts attached) is the fast path for flame
    graphs; :meth:`merged` keeps labels and metadata, for label filters and recommendations.
    :meth:`on_profile_stored` folds a new profile into its buckets on a worker thread.
    """

    def __init__(
        self, storage: Storage, max_bucket_paths: int = MAX_BUCKET_PATHS, max_index_paths: int = MAX_INDEX_PATHS
    ) -> None:
        self.storage = storage
        self.max_bucket_paths = max_bucket_paths
        self.max_index_paths = max_index_paths
        self._indexes = indexes_for(storage)
        self.profiles: LruCache[str, PathCounts] = LruCache(PROFILE_CACHE_BYTES, cost=lambda c: c.nbytes)
        #: Each bucket's sums as last built or read, by (group, width, number).
        self.buckets: LruCache[BucketKey, _Latest] = LruCache(BUCKET_CACHE_BYTES, cost=lambda b: b.counts.nbytes)
        self.folded_ranges: LruCache[str, Profile] = LruCache(16)
        self.ranges: LruCache[str, Profile] = LruCache(8)
        self.responses: LruCache[Hashable, bytes] = LruCache(64 * 1024 * 1024, cost=len)
        #: Profiles stored and not yet added to their buckets, by id (:meth:`_take_arrivals`).
        self._arrivals: Dict[str, _Arrival] = {}
        self._arrivals_lock = threading.Lock()
        #: Buckets changed since written: when each first changed (monotonic seconds).
        self._dirty: Dict[BucketKey, float] = {}
        self._dirty_lock = threading.Lock()
        #: Buckets being read from the blob store now, each set once its reader is done.
        self._reading: Dict[BucketKey, threading.Event] = {}
        self._reading_lock = threading.Lock()
        #: Retention's pass and its interval in seconds (set by the app), run on the worker.
        self.compaction: Optional[Tuple[Callable[[], Dict[str, int]], float]] = None
        self._next_compaction = 0.0
        self.worker = Worker("greenflame-rollups", tick=self.seal_due)

    def index(self, group: str) -> PathIndex:
        """The group's call-path index (replaced by an empty one once it holds too many paths)."""
        return self._indexes.get(group, self.max_index_paths)

    def folded(
        self,
        group: str,
        rows: Sequence[StoredProfile],
        start_ns: Optional[int],
        end_ns: Optional[int],
        compacted: Sequence[StoredBucket] = (),
    ) -> Profile:
        """The label-less merge of ``rows`` (one group's profiles) and ``compacted`` buckets, carrying
        its call-path counts."""
        key = range_key(rows, compacted)
        found = self.folded_ranges.get(key)
        if found is not None:
            return found
        index = self.index(group)
        parts = self._range_parts(index, group, rows, start_ns, end_ns)
        parts.extend(self.compacted(index, bucket) for bucket in compacted)
        result = as_profile(index, merge_counts(index, parts), group)
        self.folded_ranges.put(key, result)
        return result

    def compacted(self, index: PathIndex, bucket: StoredBucket) -> PathCounts:
        """The counts of a compacted hour or day (kept in memory once read)."""
        memory_key = f"{index.epoch}/{bucket.blob_key}"
        found = self.profiles.get(memory_key)
        if found is None:
            found = decode(index, self.storage.blobs.get(bucket.blob_key))
            self.profiles.put(memory_key, found)
        return found

    def _range_parts(
        self,
        index: PathIndex,
        group: str,
        rows: Sequence[StoredProfile],
        start_ns: Optional[int],
        end_ns: Optional[int],
    ) -> List[PathCounts]:
        """The bucket sums making up ``rows``: whole hours, else their 5-minute slots."""
        parts: List[PathCounts] = []
        for width in reversed(WIDTHS_NS):
            buckets: Dict[int, List[StoredProfile]] = {}
            for row in rows:
                buckets.setdefault(row.start_time_unix_ns // width, []).append(row)
            rows = []
            for number, members in sorted(buckets.items()):
                whole = (start_ns is None or start_ns <= number * width) and (
                    end_ns is None or end_ns >= (number + 1) * width
                )
                if whole or width == WIDTHS_NS[0]:
                    parts.append(self._bucket(index, (group, width, number), members))
                else:
                    rows.extend(members)  # summed from finer buckets
        return parts

    def merged(self, group: str, rows: Sequence[StoredProfile], compacted: Sequence[StoredBucket] = ()) -> Profile:
        """The full merge of ``rows``: labels and metadata kept (``compacted`` buckets have neither).

        ``rows`` are merged from the process's kept 5-minute slot merges (:mod:`.window_merge`, which
        the analysis runs keep too): only the slots that changed are merged again."""
        key = range_key(rows, compacted)
        found = self.ranges.get(key)
        if found is None:
            index = self.index(group)
            merged: List[Profile] = [merges_for(self.storage).window(group, rows).profile] if rows else []
            merged.extend(as_profile(index, self.compacted(index, bucket), group) for bucket in compacted)
            found = merged[0] if rows and not compacted else merge(merged, group)
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
        """Read every group's hours of the last ``span_ns`` (and the last hour's slots) into memory,
        on the worker thread: the first flame graph after a restart then reads no blob."""
        self.worker.submit(lambda: self._warm(now_ns - span_ns, now_ns))

    def _warm(self, start_ns: int, end_ns: int) -> None:
        for group in self.storage.list_groups():
            index = self.index(group.name)
            for width, first in ((HOUR_NS, start_ns), (SLOT_NS, end_ns - 2 * HOUR_NS)):
                for number in range(first // width, end_ns // width + 1):
                    key = (group.name, width, number)
                    kept = self.buckets.get(key)
                    if kept is None or kept.epoch != index.epoch:  # a request may have read it first
                        self._stored(index, key)

    # -- ingest -----------------------------------------------------------------
    def on_profile_stored(self, _storage: Storage, profile: ProfileStored) -> None:
        """Fold a newly stored profile from the request's checked columns (on the request thread:
        readers then never decode it again), and add it to its series and bucket sums on the
        worker thread (its series counts from the fold's columns, not from the profile)."""
        row = StoredProfile(
            profile.profile_id,
            profile.group,
            profile.start_time_unix_ns,
            profile.duration_ns,
            profile.received_unix_ns,
            profile.blob_key,
        )
        metadata: Optional[Dict[str, Any]] = None
        folded: Optional[Tuple[int, PathCounts]] = None
        content = profile.content
        if content is not None:
            index = self.index(row.group)
            if isinstance(content, DocumentSummary):
                counts, labelled = of_document(index, content, self.max_bucket_paths)
                labelled_for(self.storage).put(row.id, labelled)
            else:
                counts = fold_profile(index, content, self.max_bucket_paths)
            self.profiles.put(f"{index.epoch}/{row.id}", counts)
            folded = (index.epoch, counts)
            metadata = content.metadata
            fine_series_for(self.storage).note_fold(row.id, index, counts, metadata)
        with self._arrivals_lock:
            self._arrivals[row.id] = _Arrival(row, metadata, folded)
        if not self.worker.submit(metrics.lagged(metrics.ROLLUP_LAG_SECONDS, self._take_arrivals)):
            with self._arrivals_lock:  # dropped: its buckets are summed when read
                self._arrivals.pop(row.id, None)

    def _take_arrivals(self) -> None:
        """Add every profile stored since the last take to its series and bucket sums: each bucket
        summed once per take however many profiles it gets, so a worker that fell behind catches up
        at a lower cost per profile (the jobs queued after this one find nothing left)."""
        with self._arrivals_lock:
            arrivals, self._arrivals = self._arrivals, {}
        added: Dict[Tuple[BucketKey, int], Tuple[PathIndex, Dict[str, PathCounts]]] = {}
        for arrival in arrivals.values():
            row = arrival.row
            index = self.index(row.group)
            try:
                counts = self._counted(index, arrival)
            except Exception:  # as a job of its own would: the others are added, its sums are made on read
                log.exception("rollup of profile %s failed", row.id)
                continue
            for width in WIDTHS_NS:
                key = (row.group, width, row.start_time_unix_ns // width)
                added.setdefault((key, index.epoch), (index, {}))[1][row.id] = counts
        for (key, _), (index, new) in added.items():
            self._add(index, key, new)

    def _counted(self, index: PathIndex, arrival: _Arrival) -> PathCounts:
        """The profile's counts in ``index``, added to its series: from the request's fold (the
        arrival holds it: a queue deeper than the fold cache must not send each profile back to its
        body), else from its stored body (its series then counted from the profile itself)."""
        row, metadata, folded = arrival.row, arrival.metadata, arrival.folded
        if folded is not None and folded[0] == index.epoch:
            counts: Optional[PathCounts] = folded[1]
        else:
            counts = self.profiles.get(f"{index.epoch}/{row.id}")
        if counts is None or metadata is None or counts.capped:
            body = self.storage.load_profile(row)
            counts = self._profile(index, row, body)
            series_for(self.storage).add(row, body)
        else:
            series_for(self.storage).add_fold(row, index, counts, metadata)
        return counts

    def _add(self, index: PathIndex, key: BucketKey, new: Dict[str, PathCounts]) -> None:
        """Add new profiles (counts by profile id) to their bucket's sums in memory (read or built
        first), and mark it to write."""
        latest = self.buckets.get(key)
        if latest is None or latest.epoch != index.epoch:
            latest = self._stored(index, key)
        if latest is not None:
            new = {profile_id: counts for profile_id, counts in new.items() if profile_id not in latest.members}
        if not new:
            return
        members: AbstractSet[str]
        if latest is None or latest.counts.capped:  # a capped sum cannot take more exactly: rebuild
            rows = self._bucket_rows(key)
            others = [r for r in rows if r.id not in new]
            parts = [self._sum(index, key, others, latest)] if others else []
            members = frozenset(r.id for r in rows) | new.keys()
        else:
            parts, grown = [latest.counts], Members.of(latest.members)
            for profile_id in new:
                grown = grown.plus(profile_id)
            members = grown
        parts.extend(new.values())
        self._remember(index, key, merge_counts(index, parts), members)
        with self._dirty_lock:
            self._dirty.setdefault(key, time.monotonic())

    def _remember(self, index: PathIndex, key: BucketKey, counts: PathCounts, members: AbstractSet[str]) -> PathCounts:
        """Keep ``counts`` as the bucket's sums of ``members`` (an immutable set: Members or frozenset)."""
        counts = cap(index, counts, self.max_bucket_paths)
        counts.members = members
        self.buckets.put(key, _Latest(index.epoch, counts))
        return counts

    # -- writing ----------------------------------------------------------------
    def seal_due(self, everything: bool = False) -> None:
        """Write the buckets and series rows changed at least :data:`SEAL_DELAY_S` ago (``everything``:
        all changed); then run retention's compaction when its interval has passed."""
        self._seal_due(everything)
        compaction = self.compaction
        if compaction is not None and time.monotonic() >= self._next_compaction:
            self._next_compaction = time.monotonic() + compaction[1]
            self._seal_due(True)  # compaction reads the hours it merges, and the series rows
            done = compaction[0]()
            if done.get("profiles") or done.get("hours") or done.get("days") or done.get("deleted_days"):
                log.info("retention compacted %s", done)

    def _seal_due(self, everything: bool) -> None:
        """Write the changed buckets and series rows that are due, oldest change first; while
        reports wait for the worker, for at most :data:`WRITE_BUDGET_S` (the rest wait for the
        next tick)."""
        now = time.monotonic()
        series = series_for(self.storage)
        with self._dirty_lock:
            writes = [
                (since, partial(self._seal_dirty, key))
                for key, since in self._dirty.items()
                if everything or now - since >= SEAL_DELAY_S
            ]
        writes.extend((since, partial(series.write, key)) for since, key in series.due(everything))
        writes.sort(key=itemgetter(0))
        deadline = now + WRITE_BUDGET_S
        for _, write in writes:
            write()
            if not everything and time.monotonic() >= deadline and self.worker.depth:
                return

    def _seal_dirty(self, key: BucketKey) -> None:
        """Write a changed bucket (changes from now on mark it changed again)."""
        with self._dirty_lock:
            if self._dirty.pop(key, None) is None:
                return
        self._seal(key)

    def _seal(self, key: BucketKey) -> None:
        """Write a bucket's sums for the profiles the database holds for it now."""
        index = self.index(key[0])
        rows = self._bucket_rows(key)
        if not rows:
            return
        latest = self.buckets.get(key)
        counts = self._bucket(index, key, rows, latest if latest is not None and latest.epoch == index.epoch else None)
        members = frozenset(row.id for row in rows)
        self.storage.blobs.put(bucket_blob_key(key), encode(index, replace(counts, members=members), level=1))

    # -- reading ----------------------------------------------------------------
    def bucket_sums(self, index: PathIndex, key: BucketKey, rows: Sequence[StoredProfile]) -> PathCounts:
        """The sums of exactly ``rows``, the profiles of bucket ``key`` (for compaction)."""
        return self._bucket(index, key, rows)

    def _bucket(
        self, index: PathIndex, key: BucketKey, rows: Sequence[StoredProfile], latest: Optional[_Latest] = None
    ) -> PathCounts:
        """The sums of exactly ``rows`` (profiles of bucket ``key``), from the bucket's sums when near."""
        wanted = frozenset(row.id for row in rows)
        if latest is None:
            latest = self.buckets.get(key)
            if latest is None or latest.epoch != index.epoch:
                latest = self._stored(index, key)
        if latest is not None and latest.members == wanted:
            return latest.counts
        counts = self._sum(index, key, rows, latest)
        if latest is None or wanted > latest.members:  # newer than what is kept: keep it
            counts = self._remember(index, key, counts, wanted)
        return counts

    def _sum(
        self, index: PathIndex, key: BucketKey, rows: Sequence[StoredProfile], latest: Optional[_Latest]
    ) -> PathCounts:
        """``rows`` summed: the kept sums plus the profiles they lack, less those they have too many,
        when that folds fewer profiles than summing ``rows`` alone."""
        wanted = {row.id: row for row in rows}
        parts: List[PathCounts] = []
        adding = list(rows)
        if latest is not None and not latest.counts.capped:
            extra = latest.members - wanted.keys()
            lacking = [row for profile_id, row in wanted.items() if profile_id not in latest.members]
            if len(extra) + len(lacking) < len(wanted):
                removed = [row for row in self._bucket_rows(key) if row.id in extra] if extra else []
                if len(removed) == len(extra):  # each can be folded again, to be taken off
                    parts = [latest.counts] + [_negated(self._profile(index, row)) for row in removed]
                    adding = lacking
        parts.extend(self._profile(index, row) for row in adding)
        result = merge_counts(index, parts)
        if wanted:
            result.start_ns = min(row.start_time_unix_ns for row in rows)
            result.end_ns = max(row.start_time_unix_ns + row.duration_ns for row in rows)
        return result

    def _stored(self, index: PathIndex, key: BucketKey) -> Optional[_Latest]:
        """The bucket as last written (into memory), or None. A bucket another thread is reading
        already (the start-up warm-up and a first request go through the same hours) is read
        once: this thread waits for it and takes what it kept."""
        with self._reading_lock:
            reading = self._reading.get(key)
            mine = reading is None
            if reading is None:
                reading = self._reading[key] = threading.Event()
        if not mine:
            reading.wait()
            kept = self.buckets.get(key)
            if kept is not None and kept.epoch == index.epoch:
                return kept
            return self._read_stored(index, key)
        try:
            return self._read_stored(index, key)
        finally:
            with self._reading_lock:
                del self._reading[key]
            reading.set()

    def _read_stored(self, index: PathIndex, key: BucketKey) -> Optional[_Latest]:
        try:
            counts = decode(index, self.storage.blobs.get(bucket_blob_key(key)))
        except KeyError:
            return None
        except StoredFormatError as error:
            log.warning("rebuilding rollup %s: %s", bucket_blob_key(key), error)
            return None
        if counts.members is None:
            return None
        latest = _Latest(index.epoch, counts)
        self.buckets.put(key, latest)
        return latest

    def _bucket_rows(self, key: BucketKey) -> List[StoredProfile]:
        """Every stored profile of the bucket's group starting within it."""
        group, width, number = key
        found = self.storage.find_profiles(group, number * width, (number + 1) * width)
        return [row for row in found if row.start_time_unix_ns // width == number]

    def _profile(self, index: PathIndex, row: StoredProfile, body: Optional[Profile] = None) -> PathCounts:
        """One profile's counts: from memory, else folded from ``body`` or its stored body."""
        memory_key = f"{index.epoch}/{row.id}"
        found = self.profiles.get(memory_key)
        if found is None:
            found = fold_profile(index, body or self.storage.load_profile(row), self.max_bucket_paths)
            self.profiles.put(memory_key, found)
        return found


def bucket_blob_key(key: BucketKey) -> str:
    """The blob key of a bucket (one per bucket: a later write replaces the earlier)."""
    group, width, number = key
    group_digest = hashlib.sha256(group.encode("utf-8")).hexdigest()[:24]
    return f"rollups/paths-v{FORMAT_VERSION}/{group_digest}/{_WIDTH_NAMES[width]}/{number}.bin"


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
    points: Dict[int, List[int]] = {int(row[0]): [int(row[1] or 0), int(row[2] or 0), int(row[3])] for row in rows}
    for compacted in storage.find_buckets(group, start_ns=start_ns, end_ns=end_ns):  # at their start
        number = max(compacted.start_time_unix_ns - start_ns, 0) // step_ns
        point = points.setdefault(number, [0, 0, 0])
        point[0] += compacted.cpu_samples
        point[1] += compacted.wall_samples
        point[2] += compacted.profile_count
    return [
        {"start_unix_ns": start_ns + number * step_ns, "cpu": cpu, "wall": wall, "profiles": count}
        for number, (cpu, wall, count) in sorted(points.items())
    ]


def init_app(app: Flask) -> None:
    """Create the app's rollups, fold each profile its storage stores, and warm the last day.

    Ingest stays unaware of rollups: they listen to the storage's ``profile_stored`` signal.
    """
    with app.app_context():
        rollups = get_rollups(get_storage())
    connect_storage(app, profile_stored, rollups.storage, rollups.on_profile_stored)
    rollups.warm(time.time_ns())


def finish(app: Flask, timeout_s: float) -> bool:
    """At shutdown: fold what is queued and write every changed bucket, for up to ``timeout_s``;
    then the worker's thread ends (it reads the database no more). False if that time ran out."""
    rollups = app.extensions.get(EXTENSION_KEY)
    if rollups is not None and not rollups.worker.stop(timeout_s):
        log.warning("rollups not all written at shutdown; they are rebuilt from the profiles when read")
        return False
    return True


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
