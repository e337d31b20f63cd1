"""A storage on SQLite and a folder under a test's temporary path (the default storage)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List, TypeVar

import pytest

from greenflame.server.storage import Storage, StoredProfile

T = TypeVar("T")


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
    for name in ("load_profile", "load_summary"):
        monkeypatch.setattr(storage, name, _counted(getattr(storage, name), loaded))
    return loaded


def _counted(read: Callable[[StoredProfile], T], loaded: List[str]) -> Callable[[StoredProfile], T]:
    """``read``, noting in ``loaded`` the id of each row it reads."""

    def counted(row: StoredProfile) -> T:
        loaded.append(row.id)
        return read(row)

    return counted
