"""Series finer than the stored 5-minute buckets, for anomaly detection over short profiles.

:func:`~greenflame.analyzer.anomalies.choose_resolution` picks the profiles' own window (one
minute, ten seconds) as the resolution when their rows span too little for 5-minute points: a
group's first hour, or a fleet whose newest rows cover minutes. The stored series
(:mod:`.series`) cannot give such points, and decoding every profile of the span for each
analysis run made the run's cost grow with the span instead of with what is new.

:class:`FineSeries` keeps each bucket's counts with the ids of the profiles it holds, as the stored
series do, so a run counts only the profiles it has not seen. A new profile is counted from the
call-path fold the ingest request made (:meth:`FineSeries.note_fold`), and a bucket's new folds
are counted into frame keys at once from their sum; a profile whose fold this process does not
have (a ``greenflame worker`` process, a fold capped at its path limit, one evicted) is counted
from its labelled rows (:mod:`.labelled`, read from its body once and shared with the window
merges) instead. Which frames are seen above which comes from the run's recent profiles, as for
the stored series.
"""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from greenflame.analyzer.model import Profile
from greenflame.analyzer.series_counts import BucketCounts
from greenflame.analyzer.timeseries import GroupSeries, bucket_start, series_from_buckets

from .callpaths import GroupIndexes, PathCounts, PathIndex
from .labelled import LabelledProfiles, indexes_for, labelled_for, unlabelled
from .lru import LruCache
from .series import NotedFold, folds_counted, loaded_bytes, per_storage, row_middle_s, series_for, with_structure
from .storage import Storage, StoredProfile

#: Memory for the folds noted at ingest (their arrays; about 22 KB for a report of 900 stacks).
FOLD_CACHE_BYTES = 64 * 1024 * 1024
#: Memory for the counted buckets, estimated as the stored series' buckets are.
BUCKET_CACHE_BYTES = 128 * 1024 * 1024

#: (group, resolution in seconds, bucket start in Unix seconds)
BucketKey = Tuple[str, int, int]
Counted = Tuple[FrozenSet[str], BucketCounts]


class FineSeries:
    """One storage's series at resolutions that are not multiples of its stored buckets; thread-safe."""

    def __init__(
        self,
        reports: LabelledProfiles,
        indexes: GroupIndexes,
        fold_bytes: int = FOLD_CACHE_BYTES,
        bucket_bytes: int = BUCKET_CACHE_BYTES,
    ) -> None:
        self.reports = reports
        self.indexes = indexes
        self._folds: LruCache[str, NotedFold] = LruCache(fold_bytes, cost=lambda noted: noted.counts.nbytes)
        self._buckets: LruCache[BucketKey, Counted] = LruCache(bucket_bytes, cost=loaded_bytes)
        #: Profiles counted from their noted folds and from their labelled rows, since made.
        self.counted_from_folds = 0
        self.counted_from_bodies = 0

    def note_fold(self, profile_id: str, index: PathIndex, counts: PathCounts, metadata: Mapping[str, Any]) -> None:
        """Remember a newly stored profile's fold (a capped one is of no use: its stacks are not all there)."""
        if not counts.capped:
            self._folds.put(profile_id, NotedFold(index, counts, metadata))

    def noted(self, profile_id: str) -> Optional[NotedFold]:
        """The fold noted for ``profile_id`` at ingest, while the cache keeps it."""
        return self._folds.get(profile_id)

    def group_series(
        self, group: str, rows: Sequence[StoredProfile], resolution_s: int, structure_from: Sequence[Profile] = ()
    ) -> GroupSeries:
        """The series of ``rows`` (one group's profiles with a time window) at ``resolution_s``;
        equal to :func:`~greenflame.analyzer.timeseries.group_series` of their profiles, the
        ancestors aside (taken from ``structure_from``)."""
        if resolution_s <= 0:
            raise ValueError(f"resolution must be positive, got {resolution_s}")
        wanted: Dict[int, List[StoredProfile]] = {}
        for row in rows:
            if row.start_time_unix_ns > 0:
                wanted.setdefault(bucket_start(row_middle_s(row), resolution_s), []).append(row)
        buckets = {start: self._bucket((group, resolution_s, start), members) for start, members in wanted.items()}
        return with_structure(series_from_buckets(group, resolution_s, buckets), structure_from)

    def _bucket(self, key: BucketKey, members: List[StoredProfile]) -> BucketCounts:
        """The bucket's counts: as kept when its ids are the wanted ones, the kept counts plus the
        profiles added since, or (a profile gone: retention) counted afresh."""
        ids = frozenset(row.id for row in members)
        kept = self._buckets.get(key)
        if kept is not None and kept[0] == ids:
            return kept[1]
        if kept is not None and kept[0] < ids:
            counts = kept[1].copy()  # another run may hold the kept counts
            counts.add(self._counts([row for row in members if row.id not in kept[0]]))
        else:
            counts = self._counts(members)
        self._buckets.put(key, (ids, counts))
        return counts

    def _counts(self, rows: Sequence[StoredProfile]) -> BucketCounts:
        """What ``rows`` add to a bucket: their folds summed per call-path index (noted at ingest, else
        made from the reports' labelled rows)."""
        folds: List[Tuple[str, NotedFold]] = []
        for row in rows:
            noted = self._folds.get(row.id)
            if noted is None:
                index = self.indexes.get(row.group)
                report = self.reports.load(index, row)
                noted = NotedFold(index, unlabelled(report), report.shell.metadata)
                self.counted_from_bodies += 1
            else:
                self.counted_from_folds += 1
            folds.append((row.id, noted))
        return folds_counted(folds)


def fine_series_for(storage: Storage) -> FineSeries:
    """The fine series of ``storage`` in this process (one per storage, over its labelled reports)."""
    reports = labelled_for(storage)  # first: per_storage's lock is not re-entrant
    indexes = indexes_for(storage)
    series = series_for(storage)
    fine = per_storage(storage, FineSeries, lambda: FineSeries(reports, indexes))
    series.fold_source = fine.noted  # the stored series read a fold the worker has not added yet
    return fine
