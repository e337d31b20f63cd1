"""Which garbage collections ran inside given functions: a ``gc.callbacks`` hook for the agent's tests."""

from __future__ import annotations

import gc
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Set


@dataclass
class Collections:
    """What the hook saw: every collection, and those inside the functions watched (their names)."""

    total: int = 0
    inside: List[List[str]] = field(default_factory=list)


@contextmanager
def collections_inside(functions: Set[str], threshold: int = 1) -> Iterator[Collections]:
    """Collect at nearly every allocation (generation 0 at ``threshold``) and count the collections,
    noting those that started while one of ``functions`` (code names) was on the collecting
    thread's stack; the collector's settings are restored after."""
    seen = Collections()

    def watch(phase: str, info: Dict[str, Any]) -> None:
        if phase != "start":
            return
        seen.total += 1
        names = set()
        frame = sys._getframe(1)  # the collecting thread's own frames: safe to read
        while frame is not None:
            names.add(frame.f_code.co_name)
            frame = frame.f_back
        if names & functions:
            seen.inside.append(sorted(names & functions))

    saved = gc.get_threshold()
    gc.callbacks.append(watch)
    gc.set_threshold(threshold, *saved[1:])
    try:
        yield seen
    finally:
        gc.set_threshold(*saved)
        gc.callbacks.remove(watch)
