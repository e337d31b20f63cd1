"""Reading stored buckets into a call-path index: lookups by hash and two readers at once."""

from __future__ import annotations

import random
from typing import List

import numpy as np

from greenflame.analyzer.model import CPU, Frame, Profile
from greenflame.analyzer.tree import prune_paths
from greenflame.server.callpaths import PathIndex, decode, encode, fold_profile, merge_counts, path_tree


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
