"""The storage's ``profile_stored`` signal: sent once per new profile, heard by its own app only."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List

import pytest
from flask import Flask
from support.builders import lambda_profile

from greenflame.server.app import create_app, shut_down
from greenflame.server.events import ProfileStored, disconnect_app, profile_stored
from greenflame.server.pipeline_worker import get_scheduler
from greenflame.server.rollups import get_rollups
from greenflame.server.storage import Storage, get_storage

GROUP = "orders"
#: Long enough that a notified group stays pending while the test looks (the thread never runs it).
HOUR_MS = 3_600_000


@pytest.fixture()
def apps(tmp_path: Path) -> Iterator[List[Flask]]:
    """Two apps in one process, each on its own data folder, with their pipelines stopped after."""
    made = []
    for name in ("a", "b"):
        app = create_app({"data_dir": str(tmp_path / name), "admin_token": "t", "analysis_delay_ms": HOUR_MS})
        storage_of(app).create_group(GROUP)
        made.append(app)
    yield made
    for app in made:
        assert shut_down(app, 60)


def storage_of(app: Flask) -> Storage:
    with app.app_context():
        return get_storage()


def folded(app: Flask) -> int:
    """How many profiles the app's rollups folded, once their worker is idle."""
    with app.app_context():
        rollups = get_rollups(get_storage())
        assert rollups.worker.drain(60)
        return len(rollups.profiles._items)


def test_storing_through_storage_alone_reaches_rollups_and_the_pipeline(apps: List[Flask]) -> None:
    app = apps[0]
    storage_of(app).add_profile(GROUP, lambda_profile(), None)  # no request, no app context
    assert get_scheduler(app).pending == 1
    assert folded(app) == 1


def test_an_apps_receivers_do_not_hear_another_apps_storage(apps: List[Flask]) -> None:
    first, second = apps
    storage_of(first).add_profile(GROUP, lambda_profile(), None)
    assert (get_scheduler(first).pending, folded(first)) == (1, 1)
    assert (get_scheduler(second).pending, folded(second)) == (0, 0)


def test_a_disconnected_app_hears_nothing(apps: List[Flask]) -> None:
    app = apps[0]
    disconnect_app(app)
    storage_of(app).add_profile(GROUP, lambda_profile(), None)
    assert (get_scheduler(app).pending, folded(app)) == (0, 0)


def test_one_event_per_new_profile_with_its_row_and_none_for_a_retry(tmp_path: Path) -> None:
    storage = Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "blobs"))
    storage.create_group(GROUP)
    heard: List[ProfileStored] = []

    def receiver(sender: Any, profile: ProfileStored) -> None:
        assert sender is storage
        heard.append(profile)

    profile = lambda_profile()
    with profile_stored.connected_to(receiver, sender=storage):
        profile_id, _ = storage.add_profile(GROUP, profile, "key-1")
        again, duplicate = storage.add_profile(GROUP, profile, "key-1")
    assert (again, duplicate) == (profile_id, True)
    (event,) = heard
    (row,) = storage.find_profiles(GROUP)
    assert event == ProfileStored(
        group=GROUP,
        profile_id=profile_id,
        start_time_unix_ns=profile.start_time_unix_ns,
        end_time_unix_ns=profile.start_time_unix_ns + profile.duration_ns,
        received_unix_ns=row.received_unix_ns,
        blob_key=row.blob_key,
    )
    assert event.duration_ns == profile.duration_ns == row.duration_ns
    assert storage.load_profile(row).samples == profile.samples  # the event follows the stored body
