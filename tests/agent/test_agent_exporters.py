"""File and HTTP exporters, the HTTP one against a real local server."""

from __future__ import annotations

import gzip
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Dict

import pytest
from support.agent import IngestServer

from greenflame.agent.aggregator import Aggregator
from greenflame.agent.drops import DropCounter
from greenflame.agent.exporters import ExportError, FileExporter, HttpExporter
from greenflame.analyzer.formats import greenflame_json


def a_report(group: str = "svc") -> Dict[str, Any]:
    aggregator = Aggregator(10, DropCounter())
    aggregator.add([((("main", "app.py", 1), ("work", "app.py", 9)), (("phase", "invoke"),), 1, 0)])
    return aggregator.drain(group, 10_000_000, {"pid": os.getpid(), "dropped": {}})


def exporter(server: IngestServer, timeout_s: float = 2.0) -> HttpExporter:
    return HttpExporter(server.url, "secret-key", timeout_s, "greenflame-agent/0.1.0")


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds


# -- file ---------------------------------------------------------------------------


def test_file_exporter_writes_one_parseable_file_per_report(tmp_path: Any) -> None:
    target = tmp_path / "profile.json.gz"
    files = FileExporter(str(target))
    files.export(a_report(), deadline(5))
    files.export(a_report(), deadline(5))
    assert files.written() == [str(target), str(tmp_path / "profile.1.json.gz")]
    assert sorted(os.listdir(tmp_path)) == ["profile.1.json.gz", "profile.json.gz"]  # no temporary left
    for path in files.written():
        profile = greenflame_json.loads(gzip.decompress(Path(path).read_bytes()))
        assert profile.group == "svc"
        assert [f.function for f in profile.frames] == ["main", "work"]
        assert profile.samples[0].values == [1, 1, 0] and profile.samples[0].labels == {"phase": "invoke"}


def test_file_exporter_writes_plain_json_without_gz(tmp_path: Any) -> None:
    target = tmp_path / "p.json"
    FileExporter(str(target)).export(a_report(), deadline(5))
    assert json.loads(target.read_text("utf-8"))["format"] == "greenflame-profile"


def test_a_forked_child_writes_its_own_files(tmp_path: Any) -> None:
    files = FileExporter(str(tmp_path / "p.json.gz"))
    assert files.name_for(0, pid=4242) == str(tmp_path / "p.pid4242.0.json.gz")


def test_file_exporter_failure_is_an_export_error(tmp_path: Any) -> None:
    with pytest.raises(ExportError) as caught:
        FileExporter(str(tmp_path / "missing" / "p.json")).export(a_report(), deadline(5))
    assert caught.value.reason == "export_failed"


# -- HTTP ---------------------------------------------------------------------------


def test_http_exporter_posts_gzipped_json_with_the_headers(ingest_server: IngestServer) -> None:
    report = a_report()
    exporter(ingest_server).export(report, deadline(5))
    [request] = ingest_server.received
    assert request.path == "/api/v1/ingest"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Authorization"] == "Bearer secret-key"
    assert request.headers["User-Agent"] == "greenflame-agent/0.1.0"
    assert uuid.UUID(request.headers["Idempotency-Key"]).version == 4
    sent = json.loads(gzip.decompress(request.body))
    assert sent["version"] == 2
    assert set(sent["samples"]) == {"count", "depths", "stacks", "values", "label_sets", "labels"}
    profile = greenflame_json.profile_from_dict(sent)
    assert profile.group == "svc" and profile.total("cpu") == 1
    assert profile == greenflame_json.profile_from_dict(report)  # the same report, its samples in columns


def test_each_report_has_its_own_idempotency_key(ingest_server: IngestServer) -> None:
    http = exporter(ingest_server)
    http.export(a_report(), deadline(5))
    http.export(a_report(), deadline(5))
    keys = {r.headers["Idempotency-Key"] for r in ingest_server.received}
    assert len(keys) == 2


def test_retries_5xx_honouring_retry_after_with_the_same_key(ingest_server: IngestServer) -> None:
    ingest_server.script((500, {}, 0.0), (503, {"Retry-After": "1"}, 0.0), (200, {}, 0.0))
    started = time.monotonic()
    exporter(ingest_server).export(a_report(), deadline(20))
    assert len(ingest_server.received) == 3
    assert len({r.headers["Idempotency-Key"] for r in ingest_server.received}) == 1
    assert time.monotonic() - started >= 1.0  # waited as the server asked


def test_gives_up_at_once_on_403(ingest_server: IngestServer) -> None:
    ingest_server.script((403, {}, 0.0))
    with pytest.raises(ExportError) as caught:
        exporter(ingest_server).export(a_report(), deadline(20))
    assert caught.value.reason == "export_rejected"
    assert "HTTP 403" in str(caught.value)
    assert len(ingest_server.received) == 1


def test_a_retry_after_beyond_the_deadline_gives_up(ingest_server: IngestServer) -> None:
    ingest_server.script((429, {"Retry-After": "3600"}, 0.0))
    with pytest.raises(ExportError) as caught:
        exporter(ingest_server).export(a_report(), deadline(10))
    assert caught.value.reason == "export_failed"
    assert len(ingest_server.received) == 1


def test_a_closed_port_fails_within_the_deadline() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    http = HttpExporter(f"http://127.0.0.1:{port}", None, 1.0, "ua")
    started = time.monotonic()
    with pytest.raises(ExportError) as caught:
        http.export(a_report(), deadline(2))
    assert caught.value.reason == "export_failed" and "cannot reach the server" in str(caught.value)
    assert time.monotonic() - started < 2 + 3  # the deadline plus generous scheduling slack


def test_a_slow_server_does_not_hold_the_caller_past_the_deadline(ingest_server: IngestServer) -> None:
    ingest_server.script(*[(202, {}, 30.0)] * 5)
    started = time.monotonic()
    with pytest.raises(ExportError) as caught:
        exporter(ingest_server, timeout_s=0.5).export(a_report(), deadline(1.5))
    assert caught.value.reason == "export_failed"
    assert time.monotonic() - started < 1.5 + 3  # the deadline plus slack, far below the server's 30 s


@pytest.mark.parametrize("status", [408, 425, 429, 502, 504])
def test_every_transient_status_is_retried_with_the_same_key(ingest_server: IngestServer, status: int) -> None:
    ingest_server.script((status, {"Retry-After": "0"}, 0.0), (202, {}, 0.0))
    exporter(ingest_server).export(a_report(), deadline(20))
    assert len(ingest_server.received) == 2
    assert len({r.headers["Idempotency-Key"] for r in ingest_server.received}) == 1


def test_a_redirect_is_not_followed(ingest_server: IngestServer) -> None:
    ingest_server.script((307, {"Location": ingest_server.url + "/elsewhere"}, 0.0))
    with pytest.raises(ExportError) as caught:
        exporter(ingest_server).export(a_report(), deadline(20))
    assert caught.value.reason == "export_rejected" and "HTTP 307" in str(caught.value)
    assert [r.path for r in ingest_server.received] == ["/api/v1/ingest"]


def test_a_wait_the_server_asked_for_holds_the_next_export(ingest_server: IngestServer) -> None:
    ingest_server.script((429, {"Retry-After": "3600"}, 0.0))
    http = exporter(ingest_server)
    for _ in range(2):
        with pytest.raises(ExportError) as caught:
            http.export(a_report(), deadline(5))
        assert caught.value.reason == "export_failed"
    assert len(ingest_server.received) == 1  # the second export did not knock again
    assert "asked to wait" in str(caught.value)
