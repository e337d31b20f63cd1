"""Access-control pieces on their own: OIDC scopes from settings, settings checks, the token store,
the record of signed-out web sessions."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from support.clocks import ManualClock

from greenflame.analyzer.errors import UserError
from greenflame.server.db import make_engine, upgrade_database
from greenflame.server.schema import ended_sessions
from greenflame.server.settings import Settings
from greenflame.server.signin import oidc_scope
from greenflame.server.tokens import TokenStore
from greenflame.server.web_sessions import SessionLedger, new_session_fields


def test_oidc_scope_from_the_allowed_and_admin_lists() -> None:
    anyone = Settings(oidc_admins="boss@example.com, sub-42")
    assert oidc_scope(anyone, "sub-1", "dev@else.where") == "read"
    assert oidc_scope(anyone, "sub-1", "Boss@Example.com") == "admin"
    assert oidc_scope(anyone, "sub-42", None) == "admin"
    listed = Settings(oidc_allowed="@example.com,contractor@else.where")
    assert oidc_scope(listed, "s", "dev@example.com") == "read"
    assert oidc_scope(listed, "s", "contractor@else.where") == "read"
    assert oidc_scope(listed, "s", "dev@example.com.evil") is None
    assert oidc_scope(listed, "s", None) is None  # an unverified email is passed as None


def test_oidc_settings_come_together() -> None:
    with pytest.raises(UserError, match="OIDC sign-in needs"):
        Settings.from_env({"oidc_issuer": "https://idp.example"}, environ={})
    assert not Settings.from_env(environ={}).oidc_enabled
    full = {"oidc_issuer": "https://idp.example", "oidc_client_id": "c", "oidc_client_secret": "s"}
    assert Settings.from_env(full, environ={}).oidc_enabled
    with pytest.raises(UserError, match="anonymous_read must be one of off, on"):
        Settings.from_env({"anonymous_read": "yes"}, environ={})


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    made = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_database(made)
    return made


@pytest.fixture
def store(engine: Engine) -> TokenStore:
    return TokenStore(engine)


def test_links_work_once_and_never_as_bearer_tokens(store: TokenStore) -> None:
    link = store.create("read", kind="link")
    assert store.find_bearer(link.secret) is None
    used = store.use_link(link.secret)
    assert used is not None and used.used_unix_ns is not None
    assert store.use_link(link.secret) is None
    assert store.session_record(link.record.id) is not None  # the browser it signed in stays in
    store.revoke(link.record.id)
    assert store.session_record(link.record.id) is None


def test_expired_tokens_and_links_stop(store: TokenStore) -> None:
    token = store.create("read", expires_in_s=1)
    link = store.create("admin", kind="link", expires_in_s=1)
    assert store.find_bearer(token.secret) is not None
    time.sleep(1.1)
    assert store.find_bearer(token.secret) is None and store.session_record(token.record.id) is None
    assert store.use_link(link.secret) is None


def test_bad_requests_are_user_errors(store: TokenStore) -> None:
    for scope, kwargs in (
        ("owner", {}),
        ("ingest", {"kind": "link"}),
        ("read", {"name": ""}),
        ("read", {"expires_in_s": 0}),
    ):
        with pytest.raises(UserError):
            store.create(scope, **kwargs)  # type: ignore[arg-type]
    assert store.list() == []


def test_a_session_is_current_from_its_start_until_its_age_or_sign_out(engine: Engine) -> None:
    clock = ManualClock(1_800_000_000.0)
    ledger = SessionLedger(engine, clock)
    who = {"kind": "admin", **new_session_fields(clock)}
    other = {"kind": "admin", **new_session_fields(clock)}
    assert who["sid"] != other["sid"]
    assert ledger.is_current(who, 3600)
    clock.now += 3599
    assert ledger.is_current(who, 3600)
    clock.now += 1
    assert not ledger.is_current(who, 3600)  # its age counts from signing in
    clock.now -= 3000
    ledger.end(who, 3600)
    ledger.end(who, 3600)  # a second tab signing out too
    assert not ledger.is_current(who, 3600)
    assert ledger.is_current(other, 3600)


def test_sessions_without_an_id_or_start_or_from_the_future_are_not_current(engine: Engine) -> None:
    clock = ManualClock(1_800_000_000.0)
    ledger = SessionLedger(engine, clock)
    good = new_session_fields(clock)
    assert not ledger.is_current({"kind": "admin"}, 3600)  # a cookie from before sessions had ids
    assert not ledger.is_current({**good, "sid": "not-hex"}, 3600)
    assert not ledger.is_current({**good, "at": "1800000000"}, 3600)
    assert not ledger.is_current({**good, "at": True}, 3600)
    assert not ledger.is_current({**good, "at": good["at"] + 3600}, 3600 * 24)
    assert ledger.is_current({**good, "at": good["at"] + 30}, 3600)  # a neighbour's clock a little ahead
    ledger.end({"kind": "admin"}, 3600)  # nothing to record


def test_signed_out_sessions_are_forgotten_once_they_would_have_ended(engine: Engine) -> None:
    clock = ManualClock(1_800_000_000.0)
    ledger = SessionLedger(engine, clock)
    first = new_session_fields(clock)
    ledger.end(first, 60)
    clock.now += 61
    second = new_session_fields(clock)
    ledger.end(second, 60)
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(ended_sessions)).scalar_one()
    assert rows == 1
    assert not ledger.is_current(second, 60)
