"""Durable report delivery for AWS Lambda: write ahead to ``/tmp``, send, resend what was cut off.

Lambda freezes the process as soon as the handler has returned and may kill it (timeout, out of
memory, scale-in) at any moment, so a report in flight can be cut off. :class:`OutboxExporter`
therefore writes every report to the outbox folder (``$TMPDIR`` or ``/tmp``, which Lambda keeps
for the life of the execution environment, across process restarts) *before* sending it, under a
file name that holds its ``Idempotency-Key``, and deletes the file only once the server answered
2xx. A report whose sending was cut off (freeze, kill, time budget, server down) stays in the
outbox and is sent again later, by this process or the next one in the same environment, with the
same key: the server stores it once, so nothing is lost and nothing is duplicated.

Sending is one attempt per report per call, within the caller's deadline: retries happen at later
invocation ends, never in a background thread (a frozen thread would not run anyway).
"""

from __future__ import annotations

import os
import threading
import time

from .exporters import INGEST_PATH, Exporter, ExportError, encode

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any, Dict, List, Optional, Tuple


__all__ = ["OutboxExporter", "default_outbox_dir"]

#: Reports kept waiting at most; the oldest is dropped (counted as ``outbox_full``) beyond it.
MAX_PENDING = 32
_SUFFIX = ".json.gz"
_NAME_PATTERN = r"^(\d{1,20})-([0-9a-f]{32})\.json\.gz$"
_SAFE_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
#: A send is not started with less time than this left before the deadline.
_MIN_ATTEMPT_S = 0.02


def default_outbox_dir(group: str, environ: Optional[Dict[str, str]] = None) -> str:
    """``$TMPDIR/greenflame-outbox/<group>`` (``/tmp`` when TMPDIR is unset), one folder per group."""
    env = os.environ if environ is None else environ
    safe = "".join(c if c in _SAFE_CHARACTERS else "_" for c in group)[:100] or "default"
    return os.path.join(env.get("TMPDIR") or "/tmp", "greenflame-outbox", safe)


def _name_match(name: str) -> Optional[re.Match[str]]:
    """Match an outbox file name; :mod:`re` loads on the first report, not on the cold start."""
    import re

    return re.match(_NAME_PATTERN, name)  # re caches the compiled pattern


class _Outcome:
    SENT = "sent"
    REJECTED = "rejected"
    RETRY = "retry"


class OutboxExporter(Exporter):
    """Exporter to a greenflame server that never loses a report to a freeze or a kill (see module doc)."""

    def __init__(self, server: str, ingest_key: Optional[str], directory: str, user_agent: str) -> None:
        self.url = server.rstrip("/") + INGEST_PATH
        self.directory = directory
        self._ingest_key = ingest_key
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._dropped: Dict[str, int] = {}
        self.last_attempt = 0.0
        #: True once the outbox was found empty, until the next report: lets the end of an
        #: invocation skip the resend check (a folder listing, tens of microseconds) when it can.
        self.empty = False

    # -- the Exporter interface -----------------------------------------------------

    def export(self, report: Dict[str, Any], deadline: float) -> None:
        """Persist ``report``, then send every pending report (oldest first) before ``deadline``.

        Returns once the report is either delivered or safely in the outbox; raises
        :class:`ExportError` only when it could be neither written nor sent.
        """
        with self._lock:
            self._merge_drops(report)
            import uuid

            body = encode(report, compress=True)
            key = uuid.uuid4().hex
            stored = self._store(key, body)
            self.empty = False
            if stored is None:
                outcome = self._send(key, body, deadline)
                if outcome != _Outcome.SENT:
                    raise ExportError("export_failed", f"{self.url}: report neither delivered nor stored")
            self._send_pending(deadline)

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()

    # -- the outbox ------------------------------------------------------------------

    def pending(self) -> List[str]:
        """The reports waiting in the outbox, oldest first (full paths)."""
        try:
            names = [name for name in os.listdir(self.directory) if _name_match(name)]
        except OSError:
            return []
        names.sort(key=lambda name: (int(name.split("-", 1)[0]), name))
        return [os.path.join(self.directory, name) for name in names]

    def resend(self, deadline: float) -> bool:
        """Send the pending reports before ``deadline``; True when none is left.

        Never waits for the lock: another thread sending (or frozen while sending) means later.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            return self._send_pending(deadline)
        finally:
            self._lock.release()

    def _store(self, key: str, body: bytes) -> Optional[str]:
        path = os.path.join(self.directory, f"{time.time_ns()}-{key}{_SUFFIX}")
        temporary = f"{path}.tmp"
        try:
            os.makedirs(self.directory, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(body)
            os.replace(temporary, path)  # a kill mid-write leaves a .tmp that is never sent
        except OSError:
            _remove(temporary)
            return None
        self._evict()
        return path

    def _evict(self) -> None:
        waiting = self.pending()
        for path in waiting[: max(0, len(waiting) - MAX_PENDING)]:
            if _remove(path):
                self._count("outbox_full")

    def _send_pending(self, deadline: float) -> bool:
        for path in self.pending():
            if deadline - time.monotonic() < _MIN_ATTEMPT_S:
                return False
            key = _name_match(os.path.basename(path)).group(2)  # type: ignore[union-attr]
            try:
                with open(path, "rb") as handle:
                    body = handle.read()
            except OSError:
                continue  # sent and removed by another process meanwhile
            outcome = self._send(key, body, deadline)
            if outcome == _Outcome.RETRY:
                return False  # the server is unreachable or busy: keep the rest for later
            if outcome == _Outcome.REJECTED:
                self._count("export_rejected")
            _remove(path)
        self.empty = True
        return True

    # -- one attempt -------------------------------------------------------------------

    def _send(self, key: str, body: bytes, deadline: float) -> str:
        self.last_attempt = time.monotonic()
        timeout = deadline - self.last_attempt
        if timeout < _MIN_ATTEMPT_S:
            return _Outcome.RETRY
        try:
            status = _post(self.url, body, self._headers(key), timeout)
        except OSError:
            return _Outcome.RETRY
        if 200 <= status < 300:
            return _Outcome.SENT
        return _Outcome.RETRY if status in _RETRY_STATUS else _Outcome.REJECTED

    def _headers(self, key: str) -> Dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Idempotency-Key": key,
            "User-Agent": self._user_agent,
        }
        if self._ingest_key:
            headers["Authorization"] = f"Bearer {self._ingest_key}"
        return headers

    # -- drops -------------------------------------------------------------------------

    def _count(self, reason: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def _merge_drops(self, report: Dict[str, Any]) -> None:
        """Carry the reports this exporter dropped into ``report``'s ``metadata["dropped"]``."""
        if not self._dropped:
            return
        dropped = report.setdefault("metadata", {}).setdefault("dropped", {})
        for reason, count in self._dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
        self._dropped = {}


def _post(url: str, body: bytes, headers: Dict[str, str], timeout: float) -> int:
    """POST ``body``; the HTTP status. Raises OSError for network failures and timeouts."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection_class: Any = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.netloc, timeout=timeout)
    try:
        connection.request("POST", _path(parts), body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        return int(response.status)
    except http.client.HTTPException as error:
        raise OSError(str(error)) from None
    finally:
        connection.close()


def _path(parts: Any) -> str:
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def split_name(path: str) -> Tuple[int, str]:
    """(nanoseconds when stored, idempotency key) of an outbox file; ValueError if not one."""
    found = _name_match(os.path.basename(path))
    if found is None:
        raise ValueError(f"not an outbox report: {path}")
    return int(found.group(1)), found.group(2)
