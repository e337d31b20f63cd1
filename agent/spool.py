"""The service spool: a bounded :class:`~greenflame.agent.diskqueue.DiskQueue` of reports that
could not reach the server, used by the HTTP exporter in on-failure mode.

Each undelivered report is kept as its gzip-compressed body in one file named
``<unix ns>-<idempotency key>.json.gz``, so a replay sends the same bytes with the same key and
the server stores it once. The spool holds at most ``max_bytes``: the oldest reports are removed
first and each removal is counted as ``spool_full``; a report that cannot be written is counted
as ``spool_failed``, a replay the server refuses for good as ``spool_rejected``. Processes may
share a spool directory (files are claimed by renaming them).
"""

from __future__ import annotations

import os

from .diskqueue import DiskQueue, safe_segment
from .drops import DropCounter


def default_directory(group: str) -> str:
    """``<temp dir>/greenflame-spool-<uid>/<group>``: private to the user, one per group."""
    import tempfile

    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"greenflame-spool-{uid}", safe_segment(group))


class Spool(DiskQueue):
    """Reports waiting for the server, oldest first, within ``max_bytes`` on disk."""

    def __init__(self, directory: str, max_bytes: int, drops: DropCounter) -> None:
        super().__init__(directory, drops, "spool", max_bytes=max_bytes)
