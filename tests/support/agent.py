"""Fixtures for agent tests.

``agent_guard_clean`` (autouse): the agent's guard swallows its own exceptions so that it never
breaks the host program, which would also hide agent bugs from tests. This fixture fails any test
during which the guard swallowed something, unless the test is marked
``@pytest.mark.agent_errors_expected`` because it provokes agent errors on purpose.

``ingest_server``: a real HTTP server on a free port that records requests to
``/api/v1/ingest`` and answers with scripted responses.

:func:`run_python`: run a script in a fresh interpreter, with only the given ``GREENFLAME_*``
variables.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from greenflame.analyzer.formats import greenflame_json

MARKER = "agent_errors_expected"


def run_python(code: str, env: Dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) with ``python -c``; no ``GREENFLAME_*`` variable but those in ``env``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GREENFLAME_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=timeout
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: the test provokes errors that the agent's guard swallows")


def guard_failure_message() -> Optional[str]:
    """A description of what the guard swallowed, or None when nothing was."""
    from greenflame.agent import guard

    records = guard.swallowed()
    if not records:
        return None
    shown = "; ".join(f"{r.where}: {type(r.error).__name__}: {r.error}" for r in records[:5])
    return f"the agent's guard swallowed {len(records)} exception(s): {shown}"


@pytest.fixture(autouse=True)
def agent_guard_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if the agent's guard swallowed an exception during it (see module doc).

    What the test body provoked fails the test itself (:func:`pytest_runtest_call`); what is
    left at teardown (from other fixtures' teardown, say) errors the test's teardown.
    """
    from greenflame.agent import guard

    guard.clear()
    yield
    message = guard_failure_message()
    guard.clear()
    if message and request.node.get_closest_marker(MARKER) is None:
        pytest.fail(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    if item.get_closest_marker(MARKER) is None:
        message = guard_failure_message()
        if message:
            from greenflame.agent import guard

            guard.clear()
            pytest.fail(message, pytrace=False)
    return result


@pytest.fixture(autouse=True)
def agent_stopped() -> Iterator[None]:
    """No profiler is left running from one test into the next."""
    yield
    from greenflame.agent import profiler

    if profiler.current() is not None:
        profiler.stop(flush=False)


# -- a scripted ingest server ------------------------------------------------------------


@dataclass
class Received:
    """One request the server received."""

    path: str
    headers: Dict[str, str]
    body: bytes

    def report(self) -> Dict[str, Any]:
        """The gzip-compressed JSON body, decoded, its frames and samples one object each (:func:`sample_rows`)."""
        return sample_rows(json.loads(gzip.decompress(self.body)))


def sample_rows(document: Dict[str, Any]) -> Dict[str, Any]:
    """``document`` with its frames and samples one object each, as the aggregator drained them: a
    version-2 document (what the agent posts) has its columns read back by the analyzer's reader."""
    if document.get("version") != 2:
        return document
    rows = greenflame_json.profile_to_dict(greenflame_json.profile_from_dict(document))
    return {**document, "version": 1, "frames": rows["frames"], "samples": rows["samples"]}


@dataclass
class IngestServer:
    """A running server: ``url``, the ``received`` requests, and ``responses`` still to give."""

    url: str
    received: List[Received] = field(default_factory=list)
    # (status, headers, delay seconds) per request, in order; afterwards 202.
    responses: List[Tuple[int, Dict[str, str], float]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def script(self, *responses: Tuple[int, Dict[str, str], float]) -> None:
        """Answer the next requests with these (status, headers, delay) triples."""
        self.responses.extend(responses)


def _handler_for(server: IngestServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            server.received.append(Received(self.path, dict(self.headers.items()), body))
            status, headers, delay = server.responses.pop(0) if server.responses else (202, {}, 0.0)
            if delay:
                server.release.wait(delay)
            payload = json.dumps({"id": str(len(server.received))}).encode()
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def ingest_server() -> Iterator[IngestServer]:
    """A real HTTP ingest server on a free local port, shut down after the test."""
    state = IngestServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
