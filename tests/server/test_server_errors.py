"""A user mistake that reaches the HTTP edge is a one-line JSON 400 on the API, a plain 400 elsewhere."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from greenflame.analyzer.errors import UserError
from greenflame.analyzer.model import ProfileError
from greenflame.server.app import create_app


def _app(tmp_path: Path) -> Flask:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "t"})

    @app.get("/api/v1/test-user-error")
    def api_user_error() -> str:
        raise UserError("the range ends before it starts")

    @app.get("/api/v1/test-profile-error")
    def api_profile_error() -> str:
        raise ProfileError("sample 3 names frame 99\nof 4")

    @app.get("/test-user-error")
    def page_user_error() -> str:
        raise UserError("bad page parameter")

    return app


def _client(tmp_path: Path) -> FlaskClient:
    """A test client sending the admin token (routes not in access.RULES need admin scope)."""
    client = _app(tmp_path).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer t"
    return client


def test_user_errors_are_json_400_on_the_api(tmp_path: Path) -> None:
    client = _client(tmp_path)
    response = client.get("/api/v1/test-user-error")
    assert response.status_code == 400
    assert response.get_json() == {"error": {"code": "bad_request", "message": "the range ends before it starts"}}
    response = client.get("/api/v1/test-profile-error")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "sample 3 names frame 99 of 4"


def test_user_errors_on_pages_are_plain_400(tmp_path: Path) -> None:
    response = _client(tmp_path).get("/test-user-error")
    assert response.status_code == 400
    assert b"bad page parameter" in response.data and b"Traceback" not in response.data
