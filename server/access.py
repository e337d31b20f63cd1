"""Access control, on by default: who is asking (:class:`Principal`) and what each route needs.

Every route of the app is named in :data:`RULES` with what it needs: nothing (``PUBLIC``: the
health checks, static files and the sign-in pages), a credential with ``read``, ``ingest`` or
``admin`` scope, or the ``/metrics`` rule. A route missing from the table needs ``admin`` (and a
test fails until it is added). The check runs in ``before_request``, before any view looks
anything up, so an unknown group or id answers 401 or 403 like a known one.

Credentials, in this order:

1. ``Authorization: Bearer <secret>``: the admin token (admin scope), a group's ingest key
   (ingest scope for that group), or an API token (its scope, for its group or every group).
   A wrong secret is 403 and counts towards the client's authentication-failure limit.
2. The web UI's session cookie (:mod:`.signin`), naming the token, the admin token or the
   OpenID Connect user it signed in with; checked again on every request (a revoked token
   ends its sessions).
3. Nothing: with ``GREENFLAME_ANONYMOUS_READ=on`` an anonymous reader (read scope, every group,
   no feedback); otherwise 401 for the API and a redirect to the sign-in page for pages.

Scopes: ``admin`` may do everything; ``read`` reads its groups and votes on their anomalies;
``ingest`` only reports profiles for its groups. Cookie-authenticated state changes need the
CSRF token (Flask-WTF); bearer calls do not, as a browser never sends a bearer token by itself.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, TypeVar
from urllib.parse import quote

from flask import Flask, current_app, g, redirect, request, session
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import select
from sqlalchemy.engine import Engine
from werkzeug.wrappers import Response as BaseResponse

from . import metrics
from .auth import AUTH_FAILURES, bearer_token, check_rate, record
from .context import get_settings
from .errors import API_PREFIX, ApiError, error_response
from .schema import groups
from .settings import Settings
from .storage import get_storage
from .tokens import ADMIN, INGEST, READ, TokenStore
from .web_sessions import SessionLedger

#: What a route needs.
PUBLIC = "public"
METRICS = "metrics"  # admin, unless GREENFLAME_METRICS_ACCESS=public
#: ``READ`` routes also let an anonymous reader in when anonymous read is on; these do not.
FEEDBACK = "feedback"

#: Every endpoint of the app and what it needs. A new route must be added here (a test checks).
RULES: Dict[str, str] = {
    "static": PUBLIC,
    "ops.livez": PUBLIC,
    "ops.readyz": PUBLIC,
    "ops.prometheus_metrics": METRICS,
    "api.health": PUBLIC,
    "ingest.ingest": INGEST,
    "api.create_group": ADMIN,
    "api.list_groups": READ,
    "api.get_group": READ,
    "api.group_flamegraph": READ,
    "api.group_sandwich": READ,
    "api.group_functions": READ,
    "api.group_diff": READ,
    "api.group_diff_functions": READ,
    "api.get_rule_entry": READ,
    "api.group_timeseries": READ,
    "api.group_labels": READ,
    "api.group_deploy_list": READ,
    "api.group_recommendations": READ,
    "pipeline.group_findings": READ,
    "pipeline.group_anomalies": READ,
    "pipeline.anomaly_feedback": FEEDBACK,
    "pipeline.get_channels": ADMIN,
    "pipeline.put_channels": ADMIN,
    "pipeline.tickets": READ,
    "tokens.create_token": ADMIN,
    "tokens.list_tokens": ADMIN,
    "tokens.revoke_token": ADMIN,
    "web.index": READ,
    "web.group_page": READ,
    "web.compare_page": READ,
    "web.findings_page": READ,
    "web.finding_page": READ,
    "web.anomalies_page": READ,
    "web.anomaly_page": READ,
    "signin.sign_in_page": PUBLIC,
    "signin.sign_in": PUBLIC,
    "signin.sign_out": PUBLIC,
    "signin.sign_in_link": PUBLIC,
    "signin.oidc_start": PUBLIC,
    "signin.oidc_callback": PUBLIC,
}
#: Query parameters that name a further group a route reads (beside the URL's ``name``).
GROUP_PARAMETERS = ("base_group",)
_STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="greenflame"'}
_SIGN_IN_ENDPOINT = "signin.sign_in_page"

BEARER = "bearer"
SESSION = "session"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a scope, the one group it is for (None: every group), and how it came."""

    scope: str
    group: Optional[str]
    via: str
    name: str

    def allows(self, needed: str) -> bool:
        """Whether this principal's scope covers ``needed`` (admin covers everything)."""
        if self.scope == ADMIN:
            return True
        if needed == FEEDBACK:
            return self.scope == READ and self.via != ANONYMOUS
        return self.scope == needed

    def sees(self, group: Optional[str]) -> bool:
        """Whether this principal may act on ``group``."""
        return self.group is None or self.group == group


T = TypeVar("T")


def current_principal() -> Optional[Principal]:
    """The principal the current request was let in as (None on public routes without credentials)."""
    principal: Optional[Principal] = g.get("principal")
    return principal


def visible(items: Iterable[T]) -> List[T]:
    """The items (group names, or objects with a ``group`` or ``name``) the request may see."""
    principal = current_principal()
    if principal is None or principal.group is None:
        return list(items)
    return [item for item in items if _group_of(item) == principal.group]


def _group_of(item: object) -> Optional[str]:
    if isinstance(item, str):
        return item
    group = getattr(item, "group", None)
    return group if isinstance(group, str) else getattr(item, "name", None)


def require_visible(group: Optional[str], message: str) -> None:
    """A 404 ApiError (as for an unknown id) when the request may not see ``group``."""
    principal = current_principal()
    if principal is not None and not principal.sees(group):
        raise ApiError(404, "not_found", message)


def group_exists(name: str) -> bool:
    """Whether group ``name`` exists (one indexed lookup), for credentials valid for every group."""
    with get_storage().engine.connect() as conn:
        return conn.execute(select(groups.c.name).where(groups.c.name == name)).first() is not None


_Store = TypeVar("_Store")


def _app_store(key: str, make: Callable[[Engine], _Store]) -> _Store:
    """The current app's store under ``key``, made on first use on the storage's database."""
    store: Optional[_Store] = current_app.extensions.get(key)
    if store is None:
        store = current_app.extensions.setdefault(key, make(get_storage().engine))
    return store


def token_store() -> TokenStore:
    """The current app's token store (on the storage's database)."""
    return _app_store("greenflame.tokens", TokenStore)


def session_ledger() -> SessionLedger:
    """The current app's record of signed-out sessions (on the storage's database)."""
    return _app_store("greenflame.sessions", SessionLedger)


def admin_fingerprint(settings: Settings) -> str:
    """A digest of the admin token, kept in sessions signed in with it (a new token ends them)."""
    return hashlib.sha256((settings.admin_token or "").encode("utf-8")).hexdigest()[:32]


def principal_for_secret(secret: str) -> Optional[Principal]:
    """The principal a bearer secret stands for: the admin token, an ingest key or an API token."""
    settings = get_settings()
    if settings.admin_token and hmac.compare_digest(secret.encode("utf-8"), settings.admin_token.encode("utf-8")):
        return Principal(ADMIN, None, BEARER, "admin token")
    group = get_storage().group_for_key(secret)
    if group is not None:
        return Principal(INGEST, group, BEARER, f"ingest key of {group}")
    token = token_store().find_bearer(secret)
    if token is not None:
        return Principal(token.scope, token.group, BEARER, f"token {token.id}")
    return None


def session_principal() -> Optional[Principal]:
    """The principal of the request's signed-in session, if it is still valid."""
    who = session.get("principal")
    settings = get_settings()
    if not isinstance(who, dict) or not session_ledger().is_current(who, settings.session_max_age_s):
        return None
    kind = who.get("kind")
    if kind == "admin" and who.get("fp") == admin_fingerprint(settings):
        return Principal(ADMIN, None, SESSION, "admin token")
    if kind == "token" and isinstance(who.get("id"), str):
        token = token_store().session_record(who["id"])
        if token is not None and token.scope in (READ, ADMIN):
            return Principal(token.scope, token.group, SESSION, f"token {token.id}")
    if kind == "oidc" and isinstance(who.get("sub"), str):
        from .signin import oidc_scope

        scope = oidc_scope(settings, who["sub"], who.get("email"))
        if scope is not None:
            return Principal(scope, None, SESSION, f"oidc {who.get('email') or who['sub']}")
    return None


def _is_api() -> bool:
    return request.path.startswith(API_PREFIX)


def _deny_anonymous() -> BaseResponse:
    """401 for the API (and other non-page calls); a redirect to the sign-in page for pages."""
    if _is_api() or request.method != "GET" or request.path.startswith("/metrics"):
        raise ApiError(401, "unauthorized", "sign in, or send a token as 'Authorization: Bearer <token>'", _CHALLENGE)
    here = request.full_path if request.query_string else request.path
    target = current_app.url_for(_SIGN_IN_ENDPOINT) + "?next=" + quote(here, safe="/")
    return redirect(target, 303)


def _needed() -> str:
    if request.endpoint is None:  # no such route or method: answered only to a credential (401 first)
        return READ
    needed = RULES.get(request.endpoint, ADMIN)
    if needed == METRICS:
        return PUBLIC if get_settings().metrics_access == "public" else ADMIN
    return needed


def check_access() -> Optional[BaseResponse]:
    """The ``before_request`` check: let the request in as a principal, or answer 401/403/429."""
    try:
        return _check_access()
    except ApiError as error:
        if request.endpoint == "ingest.ingest":
            metrics.REJECTED.labels(reason=error.code).inc()
        raise


def _check_access() -> Optional[BaseResponse]:
    needed = _needed()
    secret = bearer_token()
    principal: Optional[Principal] = None
    if secret is not None and needed == PUBLIC:
        pass  # not looked at: a probe sending a stale token must not be rate-limited off /livez
    elif secret is not None:
        check_rate(AUTH_FAILURES)
        principal = principal_for_secret(secret)
        if principal is None:
            record(AUTH_FAILURES)
            raise ApiError(403, "forbidden", "the token is not valid")
    else:
        principal = session_principal()
        if principal is None and "principal" in session:
            session.pop("principal")  # revoked or expired: the browser signs in again
    if principal is None and needed not in (PUBLIC, FEEDBACK) and get_settings().anonymous_read == "on":
        principal = Principal(READ, None, ANONYMOUS, "anonymous")
    g.principal = principal
    if needed != PUBLIC:
        if principal is None or (principal.via == ANONYMOUS and needed != READ):
            return _deny_anonymous()
        if not principal.allows(needed):
            raise ApiError(403, "forbidden", f"this needs {needed} scope; the credential has {principal.scope}")
        for group in _groups_named():
            if not principal.sees(group):
                raise ApiError(403, "forbidden", f"the credential is not valid for group {group!r}")
    if request.method in _STATE_CHANGING and (principal is None or principal.via != BEARER):
        csrf().protect()
    return None


def _groups_named() -> List[str]:
    names = [request.view_args["name"]] if request.view_args and "name" in request.view_args else []
    names += [request.args[p] for p in GROUP_PARAMETERS if request.args.get(p)]
    return names


def csrf() -> CSRFProtect:
    """The app's CSRF protection (Flask-WTF)."""
    protect: CSRFProtect = current_app.extensions["csrf"]
    return protect


def _csrf_failed(error: CSRFError) -> BaseResponse:
    message = f"CSRF check failed: {error.description}; reload the page and try again"
    if _is_api():
        return error_response(403, "csrf_failed", message)
    return current_app.response_class(message, status=403, mimetype="text/plain")


def init_app(app: Flask) -> None:
    """Check every request's access before its view runs; set up CSRF and the session cookie."""
    settings: Settings = app.config["GREENFLAME_SETTINGS"]
    app.secret_key = settings.session_key
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in check_access, for cookie-authenticated calls only
        WTF_CSRF_TIME_LIMIT=None,  # as long as the session
        SESSION_COOKIE_NAME="greenflame_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=settings.session_max_age_s,
        SESSION_REFRESH_EACH_REQUEST=False,  # set when signing in; its age counts from then
    )
    from .signin import SessionCookies

    app.session_interface = SessionCookies()
    CSRFProtect(app)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.before_request(check_access)
