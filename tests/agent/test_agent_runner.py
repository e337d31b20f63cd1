"""``greenflame run`` as a real subprocess on small scripts."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest
from support.server import server_command

from greenflame.agent.runner import default_group
from greenflame.analyzer.formats import greenflame_json

SCRIPT = """
import os, subprocess, sys, time
def busy_loop():
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        pass
busy_loop()
print("args", sys.argv[1:])
print("pythonpath", os.environ.get("PYTHONPATH", "<unset>"))
subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=60)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


def greenflame(*args: str, cwd: Path, env: Dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        server_command(*args),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENFLAME_") and k != "PYTHONPATH"}
    env.update(extra)
    return env


def load(path: Path) -> Dict[str, Any]:
    data = path.read_bytes()
    document: Dict[str, Any] = json.loads(gzip.decompress(data) if path.suffix == ".gz" else data)
    greenflame_json.profile_from_dict(document).validate()
    return document


def functions(report: Dict[str, Any]) -> List[str]:
    return [frame["function"] for frame in report["frames"]]


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "job.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def test_run_profiles_the_script_into_out_and_returns_its_status(tmp_path: Path, script: Path) -> None:
    out = tmp_path / "profile.json"
    result = greenflame("run", "--out", str(out), "--", sys.executable, str(script), "3", cwd=tmp_path, env=clean_env())
    assert result.returncode == 3, result.stderr
    assert "args ['3']" in result.stdout
    assert "pythonpath <unset>" in result.stdout  # the bootstrap leaves no trace in the program
    report = load(out)
    assert report["group"] == "job"
    assert "busy_loop" in functions(report) and "<module>" in functions(report)
    assert report["metadata"]["pid"] != os.getpid()
    # the script's own Python subprocess was not profiled into the same place
    assert sorted(os.listdir(tmp_path)) == ["job.py", "profile.json"]
    assert f"greenflame: profile written to {out}" in result.stderr


def test_without_out_or_server_a_timestamped_file_is_written_and_named(tmp_path: Path, script: Path) -> None:
    result = greenflame(
        "run", "--group", "nightly", "--rate", "50", "--", sys.executable, str(script), cwd=tmp_path, env=clean_env()
    )
    assert result.returncode == 0, result.stderr
    [written] = [p for p in tmp_path.iterdir() if p.name.startswith("greenflame-nightly-")]
    assert written.name.endswith(".json.gz")
    assert f"greenflame: profile written to {written}" in result.stderr
    report = load(written)
    meta = report["metadata"]
    assert report["group"] == "nightly"
    # --rate reached the agent (its CPU budget may have lowered it on a loaded machine, and says so)
    assert meta["sample_rate_hz"] == 50 or ("rate_limited" in meta and 0 < meta["sample_rate_hz"] < 50)


def test_an_existing_sitecustomize_still_runs(tmp_path: Path, script: Path) -> None:
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "sitecustomize.py").write_text("import builtins\nbuiltins.CUSTOMIZED = 'yes'\n")
    script.write_text(
        "import builtins\nprint('customized', getattr(builtins, 'CUSTOMIZED', 'no'))\n" + script.read_text()
    )
    out = tmp_path / "p.json.gz"
    result = greenflame(
        "run",
        "--out",
        str(out),
        "--",
        sys.executable,
        str(script),
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(site_dir)),
    )
    assert result.returncode == 0, result.stderr
    assert "customized yes" in result.stdout
    assert f"pythonpath {site_dir}" in result.stdout
    assert "busy_loop" in functions(load(out))


def test_a_missing_command_is_a_one_line_error(tmp_path: Path) -> None:
    result = greenflame("run", "--", "no-such-command-here", cwd=tmp_path, env=clean_env())
    assert result.returncode == 2
    assert result.stderr.strip() == "greenflame: error: command not found: no-such-command-here"


def test_a_bad_setting_is_reported_before_the_program_starts(tmp_path: Path, script: Path) -> None:
    result = greenflame(
        "run", "--", sys.executable, str(script), cwd=tmp_path, env=clean_env(GREENFLAME_MAX_DEPTH="deep")
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "greenflame: error: GREENFLAME_MAX_DEPTH: expected a whole number, got 'deep'"
    assert "args" not in result.stdout


def test_sigterm_is_forwarded_and_the_profile_still_flushed(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text("import time\nprint('ready', flush=True)\ndef serve():\n    time.sleep(60)\nserve()\n")
    out = tmp_path / "p.json"
    runner = subprocess.Popen(
        server_command("run", "--out", str(out), "--", sys.executable, str(script)),
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline().strip() == "ready"
        runner.send_signal(signal.SIGTERM)
        status = runner.wait(timeout=30)
    finally:
        runner.kill()
        runner.communicate(timeout=30)
    assert status == 128 + signal.SIGTERM
    assert load(out)["group"] == "server"  # written at exit, however few samples it holds


@pytest.mark.parametrize(
    ("command", "group"),
    [
        (["python", "app.py", "--port", "1"], "app"),
        (["python3.11", "-X", "dev", "-u", "tools/job.py"], "job"),
        (["python", "-m", "http.server"], "http.server"),
        (["python", "-mpkg.cli"], "pkg.cli"),
        (["python", "-c", "pass"], "python"),
        (["/usr/bin/gunicorn", "app:wsgi"], "gunicorn"),
        (["./run.sh"], "run"),
    ],
)
def test_default_group_is_the_script_name(command: List[str], group: str) -> None:
    assert default_group(command) == group
