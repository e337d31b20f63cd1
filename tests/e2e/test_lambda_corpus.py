"""A corpus of Lambda handlers in the style of public examples, each with its expected findings.

Every handler in ``lambda_corpus/`` runs under ``greenflame lambda invoke`` (the local runtime,
the real agent) against a moto server and two local HTTP stand-ins: ``stub_api`` (keep-alive)
and a server that closes every connection (HTTP/1.0). Each profile is analysed; the test
asserts precision and recall of 100% over the whole corpus, and that the local loop's rate was
never extrapolated. The table is printed (``-s``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest
from support.aws import REGION, MotoServer, moto_server  # noqa: F401
from support.scoring import precision_recall

from greenflame.analyzer.formats import load_profile
from greenflame.analyzer.report import analyze_profile

pytest.importorskip("boto3")
pytest.importorskip("requests")
pytestmark = pytest.mark.timeout(600)

CORPUS = Path(__file__).parent / "lambda_corpus"
SDK = "aws-sdk-client-per-invocation"
HTTP = "http-connection-per-request"
INVOCATIONS = 60
#: Handlers of a few milliseconds need more invocations for enough in-context samples at 100 Hz.
MORE_INVOCATIONS = {"http_requests_get_per_call": 250, "http_session_per_call_helper": 150}
RUN_TIMEOUT_S = 120
EVENT = json.dumps({"id": "o-1", "total": 42})

#: Each handler and the rules it must trigger (no other rule may fire on it).
EXPECTED: Dict[str, Tuple[str, ...]] = {
    "sdk_resource_in_handler": (SDK,),
    "sdk_client_from_helper": (SDK,),
    "sdk_session_per_invocation": (SDK,),
    "sdk_client_in_class_per_invocation": (SDK,),
    "sdk_client_per_invocation_no_call": (SDK,),
    "sdk_module_level_client": (),
    "sdk_module_level_resource": (),
    "sdk_module_level_service_object": (),
    "lazy_lru_cache_client": (),
    "lazy_global_none_client": (),
    "lazy_dict_cache_clients": (),
    "lazy_class_attribute_client": (),
    "lazy_cached_property_session": (),
    "http_requests_get_per_call": (HTTP,),
    "http_session_per_call_helper": (HTTP,),
    "http_module_session_closing_server": (),
    "http_module_pool_manager_closing_server": (),
    "http_lazy_session": (),
}


class _Closing(BaseHTTPRequestHandler):
    """Answers every GET with a small JSON body over HTTP/1.0: the connection closes after it."""

    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "cents": 100}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def environment(moto_server: MotoServer) -> Iterator[Dict[str, str]]:  # noqa: F811
    """The handlers' environment: moto with a table, a bucket and a queue, and the two HTTP servers."""
    moto_server.client("dynamodb").create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    bucket = {"Bucket": "corpus-bucket", "CreateBucketConfiguration": {"LocationConstraint": REGION}}
    moto_server.client("s3").create_bucket(**bucket)
    queue = moto_server.client("sqs").create_queue(QueueName="corpus-queue")["QueueUrl"]
    stub_command = [sys.executable, "-m", "greenflame.sample_apps.stub_api"]
    stub = subprocess.Popen(stub_command, stdout=subprocess.PIPE, text=True)
    assert stub.stdout is not None
    api_url = stub.stdout.readline().strip()
    closing = ThreadingHTTPServer(("127.0.0.1", 0), _Closing)
    threading.Thread(target=closing.serve_forever, daemon=True).start()
    env = dict(os.environ, **moto_server.environment())
    env.update(
        TABLE_NAME="orders",
        BUCKET_NAME="corpus-bucket",
        QUEUE_URL=queue,
        API_URL=api_url,
        CLOSING_API_URL=f"http://127.0.0.1:{closing.server_address[1]}",
        # Two runs share two cores with moto and the stand-ins: keep the sampling rate up.
        GREENFLAME_CPU_BUDGET="0.25",
    )
    try:
        yield env
    finally:
        closing.shutdown()
        stub.terminate()
        stub.wait(timeout=10)


@dataclass
class Run:
    """One handler's profile and what the rules said about it."""

    module: str
    fired: Set[str] = field(default_factory=set)
    sources: Set[str] = field(default_factory=set)


def _run(module: str, tmp: Path, env: Dict[str, str]) -> Run:
    out = tmp / f"{module}.json"
    command = [sys.executable, "-m", "greenflame.cli", "lambda", "invoke", f"{module}.lambda_handler"]
    command += ["--invocations", str(MORE_INVOCATIONS.get(module, INVOCATIONS)), "--region", REGION]
    command += ["--out", str(out), "--event", EVENT]
    result = subprocess.run(command, cwd=CORPUS, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, f"{module}: {result.stderr[-2000:]}"
    report = analyze_profile(load_profile(str(out)))
    fired = {finding.rule for finding in report.recommendations}
    sources = {f.inputs.invocations_per_month.source for f in report.recommendations if f.inputs.invocations_per_month}
    return Run(module, fired, sources)


@pytest.fixture(scope="module")
def runs(environment: Dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> List[Run]:
    tmp = tmp_path_factory.mktemp("corpus")
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda module: _run(module, tmp, environment), sorted(EXPECTED)))


def _table(results: List[Run]) -> str:
    lines = ["| handler | expected | fired |", "|---|---|---|"]
    for run in results:
        expected = ", ".join(EXPECTED[run.module]) or "-"
        lines.append(f"| {run.module} | {expected} | {', '.join(sorted(run.fired)) or '-'} |")
    return "\n".join(lines)


def test_the_corpus_covers_every_handler_file() -> None:
    assert {path.stem for path in CORPUS.glob("*.py")} == set(EXPECTED)
    assert len(EXPECTED) >= 15


def test_precision_and_recall_are_100_percent(runs: List[Run]) -> None:
    precision, recall = precision_recall((run.fired, set(EXPECTED[run.module])) for run in runs)
    print(f"\n{_table(runs)}\n\nprecision {precision:.0%}, recall {recall:.0%} over {len(runs)} handlers")
    assert (precision, recall) == (1.0, 1.0), _table(runs)


def test_the_local_loop_rate_is_assumed_never_extrapolated(runs: List[Run]) -> None:
    sources = set().union(*(run.sources for run in runs))
    assert sources == {"assumed"}


def test_precision_and_recall_count_false_findings_and_misses() -> None:
    assert precision_recall([({SDK, HTTP}, {SDK}), (set(), {HTTP}), ({SDK}, {SDK})]) == (2 / 3, 2 / 3)
