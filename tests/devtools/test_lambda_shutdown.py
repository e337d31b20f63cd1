"""The end of a sandbox: the emulator shuts down as Lambda does and the agent delivers its last samples.

The agent (from the layer, under the real runtime client) registers an internal extension during
init; the emulator then sends SIGTERM at shutdown and SIGKILL after the grace period. With a
reporting interval longer than the test, the only report is the one sent at shutdown; it goes to
the ingest stub of tests/support, a real HTTP server.
"""

from __future__ import annotations

import signal
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from support.agent import IngestServer

from greenflame.devtools.lambda_layer import WRAPPER_PATH
from greenflame.devtools.lambda_runtime import FunctionConfig, LocalLambda

pytest.importorskip("awslambdaric")
pytestmark = pytest.mark.timeout(120)

OWN_SIGTERM = """
import os
import signal
import sys

from app import handler

def on_term(signum, frame):
    open(os.path.join(os.environ["TMPDIR"], "own-handler-ran"), "w").close()
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
"""

HANDLERS = """
import time

def last_work(seconds):
    end = time.process_time() + seconds
    total = 0
    while time.process_time() < end:
        total += sum(range(200))
    return total

def handler(event, context):
    last_work(event.get("seconds", 0.3))
    return "ok"
"""


@pytest.fixture
def function(tmp_path: Path, layer_opt: Path, ingest_server: IngestServer) -> Iterator[LocalLambda]:
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "app.py").write_text(textwrap.dedent(HANDLERS))
    (tmp_path / "task" / "own_sigterm.py").write_text(textwrap.dedent(OWN_SIGTERM))
    config = FunctionConfig(
        handler="app.handler",
        task_root=tmp_path / "task",
        environment={
            "AWS_LAMBDA_EXEC_WRAPPER": WRAPPER_PATH,
            "AWS_EC2_METADATA_DISABLED": "true",
            "GREENFLAME_REPORT_INTERVAL_S": "86400",
        },
        opt_dir=layer_opt,
        timeout_s=10.0,
    )
    with open(tmp_path / "function.log", "wb") as log:
        local = LocalLambda(config, tmp_path / "env", log, log)
        local.config.environment["GREENFLAME_SERVER"] = ingest_server.url
        try:
            yield local
        finally:
            local.close()


def reports(server: IngestServer) -> List[Dict[str, Any]]:
    return [request.report() for request in server.received if request.path == "/api/v1/ingest"]


def sampled_functions(report: Dict[str, Any]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for sample in report["samples"]:
        for index in set(sample["stack"]):
            name = report["frames"][index]["function"]
            counts[name] = counts.get(name, 0) + sample["values"][0]
    return counts


def test_the_last_samples_reach_the_server_at_shutdown(function: LocalLambda, ingest_server: IngestServer) -> None:
    for _ in range(2):
        result = function.invoke({"seconds": 0.3})
        assert result.error is None, result.error
    assert function.frozen and reports(ingest_server) == []  # nothing was due yet
    assert list(function.api.extensions.values()) == ["greenflame"]

    status = function.shutdown()

    assert status == 128 + signal.SIGTERM  # it ended itself after the flush, before any SIGKILL
    (report,) = reports(ingest_server)
    assert report["metadata"]["invocations"]["count"] == 2
    assert sampled_functions(report).get("last_work", 0) > 0
    threads = {sample.get("labels", {}).get("thread") for sample in report["samples"]}
    assert "greenflame-shutdown" not in threads  # the agent's own watcher is never sampled


def test_a_sigterm_handler_of_the_function_still_runs_after_the_flush(
    function: LocalLambda, ingest_server: IngestServer
) -> None:
    function.config.handler = "own_sigterm.handler"
    assert function.invoke({"seconds": 0.2}).error is None

    status = function.shutdown()

    (report,) = reports(ingest_server)
    assert report["metadata"]["invocations"]["count"] == 1
    ran = (function.tmp_dir / "own-handler-ran").exists()
    if sys.version_info >= (3, 12):  # the runtime client polls on a thread: the main thread handles signals
        assert (status, ran) == (0, True)
    else:  # the main thread waits in native code: the handler cannot run before the SIGKILL
        assert (status, ran) == (-signal.SIGKILL, False)


def test_without_an_extension_the_process_is_killed_at_once(tmp_path: Path, function: LocalLambda) -> None:
    function.config.environment.pop("AWS_LAMBDA_EXEC_WRAPPER")  # no agent: nothing registers
    assert function.invoke({"seconds": 0.01}).error is None
    assert function.api.extensions == {}
    assert function.shutdown() == -signal.SIGKILL


def test_an_extension_cannot_register_after_init(function: LocalLambda) -> None:
    assert function.invoke({"seconds": 0.01}).error is None
    request = urllib.request.Request(
        f"http://{function.api.address}/2020-01-01/extension/register",
        data=b'{"events": []}',
        headers={"Lambda-Extension-Name": "late"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
