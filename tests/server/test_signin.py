"""Web UI sign-in against real ``greenflame serve`` processes: the token form, one-time links,
OpenID Connect against a local provider (tests/support/oidc_provider.py), session cookies,
CSRF on cookie-authenticated state changes, and revocation ending sessions at once.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, Optional

import pytest
import requests
from playwright.sync_api import expect
from support.oidc_provider import OidcProvider, oidc_provider  # noqa: F401
from support.server import LiveServer, unique_name

from greenflame.devtools import demo

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(session: requests.Session, server: LiveServer, path: str = "/sign-in") -> str:
    found = _CSRF.search(session.get(server.api(path), timeout=10).text)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(server: LiveServer, token: str, session: Optional[requests.Session] = None) -> requests.Session:
    browser = session or requests.Session()
    form = {"token": token, "csrf_token": csrf_of(browser, server), "next": "/"}
    response = browser.post(server.api("/sign-in"), data=form, timeout=10, allow_redirects=False)
    assert response.status_code == 303, response.text
    return browser


def test_pages_send_a_stranger_to_sign_in_and_back(live_server: LiveServer) -> None:
    browser = requests.Session()
    response = browser.get(live_server.api("/groups/x?from=now-1h"), timeout=10, allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["Location"] == "/sign-in?next=/groups/x%3Ffrom%3Dnow-1h"
    form = {"token": live_server.read_token, "csrf_token": csrf_of(browser, live_server), "next": "/groups/x"}
    signed = browser.post(live_server.api("/sign-in"), data=form, timeout=10, allow_redirects=False)
    assert signed.headers["Location"] == "/groups/x"
    assert browser.get(live_server.api("/api/v1/groups"), timeout=10).status_code == 200


def test_session_cookie_flags(server_factory: Callable[..., LiveServer]) -> None:
    plain = server_factory()
    cookie = requests.get(plain.api("/sign-in"), timeout=10).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    behind_tls = server_factory(env={"GREENFLAME_PUBLIC_URL": "https://profiler.example"})
    cookie = requests.get(behind_tls.api("/sign-in"), timeout=10).headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    forced = server_factory(env={"GREENFLAME_SECURE_COOKIES": "always"})
    assert "Secure" in requests.get(forced.api("/sign-in"), timeout=10).headers["Set-Cookie"]


def test_wrong_tokens_and_forms_without_csrf_are_refused(live_server: LiveServer) -> None:
    browser = requests.Session()
    form = {"token": "gft_" + "n" * 43, "csrf_token": csrf_of(browser, live_server)}
    refused = browser.post(live_server.api("/sign-in"), data=form, timeout=10, allow_redirects=False)
    assert refused.status_code == 403 and "not valid" in refused.text
    ingest_key = live_server.create_group(unique_name("signin"))
    form = {"token": ingest_key, "csrf_token": csrf_of(browser, live_server)}
    assert browser.post(live_server.api("/sign-in"), data=form, timeout=10).status_code == 403
    no_csrf = browser.post(live_server.api("/sign-in"), data={"token": live_server.read_token}, timeout=10)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    assert browser.get(live_server.api("/api/v1/groups"), timeout=10).status_code == 401


def test_cookie_state_changes_need_the_csrf_token_and_bearer_calls_do_not(live_server: LiveServer) -> None:
    browser = sign_in(live_server, live_server.admin_token)
    name = unique_name("csrf")
    refused = browser.post(live_server.api("/api/v1/groups"), json={"name": name}, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    token = csrf_of(browser, live_server, "/")
    made = browser.post(live_server.api("/api/v1/groups"), json={"name": name}, headers={"X-CSRFToken": token})
    assert made.status_code == 201
    bearer = requests.post(
        live_server.api("/api/v1/groups"), json={"name": name + "-b"}, headers=live_server.admin_headers(), timeout=10
    )
    assert bearer.status_code == 201
    vote = browser.post(live_server.api(f"/api/v1/anomalies/{'0' * 32}/feedback"), json={"useful": True}, timeout=10)
    assert vote.status_code == 403  # no CSRF token: refused before the lookup


def test_sign_out_ends_the_session(live_server: LiveServer) -> None:
    browser = sign_in(live_server, live_server.read_token)
    assert browser.get(live_server.api("/api/v1/groups"), timeout=10).status_code == 200
    page = browser.get(live_server.api("/"), timeout=10).text
    assert 'id="sign-out"' in page
    copied = requests.Session()
    copied.cookies.update(browser.cookies)
    out = browser.post(live_server.api("/sign-out"), data={"csrf_token": _CSRF.findall(page)[-1]}, timeout=10)
    assert out.url.endswith("/sign-in")
    assert browser.get(live_server.api("/api/v1/groups"), timeout=10).status_code == 401
    assert copied.get(live_server.api("/api/v1/groups"), timeout=10).status_code == 401  # a copy of the cookie


def test_a_session_lasts_its_age_from_signing_in_however_often_it_is_used(
    server_factory: Callable[..., LiveServer],
) -> None:
    server = server_factory(env={"GREENFLAME_SESSION_MAX_AGE_S": "4"})
    browser = sign_in(server, server.admin_token)
    signed_in = time.monotonic()
    time.sleep(2.5)
    csrf_of(browser, server, "/")  # the page adds a CSRF token: the cookie is signed again, later
    used = browser.get(server.api("/api/v1/groups"), timeout=10)
    assert used.status_code == 200 and "Set-Cookie" not in used.headers  # reads never set the cookie again
    time.sleep(max(0.0, signed_in + 4.5 - time.monotonic()))
    assert browser.get(server.api("/api/v1/groups"), timeout=10).status_code == 401


def test_revoking_a_token_ends_its_sessions_and_bearer_use(live_server: LiveServer) -> None:
    made = live_server.create_token("read")
    browser = sign_in(live_server, made["token"])
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert browser.get(live_server.api("/api/v1/groups"), timeout=10).status_code == 200
    assert requests.get(live_server.api("/api/v1/groups"), headers=bearer, timeout=10).status_code == 200
    revoked = requests.delete(
        live_server.api(f"/api/v1/tokens/{made['id']}"), headers=live_server.admin_headers(), timeout=10
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_unix_ns"]
    assert browser.get(live_server.api("/api/v1/groups"), timeout=10).status_code == 401
    assert requests.get(live_server.api("/api/v1/groups"), headers=bearer, timeout=10).status_code == 403
    listed = requests.get(live_server.api("/api/v1/tokens"), headers=live_server.admin_headers(), timeout=10).json()
    entry = next(t for t in listed["tokens"] if t["id"] == made["id"])
    assert "token" not in entry and entry["revoked_unix_ns"]


def test_tokens_are_stored_hashed(live_server: LiveServer) -> None:
    made = live_server.create_token("ingest")
    database = (live_server.data_dir / "greenflame.db").read_bytes()
    assert made["token"].encode() not in database
    assert made["token"].startswith("gft_") and len(made["token"]) >= 40


def test_a_sign_in_link_works_once(live_server: LiveServer) -> None:
    link = live_server.create_token("read", kind="link")
    assert link["sign_in_url"].startswith(live_server.url.rstrip("/") + "/sign-in/link/gfl_")
    browser = requests.Session()
    landed = browser.get(link["sign_in_url"], timeout=10)
    assert landed.status_code == 200 and landed.url == live_server.url
    assert browser.get(live_server.api("/api/v1/groups"), timeout=10).status_code == 200
    again = requests.get(link["sign_in_url"], timeout=10)
    assert again.status_code == 403 and "has been used" in again.text
    bearer = {"Authorization": f"Bearer {link['token']}"}
    assert requests.get(live_server.api("/api/v1/groups"), headers=bearer, timeout=10).status_code == 403


def test_demo_prints_a_working_one_time_link(tmp_path: object) -> None:
    server = demo.start_server(str(tmp_path))
    try:
        url = demo.sign_in_link(server)
        assert url.startswith(server.url + "/sign-in/link/")
        browser = requests.Session()
        assert browser.get(url, timeout=10).status_code == 200
        assert browser.get(server.url + "/api/v1/groups", timeout=10).status_code == 200
    finally:
        server.stop()


# -- OpenID Connect ---------------------------------------------------------------------------


def oidc_server(
    server_factory: Callable[..., LiveServer], provider: OidcProvider, extra: Optional[Dict[str, str]] = None
) -> LiveServer:
    client = provider.register("")
    env = {
        "GREENFLAME_OIDC_ISSUER": provider.url,
        "GREENFLAME_OIDC_CLIENT_ID": client.client_id,
        "GREENFLAME_OIDC_CLIENT_SECRET": client.client_secret,
        **(extra or {}),
    }
    server = server_factory(env=env)
    client.redirect_uris[:] = [server.url.rstrip("/") + "/sign-in/oidc/callback"]
    return server


def test_oidc_sign_in(server_factory: Callable[..., LiveServer], oidc_provider: OidcProvider) -> None:  # noqa: F811
    server = oidc_server(server_factory, oidc_provider, {"GREENFLAME_OIDC_ADMINS": "grace@example.com"})
    browser = requests.Session()
    assert 'id="sign-in-oidc"' in browser.get(server.api("/sign-in"), timeout=10).text
    landed = browser.get(server.api("/sign-in/oidc?next=/groups/x"), timeout=30)
    assert landed.url == server.api("/groups/x")  # the provider sent the browser back, signed in
    assert oidc_provider.token_requests and "client_secret" not in oidc_provider.token_requests[0]  # HTTP Basic
    assert browser.get(server.api("/api/v1/groups"), timeout=10).status_code == 200
    assert browser.get(server.api("/api/v1/tokens"), timeout=10).status_code == 403  # read scope
    oidc_provider.user = {"sub": "user-2", "email": "grace@example.com"}
    admin = requests.Session()
    admin.get(server.api("/sign-in/oidc"), timeout=30)
    assert admin.get(server.api("/api/v1/tokens"), timeout=10).status_code == 200


@pytest.mark.parametrize("tamper", ["aud", "nonce", "iss", "signature"])
def test_oidc_refuses_a_wrong_id_token(
    server_factory: Callable[..., LiveServer],
    oidc_provider: OidcProvider,  # noqa: F811
    tamper: str,
) -> None:
    server = oidc_server(server_factory, oidc_provider)
    oidc_provider.tamper = tamper
    browser = requests.Session()
    answer = browser.get(server.api("/sign-in/oidc"), timeout=30)
    assert answer.status_code == 400 and "not accepted" in answer.text
    assert browser.get(server.api("/api/v1/groups"), timeout=10).status_code == 401
    assert "Traceback" not in server.log()


def test_oidc_wrong_secret_forged_state_and_disallowed_users(
    server_factory: Callable[..., LiveServer],
    oidc_provider: OidcProvider,  # noqa: F811
) -> None:
    server = oidc_server(server_factory, oidc_provider, {"GREENFLAME_OIDC_ALLOWED": "@example.org"})
    browser = requests.Session()
    refused = browser.get(server.api("/sign-in/oidc"), timeout=30)  # ada@example.com is not allowed
    assert refused.status_code == 403 and "not allowed" in refused.text
    forged = browser.get(server.api("/sign-in/oidc/callback?code=abc&state=forged"), timeout=10)
    assert forged.status_code == 400
    unverified = requests.Session()
    oidc_provider.user = {"sub": "user-3", "email": "eve@example.org", "email_verified": False}
    assert unverified.get(server.api("/sign-in/oidc"), timeout=30).status_code == 403
    oidc_provider.user = {"sub": "user-4", "email": "bob@example.org"}
    client = oidc_provider.clients[next(iter(oidc_provider.clients))]
    client.client_secret = "rotated-at-the-provider"
    wrong_secret = requests.Session()
    answer = wrong_secret.get(server.api("/sign-in/oidc"), timeout=30)
    assert answer.status_code == 400
    assert wrong_secret.get(server.api("/api/v1/groups"), timeout=10).status_code == 401
    assert "Traceback" not in server.log()


def test_a_browser_signs_in_through_the_page_and_out_again(page: Any, live_server: LiveServer) -> None:
    """In Chromium: a page sends a stranger to the sign-in form, a wrong token is refused, the
    right one returns to the page asked for, and signing out ends the session."""
    page.goto(live_server.api("/groups/nothing-here"))
    expect(page.locator("#sign-in-page h1")).to_have_text("Sign in")
    page.fill("#token", "gft_not-a-token")
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#sign-in-error")).to_contain_text("not valid")
    page.fill("#token", live_server.read_token)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator(".not-found")).to_contain_text("There is no group called")  # the page asked for
    # the refused token (403) and the unknown group (404) were on purpose
    page.console_errors[:] = [e for e in page.console_errors if "403" not in e and "404" not in e]
    assert page.url.endswith("/groups/nothing-here")
    page.goto(live_server.url)
    expect(page.locator("#index-page")).to_be_visible()
    page.click("#sign-out")
    expect(page.locator("#sign-in-page")).to_be_visible()
    page.goto(live_server.url)
    expect(page.locator("#sign-in-page")).to_be_visible()
