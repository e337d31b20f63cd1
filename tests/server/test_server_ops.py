"""/livez, /readyz, /metrics (Prometheus), and structured JSON logs."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Callable, Tuple

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from support.openapi import check
from support.server import LiveServer, ingest, make_profile, unique_name, wait_for

from greenflame.analyzer.errors import UserError
from greenflame.analyzer.formats import greenflame_json
from greenflame.server.app import create_app
from greenflame.server.logs import JsonFormatter
from greenflame.server.settings import Settings
from greenflame.server.storage import get_storage

ADMIN = {"Authorization": "Bearer t"}


def client(tmp_path: Path, **settings: str) -> FlaskClient:
    return create_app({"data_dir": str(tmp_path), "admin_token": "t", **settings}).test_client()


def samples(body: str) -> dict:
    """{(name, labels as a sorted tuple): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_livez_and_readyz(tmp_path: Path) -> None:
    web = client(tmp_path)
    assert web.get("/livez").json == {"status": "ok"}
    assert web.get("/readyz").json == {"status": "ok"}


def test_readyz_is_503_when_the_schema_is_behind(tmp_path: Path) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "t"})
    with app.app_context(), get_storage().engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable" and "expected" in response.json["reason"]


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(_engine: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    web = client(tmp_path)
    monkeypatch.setattr("greenflame.server.ops.current_revision", unreachable)
    response = web.get("/readyz")
    assert response.status_code == 503
    assert "unreachable" in response.json["reason"]


def test_metrics_need_the_admin_token_by_default(tmp_path: Path) -> None:
    web = client(tmp_path)
    assert web.get("/metrics").status_code == 401
    assert web.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    response = web.get("/metrics", headers=ADMIN)
    assert response.status_code == 200 and response.mimetype == "text/plain"


def test_metrics_can_be_public(tmp_path: Path) -> None:
    assert client(tmp_path, metrics_access="public").get("/metrics").status_code == 200


def test_setting_choices_are_checked() -> None:
    with pytest.raises(UserError, match="metrics_access must be one of admin, public"):
        Settings.from_env({"metrics_access": "everyone"}, environ={})
    with pytest.raises(UserError, match="log_format must be one of text, json"):
        Settings.from_env({"log_format": "xml"}, environ={})


def test_ingest_counts_reports_bytes_and_rejects(tmp_path: Path) -> None:
    web = client(tmp_path)
    name = unique_name("metrics")
    key = web.post("/api/v1/groups", json={"name": name}, headers=ADMIN).json["ingest_key"]
    before = samples(web.get("/metrics", headers=ADMIN).get_data(as_text=True))
    body = greenflame_json.dumps(make_profile(name))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Idempotency-Key": "m1"}
    assert web.post("/api/v1/ingest", data=body, headers=headers).status_code == 202
    assert web.post("/api/v1/ingest", data=body, headers=headers).status_code == 200  # a duplicate: not counted
    assert web.post("/api/v1/ingest", data=b"{", headers=headers).status_code == 400
    assert web.post("/api/v1/ingest", data=body, headers={**headers, "Authorization": "Bearer no"}).status_code == 403
    after = samples(web.get("/metrics", headers=ADMIN).get_data(as_text=True))

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert grew("greenflame_ingest_reports_total") == 1
    assert grew("greenflame_ingest_bytes_total") == len(body)
    assert grew("greenflame_ingest_rejected_total", reason="malformed_profile") == 1
    assert grew("greenflame_ingest_rejected_total", reason="forbidden") == 1
    for gauge in ("greenflame_analysis_queue_groups", "greenflame_rollup_queue_jobs"):
        assert after[(gauge, ())] >= 0


def test_analysis_and_rollups_record_their_times(live_server: LiveServer) -> None:
    name = unique_name("timed")
    key = live_server.create_group(name)
    assert ingest(live_server, key, greenflame_json.dumps(make_profile(name))).status_code == 202
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}

    def counts() -> Tuple[float, float]:
        found = samples(requests.get(f"{live_server.url}metrics", headers=headers, timeout=30).text)
        return found[("greenflame_analysis_run_seconds_count", ())], found[("greenflame_rollup_lag_seconds_count", ())]

    wait_for("an analysis run and a rollup", lambda: all(n >= 1 for n in counts()) or None)


def test_ops_responses_conform(live_server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    check(requests.get(f"{live_server.url}livez", timeout=30), "/livez")
    check(requests.get(f"{live_server.url}readyz", timeout=30), "/readyz")
    check(requests.get(f"{live_server.url}metrics", headers=headers, timeout=30), "/metrics")
    check(requests.get(f"{live_server.url}metrics", timeout=30), "/metrics")


def test_json_log_lines() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("greenflame.x", logging.ERROR, __file__, 1, "failed %s", ("run",), None)
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "ERROR" and entry["logger"] == "greenflame.x" and entry["message"] == "failed run"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", entry["time"])
    assert "RuntimeError: boom" in entry["exception"]


def test_serve_writes_json_logs(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(env={"GREENFLAME_LOG_FORMAT": "json"})
    assert requests.get(f"{server.url}livez", timeout=30).status_code == 200
    server.stop()
    entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert any(entry["message"].startswith("received SIGTERM") for entry in entries)
    assert not [line for line in server.log().splitlines() if re.match(r"^\d{4}-\d\d-\d\d \d", line)]
