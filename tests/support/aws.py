"""A real AWS API implementation for tests: moto in server mode, started and stopped by the test suite.

``moto_server`` (one per module that imports it) runs ``python -m moto.server -p0`` on a free
loopback port, waits until it answers, points boto3 at it (``AWS_ENDPOINT_URL``, fake credentials,
a region) for the tests that use it, and stops it at teardown. Import the fixture into a test
module: ``from support.aws import moto_server  # noqa: F401``.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from typing import Any, Dict, Iterator

import pytest
import requests

START_TIMEOUT_S = 30.0
REGION = "eu-west-1"
_RUNNING = re.compile(r"Running on (http://\S+)")
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass
class MotoServer:
    """A running moto server: its URL and the environment that points boto3 at it."""

    url: str
    process: subprocess.Popen[str]

    def environment(self, region: str = REGION) -> Dict[str, str]:
        """Variables for a process (or this one) whose boto3 should talk to this server."""
        return dict(
            FAKE_CREDENTIALS,
            AWS_ENDPOINT_URL=self.url,
            AWS_DEFAULT_REGION=region,
            AWS_REGION=region,
            AWS_EC2_METADATA_DISABLED="true",
        )

    def client(self, service: str, region: str = REGION, **credentials: str) -> Any:
        """A boto3 client of this server (fake credentials unless given)."""
        import boto3

        keys = credentials or {
            "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }
        return boto3.client(service, region_name=region, endpoint_url=self.url, **keys)

    def enforce_iam(self, enforce: bool) -> None:
        """Make the server check IAM permissions on every later call (moto's ``reset-auth``), or stop."""
        count = "0" if enforce else "inf"
        requests.post(f"{self.url}/moto-api/reset-auth", data=count, timeout=10).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_moto() -> MotoServer:
    """Start ``python -m moto.server -p0`` and return once it answers."""
    pytest.importorskip("moto.server")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, **FAKE_CREDENTIALS),
    )
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = _RUNNING.search(line)
        if found:
            server = MotoServer(found.group(1), process)
            _drain(process)
            return server
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError("moto server did not start")


def _drain(process: subprocess.Popen[str]) -> None:
    """Keep reading the server's output so that it never blocks on a full pipe."""
    import threading

    def read() -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            pass

    threading.Thread(target=read, daemon=True).start()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    """A moto server for this test module."""
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """Point this process's boto3 at the module's moto server for one test."""
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in moto_server.environment().items():
        monkeypatch.setenv(name, value)
    return moto_server


def function_zip(source: str = "def handler(event, context):\n    return 'ok'\n") -> bytes:
    """A function package holding ``app.py``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()
