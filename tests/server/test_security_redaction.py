"""Credentials never reach stored errors, the API or the log (issue 17, item 2), even when a
tracker's error body echoes the whole request back: headers, URL, query string."""

from __future__ import annotations

import base64
import logging
import sys
import time
from typing import Any, Callable, Dict, Iterator, List
from urllib.parse import urlencode

import pytest
from support.builders import lambda_profile
from support.paths import TRACKERS
from support.server import LiveServer, ingest_profile, unique_name, wait_for

sys.path.insert(0, str(TRACKERS))

from fake_base import FakeTracker, Request, Response, json_response

from greenflame.server.tickets.credentials import RedactingFilter, Secret, header_secrets, redact

GITHUB_TOKEN = "ghp_echoGitHubToken0123456789"
GITLAB_TOKEN = "glpat-echoGitLabToken01234"
JIRA_EMAIL, JIRA_TOKEN = "ops@example.com", "ATATTjiraEchoToken0123456789"
WEBHOOK_SECRET, WEBHOOK_USER_PASSWORD = "hookQuerySecret0123456789", "hookUserPassword0123"
FAST = {
    "GREENFLAME_ANALYSIS_DELAY_MS": "0",
    "GREENFLAME_ANALYSIS_INTERVAL_S": "0",
    "GREENFLAME_ANALYSIS_WINDOW_S": "600",
}


class EchoingTracker(FakeTracker):
    """A tracker that refuses every request, echoing its method, URL and headers in the error body."""

    def route(self, request: Request) -> Response:
        query = f"?{urlencode(request.query, doseq=True)}" if request.query else ""
        echo = f"{request.method} {self.url}{request.raw_path}{query} headers={dict(request.headers.items())}"
        return json_response(400, {"message": echo, "error": echo, "errorMessages": [echo]})


@pytest.fixture()
def echo() -> Iterator[EchoingTracker]:
    with EchoingTracker() as tracker:
        yield tracker


def _credential_forms() -> List[str]:
    basic = base64.b64encode(f"{JIRA_EMAIL}:{JIRA_TOKEN}".encode()).decode()
    hook_basic = base64.b64encode(f"hook:{WEBHOOK_USER_PASSWORD}".encode()).decode()
    return [GITHUB_TOKEN, GITLAB_TOKEN, JIRA_TOKEN, basic, WEBHOOK_SECRET, WEBHOOK_USER_PASSWORD, hook_basic]


def _channels(echo: EchoingTracker) -> List[Dict[str, Any]]:
    host = echo.url.split("://", 1)[1]
    return [
        {"to": "github:acme/shop", "api_url": echo.url, "token": GITHUB_TOKEN, "max_attempts": 1},
        {"to": "gitlab:acme/shop", "api_url": echo.url, "token": GITLAB_TOKEN, "max_attempts": 1},
        {"to": "jira:OPS", "api_url": echo.url, "token": JIRA_TOKEN, "email": JIRA_EMAIL, "max_attempts": 1},
        {
            "to": f"webhook:http://hook:{WEBHOOK_USER_PASSWORD}@{host}/hook?token={WEBHOOK_SECRET}&private_token=x1y2z3",
            "token": "webhook-hmac-key-0123456789",
            "max_attempts": 1,
        },
    ]


def test_echoed_credentials_never_reach_the_api_or_the_log(
    server_factory: Callable[..., LiveServer], echo: EchoingTracker
) -> None:
    server = server_factory(env=FAST)
    group = unique_name("echo")
    key = server.create_group(group)
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    put = server.session.put(
        server.api(f"/api/v1/groups/{group}/channels"), json={"channels": _channels(echo)}, headers=admin, timeout=30
    )
    assert put.status_code == 200, put.text
    profile = lambda_profile(client_in_handler=True)
    profile.group, profile.start_time_unix_ns = group, time.time_ns() - 120 * 10**9
    assert ingest_profile(server, key, profile).status_code == 202

    def failed_tickets() -> List[Dict[str, Any]]:
        response = server.session.get(server.api("/api/v1/tickets"), params={"group": group}, timeout=30)
        tickets: List[Dict[str, Any]] = response.json()["tickets"]
        return tickets if len(tickets) == 4 and all(t["error"] for t in tickets) else []

    tickets = wait_for("four failed deliveries", failed_tickets, 90)
    assert len(echo.requests()) >= 4
    assert any("headers=" in t["error"] for t in tickets)  # the echo did come back, redacted
    shown = [
        server.session.get(server.api("/api/v1/tickets"), timeout=30).text,
        server.session.get(server.api(f"/api/v1/groups/{group}/findings"), timeout=30).text,
        server.session.get(server.api(f"/groups/{group}"), timeout=30).text,
        server.session.get(server.api(f"/api/v1/groups/{group}/channels"), headers=admin, timeout=30).text,
        server.log(),
    ]
    for text in shown:
        for credential in _credential_forms():
            assert credential not in text


@pytest.mark.parametrize(
    ("text", "secrets", "kept"),
    [
        ("{'Authorization': 'Basic bWU6c2VjcmV0MTIz'}", [], "Authorization"),
        ("sent Bearer abc.def-ghi", [], "sent Bearer"),
        ("Authorization: token ghp_abcdef", [], "Authorization"),
        ("GET https://h/hook?token=sekrit&x=1", [], "x=1"),
        ("GET https://h/api?access_token=aaaa&private_token=bbbb", [], "https://h/api?"),
        ("see http://alice:pa55word@tracker.example/path", [], "tracker.example/path"),
        ("PRIVATE-TOKEN: glpat-1234", [], "PRIVATE-TOKEN"),
        ("id=c2VjcmV0IHRva2Vu%3D and c2VjcmV0IHRva2Vu", [Secret("Basic c2VjcmV0IHRva2Vu")], "id="),
        ("url-encoded a%2Fb%3Dc", [Secret("a/b=c")], "url-encoded"),
    ],
)
def test_redact_every_credential_form(text: str, secrets: List[Secret], kept: str) -> None:
    cleaned = redact(text, secrets)
    assert "***" in cleaned and kept in cleaned
    for secret in ["bWU6c2VjcmV0MTIz", "abc.def", "ghp_abcdef", "sekrit", "aaaa", "bbbb", "pa55word", "glpat-1234"]:
        assert secret not in cleaned
    assert "c2VjcmV0IHRva2Vu" not in cleaned and "a%2Fb%3Dc" not in cleaned


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "Field 'summary' is required; issue key=OPS-1; a token bucket; http://host/path?page=2"
    assert redact(text) == text


def test_header_secrets_are_the_credential_headers() -> None:
    found = header_secrets({"Authorization": "Basic abc", "Accept": "application/json", "PRIVATE-TOKEN": "glpat"})
    assert sorted(s.reveal() for s in found) == ["Basic abc", "glpat"]


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("greenflame.test.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("posting to %s", "https://u:p4ssw0rd@h/x?token=t0k3n")
        try:
            raise ValueError("Authorization: Bearer s3cr3tv4lue")
        except ValueError:
            logger.exception("failed")
    assert "p4ssw0rd" not in caplog.text and "t0k3n" not in caplog.text and "s3cr3tv4lue" not in caplog.text
