"""Rate limits (issue 17, item 8): token guesses and anomaly votes per client."""

from __future__ import annotations

from pathlib import Path
from typing import List

from flask.testing import FlaskClient
from support.server import read_client

from greenflame.server.app import create_app
from greenflame.server.auth import RateLimiter

ADMIN = "right-admin-token"


def _client(tmp_path: Path, **settings: int) -> FlaskClient:
    return create_app({"data_dir": str(tmp_path), "admin_token": ADMIN, **settings}).test_client()


def test_wrong_admin_tokens_lock_the_client_out_for_a_while(tmp_path: Path) -> None:
    client = _client(tmp_path, auth_failure_limit=3)
    wrong = {"Authorization": "Bearer guess"}
    statuses = [client.post("/api/v1/groups", json={"name": "g"}, headers=wrong).status_code for _ in range(4)]
    assert statuses == [403, 403, 403, 429]
    right = client.post("/api/v1/groups", json={"name": "g"}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert right.status_code == 429 and 1 <= int(right.headers["Retry-After"]) <= 60
    assert right.get_json()["error"]["code"] == "too_many_requests"
    other = client.post(
        "/api/v1/groups",
        json={"name": "g"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert other.status_code == 201  # another client is not locked out


def test_wrong_ingest_keys_count_as_failures(tmp_path: Path) -> None:
    client = _client(tmp_path, auth_failure_limit=2)
    headers = {"Authorization": "Bearer gf_wrong", "Content-Type": "application/json"}
    statuses = [client.post("/api/v1/ingest", data=b"{}", headers=headers).status_code for _ in range(3)]
    assert statuses == [403, 403, 429]


def test_anomaly_votes_are_limited(tmp_path: Path) -> None:
    client = read_client(create_app({"data_dir": str(tmp_path), "admin_token": ADMIN, "feedback_limit": 2}))
    url = "/api/v1/anomalies/0123456789abcdef/feedback"
    statuses = [client.post(url, json={"useful": False}).status_code for _ in range(3)]
    assert statuses[-1] == 429 and 429 not in statuses[:2]
    assert client.post(url, json={"useful": False}, headers={"Authorization": ""}).status_code == 401


def test_rate_limiter_sliding_window() -> None:
    now: List[float] = [0.0]
    limiter = RateLimiter(2, window_s=10, clock=lambda: now[0])
    limiter.record("a")
    now[0] = 4
    limiter.record("a")
    assert limiter.retry_after_s("a") == 6 and limiter.retry_after_s("b") is None
    now[0] = 10.5  # the first event left the window
    assert limiter.retry_after_s("a") is None
