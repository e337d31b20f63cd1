"""A storage on SQLite and a folder under a test's temporary path (the default storage)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest

from greenflame.analyzer.formats.wire_summary import DocumentSummary
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
    """The ids of the profiles ``storage`` reads from their bodies from now on (as profiles or as
    checked documents), in order (the list grows as it does)."""
    loaded: List[str] = []
    original = storage.load_profile

    def load(row: StoredProfile) -> Profile:
        loaded.append(row.id)
        return original(row)

    original_summary = storage.load_summary

    def load_summary(row: StoredProfile) -> DocumentSummary:
        loaded.append(row.id)
        return original_summary(row)

    monkeypatch.setattr(storage, "load_profile", load)
    monkeypatch.setattr(storage, "load_summary", load_summary)
    return loaded
