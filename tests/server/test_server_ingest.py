"""POST /api/v1/ingest against a real server: success, idempotent retry and every error code."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Iterator

import pytest
from support.server import LiveServer, assert_error, ingest, ingest_profile, make_profile, start_server, unique_name

from greenflame.analyzer.formats import greenflame_json


@pytest.fixture
def group(live_server: LiveServer) -> tuple:
    name = unique_name("ingest")
    return name, live_server.create_group(name)


def profile_count(server: LiveServer, name: str) -> int:
    response = server.session.get(server.api(f"/api/v1/groups/{name}"), timeout=10)
    count: int = response.json()["profile_count"]
    return count


def test_report_is_stored_and_counted(live_server: LiveServer, group: tuple) -> None:
    name, key = group
    response = ingest_profile(live_server, key, make_profile(name))
    assert response.status_code == 202
    body = response.json()
    assert body["duplicate"] is False and len(body["id"]) == 32
    assert profile_count(live_server, name) == 1


def test_identity_encoding_is_accepted(live_server: LiveServer, group: tuple) -> None:
    name, key = group
    body = greenflame_json.dumps(make_profile(name))
    response = ingest(live_server, key, body, {"Content-Encoding": "identity"}, gzipped=False)
    assert response.status_code == 202
    response = ingest(live_server, key, body, gzipped=False)  # no Content-Encoding at all
    assert response.status_code == 202
    assert profile_count(live_server, name) == 2


def test_retry_with_same_idempotency_key_is_stored_once(live_server: LiveServer, group: tuple) -> None:
    name, key = group
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = ingest_profile(live_server, key, make_profile(name), headers)
    second = ingest_profile(live_server, key, make_profile(name), headers)
    assert first.status_code == 202 and first.json()["duplicate"] is False
    assert second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "duplicate": True}
    assert profile_count(live_server, name) == 1


def test_missing_key_is_401(live_server: LiveServer, group: tuple) -> None:
    name, _ = group
    response = ingest_profile(live_server, None, make_profile(name))
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = ingest(live_server, None, b"{}", {"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(response, 401, "unauthorized")


def test_wrong_key_is_403(live_server: LiveServer, group: tuple) -> None:
    name, key = group
    assert_error(ingest_profile(live_server, key + "x", make_profile(name)), 403, "forbidden")


def test_key_of_another_group_is_403(live_server: LiveServer, group: tuple) -> None:
    name, _ = group
    other_key = live_server.create_group(unique_name("other"))
    assert_error(ingest_profile(live_server, other_key, make_profile(name)), 403, "forbidden")
    # A report naming a group that does not exist is refused too.
    assert_error(ingest_profile(live_server, other_key, make_profile("no-such-group")), 403, "forbidden")
    assert profile_count(live_server, name) == 0


def test_other_content_types_are_415(live_server: LiveServer, group: tuple) -> None:
    name, key = group
    body = greenflame_json.dumps(make_profile(name))
    for content_type in ("text/plain", "application/x-protobuf", "application/x-www-form-urlencoded"):
        response = ingest(live_server, key, body, {"Content-Type": content_type})
        assert_error(response, 415, "unsupported_media_type")
    response = ingest(live_server, key, body, {"Content-Encoding": "br"})
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "body, gzipped",
    [
        (b"\x1f\x8b\x08\x00 this is not deflate data", False),  # malformed gzip
        (gzip.compress(b'{"format": "greenflame-profile"}')[:-12], False),  # truncated gzip
        (b"{not json", True),
        (b"\xff\xfe invalid utf-8", True),
        (b"[1, 2, 3]", True),
        (json.dumps({"format": "pprof", "version": 1}).encode(), True),
    ],
    ids=["bad-gzip", "truncated-gzip", "bad-json", "bad-utf8", "not-an-object", "wrong-format"],
)
def test_malformed_bodies_are_400(live_server: LiveServer, group: tuple, body: bytes, gzipped: bool) -> None:
    _, key = group
    headers = {} if gzipped else {"Content-Encoding": "gzip"}
    response = ingest(live_server, key, body, headers, gzipped=gzipped)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("malformed_body", "malformed_profile")
    assert_error(response, 400, response.json()["error"]["code"])


def test_profile_with_bad_frame_index_is_400(live_server: LiveServer, group: tuple) -> None:
    name, key = group
    document = json.loads(greenflame_json.dumps(make_profile(name)))
    document["samples"][0]["stack"] = [99]
    response = ingest(live_server, key, json.dumps(document).encode())
    assert_error(response, 400, "malformed_profile")


def test_bad_idempotency_key_is_400(live_server: LiveServer, group: tuple) -> None:
    name, key = group
    response = ingest_profile(live_server, key, make_profile(name), {"Idempotency-Key": "x" * 300})
    assert_error(response, 400, "invalid_idempotency_key")


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    limits = {"GREENFLAME_MAX_UPLOAD_BYTES": "4096", "GREENFLAME_MAX_DECOMPRESSED_BYTES": "65536"}
    server = start_server(tmp_path_factory.mktemp("small-limits") / "data", limits)
    name = unique_name("limits")
    yield server, name, server.create_group(name)
    server.stop()


def test_upload_over_limit_is_413(small_limits: tuple) -> None:
    server, name, key = small_limits
    noise = uuid.uuid4().hex * 400  # incompressible enough to stay over 4 KiB gzipped
    profile = make_profile(name)
    profile.metadata["note"] = noise + "".join(str(uuid.uuid4()) for _ in range(200))
    body = gzip.compress(greenflame_json.dumps(profile))
    assert len(body) > 4096
    response = ingest(server, key, body, {"Content-Encoding": "gzip"}, gzipped=False)
    assert_error(response, 413, "payload_too_large")


def test_upload_over_limit_without_content_length_is_413(small_limits: tuple) -> None:
    server, _, key = small_limits
    chunks = (uuid.uuid4().bytes * 64 for _ in range(6))  # a generator is sent chunked
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = server.session.post(server.api("/api/v1/ingest"), data=chunks, headers=headers, timeout=30)
    assert_error(response, 413, "payload_too_large")


def test_decompression_bomb_is_413(small_limits: tuple) -> None:
    server, name, key = small_limits
    document = greenflame_json.dumps(make_profile(name))[:-1] + b',"padding":"' + b" " * 200_000 + b'"}'
    body = gzip.compress(document)
    assert len(body) < 4096
    response = ingest(server, key, body, {"Content-Encoding": "gzip"}, gzipped=False)
    assert_error(response, 413, "payload_too_large")


def test_small_report_passes_small_limits(small_limits: tuple) -> None:
    server, name, key = small_limits
    assert ingest_profile(server, key, make_profile(name)).status_code == 202


def test_far_larger_upload_is_refused_before_it_is_buffered(small_limits: tuple) -> None:
    # Past twice the limit the WSGI server itself answers 413 (plain text), without buffering it.
    server, _, key = small_limits
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = server.session.post(server.api("/api/v1/ingest"), data=b"x" * 100_000, headers=headers, timeout=30)
    assert response.status_code == 413
