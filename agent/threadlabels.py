"""Labels attached to the samples of one thread while it is inside a ``labels(...)`` block.

The sampler reads other threads' labels, which context variables cannot offer, so labels are
kept per thread identifier in a plain dict (reads and writes of one key are atomic under the
GIL). Tasks of one asyncio loop share their thread, hence its labels.
"""

from __future__ import annotations

import threading
from typing import Dict, Iterator, Tuple

LabelKey = Tuple[Tuple[str, str], ...]

_by_thread: Dict[int, LabelKey] = {}


def get(thread_id: int) -> LabelKey:
    """The labels active on thread ``thread_id`` (sorted key/value pairs, empty when none)."""
    return _by_thread.get(thread_id, ())


def push(labels: Dict[str, object]) -> Tuple[int, LabelKey]:
    """Add ``labels`` (values made text) to the current thread's; returns the token for :func:`pop`."""
    thread_id = threading.get_ident()
    previous = _by_thread.get(thread_id, ())
    merged = dict(previous)
    merged.update((str(key), str(value)) for key, value in labels.items())
    _by_thread[thread_id] = tuple(sorted(merged.items()))
    return thread_id, previous


def pop(token: Tuple[int, LabelKey]) -> None:
    """Restore the labels the thread had before the matching :func:`push`."""
    thread_id, previous = token
    if previous:
        _by_thread[thread_id] = previous
    else:
        _by_thread.pop(thread_id, None)


def keep_only(thread_ids: Iterator[int]) -> None:
    """Forget the labels of threads not in ``thread_ids`` (after fork, for example)."""
    alive = set(thread_ids)
    for thread_id in list(_by_thread):
        if thread_id not in alive:
            _by_thread.pop(thread_id, None)
