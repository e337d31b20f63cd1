"""Fast reads over many profiles: hourly rollups, merged-range and response caches, time series.

A flame graph over 24 hours of 5-minute profiles would otherwise load and merge 288 blobs
per request. Instead profiles are merged per hour of their start time ("rollups"); a
rollup is keyed by the exact set of profile ids it holds, so it never goes stale: a late
profile changes the set and so the key. Rollups of hours a range covers completely are
also written to the blob store (``rollups/...``, keys made of hashes, never user text), so
another server process, or this one after a restart, reads one blob per hour instead of
twelve. Merged ranges and finished API responses are kept in bounded in-memory caches.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, Hashable, List, Optional, Sequence, Tuple, TypeVar

from flask import current_app
from sqlalchemy import func, select

from greenflame.analyzer.model import Frame, Profile, Sample, SampleType, merge

from .storage import Storage, StoredProfile, profiles

HOUR_NS = 3600 * 10**9
#: A finished hour is written to the blob store only once no more profiles are expected in it.
PERSIST_GRACE_NS = 15 * 60 * 10**9
MAX_SERIES_POINTS = 400
_NICE_STEPS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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


@dataclass
class Folded:
    """Folded stacks without labels: ``values[stack id]`` per sample type of ``types``.

    Stack ids index the group's :class:`StackTable`; the fast path for flame graphs.
    """

    types: Tuple[SampleType, ...]
    values: Dict[int, List[int]] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0


class StackTable:
    """One group's frames and stacks, each interned once, so folding is integer work."""

    def __init__(self) -> None:
        self.frames: List[Frame] = []
        self._frame_ids: Dict[Frame, int] = {}
        self.stacks: List[Tuple[int, ...]] = []
        self._stack_ids: Dict[Tuple[int, ...], int] = {}
        self._lock = threading.Lock()

    def fold(
        self,
        frames: Sequence[Frame],
        samples: Sequence[Tuple[Sequence[int], Sequence[int]]],
        types: Tuple[SampleType, ...],
    ) -> Folded:
        """Fold ``(stack of indices into frames, values)`` pairs into one :class:`Folded`."""
        out = Folded(types)
        width = len(types)
        with self._lock:
            to_id = [self._frame_id(frame) for frame in frames].__getitem__
            stack_ids = self._stack_ids
            for stack, values in samples:
                key = tuple(map(to_id, stack))
                sid = stack_ids.get(key)
                if sid is None:
                    sid = stack_ids[key] = len(self.stacks)
                    self.stacks.append(key)
                into = out.values.get(sid)
                if into is None:
                    out.values[sid] = list(values[:width])
                else:
                    for column in range(width):
                        into[column] += values[column]
        return out

    def _frame_id(self, frame: Frame) -> int:
        index = self._frame_ids.get(frame)
        if index is None:
            index = self._frame_ids[frame] = len(self.frames)
            self.frames.append(frame)
        return index

    def profile(self, folded: Folded, group: str) -> Profile:
        """A label-less :class:`Profile` of ``folded``, for the tree functions."""
        with self._lock:
            frames = list(self.frames)
            stacks = self.stacks
            samples = [Sample(stacks[sid], list(values)) for sid, values in folded.values.items()]
        return Profile(
            sample_types=list(folded.types),
            frames=frames,
            samples=samples,
            group=group,
            start_time_unix_ns=folded.start_ns,
            duration_ns=max(folded.end_ns - folded.start_ns, 0),
        )

    def to_json(self, folded: Folded) -> bytes:
        """The compact stored form of ``folded`` (frames inline, so it stands alone)."""
        with self._lock:
            used: Dict[int, int] = {}
            stacks = []
            for sid in folded.values:
                stacks.append([used.setdefault(f, len(used)) for f in self.stacks[sid]])
            frames = [[self.frames[f].function, self.frames[f].file, self.frames[f].line] for f in used]
        document = {
            "types": [[t.name, t.unit] for t in folded.types],
            "frames": frames,
            "stacks": stacks,
            "values": list(folded.values.values()),
            "window": [folded.start_ns, folded.end_ns],
        }
        return json.dumps(document, separators=(",", ":")).encode("utf-8")

    def from_json(self, data: bytes) -> Folded:
        """Read what :meth:`to_json` wrote."""
        document = json.loads(data)
        types = tuple(SampleType(name, unit) for name, unit in document["types"])
        frames = [Frame(function, file, line) for function, file, line in document["frames"]]
        folded = self.fold(frames, list(zip(document["stacks"], document["values"])), types)
        folded.start_ns, folded.end_ns = document["window"]
        return folded


def fold_profile(table: StackTable, profile: Profile) -> Folded:
    """``profile`` folded into ``table`` (labels dropped, equal stacks added up)."""
    folded = table.fold(profile.frames, [(s.stack, s.values) for s in profile.samples], tuple(profile.sample_types))
    folded.start_ns = profile.start_time_unix_ns
    folded.end_ns = profile.start_time_unix_ns + profile.duration_ns
    return folded


def merge_folded(parts: Sequence[Folded]) -> Folded:
    """The sum of ``parts`` (sample types matched by name; a missing type counts zero)."""
    types: List[SampleType] = []
    for part in parts:
        for sample_type in part.types:
            if all(t.name != sample_type.name for t in types):
                types.append(sample_type)
    names = [t.name for t in types]
    out = Folded(tuple(types))
    starts = [p.start_ns for p in parts if p.start_ns]
    out.start_ns = min(starts) if starts else 0
    out.end_ns = max((p.end_ns for p in parts if p.start_ns), default=0)
    acc = out.values
    width = len(types)
    for part in parts:
        columns = [names.index(t.name) for t in part.types]
        aligned = columns == list(range(len(columns)))
        for sid, values in part.values.items():
            into = acc.get(sid)
            if into is None:
                into = acc[sid] = [0] * width
            if aligned:
                for column, value in enumerate(values):
                    into[column] += value
            else:
                for column, value in zip(columns, values):
                    into[column] += value
    return out


class Rollups:
    """Merged profiles of a group's ranges, from folded hourly rollups and caches.

    :meth:`folded` (labels dropped) is the fast path for flame graphs; :meth:`merged`
    keeps labels and metadata, for label filters and recommendations.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._tables: Dict[str, StackTable] = {}
        self._tables_lock = threading.Lock()
        self.profiles: LruCache[str, Folded] = LruCache(4096)
        self.hours: LruCache[str, Folded] = LruCache(2048)
        self.folded_ranges: LruCache[str, Profile] = LruCache(16)
        self.ranges: LruCache[str, Profile] = LruCache(8)
        self.responses: LruCache[Hashable, bytes] = LruCache(64 * 1024 * 1024, cost=len)

    def table(self, group: str) -> StackTable:
        """The group's stack table."""
        with self._tables_lock:
            return self._tables.setdefault(group, StackTable())

    def folded(
        self, group: str, rows: Sequence[StoredProfile], start_ns: Optional[int], end_ns: Optional[int]
    ) -> Profile:
        """The label-less merge of ``rows`` (one group's profiles), from hourly rollups."""
        key = fingerprint(rows)
        found = self.folded_ranges.get(key)
        if found is not None:
            return found
        buckets: Dict[int, List[StoredProfile]] = {}
        for row in rows:
            buckets.setdefault(row.start_time_unix_ns // HOUR_NS, []).append(row)
        table = self.table(group)
        parts = [self._hour(table, group, hour, members, start_ns, end_ns) for hour, members in sorted(buckets.items())]
        result = table.profile(merge_folded(parts), group)
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

    def _hour(
        self,
        table: StackTable,
        group: str,
        hour: int,
        rows: List[StoredProfile],
        start_ns: Optional[int],
        end_ns: Optional[int],
    ) -> Folded:
        key = _rollup_key(group, hour, fingerprint(rows))
        found = self.hours.get(key)
        if found is not None:
            return found
        covered = (start_ns is None or start_ns <= hour * HOUR_NS) and (
            end_ns is None or end_ns >= (hour + 1) * HOUR_NS
        )
        persist = covered and (hour + 1) * HOUR_NS + PERSIST_GRACE_NS < time.time_ns()
        folded = self._read_rollup(table, key) if persist else None
        if folded is None:
            folded = merge_folded([self._profile(table, row) for row in rows])
            if persist:
                self.storage.blobs.put(key, gzip.compress(table.to_json(folded), compresslevel=1, mtime=0))
        self.hours.put(key, folded)
        return folded

    def _profile(self, table: StackTable, row: StoredProfile) -> Folded:
        found = self.profiles.get(row.id)
        if found is None:
            found = fold_profile(table, self.storage.load_profile(row))
            self.profiles.put(row.id, found)
        return found

    def _read_rollup(self, table: StackTable, key: str) -> Optional[Folded]:
        try:
            data = self.storage.blobs.get(key)
        except KeyError:
            return None
        return table.from_json(gzip.decompress(data))

    def response(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """A finished response body from the cache, or built now and kept."""
        body = self.responses.get(key)
        if body is None:
            body = build()
            self.responses.put(key, body)
        return body


def _rollup_key(group: str, hour: int, ids_digest: str) -> str:
    group_digest = hashlib.sha256(group.encode("utf-8")).hexdigest()[:24]
    return f"rollups/hour-folded/{group_digest}/{hour}-{ids_digest}.json.gz"


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
