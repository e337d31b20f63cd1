"""Reading stored buckets into a call-path index: lookups by hash and two readers at once."""

from __future__ import annotations

import random
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import numpy as np

from greenflame.analyzer.model import CPU, Frame, Profile
from greenflame.analyzer.tree import prune_paths
from greenflame.server.callpaths import PathIndex, decode, encode, fold_profile, merge_counts, path_tree
from greenflame.server.rollups import HOUR_NS, Rollups, bucket_blob_key
from greenflame.server.storage import Storage


def service_profiles(count: int, seed: int) -> List[Profile]:
    """Profiles drawing deep stacks from one pool, as a service's reports do."""
    rng = random.Random(seed)
    frames = [Frame(f"f{n}", f"mod{n % 7}.py", n) for n in range(60)]
    pool = [tuple(rng.choice(frames) for _ in range(rng.randint(3, 12))) for _ in range(80)]
    profiles = []
    for n in range(count):
        profile = Profile(group="g", start_time_unix_ns=n * 300 * 10**9, duration_ns=300 * 10**9)
        for stack in rng.sample(pool, 30):
            wall = rng.randint(1, 9)
            profile.add(list(stack), [wall, rng.randint(0, wall)])
        profiles.append(profile)
    return profiles


def stored_bucket(profiles: List[Profile]) -> bytes:
    writer = PathIndex()
    return encode(writer, merge_counts(writer, [fold_profile(writer, profile) for profile in profiles]))


class RacedIndex(PathIndex):
    """An index in which another reader interns the same bucket while this one is about to add
    the paths it found missing (after its second lookup that misses: the first is of the
    bucket's stacks, the second of all its paths), as the start-up warm-up does while a request
    decodes the same hour."""

    def __init__(self, other_reader_reads: bytes) -> None:
        super().__init__()
        self.other = other_reader_reads
        self.misses = 0

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        found = super().lookup(hashes)
        if (found < 0).any():
            self.misses += 1
            if self.misses == 2:
                decode(self, self.other)  # the other reader finishes first
        return found


def test_a_bucket_interned_by_another_reader_meanwhile_is_not_added_twice() -> None:
    blob = stored_bucket(service_profiles(6, seed=1))
    alone = PathIndex()
    expected = decode(alone, blob)
    raced = RacedIndex(blob)
    counts = decode(raced, blob)  # before: "its stacks' hashes do not match its tree", then a rebuild
    assert raced.misses >= 2
    assert len(raced) == len(alone)  # no path twice
    tree = prune_paths(path_tree(raced, counts, CPU), 10**6)
    assert tree == prune_paths(path_tree(alone, expected, CPU), 10**6)


def test_lookups_find_paths_added_after_the_sorted_snapshot() -> None:
    index = PathIndex()
    profiles = service_profiles(8, seed=2)
    first = fold_profile(index, profiles[0])
    assert (index.lookup(np.asarray([index.hashes[p] for p in first.ids.tolist()])) == first.ids).all()
    later = [fold_profile(index, profile) for profile in profiles[1:]]  # added after the snapshot
    ids = np.concatenate([counts.ids for counts in later])
    hashes = np.asarray([index.hashes[p] for p in ids.tolist()], dtype=np.int64)
    assert (index.lookup(hashes) == ids).all()
    unknown = np.asarray([12345, -6789], dtype=np.int64)
    assert index.lookup(unknown).tolist() == [-1, -1]
    assert (index.lookup(np.asarray(index.hashes, dtype=np.int64)) == np.arange(len(index))).all()


def waiting(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside an ``Event.wait`` now."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "wait":
            return True
        frame = frame.f_back
    return False


def test_a_bucket_two_threads_want_at_once_is_read_once(tmp_path: Path) -> None:
    storage = Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "blobs"))
    try:
        rollups = Rollups(storage)
        key = ("g", HOUR_NS, 1)
        writer = PathIndex()
        counts = merge_counts(writer, [fold_profile(writer, p) for p in service_profiles(3, seed=3)])
        storage.blobs.put(bucket_blob_key(key), encode(writer, replace(counts, members=frozenset({"a", "b", "c"}))))
        reads: List[str] = []
        other: List[Optional[object]] = []
        real_get = storage.blobs.get

        def get(blob_key: str) -> bytes:
            reads.append(blob_key)
            if len(reads) == 1:  # while the first reader reads, the warm-up (say) wants the same bucket
                thread = threading.Thread(target=lambda: other.append(rollups._stored(rollups.index("g"), key)))
                thread.start()
                deadline = time.monotonic() + 30
                while thread.is_alive() and not waiting(thread) and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert waiting(thread)  # before: it read the blob itself, and had finished
                get.thread = thread  # type: ignore[attr-defined]
            return real_get(blob_key)

        storage.blobs.get = get  # type: ignore[method-assign]
        first = rollups._stored(rollups.index("g"), key)
        get.thread.join(30)  # type: ignore[attr-defined]
        assert first is not None and first.members == {"a", "b", "c"}
        assert reads == [bucket_blob_key(key)]
        assert other == [first]
    finally:
        storage.close()


def test_the_warm_up_does_not_read_again_what_a_request_read_first(tmp_path: Path) -> None:
    storage = Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "blobs"))
    try:
        storage.create_group("g")
        rollups = Rollups(storage)
        now_ns = 10 * HOUR_NS
        key = ("g", HOUR_NS, 9)
        writer = PathIndex()
        counts = merge_counts(writer, [fold_profile(writer, p) for p in service_profiles(2, seed=4)])
        storage.blobs.put(bucket_blob_key(key), encode(writer, replace(counts, members=frozenset({"a", "b"}))))
        assert rollups._stored(rollups.index("g"), key) is not None  # a first request read it
        reads: List[str] = []
        real_get = storage.blobs.get

        def get(blob_key: str) -> bytes:
            reads.append(blob_key)
            return real_get(blob_key)

        storage.blobs.get = get  # type: ignore[method-assign]
        rollups._warm(now_ns - 2 * HOUR_NS, now_ns)
        assert reads and bucket_blob_key(key) not in reads  # the others were looked for, that one not
    finally:
        storage.close()
