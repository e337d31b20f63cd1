"""Web UI sign-in: a token form, one-time sign-in links, and OpenID Connect (authlib).

A signed-in browser holds a session cookie (Flask's signed cookie, ``greenflame_session``):
HttpOnly, SameSite=Lax, Secure when the request or ``GREENFLAME_PUBLIC_URL`` is https (or always,
with ``GREENFLAME_SECURE_COOKIES=always``), and valid for ``GREENFLAME_SESSION_MAX_AGE_S``. It
names what the browser signed in with (the admin token by a digest, an API token or link by id,
an OIDC user by subject and verified email) with a random session id and when it started;
:func:`.access.session_principal` checks it again on every request. Signing in starts a new
session (no fixation); signing out ends it for any copy of the cookie too
(:mod:`.web_sessions`); the forms carry CSRF tokens.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Dict, Optional, Tuple

from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse

from .access import admin_fingerprint, session_ledger, token_store
from .auth import AUTH_FAILURES, check_rate, record
from .context import get_settings
from .errors import ApiError
from .settings import Settings
from .tokens import ADMIN, READ
from .web_sessions import new_session_fields

log = logging.getLogger(__name__)

bp = Blueprint("signin", __name__)
OIDC_CLIENT = "oidc"
_EXTENSION = "greenflame.oauth"


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, Secure when the request or the public URL is https, or always."""

    def get_cookie_secure(self, app: Flask) -> bool:
        settings: Settings = app.config["GREENFLAME_SETTINGS"]
        if settings.secure_cookies == "always" or (settings.public_url or "").startswith("https://"):
            return True
        return bool(request.is_secure)


def oidc_scope(settings: Settings, subject: str, email: Optional[str]) -> Optional[str]:
    """The scope an OIDC user signs in with: admin if listed, read if allowed, None if not allowed.

    ``email`` is only the provider's *verified* address (None otherwise).
    """
    names = {subject} | ({email.lower()} if email else set())
    if names & _entries(settings.oidc_admins):
        return ADMIN
    allowed = _entries(settings.oidc_allowed)
    if not allowed:
        return READ
    domain = "@" + email.rsplit("@", 1)[1].lower() if email and "@" in email else None
    if names & allowed or (domain is not None and domain in allowed):
        return READ
    return None


def _entries(text: Optional[str]) -> set:
    return {part.strip().lower() if "@" in part else part.strip() for part in (text or "").split(",") if part.strip()}


def _safe_next(target: Optional[str]) -> str:
    """A local path to go to after signing in (anything else: the groups list)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("web.index")


def _page(error: Optional[str] = None, status: int = 200) -> Tuple[str, int]:
    settings = get_settings()
    next_path = _safe_next(request.values.get("next"))
    body = render_template(
        "signin.html", error=error, next_path=next_path, oidc=settings.oidc_enabled, anonymous=settings.anonymous_read
    )
    return body, status


def _start_session(who: Dict[str, Any]) -> None:
    session.clear()  # a new session: nothing from before signing in carries over
    session["principal"] = {**who, **new_session_fields()}
    session.permanent = True


@bp.get("/sign-in")
def sign_in_page() -> Tuple[str, int]:
    """The sign-in page: a token field, and the identity provider's button when OIDC is set up."""
    return _page()


@bp.post("/sign-in")
def sign_in() -> Any:
    """Sign in with the admin token or an API token of read or admin scope."""
    check_rate(AUTH_FAILURES)
    secret = (request.form.get("token") or "").strip()
    settings = get_settings()
    if settings.admin_token and hmac.compare_digest(secret.encode("utf-8"), settings.admin_token.encode("utf-8")):
        _start_session({"kind": "admin", "fp": admin_fingerprint(settings)})
        return redirect(_safe_next(request.form.get("next")), 303)
    token = token_store().find_bearer(secret) if secret else None
    if token is None:
        if secret:
            record(AUTH_FAILURES)
        return _page("That token is not valid (it may have been revoked or have expired).", 403)
    if token.scope not in (READ, ADMIN):
        return _page(f"A token of {token.scope} scope cannot sign in: use one of read or admin scope.", 403)
    _start_session({"kind": "token", "id": token.id})
    return redirect(_safe_next(request.form.get("next")), 303)


@bp.post("/sign-out")
def sign_out() -> BaseResponse:
    """End this browser's session, here and for any copy of its cookie."""
    who = session.get("principal")
    if isinstance(who, dict):
        session_ledger().end(who, get_settings().session_max_age_s)
    session.clear()
    return redirect(url_for("signin.sign_in_page"), 303)


@bp.get("/sign-in/link/<secret>")
def sign_in_link(secret: str) -> Any:
    """Sign in with a one-time link (``greenflame demo`` prints one); it works once, before it expires."""
    check_rate(AUTH_FAILURES)
    link = token_store().use_link(secret)
    if link is None:
        record(AUTH_FAILURES)
        return _page("That sign-in link has been used, revoked or has expired: ask for a new one.", 403)
    _start_session({"kind": "token", "id": link.id})
    return redirect(url_for("web.group_page", name=link.group) if link.group else url_for("web.index"), 303)


# -- OpenID Connect ----------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Register the blueprint, and the OIDC client when the settings name a provider."""
    app.register_blueprint(bp)
    settings: Settings = app.config["GREENFLAME_SETTINGS"]
    if not settings.oidc_enabled:
        return
    from authlib.integrations.flask_client import OAuth

    oauth = OAuth(app)
    issuer = (settings.oidc_issuer or "").rstrip("/")
    oauth.register(
        OIDC_CLIENT,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=settings.oidc_metadata_url or f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "timeout": 10},
    )
    app.extensions[_EXTENSION] = oauth


def _oidc_client() -> Any:
    oauth = current_app.extensions.get(_EXTENSION)
    if oauth is None:
        raise ApiError(404, "not_found", "OpenID Connect sign-in is not configured on this server")
    return oauth.create_client(OIDC_CLIENT)


def _callback_url() -> str:
    public = get_settings().public_url
    if public:
        return public.rstrip("/") + url_for("signin.oidc_callback")
    return url_for("signin.oidc_callback", _external=True)


@bp.get("/sign-in/oidc")
def oidc_start() -> Any:
    """Send the browser to the identity provider (authorization code flow with state and nonce)."""
    client = _oidc_client()
    session["oidc_next"] = _safe_next(request.args.get("next"))
    try:
        return client.authorize_redirect(_callback_url())
    except Exception as error:  # the provider's discovery document could not be read
        log.warning("OIDC sign-in could not start: %s", error)
        return _page("The identity provider could not be reached; try again later, or sign in with a token.", 502)


@bp.get("/sign-in/oidc/callback")
def oidc_callback() -> Any:
    """The provider's answer: exchange the code, check the ID token, start the session."""
    from authlib.common.errors import AuthlibBaseError
    from joserfc.errors import JoseError

    client = _oidc_client()
    next_path = _safe_next(session.get("oidc_next"))
    try:
        token = client.authorize_access_token(claims_options=_claims_options(client))
    except (AuthlibBaseError, JoseError) as error:  # state, code, or the ID token's claims or signature
        log.warning("OIDC sign-in refused: %s", error)
        return _page("The identity provider's answer was not accepted; sign in again.", 400)
    except Exception as error:  # the token endpoint could not be reached, or answered garbage
        log.warning("OIDC sign-in failed: %s", error)
        return _page("The identity provider could not be reached; try again later, or sign in with a token.", 502)
    claims = token.get("userinfo") or {}
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        return _page("The identity provider sent no ID token; sign in again.", 400)
    email = claims.get("email") if claims.get("email_verified") is True else None
    if oidc_scope(get_settings(), subject, email) is None:
        return _page("Your account is not allowed to sign in to this server; ask its administrator.", 403)
    _start_session({"kind": "oidc", "sub": subject, "email": email})
    return redirect(next_path, 303)


def _claims_options(client: Any) -> Dict[str, Any]:
    """The ID token must come from the configured issuer (else the discovery document's); authlib
    checks its signature (the provider's JWKS), audience, expiry and nonce."""
    configured = (get_settings().oidc_issuer or "").rstrip("/")
    issuer = configured or client.load_server_metadata().get("issuer")
    return {"iss": {"essential": True, "values": [issuer]}, "sub": {"essential": True}}
