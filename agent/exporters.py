"""Where reports go: a file, a greenflame server over HTTP, or S3.

An exporter's ``export(report, deadline)`` delivers one wire-format document before the
``time.monotonic()`` deadline or raises :class:`ExportError`, whose ``reason`` is the key under
which the profiler counts the lost report in the next report's ``metadata["dropped"]`` (unless
``spooled``: then the report waits on disk for the server and is not lost).

Each report's idempotency key is its ``metadata["report_id"]``: the same key goes with every
retry and with every replay from the spool, so the server stores a report once.

``json``, ``gzip`` and ``urllib`` are imported when a report is first exported, so that starting
the agent stays cheap.
"""

from __future__ import annotations

import os
import random
import threading
import time

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import urllib.request
    from typing import Any, Callable, Dict, List, Mapping, Optional

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

    def export(self, report: Dict[str, Any], deadline: float) -> None:
        """Deliver ``report`` before the monotonic ``deadline`` or raise :class:`ExportError`."""
        raise NotImplementedError

    def reset_after_fork(self) -> None:
        """Adjust to running in a forked child process."""


def encode(report: Mapping[str, Any], compress: bool) -> bytes:
    """The report as UTF-8 JSON, gzip-compressed when ``compress``.

    Compressed output is streamed from the JSON encoder into gzip, so a large report never exists
    as one uncompressed string as well (it bounds the agent's peak memory).
    """
    import json

    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
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
            temporary = f"{target}.tmp{os.getpid()}"
            try:
                with open(temporary, "wb") as handle:
                    handle.write(data)
                os.replace(temporary, target)
            except OSError as error:
                _remove_quietly(temporary)
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


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


# -- HTTP -----------------------------------------------------------------------

INGEST_PATH = "/api/v1/ingest"
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_ATTEMPTS = 4
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 8.0
_MIN_ATTEMPT_S = 0.05


class _Rejected(Exception):
    """A non-retryable answer."""


class _Retryable(Exception):
    """A transient failure; ``retry_after`` is the server's requested wait, if any."""

    def __init__(self, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HttpExporter(Exporter):
    """POSTs each report, gzipped, to ``{server}/api/v1/ingest`` with retries inside the deadline.

    Connection errors, timeouts, 429 and 5xx are retried (at most 4 attempts) after an
    exponential backoff with full jitter, or after the server's ``Retry-After`` when it fits
    before the deadline. Any other 4xx, and redirects, are not retried. Every attempt of one
    report carries the same ``Idempotency-Key`` (:func:`report_key`), so the server stores it once.

    With a ``spool``, a report that still failed after its retries is kept on disk
    (:class:`~greenflame.agent.spool.Spool`) and the spooled reports are replayed, oldest first,
    after the next successful delivery while the deadline allows.
    """

    def __init__(
        self,
        server: str,
        ingest_key: Optional[str],
        timeout_s: float,
        user_agent: str,
        spool: Optional[Spool] = None,
    ) -> None:
        self.url = server.rstrip("/") + INGEST_PATH
        self.spool = spool
        self._ingest_key = ingest_key
        self._timeout_s = timeout_s
        self._user_agent = user_agent
        self._opener: Optional[urllib.request.OpenerDirector] = None

    def export(self, report: Dict[str, Any], deadline: float) -> None:
        key = report_key(report)
        body = encode(report, compress=True)
        try:
            self.send(body, key, deadline)
        except ExportError as error:
            if error.reason == "export_failed" and self.spool is not None and self.spool.put(body, key):
                raise ExportError(error.reason, f"{error}; kept in the spool {self.spool.directory}", True) from None
            raise
        if self.spool is not None:
            self.spool.replay(self._replay_one(deadline), deadline, _Rejected)

    def _replay_one(self, deadline: float) -> Callable[[bytes, str], None]:
        def send(body: bytes, key: str) -> None:
            remaining = deadline - time.monotonic()
            if remaining < _MIN_ATTEMPT_S:
                raise _Retryable("deadline")
            self._post(body, self._headers(key), min(self._timeout_s, remaining))

        return send

    def send(self, body: bytes, key: str, deadline: float) -> None:
        """POST an encoded report with idempotency ``key``, retrying until ``deadline``."""
        headers = self._headers(key)
        last = "no attempt fitted before the deadline"
        for attempt in range(_MAX_ATTEMPTS):
            remaining = deadline - time.monotonic()
            if remaining < _MIN_ATTEMPT_S:
                break
            try:
                self._post(body, headers, min(self._timeout_s, remaining))
                return
            except _Rejected as error:
                raise ExportError("export_rejected", f"{self.url}: {error}") from None
            except _Retryable as error:
                last = str(error)
                wait = _backoff(attempt) if error.retry_after is None else error.retry_after
            if attempt + 1 < _MAX_ATTEMPTS:
                if time.monotonic() + wait + _MIN_ATTEMPT_S > deadline:
                    break
                time.sleep(wait)
        raise ExportError("export_failed", f"{self.url}: {last}")

    def reset_after_fork(self) -> None:
        self._opener = None

    def _headers(self, idempotency_key: str) -> Dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Idempotency-Key": idempotency_key,
            "User-Agent": self._user_agent,
        }
        if self._ingest_key:
            headers["Authorization"] = f"Bearer {self._ingest_key}"
        return headers

    def _post(self, body: bytes, headers: Dict[str, str], timeout: float) -> None:
        import http.client
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._get_opener().open(request, timeout=timeout) as response:
                response.read(65536)
        except urllib.error.HTTPError as error:
            raise _classify(error.code, error.headers) from None
        except (OSError, http.client.HTTPException) as error:
            # URLError, refused or reset connections, timeouts, truncated answers.
            reason = getattr(error, "reason", None) or error
            raise _Retryable(f"cannot reach the server: {reason}") from None

    def _get_opener(self) -> urllib.request.OpenerDirector:
        if self._opener is None:
            import urllib.request

            class NoRedirect(urllib.request.HTTPRedirectHandler):
                # urllib would turn a redirected POST into a GET without the report.
                def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                    return None

            self._opener = urllib.request.build_opener(NoRedirect)
        return self._opener


def _classify(status: int, headers: Any) -> Exception:
    if status in _RETRY_STATUS:
        retry_after = _retry_after(headers.get("Retry-After") if headers is not None else None)
        return _Retryable(f"server answered HTTP {status}", retry_after)
    return _Rejected(f"server answered HTTP {status}")


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))


# -- S3 -------------------------------------------------------------------------


class S3Exporter(Exporter):
    """Uploads each report, gzipped, to ``s3://BUCKET/PREFIX/<group>/<yyyy>/<mm>/<dd>/<start>-<report id>.json.gz``.

    boto3 is imported on the first export (the agent itself needs only the standard library);
    credentials, region and endpoint come from boto3's usual sources (``AWS_*`` variables, the
    instance or Lambda role, ``AWS_ENDPOINT_URL_S3``). boto3's own retries stay on; the
    connect and read timeouts are bounded by the time left before the deadline.
    """

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
        body = encode(report, compress=True)
        key = self.key_for(report)
        if deadline - time.monotonic() < _MIN_ATTEMPT_S:
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
