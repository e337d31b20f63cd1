"""The command line as a user meets it: every verb answers, mistakes are one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List

import pytest
from support.server import server_command

VERBS: List[List[str]] = [
    ["run"],
    ["attach"],
    ["lambda", "invoke"],
    ["lambda", "layer"],
    ["analyze"],
    ["anomalies"],
    ["export"],
    ["tickets", "push"],
    ["tickets", "status"],
    ["serve"],
    ["demo"],
]


def greenflame(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        server_command(*args),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("greenflame: error: "), done.stderr


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_of_the_contract_has_help(verb: List[str], tmp_path: Path) -> None:
    done = greenflame(*verb, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: greenflame " + " ".join(verb))


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["lambda"],
        ["analyze"],
        ["export", "x.json", "--format", "png"],
        ["attach", "--pid", "zero"],
        ["lambda", "invoke", "app.handler", "--invocations", "0"],
        ["analyze", "missing.json"],
        ["lambda", "layer", "-o", "layer.zip", "--python", "/nonexistent/python"],
    ],
    ids=" ".join,
)
def test_mistakes_are_one_line(args: List[str], tmp_path: Path) -> None:
    assert_one_line_error(greenflame(*args, cwd=tmp_path))


def test_lambda_layer_from_the_command_line(tmp_path: Path) -> None:
    done = greenflame("lambda", "layer", "-o", "layer.zip", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    names = zipfile.ZipFile(tmp_path / "layer.zip").namelist()
    assert "greenflame-wrapper" in names
    assert "python/greenflame/agent/__init__.py" in names
    tag = sys.implementation.cache_tag
    assert f"python/greenflame/agent/__pycache__/__init__.{tag}.pyc" in names
