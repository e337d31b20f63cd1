"""Decoded profiles kept in memory by id, shared by every thread of the process.

Decoding a stored report (gunzip, JSON, one object per sample) costs about 5 ms for an 85 KB
report; the one-minute series of reports no request folded here (``fine_series``) and the
structure of windows mixing CPU and wall reports ask for the same recent profiles again (the
window merges read reports as labelled rows instead: ``labelled``). :class:`DecodedProfiles`
keeps them, one cache per storage, bounded by an estimate of their bytes; an evicted profile is
decoded again when next asked for. A stored profile never changes, so its id names its content
for good.

The profiles handed out are shared: callers must not change them (merge them into a new one).
"""

from __future__ import annotations

from typing import List, Sequence

from greenflame.analyzer.model import Profile

from .lru import LruCache
from .series import per_storage
from .storage import Storage, StoredProfile

#: Bound of the estimated bytes of the decoded profiles one storage keeps (about 100 of the
#: benchmark's 85 KB reports, 2.5 MB each in memory).
DECODED_CACHE_BYTES = 256 * 1024 * 1024
#: Estimated bytes of one frame (the object, its two strings, its index entry) and of one sample
#: (the object, its values, its labels, its index entry) besides 8 per stack entry; measured
#: with tracemalloc on the benchmark's reports (2.47 MB for 2,793 frames and 900 samples 30 deep).
FRAME_BYTES = 600
SAMPLE_BYTES = 400


def profile_bytes(profile: Profile) -> int:
    """An estimate of the memory ``profile`` holds (frames counted as its own)."""
    stack_entries = sum(len(sample.stack) for sample in profile.samples)
    return 1000 + FRAME_BYTES * len(profile.frames) + SAMPLE_BYTES * len(profile.samples) + 8 * stack_entries


class DecodedProfiles:
    """One storage's decoded profiles, least recently used evicted beyond ``capacity_bytes``; thread-safe."""

    def __init__(self, storage: Storage, capacity_bytes: int = DECODED_CACHE_BYTES) -> None:
        self.storage = storage
        self.cache: LruCache[str, Profile] = LruCache(capacity_bytes, cost=profile_bytes)
        #: Profiles decoded since made (the others came from memory).
        self.decoded = 0

    def load(self, row: StoredProfile) -> Profile:
        """The body of ``row``, from memory or decoded now (and kept)."""
        found = self.cache.get(row.id)
        if found is None:
            found = self.storage.load_profile(row)
            self.decoded += 1
            self.cache.put(row.id, found)
        return found

    def load_all(self, rows: Sequence[StoredProfile]) -> List[Profile]:
        """The bodies of ``rows``, in order."""
        return [self.load(row) for row in rows]


def decoded_for(storage: Storage) -> DecodedProfiles:
    """The decoded profiles of ``storage`` in this process (one cache per storage)."""
    return per_storage(storage, DecodedProfiles, lambda: DecodedProfiles(storage))
