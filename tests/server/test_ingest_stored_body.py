"""Ingest stores the body the agent sent when it is exactly the validated document."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from support.server import agent_body

from greenflame.analyzer.formats import greenflame_json
from greenflame.analyzer.model import Frame, Profile
from greenflame.server.app import create_app
from greenflame.server.ingest import stored_body
from greenflame.server.storage import get_storage

DOCUMENT = b'{"format": "greenflame"}'


def test_a_single_gzip_member_is_stored_as_received() -> None:
    raw = gzip.compress(DOCUMENT, compresslevel=9, mtime=123)
    assert stored_body("gzip", raw, DOCUMENT) is raw


def test_anything_else_is_compressed_anew_from_the_validated_document() -> None:
    second_member = gzip.compress(DOCUMENT) + gzip.compress(b"x" * 10_000)
    trailing = gzip.compress(DOCUMENT) + b"junk"
    for encoding, raw in (("gzip", second_member), ("gzip", trailing), ("identity", DOCUMENT)):
        stored = stored_body(encoding, raw, DOCUMENT)
        assert stored != raw
        assert gzip.decompress(stored) == DOCUMENT


def test_the_blob_holds_the_bytes_the_agent_sent(tmp_path: Path) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "admin-token-for-tests-0123456789"})
    client = app.test_client()
    created = client.post(
        "/api/v1/groups", json={"name": "svc"}, headers={"Authorization": "Bearer admin-token-for-tests-0123456789"}
    )
    profile = Profile(group="svc", start_time_unix_ns=time.time_ns() - 60 * 10**9, duration_ns=60 * 10**9)
    profile.add([Frame("main", "/srv/app.py", 1)], [3, 2])
    sent = gzip.compress(greenflame_json.dumps(profile), compresslevel=9, mtime=7)
    headers = {"Authorization": f"Bearer {created.get_json()['ingest_key']}", "Content-Encoding": "gzip"}
    response = client.post("/api/v1/ingest", data=sent, headers=headers, content_type="application/json")
    assert response.status_code == 202
    with app.app_context():
        storage = get_storage()
        (row,) = storage.find_profiles("svc")
        assert storage.blobs.get(row.blob_key) == sent
        assert storage.load_profile(row).samples == profile.samples


def test_a_report_in_columns_is_stored_as_sent_and_read_back_as_its_profile(tmp_path: Path) -> None:
    app = create_app(
        {"data_dir": str(tmp_path), "admin_token": "admin-token-for-tests-0123456789", "max_stack_depth": 4}
    )
    client = app.test_client()
    created = client.post(
        "/api/v1/groups", json={"name": "svc"}, headers={"Authorization": "Bearer admin-token-for-tests-0123456789"}
    )
    headers = {"Authorization": f"Bearer {created.get_json()['ingest_key']}", "Content-Encoding": "gzip"}
    profile = Profile(group="svc", start_time_unix_ns=time.time_ns() - 60 * 10**9, duration_ns=60 * 10**9)
    profile.add([Frame("main", "/srv/app.py", 1), Frame("work", "/srv/app.py", 9)], [3, 2], {"endpoint": "GET /"})
    profile.add([Frame("main", "/srv/app.py", 1)], [1, 0])
    deep = Profile(group="svc", start_time_unix_ns=profile.start_time_unix_ns + 10**9, duration_ns=60 * 10**9)
    deep.add([Frame(f"f{n}", "/srv/deep.py", n) for n in range(6)], [5, 5], {"endpoint": "POST /"})
    sent = [agent_body(p, compress=True) for p in (profile, deep)]
    for body in sent:
        response = client.post("/api/v1/ingest", data=body, headers=headers, content_type="application/json")
        assert response.status_code == 202, response.get_json()
    with app.app_context():
        storage = get_storage()
        rows = sorted(storage.find_profiles("svc"), key=lambda row: row.start_time_unix_ns)
        stored = [storage.blobs.get(row.blob_key) for row in rows]
        assert stored[0] == sent[0]  # as sent: the columns themselves
        assert storage.load_profile(rows[0]) == greenflame_json.loads(greenflame_json.dumps(profile))
        assert storage.load_summary(rows[0]).profile() == storage.load_profile(rows[0])
        # Too deep for the server's limit: cut to its root-side frames and the marker, stored anew.
        assert stored[1] != sent[1]
        [cut] = storage.load_profile(rows[1]).samples
        assert len(cut.stack) == 4 and cut.values == [5, 5] and cut.labels == {"endpoint": "POST /"}
