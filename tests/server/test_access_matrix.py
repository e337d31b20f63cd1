"""The authorisation matrix: every route of the app and every operation of the OpenAPI document,
called with no credential, a wrong one, and each scope.

Each route's rule is declared once, here, in :data:`EXPECTED` (independently of the server's own
table); what each credential must get follows from the rule. A route added to the app or to the
OpenAPI document without an entry here fails :func:`test_every_route_is_declared`.
"""

from __future__ import annotations

import gzip
import itertools
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.openapi import SPEC
from support.server import make_profile

from greenflame.analyzer.formats import greenflame_json
from greenflame.server.app import create_app, shut_down
from greenflame.server.tokens import TokenStore

ADMIN_TOKEN = "matrix-admin-token-" + "x" * 16
GROUP, OTHER = "alpha", "beta"

#: (method, Flask rule) -> what it needs: public, read, feedback (read, not anonymous), ingest, admin.
#: Pages (GET outside /api/) send a browser without a credential to the sign-in page instead of 401.
EXPECTED: Dict[Tuple[str, str], str] = {
    ("GET", "/static/<path:filename>"): "public",
    ("GET", "/livez"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/api/v1/health"): "public",
    ("GET", "/metrics"): "admin",  # GREENFLAME_METRICS_ACCESS=admin, the default
    ("POST", "/api/v1/ingest"): "ingest",
    ("POST", "/api/v1/groups"): "admin",
    ("GET", "/api/v1/groups"): "read",
    ("GET", "/api/v1/groups/<name>"): "read",
    ("GET", "/api/v1/groups/<name>/flamegraph"): "read",
    ("GET", "/api/v1/groups/<name>/sandwich"): "read",
    ("GET", "/api/v1/groups/<name>/functions"): "read",
    ("GET", "/api/v1/groups/<name>/diff"): "read",
    ("GET", "/api/v1/groups/<name>/diff/functions"): "read",
    ("GET", "/api/v1/rules/<rule_id>"): "read",
    ("GET", "/api/v1/groups/<name>/timeseries"): "read",
    ("GET", "/api/v1/groups/<name>/labels"): "read",
    ("GET", "/api/v1/groups/<name>/deploys"): "read",
    ("GET", "/api/v1/groups/<name>/recommendations"): "read",
    ("GET", "/api/v1/groups/<name>/findings"): "read",
    ("GET", "/api/v1/groups/<name>/anomalies"): "read",
    ("POST", "/api/v1/anomalies/<anomaly_id>/feedback"): "feedback",
    ("GET", "/api/v1/groups/<name>/channels"): "admin",
    ("PUT", "/api/v1/groups/<name>/channels"): "admin",
    ("GET", "/api/v1/tickets"): "read",
    ("POST", "/api/v1/tokens"): "admin",
    ("GET", "/api/v1/tokens"): "admin",
    ("DELETE", "/api/v1/tokens/<token_id>"): "admin",
    ("GET", "/"): "read",
    ("GET", "/groups/<name>"): "read",
    ("GET", "/groups/<name>/compare"): "read",
    ("GET", "/groups/<name>/findings"): "read",
    ("GET", "/groups/<name>/findings/<fingerprint>"): "read",
    ("GET", "/groups/<name>/anomalies"): "read",
    ("GET", "/groups/<name>/anomalies/<anomaly_id>"): "read",
    ("GET", "/sign-in"): "public",
    ("POST", "/sign-in"): "public",
    ("POST", "/sign-out"): "public",
    ("GET", "/sign-in/link/<secret>"): "public",
    ("GET", "/sign-in/oidc"): "public",
    ("GET", "/sign-in/oidc/callback"): "public",
}

#: Credentials the matrix tries: name -> (scope it has or None, the one group it is for or None).
CREDENTIALS = {
    "none": (None, None),
    "wrong": (None, None),
    "read": ("read", None),
    "read-other-group": ("read", OTHER),
    "ingest-key": ("ingest", GROUP),
    "ingest-token": ("ingest", None),
    "admin-token": ("admin", None),
    "admin-api-token": ("admin", None),
}


def flask_rules(app: Flask) -> List[Tuple[str, str]]:
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    )


def openapi_operations() -> List[Tuple[str, str]]:
    """(METHOD, Flask-style rule) of every operation in the OpenAPI document."""
    return sorted(
        (method.upper(), re.sub(r"\{([^}]+)\}", r"<\1>", path))
        for path, item in SPEC["paths"].items()
        for method in item
        if method != "parameters"
    )


class Matrix:
    """An app with two groups, a token of each kind, and a request maker per credential."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        overrides = {"data_dir": str(tmp_path), "admin_token": ADMIN_TOKEN, "auth_failure_limit": 100_000}
        self.app = create_app({**overrides, **settings})
        self.client: FlaskClient = self.app.test_client()
        self.made = itertools.count()
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.keys = {}
        for name in (GROUP, OTHER):
            self.keys[name] = self.client.post("/api/v1/groups", json={"name": name}, headers=admin).json["ingest_key"]
        body = gzip.compress(greenflame_json.dumps(make_profile(GROUP)))
        headers = {**self.bearer(self.keys[GROUP]), "Content-Type": "application/json", "Content-Encoding": "gzip"}
        assert self.client.post("/api/v1/ingest", data=body, headers=headers).status_code == 202
        with self.app.app_context():
            store = TokenStore(self.app.extensions["greenflame.storage"].engine)
            self.secrets = {
                "none": None,
                "wrong": "gft_" + "w" * 43,
                "read": store.create("read").secret,
                "read-other-group": store.create("read", OTHER).secret,
                "ingest-key": self.keys[GROUP],
                "ingest-token": store.create("ingest").secret,
                "admin-token": ADMIN_TOKEN,
                "admin-api-token": store.create("admin").secret,
            }
            self.spare_token_id = store.create("read", name="to revoke").record.id

    @staticmethod
    def bearer(secret: Optional[str]) -> Dict[str, str]:
        return {} if secret is None else {"Authorization": f"Bearer {secret}"}

    def call(self, method: str, rule: str, credential: str, known: bool = True) -> Any:
        """Call ``rule`` with real values (``known``) or unknown ones for its parts."""
        path, kwargs = self.request_for(method, rule, known)
        kwargs.setdefault("headers", {}).update(self.bearer(self.secrets[credential]))
        return self.client.open(path, method=method, **kwargs)

    def request_for(self, method: str, rule: str, known: bool) -> Tuple[str, Dict[str, Any]]:
        values = {
            "name": GROUP if known else "no-such-group",
            "rule_id": "boto3-client-per-invocation" if known else "no-such-rule",
            "anomaly_id": "0" * 32,
            "fingerprint": "f" * 16,
            "token_id": self.spare_token_id if known else "0" * 32,
            "secret": "gfl_unknown",
            "filename": "style.css" if known else "no-such-file.css",
        }
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values[m.group(1)], rule)
        kwargs: Dict[str, Any] = {}
        if rule == "/api/v1/ingest":
            kwargs["data"] = gzip.compress(greenflame_json.dumps(make_profile(GROUP if known else "no-such-group")))
            kwargs["headers"] = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        elif rule == "/api/v1/groups" and method == "POST":
            kwargs["json"] = {"name": f"made-{next(self.made)}"}
        elif rule.endswith("/feedback"):
            kwargs["json"] = {"useful": False}
        elif rule.endswith("/channels") and method == "PUT":
            kwargs["json"] = {"channels": []}
        elif rule == "/api/v1/tokens" and method == "POST":
            kwargs["json"] = {"name": "matrix", "scope": "read"}
        return path, kwargs


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    made = Matrix(tmp_path_factory.mktemp("matrix"))
    yield made
    shut_down(made.app, 10)  # no analysis of the app left running at the interpreter's exit


def expected_denial(rule_class: str, credential: str, rule: str) -> Optional[int]:
    """The status the credential must get on a route of ``rule_class`` (None: let in)."""
    scope, group = CREDENTIALS[credential]
    if rule_class == "public":
        return None
    if credential == "none":
        return 401
    if credential == "wrong":
        return 403
    if scope == "admin":
        return None
    needed = "read" if rule_class == "feedback" else rule_class
    if scope != needed:
        return 403
    if group is not None and "<name>" in rule and group != GROUP:
        return 403
    return None


def test_every_route_is_declared(matrix: Matrix) -> None:
    """A route in the app or in the OpenAPI document without an entry in EXPECTED fails here."""
    declared = set(EXPECTED)
    assert set(flask_rules(matrix.app)) == declared
    assert set(openapi_operations()) <= declared


def test_openapi_says_what_each_operation_needs() -> None:
    default = SPEC["security"]
    for method, rule in openapi_operations():
        path = re.sub(r"<([^>]+)>", r"{\1}", rule)
        operation = SPEC["paths"][path][method.lower()]
        security = operation.get("security", default)
        responses = operation["responses"]
        if EXPECTED[(method, rule)] == "public":
            assert security == [], f"{method} {path} is public but its security is {security}"
            continue
        assert (security and {} not in security) or rule == "/metrics", f"{method} {path} needs a credential"
        assert {"401", "403"} <= set(responses), f"{method} {path} does not document 401 and 403"


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
def test_each_credential_on_each_route(matrix: Matrix, credential: str) -> None:
    wrong = []
    for (method, rule), rule_class in sorted(EXPECTED.items()):
        response = matrix.call(method, rule, credential)
        denial = expected_denial(rule_class, credential, rule)
        page = not rule.startswith(("/api/", "/metrics")) and method == "GET"
        if denial == 401 and page:
            ok = response.status_code == 303 and response.headers["Location"].startswith("/sign-in?next=")
        elif denial is not None:
            ok = response.status_code == denial
        elif rule_class == "public":  # the sign-in forms answer 403 to a wrong token or a missing CSRF token
            ok = response.status_code != 401 and response.status_code < 500
        else:
            ok = response.status_code not in (401, 403) and response.status_code < 500
        if not ok:
            wrong.append(f"{method} {rule} as {credential}: {response.status_code} (expected {denial or 'let in'})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("credential", ["none", "wrong", "read-other-group", "ingest-key"])
def test_checks_come_before_any_lookup(matrix: Matrix, credential: str) -> None:
    """Unknown groups, ids and tokens answer as known ones do: the credential is refused first."""
    for (method, rule), rule_class in sorted(EXPECTED.items()):
        denial = expected_denial(rule_class, credential, rule)
        if denial is None or "<" not in rule or rule.startswith("/static/"):
            continue
        if credential == "read-other-group" and "<name>" not in rule:
            continue
        known = matrix.call(method, rule, credential, known=True)
        unknown = matrix.call(method, rule, credential, known=False)
        assert (unknown.status_code, unknown.headers.get("Location", "").split("?")[0]) == (
            known.status_code,
            known.headers.get("Location", "").split("?")[0],
        ), f"{method} {rule} as {credential}"
        assert unknown.status_code in (401, 403, 303)


def test_unknown_paths_and_methods_need_a_credential_first(matrix: Matrix) -> None:
    for path, method in (("/api/v1/nothing-here", "GET"), ("/api/v1/groups", "DELETE"), ("/api/v1/ingest", "GET")):
        assert matrix.client.open(path, method=method).status_code == 401
        assert matrix.client.open(path, method=method, headers=matrix.bearer(matrix.secrets["read"])).status_code in (
            404,
            405,
        )


def test_a_group_token_sees_only_its_group(matrix: Matrix) -> None:
    other = matrix.bearer(matrix.secrets["read-other-group"])
    groups = matrix.client.get("/api/v1/groups", headers=other).json["groups"]
    assert [g["name"] for g in groups] == [OTHER]
    assert matrix.client.get(f"/api/v1/tickets?group={GROUP}", headers=other).status_code == 404
    everyone = matrix.client.get("/api/v1/groups", headers=matrix.bearer(matrix.secrets["read"])).json["groups"]
    assert {GROUP, OTHER} <= {g["name"] for g in everyone}
    assert matrix.client.get(f"/groups/{GROUP}", headers=other).status_code == 403
    diff = f"/api/v1/groups/{OTHER}/diff?base_group={GROUP}"
    assert matrix.client.get(diff, headers=other).status_code == 403


def test_anonymous_read_is_an_explicit_setting(tmp_path: Path) -> None:
    open_server = Matrix(tmp_path, anonymous_read="on")
    for (method, rule), rule_class in sorted(EXPECTED.items()):
        response = open_server.call(method, rule, "none")
        if rule_class in ("read", "public"):
            assert response.status_code not in (401, 403, 303) or rule_class == "public", f"{method} {rule}"
        else:  # feedback, ingest and admin still need a credential
            assert response.status_code == 401, f"{method} {rule}: {response.status_code}"


def test_public_routes_do_not_look_at_tokens(tmp_path: Path) -> None:
    """A probe sending a stale token to /livez is neither refused nor counted as a guess."""
    probe = Matrix(tmp_path, auth_failure_limit=2)
    stale = probe.bearer("gft_" + "s" * 43)
    assert [probe.client.get("/livez", headers=stale).status_code for _ in range(5)] == [200] * 5
    assert probe.client.get("/api/v1/groups", headers=stale).status_code == 403  # no failure counted before
