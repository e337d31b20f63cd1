"""Ingest keys already matched to their group, so that a report costs no database query for its key.

Every ingest request presents a key; looking its hash up in the database was a round trip per
report, and under load the query waited on the interpreter lock as long as the rest of the report
took. The server never changes or deletes a group's key, so a match stays true; an entry is still
trusted for :data:`TRUST_S` only, so a row changed by hand (or by another tool) takes effect within
that time in every process. Only matches are kept: a key the database does not know is asked about
every time, so a group created a moment ago (in any process) is found at once.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional, Tuple

#: How long a matched key is trusted before the database is asked again (seconds).
TRUST_S = 60.0
#: The most keys remembered; past it the table starts again empty.
MAX_KEYS = 10_000


class KnownKeys:
    """Key hash -> group, each entry trusted for ``trust_s`` seconds of ``clock``."""

    def __init__(
        self, trust_s: float = TRUST_S, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._trust_s = trust_s
        self._max_keys = max_keys
        self._clock = clock
        self._entries: Dict[str, Tuple[str, float]] = {}
        self._lock = threading.Lock()

    def group(self, key_hash: str) -> Optional[str]:
        """The group ``key_hash`` matched less than ``trust_s`` ago, else None."""
        found = self._entries.get(key_hash)
        if found is None or self._clock() >= found[1]:
            return None
        return found[0]

    def remember(self, key_hash: str, group: str) -> None:
        """Note that ``key_hash`` is ``group``'s key, as the database said just now."""
        with self._lock:
            if len(self._entries) >= self._max_keys:
                self._entries.clear()
            self._entries[key_hash] = (group, self._clock() + self._trust_s)
