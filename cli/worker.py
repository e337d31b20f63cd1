"""``greenflame worker [--db URL] [--blobs URL]``: analyse groups in a process of its own."""

from __future__ import annotations

import argparse
from typing import Any


def register(verbs: Any) -> None:
    """Add ``worker`` to the command line."""
    worker = verbs.add_parser(
        "worker", help="analyse groups with new data, beside servers started with GREENFLAME_ANALYSIS=workers"
    )
    worker.add_argument("--db", metavar="URL", help="database URL (default: as `greenflame serve`)")
    worker.add_argument("--blobs", metavar="URL", help="profile storage (default: as `greenflame serve`)")
    worker.set_defaults(run_verb=_worker)


def _worker(args: argparse.Namespace) -> int:
    from greenflame.server.worker import run_worker

    return run_worker(db=args.db, blobs=args.blobs)
