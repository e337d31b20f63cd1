"""Durable report delivery for AWS Lambda: write ahead to ``/tmp``, send, resend what was cut off.

Lambda freezes the process as soon as the handler has returned and may kill it (timeout, out of
memory, scale-in) at any moment, so a report in flight can be cut off. :class:`OutboxExporter`
therefore writes every report to the outbox folder (``$TMPDIR`` or ``/tmp``, which Lambda keeps
for the life of the execution environment, across process restarts) *before* sending it, under a
file name that holds its ``Idempotency-Key``, and deletes the file only once the server answered
2xx (or refused it for good). A report whose sending was cut off (freeze, kill, time budget,
server down) stays in the outbox and is sent again later, by this process or the next one in the
same environment, with the same key: the server stores it once, so nothing is lost and nothing
is duplicated. This is :class:`~greenflame.agent.delivery.Delivery` in write-ahead mode over a
:class:`~greenflame.agent.diskqueue.DiskQueue` of at most :data:`MAX_PENDING` reports.

Sending is one attempt per report per call, within the caller's deadline: retries happen at later
invocation ends, never in a background thread (a frozen thread would not run anyway), and not
before a wait the server asked for with ``Retry-After`` is over.
"""

from __future__ import annotations

import os
import threading

from .delivery import DELIVERED, QUEUED, WRITE_AHEAD, Delivery, Sender
from .delivery_policy import RetryPolicy
from .diskqueue import DiskQueue, safe_segment
from .drops import DropCounter
from .exporters import Exporter, encode, raise_unless_delivered, report_key
from .http_post import INGEST_PATH, HttpPost

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional


__all__ = ["OutboxExporter", "default_outbox_dir"]

#: Reports kept waiting at most; the oldest is dropped (counted as ``outbox_full``) beyond it.
MAX_PENDING = 32
#: One attempt per report per call, started only with 20 ms or more left, as long as the time left.
_POLICY = RetryPolicy(max_attempts=1, min_attempt_s=0.02)


def default_outbox_dir(group: str, environ: Optional[Dict[str, str]] = None) -> str:
    """``$TMPDIR/greenflame-outbox/<group>`` (``/tmp`` when TMPDIR is unset), one folder per group."""
    env = os.environ if environ is None else environ
    return os.path.join(env.get("TMPDIR") or "/tmp", "greenflame-outbox", safe_segment(group, 100))


class OutboxExporter(Exporter):
    """Exporter to a greenflame server that never loses a report to a freeze or a kill (see module doc).

    The reports it drops (``outbox_full``, ``export_rejected``) are counted in the next report's
    ``metadata["dropped"]``.
    """

    def __init__(self, server: str, ingest_key: Optional[str], directory: str, user_agent: str) -> None:
        self.directory = directory
        self._post = HttpPost(server.rstrip("/") + INGEST_PATH, ingest_key, user_agent)
        self._sender = Sender(self._post, _POLICY)
        self._drops = DropCounter()
        self._queue = DiskQueue(directory, self._drops, "outbox", max_files=MAX_PENDING)
        self._delivery = Delivery(self._sender, self._queue, WRITE_AHEAD)
        self._lock = threading.Lock()
        #: True once the outbox was found empty, until the next report: lets the end of an
        #: invocation skip the resend check (a folder listing, tens of microseconds) when it can.
        self.empty = False

    @property
    def url(self) -> str:
        """The ingest URL reports are POSTed to."""
        return self._post.url

    @property
    def last_attempt(self) -> float:
        """When a send was last considered (``time.monotonic()``), so callers can space resends."""
        return self._sender.last_attempt

    # -- the Exporter interface -----------------------------------------------------

    def export(self, report: Dict[str, Any], deadline: float) -> None:
        """Persist ``report``, then send every pending report (oldest first) before ``deadline``.

        Returns once the report is either delivered or safely in the outbox; raises
        :class:`~greenflame.agent.exporters.ExportError` only when it could be neither.
        """
        with self._lock:
            self._drops.take_into(report)
            verdict = self._delivery.deliver(encode(report, compress=True, columns=True), report_key(report), deadline)
            self.empty = verdict.outcome == DELIVERED
            if verdict.outcome != QUEUED:
                raise_unless_delivered(verdict, self.url)

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._post.reset_after_fork()
        self._queue.reset_after_fork()

    # -- the outbox ------------------------------------------------------------------

    def pending(self) -> List[str]:
        """The reports waiting in the outbox, oldest first (full paths)."""
        return self._queue.pending()

    def resend(self, deadline: float) -> bool:
        """Send the pending reports before ``deadline``; True when none is left.

        Never waits for the lock: another thread sending (or frozen while sending) means later.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self.empty = self._delivery.drain(deadline)
            return self.empty
        finally:
            self._lock.release()
