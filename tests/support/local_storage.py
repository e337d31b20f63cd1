"""A storage on SQLite and a folder under a test's temporary path (the default storage)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest

from greenflame.analyzer.model import Profile
from greenflame.server.storage import Storage, StoredProfile


def local_storage(root: Path, *groups: str) -> Iterator[Storage]:
    """Open a storage in ``root`` with ``groups`` created, yield it, close it (a fixture's body)."""
    opened = Storage.open(f"sqlite:///{root / 'db.sqlite'}", str(root / "blobs"))
    for group in groups:
        opened.create_group(group)
    yield opened
    opened.close()


def count_loads(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """The ids of the profiles ``storage`` decodes from now on, in order (the list grows as it does)."""
    loaded: List[str] = []
    original = storage.load_profile

    def load(row: StoredProfile) -> Profile:
        loaded.append(row.id)
        return original(row)

    monkeypatch.setattr(storage, "load_profile", load)
    return loaded
