"""The agent never writes a server's raw bytes into its log line (issue 17, item 8)."""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest

from greenflame.agent.delivery_policy import printable, unreachable
from greenflame.agent.http_post import HttpPost

HOSTILE_ANSWER = b"\x00\x1b[31mEVIL\r\nInjected: log line\r\n\r\n"


@pytest.fixture
def hostile_server() -> Iterator[str]:
    """A TCP server answering every connection with bytes that are not HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def answer() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(HOSTILE_ANSWER)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/v1/ingest"
    listener.close()
    thread.join(timeout=5)


def test_a_non_http_answer_is_logged_escaped(hostile_server: str) -> None:
    verdict = HttpPost(hostile_server, "key", "test")(b"{}", "k1", timeout_s=5)
    assert verdict.detail.startswith("cannot reach the server")
    assert verdict.detail.isprintable(), verdict.detail
    assert "\\x00" in verdict.detail or "\\x1b" in verdict.detail


def test_printable_escapes_control_characters_and_cuts_long_text() -> None:
    assert printable("a\x00b\r\nc\x1b[0m") == "a\\x00b\\r\\nc\\x1b[0m"
    assert printable("ok text é") == "ok text é"
    long = printable("x" * 1000)
    assert len(long) < 210 and long.endswith("...")
    assert unreachable(ConnectionResetError("\r\nforged")).detail.isprintable()
