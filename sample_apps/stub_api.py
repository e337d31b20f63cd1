"""A local stand-in for the remote APIs the sample apps call, so that they need no network.

Run it, then point the apps at it with ``SAMPLE_API_URL`` (and ``SAMPLE_API_CA`` over TLS)::

    python -m greenflame.sample_apps.stub_api --port 8765 &           # http://127.0.0.1:8765
    python -m greenflame.sample_apps.stub_api --port 8766 --tls &     # https, self-signed

The first line it prints is the base URL; with ``--tls`` the second is the CA file to trust
(a self-signed certificate for 127.0.0.1 made with the ``openssl`` command at start-up).
HTTP/1.1 with keep-alive, like a real API, so clients that reuse connections can.

Endpoints: ``GET /prices/<sku>`` (a price quote), ``POST /jobs`` (starts an export job that is
done ``JOB_SECONDS`` later) and ``GET /jobs/<id>`` (its status).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional, Sequence, Tuple

#: How long an export job runs before its status is DONE.
JOB_SECONDS = 0.06


class _Jobs:
    """Export jobs by id, with the time each one is done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done_at: Dict[int, float] = {}

    def start(self) -> int:
        with self._lock:
            job_id = len(self._done_at) + 1
            self._done_at[job_id] = time.monotonic() + JOB_SECONDS
            return job_id

    def status(self, job_id: int) -> str:
        with self._lock:
            done_at = self._done_at.get(job_id)
        if done_at is None:
            return "UNKNOWN"
        return "DONE" if time.monotonic() >= done_at else "RUNNING"


class Handler(BaseHTTPRequestHandler):
    """Serves the three endpoints with JSON bodies and keep-alive."""

    protocol_version = "HTTP/1.1"
    # Headers and body are written separately: without this, Nagle's algorithm and the client's
    # delayed ACK hold every kept-alive response for 40 ms.
    disable_nagle_algorithm = True
    jobs = _Jobs()

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "prices":
            sku = parts[1]
            self._send(200, {"sku": sku, "currency": "EUR", "cents": 100 + sum(map(ord, sku)) % 900})
        elif len(parts) == 2 and parts[0] == "jobs" and parts[1].isdigit():
            self._send(200, {"id": int(parts[1]), "status": self.jobs.status(int(parts[1]))})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.rstrip("/") == "/jobs":
            self._send(202, {"id": self.jobs.start(), "status": "RUNNING"})
        else:
            self._send(404, {"error": "not found"})

    def _send(self, status: int, payload: Dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sample apps' output is what matters."""


def self_signed_certificate(directory: str) -> Tuple[str, str]:
    """``(certificate, key)`` files for 127.0.0.1, made with the ``openssl`` command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("stub_api: --tls needs the openssl command to make a certificate")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def serve(port: int, tls: bool) -> None:
    """Serve until interrupted, printing the base URL (and the CA file) first."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # clean up the certificate too
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    with tempfile.TemporaryDirectory(prefix="stub-api-") as directory:
        scheme = "http"
        if tls:
            cert, key = self_signed_certificate(directory)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        print(f"{scheme}://127.0.0.1:{server.server_address[1]}", flush=True)
        if tls:
            print(cert, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m greenflame.sample_apps.stub_api [--port N] [--tls]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed certificate")
    args = parser.parse_args(argv)
    serve(args.port, args.tls)


if __name__ == "__main__":
    main()
