"""A storage on SQLite and a folder under a test's temporary path (the default storage)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from greenflame.server.storage import Storage


def local_storage(root: Path, *groups: str) -> Iterator[Storage]:
    """Open a storage in ``root`` with ``groups`` created, yield it, close it (a fixture's body)."""
    opened = Storage.open(f"sqlite:///{root / 'db.sqlite'}", str(root / "blobs"))
    for group in groups:
        opened.create_group(group)
    yield opened
    opened.close()
