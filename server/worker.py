"""``greenflame worker``: analysis runs in a process of their own, beside any number of servers.

A worker opens the same database and blob store as the servers, and every
``GREENFLAME_WORKER_POLL_S`` seconds asks the database which groups have data their last
analysis did not cover (:meth:`.pipeline_store.PipelineStore.stale_groups`: new profiles, or a
re-analysis asked for through the API). It analyses them on ``GREENFLAME_ANALYSIS_WORKERS``
threads. Workers and servers coordinate through the group's lease in ``analysis_state``
(:meth:`.pipeline_store.PipelineStore.acquire`): one process at a time analyses a group, so
any number of workers can run, on one machine or many. Servers started with
``GREENFLAME_ANALYSIS=workers`` leave every run to them.

SIGTERM or SIGINT stops the worker after its running analyses finish (up to
:data:`.pipeline_worker.STOP_TIMEOUT_S`); a run cut short by a kill keeps its lease until it
expires, and another worker then takes the group.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Optional

from . import collector
from .logs import configure_process_logging
from .pipeline_worker import build_pipeline, build_scheduler
from .settings import Settings
from .shutdown import stop_on_signals
from .storage import Storage

log = logging.getLogger(__name__)


def run_worker(db: Optional[str] = None, blobs: Optional[str] = None) -> int:
    """Analyse stale groups until SIGTERM or SIGINT; arguments given override the settings."""
    settings = Settings.from_env({"database_url": db, "blobs_url": blobs})
    configure_process_logging(settings.log_format)
    storage = Storage.open(settings.resolved_database_url(), settings.resolved_blobs_url())
    # The database says which groups are due; a notification delay would only add to it.
    scheduler = build_scheduler(
        build_pipeline(settings, storage), replace(settings, analysis_delay_ms=0), float(settings.worker_poll_s)
    )
    collector.tune(settings.gc_young_threshold)
    stop = threading.Event()
    with stop_on_signals(stop):
        scheduler.start()
        where = storage.engine.url.render_as_string(hide_password=True)
        print(f"greenflame worker analysing groups of {where} every {settings.worker_poll_s} s", flush=True)
        stop.wait()
    scheduler.stop()
    storage.close()
    print("greenflame worker stopped", flush=True)
    return 0
