"""Reads that answer in time: a fresh answer when it is quick, else the last one, a few seconds old.

A flame graph of the last hour costs tens of milliseconds alone, but seconds while ingest keeps
the interpreter busy (every thread of the process shares one lock). :class:`TimelyReads` computes
each answer on its own threads and waits for it up to a deadline: when it is ready in time (a
quiet server: always) the request gets it; when it is not and the same question was answered at
most ``max_stale_s`` ago, the request gets that answer with its ``Age`` (RFC 9111), while the
fresh one goes on and replaces it when done. When the last two answers to the question each
took longer than the deadline, the request does not wait at all: under sustained load the fresh
one would be late too, and waiting would only add the deadline to every read (one slow answer
alone, such as a cold first read, does not count: the next may well be quick). Under that load
a question is also computed again at most once per ``refresh_s``: each computation takes the
interpreter from ingest, and a dashboard polling every half second would otherwise keep one
running all the time. A request with ``Cache-Control: no-cache`` waits for a fresh answer. One
computation runs per question at a time: concurrent requests share it.

Questions are keyed by everything that shapes the answer (the route, the group and when it was
made, the parameters as sent, a relative range included: "now-1h" is resolved when computed).
Who may ask is checked before a request gets here, so an answer serves every caller allowed
to read its group.
"""

from __future__ import annotations

import gzip
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Dict, Hashable, Optional, Tuple

from flask import Flask, current_app

from .context import get_settings
from .delivery import COMPRESS_MIN_BYTES
from .lru import LruCache

#: Bound of the bytes of the last answers kept (each is a finished JSON body).
ANSWER_CACHE_BYTES = 64 * 1024 * 1024
#: Threads computing answers: one per question at a time, this many questions at once.
ANSWER_THREADS = 2
EXTENSION_KEY = "greenflame.timely_reads"
#: As Flask-Compress compresses the other responses (its default level).
GZIP_LEVEL = 6
#: A request takes the last answer without waiting once this many answers in a row were late.
LATE_IN_ROW = 2


@dataclass(frozen=True)
class Answer:
    """A finished response body, when its computation started (monotonic seconds), the body
    gzipped for the requests that accept it (None below the size worth compressing), and how
    many answers to its question in a row, this one included, took longer than the deadline."""

    body: bytes
    started: float
    gzipped: Optional[bytes] = None
    late_in_row: int = 0


def _answer_bytes(answer: Answer) -> int:
    return len(answer.body) + len(answer.gzipped or b"")


class TimelyReads:
    """Answers computed on helper threads, served fresh within ``deadline_s`` or else up to ``max_stale_s`` old.

    ``refresh_s``: while a question's answers are late in a row, the last one is served without a
    new computation until it is this old (at most ``max_stale_s``; 0: a new one for every request).
    """

    def __init__(
        self,
        deadline_s: float,
        max_stale_s: float,
        refresh_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        threads: int = ANSWER_THREADS,
        capacity_bytes: int = ANSWER_CACHE_BYTES,
        gzip_from_bytes: Optional[int] = None,
    ) -> None:
        self.deadline_s = deadline_s
        self.max_stale_s = max_stale_s
        self.refresh_s = min(refresh_s, max_stale_s)
        self._clock = clock
        self._gzip_from_bytes = gzip_from_bytes
        self._answers: LruCache[Hashable, Answer] = LruCache(capacity_bytes, cost=_answer_bytes)
        self._running: Dict[Hashable, Future[Answer]] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="greenflame-read")
        #: Answers served stale since made (the others were fresh).
        self.stale_served = 0

    def answer(self, key: Hashable, compute: Callable[[], bytes], fresh: bool = False) -> Tuple[Answer, float]:
        """The answer for ``key`` and its age in seconds (0 when computed for this request).

        ``compute`` runs on a helper thread (its exception is raised here when the request
        waits for it); with ``fresh`` it runs on the caller's thread, started now, whatever
        it takes.
        """
        if fresh:
            return self._compute(key, compute), 0.0
        asked = self._clock()
        last = self._answers.get(key) if self.max_stale_s > 0 else None
        if last is not None and last.late_in_row >= LATE_IN_ROW and asked - last.started < self.refresh_s:
            return self._stale(last, asked)
        with self._lock:
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = self._executor.submit(self._compute_shared, key, compute)
        wait_s = None if last is None else (0.0 if last.late_in_row >= LATE_IN_ROW else self.deadline_s)
        try:
            made = running.result(timeout=wait_s)
        except FutureTimeout:
            assert last is not None
            age = self._clock() - last.started
            if age > self.max_stale_s:
                made = running.result()
            else:
                return self._stale(last, self._clock())
        joined = made.started < asked  # a computation started before this request is as old as its start
        return made, self._clock() - made.started if joined else 0.0

    def _stale(self, last: Answer, now: float) -> Tuple[Answer, float]:
        with self._lock:
            self.stale_served += 1
        return last, now - last.started

    def _compute_shared(self, key: Hashable, compute: Callable[[], bytes]) -> Answer:
        try:
            return self._compute(key, compute)
        finally:
            with self._lock:
                self._running.pop(key, None)

    def _compute(self, key: Hashable, compute: Callable[[], bytes]) -> Answer:
        started = self._clock()
        body = compute()
        small = self._gzip_from_bytes is None or len(body) < self._gzip_from_bytes
        gzipped = None if small else gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        late = self._clock() - started > self.deadline_s
        with self._lock:  # the newest answer stays, whichever finishes last
            last = self._answers.get(key)
            previous = last.late_in_row if last is not None else 0
            answer = Answer(body, started, gzipped, previous + 1 if late else 0)
            if last is None or last.started <= started:
                self._answers.put(key, answer)
        return answer

    def close(self, wait: bool = False) -> None:
        """Stop taking work; computations in progress finish on their threads (awaited with ``wait``)."""
        self._executor.shutdown(wait=wait)


def get_timely_reads() -> TimelyReads:
    """The current app's timely reads (made by :func:`init_app`)."""
    reads: TimelyReads = current_app.extensions[EXTENSION_KEY]
    return reads


def init_app(app: Flask) -> None:
    """Give ``app`` its timely reads, with the deadline, staleness and refresh of its settings."""
    with app.app_context():
        settings = get_settings()
    app.extensions[EXTENSION_KEY] = TimelyReads(
        settings.read_deadline_ms / 1000,
        settings.read_max_stale_s,
        settings.read_refresh_s,
        gzip_from_bytes=COMPRESS_MIN_BYTES,
    )


def close_app(app: Flask) -> None:
    """At shutdown: ``app``'s timely reads take no more work."""
    app.extensions[EXTENSION_KEY].close()


def in_app_context(app: Flask, compute: Callable[[], bytes]) -> Callable[[], bytes]:
    """``compute`` run inside ``app``'s context (for a helper thread)."""

    def run() -> bytes:
        with app.app_context():
            return compute()

    return run


def age_header(age_s: float) -> Optional[str]:
    """The ``Age`` header value for an answer ``age_s`` old (None for a fresh one)."""
    return str(int(age_s)) if age_s > 0 else None
