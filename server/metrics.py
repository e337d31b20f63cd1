"""The server's Prometheus metrics, declared once, and their text exposition for ``GET /metrics``.

Counters and histograms are updated where the work happens (ingest, analysis runs, rollups);
queue depths are read from the current app when scraped. They live in their own registry, so
several apps in one process (tests) share one set of series and nothing else is exported.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

T = TypeVar("T")

REGISTRY = CollectorRegistry(auto_describe=True)

INGESTED = Counter(
    "greenflame_ingest_reports", "Reports accepted by ingest (new ones, not retried duplicates)", registry=REGISTRY
)
INGESTED_BYTES = Counter(
    "greenflame_ingest_bytes", "Bytes of accepted report bodies, as received (compressed)", registry=REGISTRY
)
REJECTED = Counter(
    "greenflame_ingest_rejected", "Reports refused by ingest, by error code", ["reason"], registry=REGISTRY
)
ANALYSIS_SECONDS = Histogram(
    "greenflame_analysis_run_seconds",
    "Wall time of one group's analysis run",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
ROLLUP_LAG_SECONDS = Histogram(
    "greenflame_rollup_lag_seconds",
    "Time from a profile being stored to its rollups and series being written",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
ANALYSIS_QUEUE = Gauge("greenflame_analysis_queue_groups", "Groups waiting for their analysis run", registry=REGISTRY)
ROLLUP_QUEUE = Gauge("greenflame_rollup_queue_jobs", "Stored profiles waiting to be folded", registry=REGISTRY)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def timed(histogram: Histogram, work: Callable[[], T]) -> T:
    """Run ``work`` and record its wall time in ``histogram``, also when it raises."""
    start = time.monotonic()
    try:
        return work()
    finally:
        histogram.observe(time.monotonic() - start)


def lagged(histogram: Histogram, job: Callable[[], None]) -> Callable[[], None]:
    """``job`` wrapped to record, once it has run, how long after this call it finished."""
    queued = time.monotonic()

    def run() -> None:
        job()
        histogram.observe(time.monotonic() - queued)

    return run


def exposition(analysis_queue: int, rollup_queue: int) -> bytes:
    """The metrics in Prometheus text format, with the queue depths given."""
    ANALYSIS_QUEUE.set(analysis_queue)
    ROLLUP_QUEUE.set(rollup_queue)
    return generate_latest(REGISTRY)
