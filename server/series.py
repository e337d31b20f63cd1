"""Per-frame time series in the database: each profile's counts added once to its 5-minute bucket.

Anomaly detection needs, per group, the inclusive and self sample counts of every frame per
5-minute bucket (:mod:`greenflame.analyzer.series_counts`). Decoding the group's 7 days of
profiles for each analysis run would cost in proportion to its history; instead the rollup
worker adds each newly stored profile's call-path fold to its bucket in memory
(:meth:`SeriesStore.add_fold`; :meth:`SeriesStore.add` from a decoded profile), and the folds
added since are counted into frame keys at once, from their sum (:func:`path_counts`, numpy
columns), when the bucket is read or written; each changed row of ``series_buckets`` is written
at most once per :data:`FLUSH_DELAY_S` (:meth:`SeriesStore.flush`, on the worker's tick).

A bucket row lists the ids of the profiles it holds, so adding is idempotent and a reader can
tell whether the row matches the profiles it wants: :meth:`SeriesStore.buckets` uses a row (or
its in-memory copy) as it is when its ids are the wanted ones, adds the few wanted profiles it
lacks (profiles stored before series existed, or still queued on the worker) and writes it back,
and computes a bucket from its profiles, without writing, when the row holds profiles outside
the wanted set (a bucket at the edge of the range). Each run then reads only buckets that
changed since the last one. Rows hold no ancestors (every frame's callers: as large as the
profile itself); a run takes them from its recent profiles.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    TypeVar,
    cast,
)

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from greenflame.analyzer.model import Profile
from greenflame.analyzer.series_counts import (
    BucketCounts,
    add_structure,
    columnar_counts,
    invocation_counts,
    window_counts,
)
from greenflame.analyzer.timeseries import (
    GroupSeries,
    bucket_start,
    frame_key,
    is_library_file,
    series_from_buckets,
)

from .callpaths import PathCounts, PathIndex, merge_counts
from .schema import series_buckets
from .storage import Storage, StoredProfile

#: The resolution buckets are stored at; coarser series are summed from it.
RESOLUTION_S = 300
#: Memory for decoded buckets per process, estimated from their frame counts (a realistic
#: 5-minute bucket of a service is about 1 MB decoded; beyond this, runs read the oldest again).
CACHE_BYTES = 512 * 1024 * 1024
#: Estimated bytes of one counted frame in a decoded bucket (a dict entry and its key).
BYTES_PER_COUNT = 100
_ADD_ATTEMPTS = 3
#: Folds a bucket keeps unsummed before it sums them into one.
_MAX_FOLDS = 64
#: A changed row is written this long after its first change (later changes ride along).
FLUSH_DELAY_S = 60.0

Key = Tuple[str, int]
Loaded = Tuple[FrozenSet[str], BucketCounts]


def profile_counts(profile: Profile) -> BucketCounts:
    """What ``profile`` adds to its stored bucket: both sample types, library frames, no ancestors."""
    return window_counts(profile, frame_key, is_library_file, structure=False)


class FrameKeys:
    """Per frame id of one call-path index: its frame key's number and whether it is library code
    (each frame's key and file judged once, as the index grows)."""

    def __init__(self) -> None:
        self.keys: List[str] = []
        self._numbers: Dict[str, int] = {}
        self._frame_keys: List[int] = []
        self._library: List[bool] = []
        self._arrays: Tuple[np.ndarray, np.ndarray] = (np.empty(0, np.int64), np.empty(0, bool))
        #: ``keys`` as a numpy array (object), for picking many names at once.
        self.names: np.ndarray = np.empty(0, dtype=object)
        self._lock = threading.Lock()

    def arrays(self, index: PathIndex) -> Tuple[np.ndarray, np.ndarray]:
        """Each frame id's key number and library flag, for every frame ``index`` holds now."""
        with self._lock:
            frames = index.frames[len(self._frame_keys) :]
            if not frames:
                return self._arrays
            for frame in frames:
                key = frame_key(frame)
                number = self._numbers.get(key)
                if number is None:
                    number = self._numbers[key] = len(self.keys)
                    self.keys.append(key)
                self._frame_keys.append(number)
                self._library.append(is_library_file(frame.file))
            self._arrays = (np.asarray(self._frame_keys, dtype=np.int64), np.asarray(self._library, dtype=bool))
            self.names = np.asarray(self.keys, dtype=object)
            return self._arrays


_frame_keys: weakref.WeakKeyDictionary[PathIndex, FrameKeys] = weakref.WeakKeyDictionary()
_frame_keys_lock = threading.Lock()


def path_counts(index: PathIndex, counts: PathCounts, metadata: Mapping[str, Any]) -> Optional[BucketCounts]:
    """:func:`profile_counts` of a profile folded into ``index`` (``metadata``: the profile's), in
    numpy columns over its distinct stacks; None when the fold was capped (its stacks are then
    not all there: count the profile itself)."""
    if counts.capped:
        return None
    with _frame_keys_lock:
        keys = _frame_keys.get(index)
        if keys is None:
            keys = _frame_keys[index] = FrameKeys()
    stack_frames = index.stack_frames(counts.ids)  # before the frame keys: every frame of them is known
    frame_keys, library = keys.arrays(index)
    leaf_frames = index.columns()[1][counts.ids]  # the root's frame is -1
    names = [t.name for t in counts.types]
    return columnar_counts(names, counts.values, stack_frames, leaf_frames, frame_keys, keys.names, library, metadata)


def with_structure(series: GroupSeries, structure_from: Sequence[Profile]) -> GroupSeries:
    """``series`` with which frames are seen above which (and which are library code) taken from
    ``structure_from``: buckets hold no ancestors (they are as large as the profiles themselves)."""
    structure = BucketCounts()
    for profile in structure_from:
        add_structure(structure, profile, frame_key, is_library_file)
    series.ancestors = structure.ancestors
    series.library.update(structure.library)
    return series


def row_middle_s(row: StoredProfile) -> float:
    """The middle (Unix seconds) of an index row's profile window: which bucket it belongs to."""
    return (row.start_time_unix_ns + max(row.duration_ns, 0) / 2) / 1e9


def row_bucket(row: StoredProfile) -> int:
    """The start of the stored bucket an index row's profile belongs to (its window's middle)."""
    return bucket_start(row_middle_s(row), RESOLUTION_S)


def encode(ids: FrozenSet[str], counts: BucketCounts) -> bytes:
    """A bucket row's stored form: zlib-compressed JSON of its profile ids and counts."""
    document = {"profile_ids": sorted(ids), "counts": counts.to_dict()}
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"), 1)


def decode(data: bytes) -> Loaded:
    """The profile ids and counts of a stored bucket row."""
    document = json.loads(zlib.decompress(data))
    return frozenset(document["profile_ids"]), BucketCounts.from_dict(document["counts"])


class FoldSum:
    """Profiles added to a bucket as call-path folds of one index: counted into frame keys once,
    from their sum, when the bucket is read or written (the counts are linear in the folds'
    values), rather than per profile."""

    def __init__(self, index: PathIndex) -> None:
        self.index = index
        self.ids: Set[str] = set()
        self._folds: List[PathCounts] = []
        self._extra = BucketCounts()  # the profiles and their invocations

    def add(self, profile_id: str, counts: PathCounts, metadata: Mapping[str, Any]) -> None:
        """Add one profile's uncapped fold; ``metadata``: the profile's."""
        self.ids.add(profile_id)
        self._folds.append(counts)
        if len(self._folds) >= _MAX_FOLDS:
            self._folds = [merge_counts(self.index, self._folds)]
        part = BucketCounts(profiles=1)
        part.invocations, part.duration_ms = invocation_counts(metadata)
        self._extra.add(part)

    def counts(self) -> BucketCounts:
        """What the profiles add to their bucket (:func:`profile_counts` of each, summed)."""
        counted = path_counts(self.index, merge_counts(self.index, self._folds), {})
        if counted is None:  # not reached: folds are added uncapped and their sum is not capped
            raise ValueError("a capped fold was added to a bucket's series")
        counted.profiles = self._extra.profiles
        counted.invocations, counted.duration_ms = self._extra.invocations, self._extra.duration_ms
        return counted


@dataclass
class _Pending:
    """A bucket's adds not written yet: its row as read (``base``: the ids the database held), the
    profiles added since, and the counts this process reads (the row's plus theirs), some of them
    still as folds (``fold``) until :meth:`state` counts them."""

    since: float
    base: FrozenSet[str]
    rows: Dict[str, StoredProfile]
    counted: Loaded
    fold: Optional[FoldSum] = None

    def holds(self, profile_id: str) -> bool:
        return profile_id in self.counted[0] or (self.fold is not None and profile_id in self.fold.ids)

    def state(self) -> Loaded:
        """The bucket's ids and counts (the caller holds the store's write lock)."""
        if self.fold is not None:
            ids, counts = self.counted
            counts = counts.copy()  # readers may hold the earlier state
            counts.add(self.fold.counts())
            self.counted = (ids | frozenset(self.fold.ids), counts)
            self.fold = None
        return self.counted


@dataclass(frozen=True)
class NotedFold:
    """A profile's call-path fold as the ingest request made it, with the profile's metadata."""

    index: PathIndex
    counts: PathCounts
    metadata: Mapping[str, Any]


def folds_counted(folds: Iterable[Tuple[str, NotedFold]]) -> BucketCounts:
    """What profiles given as (id, fold) add to a bucket: their folds summed per call-path index,
    each sum counted into frame keys once."""
    sums: Dict[int, FoldSum] = {}
    for profile_id, noted in folds:
        sums.setdefault(id(noted.index), FoldSum(noted.index)).add(profile_id, noted.counts, noted.metadata)
    total = BucketCounts()
    for fold_sum in sums.values():
        total.add(fold_sum.counts())
    return total


class SeriesStore:
    """The ``series_buckets`` rows of one storage, with an in-memory copy of the buckets read.

    New profiles' counts are summed in memory and each changed row written at most once per
    :data:`FLUSH_DELAY_S` (:meth:`flush`, on the rollup worker's tick), rather than decoded and
    written again per profile; this process reads its unwritten sums. A profile whose sums die
    with the process (kill -9) is added again by the first read that wants it, as any profile
    missing from a row is.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._cache: Dict[Key, Loaded] = {}
        self._cache_bytes = 0
        self._lock = threading.Lock()
        self._pending: Dict[Key, _Pending] = {}
        self._write_lock = threading.RLock()
        #: A newly stored profile's fold as its request made it, by profile id (None: not kept), so
        #: that a read wanting a profile the rollup worker has not added yet does not decode it.
        self.fold_source: Optional[Callable[[str], Optional[NotedFold]]] = None

    # -- writing ------------------------------------------------------------------
    def add(self, row: StoredProfile, profile: Profile) -> None:
        """Add ``profile`` (the body of ``row``) to its bucket, once."""
        if profile.start_time_unix_ns > 0:  # else no window: the detector refuses such a profile itself
            self.add_counts(row, profile_counts(profile))

    def add_counts(self, row: StoredProfile, counts: BucketCounts) -> None:
        """Add the counts of ``row``'s profile (:func:`profile_counts` or :func:`path_counts`) to its
        bucket, once; written by a later :meth:`flush`."""
        if row.start_time_unix_ns > 0:
            self._add((row.group, row_bucket(row)), {row.id: (row, counts)})

    def add_fold(self, row: StoredProfile, index: PathIndex, counts: PathCounts, metadata: Mapping[str, Any]) -> None:
        """Add ``row``'s profile, given as its uncapped call-path fold of ``index`` (and its
        ``metadata``), to its bucket, once; counted into frame keys when the bucket is next read or
        written."""
        if row.start_time_unix_ns <= 0:
            return
        key = (row.group, row_bucket(row))
        with self._write_lock:
            pending = self._pending_for(key)
            if pending.holds(row.id):
                return
            if pending.fold is not None and pending.fold.index is not index:  # the group's index was renewed
                pending.state()
            if pending.fold is None:
                pending.fold = FoldSum(index)
            pending.fold.add(row.id, counts, metadata)
            pending.rows[row.id] = row
            self._pending[key] = pending

    def _add(self, key: Key, new: Dict[str, Tuple[StoredProfile, BucketCounts]]) -> Loaded:
        """Add the counts of ``new`` (by profile id) not yet in the bucket, in memory; the bucket after."""
        with self._write_lock:
            pending = self._pending_for(key)
            added = {profile_id: item for profile_id, item in new.items() if not pending.holds(profile_id)}
            if not added:
                return pending.state()
            ids, counts = pending.state()
            counts = counts.copy()  # readers may hold the earlier state
            for row, part in added.values():
                counts.add(part)
                pending.rows[row.id] = row
            pending.counted = (ids | frozenset(added), counts)
            self._pending[key] = pending
            return pending.counted

    def _pending_for(self, key: Key) -> _Pending:
        """The bucket's pending adds, or none yet over its row as stored (the caller holds the write lock)."""
        pending = self._pending.get(key)
        if pending is None:
            found = self._read(key[0], [key[1]]).get(key[1])
            loaded: Loaded = found if found is not None else (frozenset(), BucketCounts())
            pending = _Pending(time.monotonic(), loaded[0], {}, loaded)
        return pending

    def flush(self, everything: bool = False) -> None:
        """Write the rows changed at least :data:`FLUSH_DELAY_S` ago (``everything``: all changed)."""
        for _, key in self.due(everything):
            self.write(key)

    def due(self, everything: bool = False) -> List[Tuple[float, Key]]:
        """The rows changed at least :data:`FLUSH_DELAY_S` ago (``everything``: all changed), each
        with when it first changed (monotonic seconds)."""
        now = time.monotonic()
        with self._write_lock:
            return [(p.since, key) for key, p in self._pending.items() if everything or now - p.since >= FLUSH_DELAY_S]

    def write(self, key: Key) -> None:
        """Write a bucket's pending adds into its row (added to the row as it is now, when another
        process changed it since it was read); nothing when it has none."""
        group, start = key
        for attempt in range(_ADD_ATTEMPTS):
            try:
                with self._write_lock, self.storage.engine.begin() as conn:
                    pending = self._pending.get(key)
                    if pending is None:
                        return
                    found = read_row(conn, group, RESOLUTION_S, start)
                    ids, counts = pending.state()
                    stored_ids = found[0] if found is not None else frozenset()
                    if stored_ids != pending.base:
                        counts = found[1] if found is not None else BucketCounts()
                        for profile_id, row in pending.rows.items():
                            if profile_id not in stored_ids:
                                counts.add(self._counts(row))
                        ids = stored_ids | frozenset(pending.rows)
                    write_row(conn, group, RESOLUTION_S, start, ids, counts, found is not None)
                    del self._pending[key]
                self._remember(key, (ids, counts))
                return
            except IntegrityError:  # another process created the row first: add to its row
                if attempt == _ADD_ATTEMPTS - 1:
                    raise

    # -- reading ------------------------------------------------------------------
    def group_series(
        self,
        group: str,
        rows: Sequence[StoredProfile],
        resolution_s: int,
        structure_from: Sequence[Profile] = (),
        open_end: bool = False,
    ) -> GroupSeries:
        """The series of ``rows`` (one group's profiles) at ``resolution_s``, a multiple of 5 minutes
        (``open_end``: as :meth:`buckets`).

        Which frames are seen above which (for folding anomalies into their callers) is not
        stored: it is read from ``structure_from``, the run's recent profiles, already decoded.
        """
        if resolution_s % RESOLUTION_S:
            raise ValueError(f"stored series are summed from {RESOLUTION_S} s buckets, not {resolution_s} s")
        buckets = self.buckets(group, rows, open_end)
        return with_structure(series_from_buckets(group, resolution_s, buckets), structure_from)

    def buckets(self, group: str, rows: Sequence[StoredProfile], open_end: bool = False) -> Dict[int, BucketCounts]:
        """The 5-minute buckets of exactly the profiles ``rows``, reading stored rows where they match.

        ``open_end``: ``rows`` are a group's profiles up to now, so the last bucket is taken as it
        stands when it also holds profiles stored since ``rows`` were listed (a fleet keeps adding
        to the current bucket), rather than counted again from the listed profiles alone.
        """
        wanted: Dict[int, List[StoredProfile]] = {}
        for row in rows:
            wanted.setdefault(row_bucket(row), []).append(row)
        stored = self._loaded(group, wanted)
        last = max(wanted, default=None) if open_end else None
        return {
            start: self._bucket(group, start, members, stored.get(start), start == last)
            for start, members in wanted.items()
        }

    def _bucket(
        self, group: str, start: int, members: List[StoredProfile], stored: Optional[Loaded], open_end: bool = False
    ) -> BucketCounts:
        ids = frozenset(row.id for row in members)
        have, counts = stored if stored is not None else (frozenset(), BucketCounts())
        if have == ids or (open_end and ids < have):
            return counts
        if have <= ids:  # profiles not added yet: add them now, for every later run too
            missing = {row.id: (row, self._counts(row)) for row in self._add_noted(members, have)}
            added = self._add((group, start), missing)[1]
            self.write((group, start))
            return added
        # The row holds profiles outside the range (its edge, or profiles newer than the range's
        # list): this bucket from its profiles alone, from their requests' folds where at hand.
        return self._counted(members)

    def _counted(self, members: List[StoredProfile]) -> BucketCounts:
        """The counts of ``members`` alone: their folds (see :attr:`fold_source`) summed and counted
        once, the others counted from their bodies."""
        result = BucketCounts()
        folds: List[Tuple[str, NotedFold]] = []
        for row in members:
            noted = self._noted(row.id)
            if noted is not None:
                folds.append((row.id, noted))
            else:
                result.add(self._counts(row))
        result.add(folds_counted(folds))
        return result

    def _noted(self, profile_id: str) -> Optional[NotedFold]:
        return self.fold_source(profile_id) if self.fold_source is not None else None

    def _add_noted(self, members: List[StoredProfile], have: FrozenSet[str]) -> List[StoredProfile]:
        """Add the rows not in ``have`` whose request's fold is still at hand (see :attr:`fold_source`);
        the others, to be counted from their bodies."""
        rest = []
        for row in members:
            if row.id in have:
                continue
            noted = self._noted(row.id)
            if noted is not None and row.start_time_unix_ns > 0:
                self.add_fold(row, noted.index, noted.counts, noted.metadata)
            else:
                rest.append(row)
        return rest

    def _counts(self, row: StoredProfile) -> BucketCounts:
        return profile_counts(self.storage.load_profile(row))

    def _loaded(self, group: str, wanted: Dict[int, List[StoredProfile]]) -> Dict[int, Loaded]:
        """Each wanted bucket as stored: from memory when its ids match, else read from the database."""
        result: Dict[int, Loaded] = {}
        unread: List[int] = []
        pendings: Dict[int, _Pending] = {}
        with self._lock:
            for start, members in wanted.items():
                pending = self._pending.get((group, start))  # newer than the row: read as stored
                cached = self._cache.get((group, start))
                if pending is not None:
                    pendings[start] = pending
                elif cached is not None and cached[0] == frozenset(row.id for row in members):
                    result[start] = cached
                else:
                    unread.append(start)
        with self._write_lock:
            result.update((start, pending.state()) for start, pending in pendings.items())
        for start, loaded in self._read(group, unread).items():
            result[start] = loaded
            self._remember((group, start), loaded)
        return result

    def _read(self, group: str, starts: List[int]) -> Dict[int, Loaded]:
        b = series_buckets.c
        found: Dict[int, Loaded] = {}
        for chunk in _chunks(sorted(starts), 500):
            query = select(b.bucket_start_unix_s, b.counts).where(
                b.group_name == group,
                b.resolution_s == RESOLUTION_S,
                b.bucket_start_unix_s.in_(chunk),
            )
            with self.storage.engine.connect() as conn:
                for row in conn.execute(query):
                    found[int(row.bucket_start_unix_s)] = decode(bytes(row.counts))
        return found

    def _remember(self, key: Key, loaded: Loaded) -> None:
        """Keep ``loaded`` in memory, forgetting the buckets kept longest beyond CACHE_BYTES."""
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._cache_bytes -= loaded_bytes(old)
            self._cache[key] = loaded
            self._cache_bytes += loaded_bytes(loaded)
            while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
                self._cache_bytes -= loaded_bytes(self._cache.pop(next(iter(self._cache))))


def _row_where(group: str, resolution_s: int, start: int) -> ColumnElement[bool]:
    b = series_buckets.c
    return and_(b.group_name == group, b.resolution_s == resolution_s, b.bucket_start_unix_s == start)


def read_row(conn: Connection, group: str, resolution_s: int, start: int) -> Optional[Loaded]:
    """A stored bucket row, locked for update in ``conn``'s transaction; None if there is none."""
    b = series_buckets.c
    where = _row_where(group, resolution_s, start)
    found = conn.execute(select(b.counts).where(where).with_for_update()).scalar_one_or_none()
    return decode(bytes(found)) if found is not None else None


def write_row(
    conn: Connection,
    group: str,
    resolution_s: int,
    start: int,
    ids: FrozenSet[str],
    counts: BucketCounts,
    exists: bool,
) -> None:
    """Insert or replace (``exists``) a bucket row of ``counts`` naming the profiles ``ids``."""
    values = {"profile_count": counts.profiles, "counts": encode(ids, counts), "updated_unix_ns": time.time_ns()}
    if exists:
        conn.execute(series_buckets.update().where(_row_where(group, resolution_s, start)).values(**values))
    else:
        conn.execute(
            series_buckets.insert().values(
                group_name=group, resolution_s=resolution_s, bucket_start_unix_s=start, **values
            )
        )


def loaded_bytes(loaded: Loaded) -> int:
    """An estimate of the memory a bucket's ids and counts hold."""
    counts = loaded[1]
    entries = sum(map(len, counts.inclusive.values())) + sum(map(len, counts.self_counts.values()))
    return (entries + len(counts.library) + len(loaded[0])) * BYTES_PER_COUNT


def _chunks(items: List[int], size: int) -> List[List[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


_per_storage: weakref.WeakKeyDictionary[Storage, Dict[type, object]] = weakref.WeakKeyDictionary()
_per_storage_lock = threading.Lock()
T = TypeVar("T")


def per_storage(storage: Storage, kind: Type[T], make: Callable[[], T]) -> T:
    """The one ``kind`` object of ``storage`` in this process (``make()`` at the first call)."""
    with _per_storage_lock:
        made = _per_storage.setdefault(storage, {})
        if kind not in made:
            made[kind] = make()
        return cast(T, made[kind])


def series_for(storage: Storage) -> SeriesStore:
    """The series store of ``storage`` (one per storage, so its in-memory copy is shared)."""
    return per_storage(storage, SeriesStore, lambda: SeriesStore(storage))
