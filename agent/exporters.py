"""Where reports go: a file, a greenflame server over HTTP, or S3.

An exporter's ``export(report, deadline)`` delivers one wire-format document before the
``time.monotonic()`` deadline or raises :class:`ExportError`, whose ``reason`` is the key under
which the profiler counts the lost report in the next report's ``metadata["dropped"]`` (unless
``spooled``: then the report waits on disk for the server and is not lost).

Each report's idempotency key is its ``metadata["report_id"]``: the same key goes with every
retry and with every replay from the spool, so the server stores a report once.

``json``, ``gzip``, ``uuid`` and each exporter's :attr:`Exporter.thread_imports` are not imported
with this module (a cold start pays for every module): the scheduler thread imports them before its
first report, where a fork waits for it (:mod:`~greenflame.agent.thread_imports`); a report
exported on the program's own thread imports them there.
"""

from __future__ import annotations

import os
import threading
import time

from .columns import columnar
from .delivery import ON_FAILURE, QUEUED, Delivery, Sender
from .delivery_policy import DELIVERED, REJECTED, RetryPolicy
from .diskqueue import write_atomically
from .http_post import INGEST_PATH, HttpPost

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional, Tuple

    from .delivery_policy import Verdict
    from .diskqueue import DiskQueue
    from .spool import Spool


class ExportError(Exception):
    """A report was not delivered; ``reason`` names why (``export_failed``, ``export_rejected``).

    ``spooled`` is True when the report was kept in the on-disk spool for a later replay.
    """

    def __init__(self, reason: str, message: str, spooled: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.spooled = spooled


def report_key(report: Mapping[str, Any]) -> str:
    """The report's idempotency key: ``metadata["report_id"]``, else a fresh random one."""
    key = report.get("metadata", {}).get("report_id")
    if isinstance(key, str) and key:
        return key
    import uuid

    return str(uuid.uuid4())


class Exporter:
    """Interface of an exporter."""

    #: Modules its :meth:`export` imports (the scheduler thread loads them first: see the module).
    thread_imports: Tuple[str, ...] = ()

    def export(self, report: Dict[str, Any], deadline: float) -> None:
        """Deliver ``report`` before the monotonic ``deadline`` or raise :class:`ExportError`."""
        raise NotImplementedError

    def reset_after_fork(self) -> None:
        """Adjust to running in a forked child process."""


def encode(report: Mapping[str, Any], compress: bool, columns: bool = False) -> bytes:
    """The report as UTF-8 JSON, gzip-compressed when ``compress``; with ``columns``, its frames and
    samples as columns (:func:`~greenflame.agent.columns.columnar`: what the server and S3 receive).

    Compressed output is streamed from the JSON encoder into gzip, so a large report never exists
    as one uncompressed string as well (it bounds the agent's peak memory).
    """
    import json

    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if columns:
        report = columnar(report)
    if not compress:
        return encoder.encode(report).encode("utf-8")
    import gzip
    import io

    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as stream:
        pending: List[str] = []
        size = 0
        for chunk in encoder.iterencode(report):
            pending.append(chunk)
            size += len(chunk)
            if size >= 65536:
                stream.write("".join(pending).encode("utf-8"))
                pending, size = [], 0
        stream.write("".join(pending).encode("utf-8"))
    return buffer.getvalue()


# -- file -----------------------------------------------------------------------


class FileExporter(Exporter):
    """Writes each report to its own file, atomically (a temporary file, then a rename).

    The first report of the process goes to ``path``; later ones to ``<stem>.<n><ext>``
    (``profile.json.gz``, ``profile.1.json.gz``, ``profile.2.json.gz``, ...), so no report
    overwrites another. A forked child writes ``<stem>.pid<PID>.<n><ext>`` instead, so parent
    and children never collide. A path ending in ``.gz`` is gzip-compressed.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self._compress = self.path.endswith(".gz")
        self._creator_pid = os.getpid()
        self._count = 0
        # A scheduled and an explicit flush may export at once: each must get its own file.
        self._lock = threading.Lock()

    def name_for(self, number: int, pid: Optional[int] = None) -> str:
        """The file that report ``number`` (from 0) of process ``pid`` goes to."""
        stem, ext = _split_extension(self.path)
        pid = os.getpid() if pid is None else pid
        if pid != self._creator_pid:
            return f"{stem}.pid{pid}.{number}{ext}"
        return self.path if number == 0 else f"{stem}.{number}{ext}"

    def existing(self) -> List[str]:
        """The files of this naming scheme that exist, from any process, oldest first."""
        import re

        stem, ext = _split_extension(self.path)
        pattern = re.compile(re.escape(stem) + r"\.(pid\d+\.)?\d+" + re.escape(ext))
        directory = os.path.dirname(self.path)
        try:
            names = [os.path.join(directory, name) for name in os.listdir(directory)]
        except OSError:
            return []
        found = [p for p in names if p == self.path or pattern.fullmatch(p)]
        return sorted(found, key=lambda p: (_mtime(p), p))

    def written(self) -> List[str]:
        """The files this process has written so far, in order."""
        return [self.name_for(n) for n in range(self._count)]

    def export(self, report: Dict[str, Any], deadline: float) -> None:
        data = encode(report, self._compress)
        with self._lock:
            target = self.name_for(self._count)
            try:
                write_atomically(target, data)
            except OSError as error:
                raise ExportError("export_failed", f"cannot write {target}: {error.strerror or error}") from None
            self._count += 1

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._count = 0


def _split_extension(path: str) -> tuple:
    for ext in (".json.gz", ".json", ".gz"):
        if path.endswith(ext):
            return path[: -len(ext)], ext
    stem, ext = os.path.splitext(path)
    return stem, ext


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


# -- HTTP -----------------------------------------------------------------------


class HttpExporter(Exporter):
    """POSTs each report, gzipped, to ``{server}/api/v1/ingest`` with retries inside the deadline.

    Delivery follows :mod:`~greenflame.agent.delivery_policy`: network failures, 408, 425, 429,
    500, 502, 503 and 504 are retried (at most 4 attempts, each at most ``timeout_s``) after an
    exponential backoff with full jitter, or after the server's ``Retry-After`` when it fits before
    the deadline; any other status, and redirects, are final. Every attempt of one report carries
    the same ``Idempotency-Key`` (:func:`report_key`), so the server stores it once.

    With a ``spool`` (:class:`~greenflame.agent.spool.Spool`), a report that still failed after its
    retries is kept on disk, and the spooled reports are sent again, oldest first, after the next
    successful delivery while the deadline allows (:data:`~greenflame.agent.delivery.ON_FAILURE`).
    """

    # encodings.idna: the socket module encodes a host name with it on the first connection.
    thread_imports = ("http.client", "urllib.error", "urllib.request", "email.utils", "encodings.idna")

    def __init__(
        self,
        server: str,
        ingest_key: Optional[str],
        timeout_s: float,
        user_agent: str,
        spool: Optional[Spool] = None,
    ) -> None:
        self.spool = spool
        self._post = HttpPost(server.rstrip("/") + INGEST_PATH, ingest_key, user_agent)
        self._delivery = Delivery(Sender(self._post, RetryPolicy(timeout_s=timeout_s)), spool, ON_FAILURE)

    @property
    def url(self) -> str:
        """The ingest URL reports are POSTed to."""
        return self._post.url

    @url.setter
    def url(self, value: str) -> None:
        self._post.url = value

    def export(self, report: Dict[str, Any], deadline: float) -> None:
        verdict = self._delivery.deliver(encode(report, compress=True, columns=True), report_key(report), deadline)
        raise_unless_delivered(verdict, self.url, self.spool)

    def reset_after_fork(self) -> None:
        self._post.reset_after_fork()
        if self.spool is not None:
            self.spool.reset_after_fork()


def raise_unless_delivered(verdict: Verdict, url: str, queue: Optional[DiskQueue] = None) -> None:
    """The :class:`ExportError` a delivery's ``verdict`` calls for, if any (none when delivered).

    A report kept in ``queue`` raises with ``spooled`` set: it is not delivered yet, nor lost.
    """
    if verdict.outcome == DELIVERED:
        return
    if verdict.outcome == REJECTED:
        raise ExportError("export_rejected", f"{url}: {verdict.detail}")
    if verdict.outcome == QUEUED and queue is not None:
        raise ExportError("export_failed", f"{url}: {verdict.detail}; kept in the {queue.name} {queue.directory}", True)
    raise ExportError("export_failed", f"{url}: {verdict.detail}")


# -- S3 -------------------------------------------------------------------------

#: An upload is not started with less time than this left before the deadline.
_MIN_S3_ATTEMPT_S = 0.05


class S3Exporter(Exporter):
    """Uploads each report, gzipped, to ``s3://BUCKET/PREFIX/<group>/<yyyy>/<mm>/<dd>/<start>-<report id>.json.gz``.

    boto3 is imported by the scheduler thread before its first report (the agent itself needs only
    the standard library; boto3 may still import its own modules on first use);
    credentials, region and endpoint come from boto3's usual sources (``AWS_*`` variables, the
    instance or Lambda role, ``AWS_ENDPOINT_URL_S3``). boto3's own retries stay on; the
    connect and read timeouts are bounded by the time left before the deadline.
    """

    thread_imports = ("boto3", "botocore.config")

    def __init__(self, url: str, group: str, timeout_s: float) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.url = url
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._group = group
        self._timeout_s = timeout_s
        self._client: Any = None

    def key_for(self, report: Mapping[str, Any]) -> str:
        """The object key of ``report``."""
        start = int(report.get("start_time_unix_ns", 0))
        day = time.strftime("%Y/%m/%d", time.gmtime(start / 1e9))
        group = _safe_segment(self._group or str(report.get("group", "")) or "default")
        name = f"{start}-{_safe_segment(report_key(report))}.json.gz"
        return "/".join(part for part in (self.prefix, group, day, name) if part)

    def export(self, report: Dict[str, Any], deadline: float) -> None:
        body = encode(report, compress=True, columns=True)
        key = self.key_for(report)
        if deadline - time.monotonic() < _MIN_S3_ATTEMPT_S:
            raise ExportError("export_failed", f"s3://{self.bucket}/{key}: no time left before the deadline")
        try:
            self._get_client().put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", ContentEncoding="gzip"
            )
        except ImportError:
            raise ExportError("export_failed", "S3 delivery needs boto3: pip install boto3") from None
        except Exception as error:  # botocore's errors: ClientError, EndpointConnectionError, ...
            raise ExportError("export_failed", f"s3://{self.bucket}/{key}: {error}") from None

    def reset_after_fork(self) -> None:
        self._client = None  # boto3 clients are not fork-safe

    def _get_client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            timeout = max(1.0, self._timeout_s)
            config = BotoConfig(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3})
            self._client = boto3.session.Session().client("s3", config=config)
        return self._client


def _safe_segment(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("._") or "default"
