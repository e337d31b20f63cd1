"""``greenflame attach`` (devtools/attach.py) against real processes through the real py-spy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
from support.agent import IngestServer

from greenflame.analyzer.errors import UserError
from greenflame.analyzer.formats import greenflame_json
from greenflame.devtools import attach

TARGET = """
import sys, time
def busy_attach_target():
    end = time.perf_counter() + 30
    while time.perf_counter() < end:
        pass
print("ready", flush=True)
busy_attach_target()
"""


def py_spy_or_skip() -> str:
    try:
        return attach.find_py_spy()
    except UserError:
        pytest.skip("py-spy is not installed (pip install py-spy)")


@pytest.fixture
def target(tmp_path: Path) -> Iterator[subprocess.Popen]:
    script = tmp_path / "busy_target.py"
    script.write_text(textwrap.dedent(TARGET))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        yield child
    finally:
        child.kill()
        child.wait(10)


def test_attach_writes_a_greenflame_profile_of_the_running_process(target: subprocess.Popen, tmp_path: Path) -> None:
    py_spy_or_skip()
    out = tmp_path / "attached.json"
    assert attach.attach_command(target.pid, duration=1, rate=50, out=str(out)) == 0
    profile = greenflame_json.loads(out.read_bytes())
    profile.validate()
    assert profile.group == "busy_target"
    assert "busy_attach_target" in [frame.function for frame in profile.frames]
    assert profile.metadata["engine"] == "py-spy" and profile.metadata["pid"] == target.pid
    assert profile.sample_period_ns == 20_000_000 and profile.total("cpu") > 0


def test_attach_ships_to_a_server(target: subprocess.Popen, ingest_server: IngestServer) -> None:
    py_spy_or_skip()
    assert attach.attach_command(target.pid, duration=1, rate=50, server=ingest_server.url) == 0
    [request] = ingest_server.received
    report = request.report()
    assert request.headers["Idempotency-Key"] == report["metadata"]["report_id"]
    assert report["metadata"]["engine"] == "py-spy"


def test_ptrace_refused_is_one_line_saying_what_to_do(
    target: subprocess.Popen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    py_spy = py_spy_or_skip()
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run py-spy without ptrace rights")
    # The real py-spy, run as 'nobody' without capabilities: the kernel refuses to let it read the target.
    wrapper = tmp_path / "py-spy-unprivileged"
    wrapper.write_text(
        f"#!/bin/sh\nexec {setpriv} --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
        f'--bounding-set=-all {py_spy} "$@"\n'
    )
    wrapper.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    monkeypatch.setenv(attach.PY_SPY_VARIABLE, str(wrapper))
    with pytest.raises(UserError) as caught:
        attach.attach_command(target.pid, duration=1, out=str(tmp_path / "never.json"))
    message = str(caught.value)
    assert "does not permit ptrace" in message and "SYS_PTRACE" in message and "\n" not in message
    assert not (tmp_path / "never.json").exists()


def test_a_missing_process_is_a_one_line_error() -> None:
    with pytest.raises(UserError, match="no process with id 999999999"):
        attach.attach_command(999_999_999, duration=1)


def test_missing_py_spy_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(attach.PY_SPY_VARIABLE, str(tmp_path / "nowhere" / "py-spy"))
    with pytest.raises(UserError, match="not an executable file"):
        attach.find_py_spy()
    monkeypatch.delenv(attach.PY_SPY_VARIABLE)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(UserError, match="pip install py-spy"):
        attach.find_py_spy()


def test_empty_or_garbled_py_spy_output_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="recorded no sample of process 7"):
        attach.to_profile(b"", 7, 100.0, 0, "g")
    with pytest.raises(UserError, match="cannot read py-spy's output"):
        attach.to_profile(b"not a collapsed line\n", 7, 100.0, 0, "g")


def test_the_record_command_line() -> None:
    command = attach.record_command("py-spy", 42, 99.6, 2.2, "/tmp/o.txt")
    assert command == [
        "py-spy", "record", "--pid", "42", "--rate", "100", "--format", "raw", "--output", "/tmp/o.txt",
        "--nonblocking", "--duration", "2",
    ]  # fmt: skip
    assert json.dumps(attach.record_command("py-spy", 1, 100, None, "o")).count("--duration") == 0
