"""The storage's index rows and bodies (server/storage.py): a retried report is stored once."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest
from support.server import make_profile

from greenflame.analyzer.model import Profile
from greenflame.server.events import ProfileStored, profile_stored
from greenflame.server.storage import Storage
from tests.support.local_storage import local_storage

T0_NS = 1_700_000_000 * 10**9


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    yield from local_storage(tmp_path, "svc", "other")


def report(group: str, minute: int) -> Profile:
    return make_profile(group, T0_NS + minute * 60 * 10**9)


def bodies(root: Path) -> List[Path]:
    return sorted((root / "blobs" / "profiles").rglob("*.json.gz"))


def test_a_retried_report_is_stored_once_and_leaves_one_body(storage: Storage, tmp_path: Path) -> None:
    announced: List[str] = []

    def note(_sender: object, profile: ProfileStored) -> None:
        announced.append(profile.profile_id)

    profile_stored.connect(note)
    try:
        first_id, first_duplicate = storage.add_profile("svc", report("svc", 0), "key-1")
        again_id, again_duplicate = storage.add_profile("svc", report("svc", 0), "key-1")
        other_id, other_duplicate = storage.add_profile("other", report("other", 0), "key-1")  # keys are per group
        plain = [storage.add_profile("svc", report("svc", 1), None)[0] for _ in range(2)]  # no key: each is new
    finally:
        profile_stored.disconnect(note)
    assert (again_id, first_duplicate, again_duplicate) == (first_id, False, True)
    assert other_id != first_id and not other_duplicate
    assert announced == [first_id, other_id, *plain]
    assert [row.id for row in storage.find_profiles("svc")] == [first_id, *sorted(plain)]
    assert len(bodies(tmp_path)) == 4  # the retry's body was removed again
