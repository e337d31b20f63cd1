"""Matched ingest keys are remembered for a while (server/known_keys.py), never a key that did not match."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Connection

from greenflame.server.known_keys import KnownKeys
from greenflame.server.schema import groups
from greenflame.server.storage import Storage, hash_key
from tests.support.local_storage import local_storage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    yield from local_storage(tmp_path)


def test_a_match_is_trusted_for_its_time_then_forgotten() -> None:
    clock = Clock()
    keys = KnownKeys(trust_s=60, clock=clock)
    keys.remember("h1", "svc")
    clock.now += 59.9
    assert keys.group("h1") == "svc"
    clock.now += 0.1
    assert keys.group("h1") is None
    assert keys.group("unknown") is None


def test_the_table_starts_again_when_full() -> None:
    keys = KnownKeys(max_keys=3, clock=Clock())
    for n in range(3):
        keys.remember(f"h{n}", f"g{n}")
    keys.remember("h3", "g3")
    assert [keys.group(f"h{n}") for n in range(4)] == [None, None, None, "g3"]


def rekey(storage: Storage, group: str, new_key: str) -> None:
    with storage.engine.begin() as conn:
        conn.execute(update(groups).where(groups.c.name == group).values(ingest_key_sha256=hash_key(new_key)))


def count_queries(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> List[int]:
    asked: List[int] = []
    connect = storage.engine.connect

    def counted() -> Connection:
        asked.append(1)
        return connect()

    monkeypatch.setattr(storage.engine, "connect", counted)
    return asked


def test_a_matched_key_is_not_looked_up_again_until_its_trust_ends(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    storage.known_keys = KnownKeys(trust_s=60, clock=clock)
    key = storage.create_group("svc")
    asked = count_queries(storage, monkeypatch)
    assert [storage.group_for_key(key) for _ in range(3)] == ["svc"] * 3
    assert len(asked) == 1
    rekey(storage, "svc", "gfi_replaced-by-hand")  # the server never does this; an operator might
    assert storage.group_for_key(key) == "svc"  # still trusted
    clock.now += 60
    assert storage.group_for_key(key) is None
    assert storage.group_for_key("gfi_replaced-by-hand") == "svc"


def test_an_unknown_key_is_asked_about_every_time_so_a_new_group_is_found_at_once(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = count_queries(storage, monkeypatch)
    assert storage.group_for_key("gfi_not-yet") is None
    assert storage.group_for_key("gfi_not-yet") is None
    assert len(asked) == 2
    storage.create_group("late")
    rekey(storage, "late", "gfi_not-yet")
    assert storage.group_for_key("gfi_not-yet") == "late"
