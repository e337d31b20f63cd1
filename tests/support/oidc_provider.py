"""A small OpenID Connect provider for tests: discovery, authorization code flow, RS256 ID tokens.

It follows the parts of OpenID Connect Core 1.0 a relying party depends on, strictly enough to
refuse a wrong call: the client id and the exact registered redirect URI at ``/authorize``
(``response_type=code``, ``openid`` in the scope, a ``state``), and at ``/token`` the client's
secret (HTTP Basic or form), a code used once, by the client it was issued to, within a minute,
with the same redirect URI. ID tokens carry ``iss``, ``sub``, ``aud``, ``exp``, ``iat``, the
request's ``nonce`` and the user's email, signed with an RSA key published at ``/jwks``.

There is no login form: ``/authorize`` signs in :attr:`OidcProvider.user`, whoever asks.
``tamper`` makes the next ID tokens wrong on purpose (``"aud"``, ``"nonce"``, ``"signature"``,
``"iss"``) to check that the relying party refuses them.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_TTL_S = 60


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: List[str]


@dataclass
class OidcProvider:
    """The provider's state; ``url`` is its issuer."""

    url: str = ""
    clients: Dict[str, Client] = field(default_factory=dict)
    user: Dict[str, Any] = field(default_factory=lambda: {"sub": "user-1", "email": "ada@example.com"})
    tamper: Optional[str] = None
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    codes: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    token_requests: List[Dict[str, Any]] = field(default_factory=list)

    def register(self, redirect_uri: str) -> Client:
        client = Client("client-" + secrets.token_hex(4), secrets.token_urlsafe(16), [redirect_uri])
        self.clients[client.client_id] = client
        return client

    def metadata(self) -> Dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def authorize(self, query: Dict[str, str]) -> Tuple[int, Dict[str, str], Dict[str, Any]]:
        client = self.clients.get(query.get("client_id", ""))
        if client is None or query.get("redirect_uri") not in client.redirect_uris:
            return 400, {}, {"error": "invalid_request", "error_description": "unknown client or redirect_uri"}
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            return 400, {}, {"error": "invalid_request", "error_description": "response_type code, scope openid"}
        if not query.get("state"):
            return 400, {}, {"error": "invalid_request", "error_description": "state is required here"}
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "client_id": client.client_id,
            "redirect_uri": query["redirect_uri"],
            "nonce": query.get("nonce"),
            "user": dict(self.user),
            "issued": time.time(),
        }
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
        return 302, {"Location": target}, {}

    def token(self, form: Dict[str, str], authorization: Optional[str]) -> Tuple[int, Dict[str, Any]]:
        self.token_requests.append(dict(form))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode("utf-8")
            client_id, _, secret = decoded.partition(":")
        client = self.clients.get(client_id or "")
        if client is None or secret != client.client_secret:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        issued = self.codes.pop(form.get("code", ""), None)  # a code works once
        if (
            issued is None
            or issued["client_id"] != client.client_id
            or issued["redirect_uri"] != form.get("redirect_uri")
            or time.time() - issued["issued"] > CODE_TTL_S
        ):
            return 400, {"error": "invalid_grant"}
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(client, issued),
        }

    def id_token(self, client: Client, issued: Dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": issued["user"]["sub"],
            "aud": client.client_id,
            "iat": now,
            "exp": now + 300,
            "email": issued["user"].get("email"),
            "email_verified": issued["user"].get("email_verified", True),
        }
        if issued["nonce"]:
            claims["nonce"] = issued["nonce"]
        key = self.key
        if self.tamper == "aud":
            claims["aud"] = "someone-else"
        elif self.tamper == "nonce":
            claims["nonce"] = "not-the-nonce"
        elif self.tamper == "iss":
            claims["iss"] = "https://evil.example"
        elif self.tamper == "signature":
            key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def _handler(provider: OidcProvider) -> type:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            if parsed.path == "/.well-known/openid-configuration":
                self._send(200, provider.metadata())
            elif parsed.path == "/jwks":
                self._send(200, {"keys": [provider.key.as_dict(private=False)]})
            elif parsed.path == "/authorize":
                status, headers, body = provider.authorize(query)
                self._send(status, body, headers)
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlparse(self.path).path != "/token":
                self._send(404, {"error": "not_found"})
                return
            status, body = provider.token(form, self.headers.get("Authorization"))
            self._send(status, body)

    return Handler


@pytest.fixture
def oidc_provider() -> Iterator[OidcProvider]:
    """A running provider on a free local port, stopped after the test."""
    provider = OidcProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield provider
    server.shutdown()
    server.server_close()
