"""The pyinstrument engine (a sampled share of calls) and the S3 exporter against moto's server."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from support.agent import sample_rows

import greenflame.agent as agent
from greenflame.agent.aggregator import Aggregator
from greenflame.agent.drops import DropCounter
from greenflame.agent.exporters import ExportError, S3Exporter


def read(path: Path) -> Dict[str, Any]:
    document: Dict[str, Any] = json.loads(path.read_bytes())
    return document


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def request_work() -> None:
    spin(0.02)
    time.sleep(0.01)


def test_pyinstrument_profiles_a_share_of_calls(tmp_path: Path) -> None:
    pytest.importorskip("pyinstrument")
    out = tmp_path / "p.json"
    profiler = agent.start(out=str(out), engine="pyinstrument", call_share=0.5, rate_hz=1000, report_interval_s=3600)
    assert profiler is not None and profiler.call_profiler is not None
    for _ in range(40):
        with agent.profile_call(), agent.labels(route="/r"):
            request_work()
    calls = profiler.call_profiler
    assert calls.calls == 40 and 5 <= calls.profiled <= 35
    agent.stop()
    report = read(out)
    assert report["metadata"]["engine"] == "pyinstrument" and report["metadata"]["cpu_source"] == "call-cputime"
    totals = {"spin": [0, 0, 0], "sleep": [0, 0, 0]}
    for sample in report["samples"]:
        functions = {report["frames"][i]["function"] for i in sample["stack"]}
        for name, column in totals.items():
            if name in functions:  # spin's own time and its calls (pyinstrument sees perf_counter)
                column[:] = [a + b for a, b in zip(column, sample["values"])]
    # about 20 ms busy and 10 ms asleep per profiled call, at 1 ms per sample; the CPU column
    # follows the CPU the thread really got (less than its wall time on a loaded machine)
    assert totals["spin"][0] >= 15 * calls.profiled and 0 < totals["spin"][1] <= totals["spin"][0]
    assert totals["sleep"][2] >= 5 * calls.profiled and totals["sleep"][1] == 0


def test_profile_call_does_nothing_with_the_thread_engine(tmp_path: Path) -> None:
    profiler = agent.start(out=str(tmp_path / "p.json"), report_interval_s=3600)
    assert profiler is not None and profiler.call_profiler is None
    with agent.profile_call():
        spin(0.01)


def test_a_missing_pyinstrument_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    import importlib

    real = importlib.import_module

    def without_pyinstrument(name: str, package: Any = None) -> Any:
        if name == "pyinstrument":
            raise ModuleNotFoundError("No module named 'pyinstrument'", name="pyinstrument")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_pyinstrument)
    assert agent.start(out="p.json", engine="pyinstrument") is None
    assert "GREENFLAME_ENGINE=pyinstrument needs pyinstrument, which is not installed: pip install pyinstrument" in (
        caplog.text
    )


# -- S3 ---------------------------------------------------------------------------------


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    try:
        yield endpoint
    finally:
        server.stop()


def a_report() -> Dict[str, Any]:
    aggregator = Aggregator(10, DropCounter(), clock=iter([1_700_000_000_000_000_000] * 2).__next__)
    aggregator.add([((("main", "app.py", 1),), (), 1, 0)])
    return aggregator.drain("svc", 10_000_000, {"report_id": "r-1", "dropped": {}})


def test_s3_exporter_uploads_gzipped_reports(moto_s3: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="profiles")
    exporter = S3Exporter("s3://profiles/team/prod", "checkout", 5)
    exporter.export(a_report(), time.monotonic() + 30)
    key = "team/prod/checkout/2023/11/14/1700000000000000000-r-1.json.gz"
    obj = s3.get_object(Bucket="profiles", Key=key)
    assert obj["ContentEncoding"] == "gzip"
    uploaded = json.loads(gzip.decompress(obj["Body"].read()))
    assert uploaded["version"] == 2 and sample_rows(uploaded)["frames"][0]["function"] == "main"


def test_s3_failure_is_an_export_error(moto_s3: str) -> None:
    with pytest.raises(ExportError) as caught:
        S3Exporter("s3://no-such-bucket", "g", 2).export(a_report(), time.monotonic() + 30)
    assert caught.value.reason == "export_failed" and "no-such-bucket" in str(caught.value)


def test_the_agent_ships_to_s3(moto_s3: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="fleet")
    assert agent.start(s3="s3://fleet/p", group="svc", report_interval_s=3600) is not None
    spin(0.1)
    agent.stop()
    [item] = s3.list_objects_v2(Bucket="fleet")["Contents"]
    assert item["Key"].startswith("p/svc/") and item["Key"].endswith(".json.gz")


def test_importing_the_agent_does_not_import_boto3_or_pyinstrument() -> None:
    import subprocess
    import sys

    code = "import sys, greenflame.agent; print('boto3' in sys.modules, 'pyinstrument' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr
