"""A small threaded HTTP server for stand-in trackers: routing, JSON helpers, throttling.

Each tracker subclasses :class:`FakeTracker` and implements :meth:`route`. Servers bind
127.0.0.1 on a free port, run in a daemon thread and stop within a bounded time.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

Response = Tuple[int, Dict[str, str], bytes]


class Reject(Exception):
    """Stop handling a request with this response."""

    def __init__(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(status)
        self.response = json_response(status, body, headers)


@dataclass
class Request:
    method: str
    raw_path: str
    query: Dict[str, List[str]]
    headers: Message
    body: bytes
    received_at: float = field(default_factory=time.time)

    def arg(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""

    def content_type(self) -> str:
        return self.header("Content-Type").split(";")[0].strip().lower()

    def json(self, unsupported: Any) -> Any:
        """The JSON body; ``unsupported`` is the tracker's error body for a wrong content type."""
        if self.content_type() != "application/json":
            raise Reject(415, unsupported)
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            raise Reject(400, {"message": "Problems parsing JSON"}) from None


def json_response(status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> Response:
    data = b"" if body is None else json.dumps(body).encode("utf-8")
    out = {"Content-Type": "application/json; charset=utf-8"} if body is not None else {}
    out.update(headers or {})
    return status, out, data


class FakeTracker:
    """Threaded HTTP server; subclasses route requests. Use as a context manager."""

    def __init__(self) -> None:
        self.log: List[Request] = []
        self.lock = threading.RLock()
        self.blocked_until = 0.0
        self.early_requests = 0
        self._throttles: List[Dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.tracker = self  # type: ignore[attr-defined]
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeTracker:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def throttle(self, count: int = 1, **spec: Any) -> None:
        """Answer the next ``count`` requests with the tracker's rate-limit response."""
        with self.lock:
            self._throttles.extend([dict(spec)] * count)

    def requests(self, method: Optional[str] = None) -> List[Request]:
        with self.lock:
            return [r for r in self.log if method is None or r.method == method]

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self.log.append(request)
            if request.received_at < self.blocked_until:
                self.early_requests += 1
            spec = self._throttles.pop(0) if self._throttles else None
        try:
            if spec is not None:
                return self.rate_limited(spec)
            if request.received_at < self.blocked_until:
                return self.rate_limited({"wait_s": self.blocked_until - request.received_at})
            return self.route(request)
        except Reject as reject:
            return reject.response

    def block_for(self, seconds: float) -> None:
        """Reject every request for ``seconds`` from now (counting those that come early)."""
        with self.lock:
            self.blocked_until = time.time() + seconds

    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def rate_limited(self, spec: Dict[str, Any]) -> Response:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query), self.headers, body)
        status, headers, data = self.server.tracker.dispatch(request)  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


def multipart_file(request: Request, field_name: str = "file") -> Optional[Tuple[str, bytes]]:
    """(filename, bytes) of one multipart/form-data file field, or None."""
    if request.content_type() != "multipart/form-data":
        return None
    message = Message()
    message["Content-Type"] = request.header("Content-Type")
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str):
        return None
    for part in request.body.split(b"--" + boundary.encode()):
        head, _, payload = part.partition(b"\r\n\r\n")
        if f'name="{field_name}"'.encode() in head:
            name = head.split(b'filename="', 1)[1].split(b'"', 1)[0].decode() if b"filename=" in head else ""
            return name, payload.rsplit(b"\r\n", 1)[0]
    return None
