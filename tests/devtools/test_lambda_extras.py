"""The ``lambda`` extra brings what the lambda verbs need; a missing one is named by package and extra, before any work.

The command runs in a subprocess whose import system refuses the named modules (a meta path
finder installed by ``-c`` before the CLI loads), as if they were not installed.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest
from support.paths import ROOT

SHIM = """
import sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocker())
from greenflame.cli.main import main
sys.exit(main(sys.argv[2:]))
"""

HANDLER = """
import os
def handler(event, context):
    open(os.path.join(os.path.dirname(__file__), "ran"), "w").close()
    return "ok"
"""


def greenflame_without(blocked: List[str], *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", SHIM, ",".join(blocked), *argv]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(HANDLER))
    return tmp_path


def test_invoke_out_without_protobuf_names_the_package_and_does_no_work(task_root: Path) -> None:
    result = greenflame_without(["google"], "lambda", "invoke", "app.handler", "--out", "p.json.gz", cwd=task_root)

    assert result.returncode == 2
    assert result.stderr == (
        "greenflame: error: lambda needs protobuf, which is not installed; "
        "install it with: pip install 'greenflame[analyzer]'\n"
    )
    assert not (task_root / "ran").exists() and not (task_root / "p.json.gz").exists()


def test_enable_without_boto3_names_the_lambda_extra(task_root: Path) -> None:
    result = greenflame_without(
        ["boto3", "botocore"], "lambda", "enable", "orders", "--server", "http://x", cwd=task_root
    )

    assert result.returncode == 2
    assert result.stderr == (
        "greenflame: error: lambda needs boto3, which is not installed; "
        "install it with: pip install 'greenflame[lambda]'\n"
    )


def test_invoke_without_the_runtime_client_names_the_lambda_extra(task_root: Path) -> None:
    result = greenflame_without(["awslambdaric"], "lambda", "invoke", "app.handler", cwd=task_root)

    assert result.returncode == 2 and "pip install 'greenflame[lambda]'" in result.stderr
    assert not (task_root / "ran").exists()


def _requirements(extra: str) -> List[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options.extras_require"][extra].strip().splitlines()
    return [re.split(r"[<>=\[ ]", line.strip())[0].lower() for line in lines if line.strip()]


def test_the_lambda_extra_brings_what_every_lambda_verb_imports() -> None:
    assert {"awslambdaric", "boto3", "protobuf"} <= set(_requirements("lambda"))
