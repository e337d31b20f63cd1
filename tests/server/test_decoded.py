"""Decoded profiles are kept by id and shared between threads: a profile asked for again is not
decoded again; beyond the byte bound the least recently used go, and come back decoded anew."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from greenflame.server.decoded import DecodedProfiles, decoded_for, profile_bytes
from greenflame.server.storage import Storage
from tests.support.generated_profiles import random_profile
from tests.support.local_storage import local_storage


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    for opened in local_storage(tmp_path, "g"):
        rng = random.Random(1)
        for n in range(12):
            opened.add_profile("g", random_profile(rng, n, zero_start=0, malformed=False), None)
        yield opened


def test_profiles_are_decoded_once_and_equal_the_stored_ones(storage: Storage) -> None:
    rows = storage.find_profiles("g")
    decoded = DecodedProfiles(storage)
    first = decoded.load_all(rows)
    assert first == [storage.load_profile(row) for row in rows]
    again = decoded.load_all(rows)
    assert all(a is b for a, b in zip(first, again)) and decoded.decoded == len(rows)
    assert decoded_for(storage) is decoded_for(storage)


def test_beyond_the_bound_the_least_recently_used_are_decoded_again(storage: Storage) -> None:
    rows = storage.find_profiles("g")
    sizes = [profile_bytes(storage.load_profile(row)) for row in rows]
    decoded = DecodedProfiles(storage, capacity_bytes=sum(sizes[:3]))  # rows 0-2 fit
    decoded.load_all(rows[:3])
    decoded.load(rows[0])  # now the most recent
    decoded.load(rows[3])  # evicts row 1 (and row 2 if 3 is larger than 1)
    before = decoded.decoded
    decoded.load(rows[0])
    assert decoded.decoded == before
    assert decoded.load(rows[1]) == storage.load_profile(rows[1]) and decoded.decoded == before + 1


def test_threads_share_one_cache(storage: Storage) -> None:
    rows = storage.find_profiles("g")
    decoded = DecodedProfiles(storage)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: decoded.load_all(rows), range(8)))
    expected = [storage.load_profile(row) for row in rows]
    assert all(result == expected for result in results)
    assert len(rows) <= decoded.decoded <= 4 * len(rows)  # each at most once per thread racing for it
