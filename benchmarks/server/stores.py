"""Stores for the server benchmarks: a fresh PostgreSQL database and a moto S3 server with a bucket.

Both are started (or made) for one run and removed after it, so runs never share data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Dict, Iterator

_RUNNING = re.compile(r"Running on (http://\S+)")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "greenflame-bench"


@contextmanager
def fresh_postgres(base_url: str) -> Iterator[str]:
    """A new database on the server of ``base_url`` (dropped afterwards); its URL."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT")
    name = f"greenflame_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def moto_s3() -> Iterator[Dict[str, str]]:
    """A moto server in server mode with an empty bucket; the environment pointing boto3 at it."""
    env = dict(os.environ, **CREDENTIALS)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    try:
        url = _wait_for_url(process)
        threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
        variables = dict(CREDENTIALS, AWS_ENDPOINT_URL=url, AWS_EC2_METADATA_DISABLED="true")
        import boto3

        boto3.client("s3", endpoint_url=url, region_name="us-east-1", **_keys()).create_bucket(Bucket=BUCKET)
        yield variables
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _keys() -> Dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def _wait_for_url(process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = _RUNNING.search(line)
        if found:
            return found.group(1)
        if not line and process.poll() is not None:
            break
    raise SystemExit("moto server did not start")
