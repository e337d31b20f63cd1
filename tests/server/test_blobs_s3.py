"""Profile bodies in an S3-compatible store (``s3://bucket/prefix``), against moto in server mode.

The durability test kills ``greenflame serve`` with SIGKILL while clients post: every report it
acknowledged (202) must be readable after a restart.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
from support.aws import MotoServer, aws_env, moto_server  # noqa: F401
from support.server import LiveServer, ingest, ingest_profile, make_profile, start_server, unique_name, wait_for

from greenflame.analyzer.errors import UserError
from greenflame.analyzer.formats import greenflame_json
from greenflame.server.blobs import S3BlobStore, open_blob_store
from greenflame.server.storage import Storage

pytest.importorskip("boto3")

CLIENTS = 4


@pytest.fixture
def bucket(aws_env: MotoServer) -> str:  # noqa: F811
    name = f"greenflame-{uuid.uuid4().hex[:12]}"
    aws_env.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


def test_put_get_delete_under_the_prefix(aws_env: MotoServer, bucket: str) -> None:  # noqa: F811
    store = open_blob_store(f"s3://{bucket}/team/a/")
    assert isinstance(store, S3BlobStore) and store.prefix == "team/a"
    store.put("profiles/ab/abc.json.gz", b"one")
    store.put("profiles/ab/abc.json.gz", b"two")  # replaced
    assert store.get("profiles/ab/abc.json.gz") == b"two"
    listed = aws_env.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["team/a/profiles/ab/abc.json.gz"]
    store.delete("profiles/ab/abc.json.gz")
    store.delete("profiles/ab/abc.json.gz")  # absent: no error
    with pytest.raises(KeyError):
        store.get("profiles/ab/abc.json.gz")


def test_keys_are_checked_and_a_bare_bucket_has_no_prefix(bucket: str) -> None:
    store = open_blob_store(f"s3://{bucket}")
    assert isinstance(store, S3BlobStore) and store.object_key("a/b") == "a/b"
    for bad in ("../x", "/abs", "a//b", ""):
        with pytest.raises(ValueError, match="invalid blob key"):
            store.put(bad, b"x")


def test_a_missing_bucket_or_none_is_a_user_error(aws_env: MotoServer) -> None:  # noqa: F811
    with pytest.raises(UserError, match="cannot use S3 bucket 'no-such-bucket-here'"):
        open_blob_store("s3://no-such-bucket-here/p")
    with pytest.raises(UserError, match="names no bucket"):
        open_blob_store("s3:///prefix")


def _post_until_killed(server: LiveServer, key: str, group: str, acked: List[str], stop: threading.Event) -> None:
    """Post reports, in turn as the agent sends them (version 2) and as earlier agents did (version 1)."""
    columns = True
    while not stop.is_set():
        profile = make_profile(group, start_time_unix_ns=time.time_ns() - 120 * 10**9)
        columns = not columns
        try:
            if columns:
                response = ingest_profile(server, key, profile)
            else:
                response = ingest(server, key, greenflame_json.dumps(profile))
        except Exception:  # the server died mid-request: that report was never acknowledged
            return
        if response.status_code == 202:
            acked.append(response.json()["id"])


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_acknowledged_reports_survive_sigkill(
    tmp_path: Path,
    aws_env: MotoServer,  # noqa: F811
    bucket: str,
    database: str,
    request: pytest.FixtureRequest,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'data' / 'greenflame.db'}"
    if database == "postgresql":  # skipped unless GREENFLAME_TEST_POSTGRES_URL names a server
        database_url = request.getfixturevalue("postgres_database")()
    env: Dict[str, str] = dict(
        aws_env.environment(), GREENFLAME_BLOBS_URL=f"s3://{bucket}/bodies", GREENFLAME_DATABASE_URL=database_url
    )
    server = start_server(tmp_path / "data", env)
    group = unique_name("durable")
    key = server.create_group(group)
    acked: List[str] = []
    stop = threading.Event()
    clients = [
        threading.Thread(target=_post_until_killed, args=(server, key, group, acked, stop), daemon=True)
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    wait_for("20 acknowledged reports", lambda: len(acked) >= 20 or None)
    os.kill(server.process.pid, signal.SIGKILL)  # mid-ingest: clients are still posting
    server.process.wait(10)
    stop.set()
    for client in clients:
        client.join(30)
    restarted = start_server(tmp_path / "data", env)
    try:
        summary = restarted.session.get(restarted.api(f"/api/v1/groups/{group}"), timeout=30).json()
        assert summary["profile_count"] >= len(acked)
    finally:
        restarted.stop()
    storage = Storage.open(database_url, f"s3://{bucket}/bodies")
    try:
        rows = {row.id: row for row in storage.find_profiles(group)}
        assert set(acked) <= set(rows)
        for profile_id in acked:
            assert storage.load_profile(rows[profile_id]).group == group
    finally:
        storage.close()
