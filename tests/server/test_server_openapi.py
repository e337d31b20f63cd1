"""server/openapi.yaml is a valid OpenAPI 3.1 document and real responses conform to it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict

import pytest
import requests
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from support.builders import lambda_profile
from support.openapi import REGISTRY, SPEC, SPEC_URI, check
from support.server import LiveServer, ingest, ingest_profile, make_profile, unique_name

from greenflame.analyzer.formats import greenflame_json
from greenflame.server.app import create_app


def test_spec_is_valid_openapi_31() -> None:
    assert SPEC["openapi"].startswith("3.1")
    validate_spec(SPEC)


def test_spec_covers_every_api_route(tmp_path: Path) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "t"})
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.endpoint.startswith("ops."):  # and /livez, /readyz, /metrics
            template = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((template, method.lower()))
    documented = {(path, method) for path, item in SPEC["paths"].items() for method in item if method != "parameters"}
    assert routes == documented


def test_wire_profile_schema_accepts_real_profiles() -> None:
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/WireProfile"}
    for profile in (make_profile("g"), lambda_profile()):
        OAS31Validator(schema, registry=REGISTRY).validate(json.loads(greenflame_json.dumps(profile)))


@pytest.fixture(scope="module")
def group(live_server: LiveServer) -> Dict[str, str]:
    name = unique_name("spec")
    key = live_server.create_group(name)
    profile = lambda_profile()
    profile.group = name
    assert ingest_profile(live_server, key, profile).status_code == 202
    return {"name": name, "key": key}


def call(server: LiveServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return server.session.request(method, server.api(path), timeout=30, **kwargs)


def test_health_conforms(live_server: LiveServer) -> None:
    check(call(live_server, "GET", "/api/v1/health"), "/api/v1/health")


def test_ingest_responses_conform(live_server: LiveServer, group: Dict[str, str]) -> None:
    template = "/api/v1/ingest"
    headers = {"Idempotency-Key": "spec-retry"}
    body = greenflame_json.dumps(make_profile(group["name"]))
    for expected in (202, 200):
        response = ingest(live_server, group["key"], body, headers)
        assert response.status_code == expected
        check(response, template, "post")
    cases = [
        (None, body, {}, 401),
        ("wrong", body, {}, 403),
        (group["key"], b"{", {}, 400),
        (group["key"], body, {"Content-Type": "text/plain"}, 415),
    ]
    for key, data, extra, status in cases:
        response = ingest(live_server, key, data, extra)
        assert response.status_code == status
        check(response, template, "post")


def test_group_responses_conform(live_server: LiveServer, group: Dict[str, str]) -> None:
    token = {"Authorization": f"Bearer {live_server.admin_token}"}
    new = unique_name("spec-new")
    cases = [
        ("post", {"json": {"name": new}, "headers": token}, 201),
        ("post", {"json": {"name": new}, "headers": token}, 409),
        ("post", {"json": {"name": "bad name"}, "headers": token}, 400),
        ("post", {"json": {"name": new}, "headers": {"Authorization": None}}, 401),
        ("post", {"json": {"name": new}, "headers": {"Authorization": "Bearer nope"}}, 403),
        ("get", {}, 200),
    ]
    for method, kwargs, status in cases:
        response = call(live_server, method, "/api/v1/groups", **kwargs)
        assert response.status_code == status
        check(response, "/api/v1/groups", method)
    for name, status in ((group["name"], 200), ("missing-group", 404)):
        response = call(live_server, "GET", f"/api/v1/groups/{name}")
        assert response.status_code == status
        check(response, "/api/v1/groups/{name}")


@pytest.mark.parametrize("kind", ["flamegraph", "recommendations"])
def test_analysis_responses_conform(live_server: LiveServer, group: Dict[str, str], kind: str) -> None:
    template = f"/api/v1/groups/{{name}}/{kind}"
    cases: list = [
        (group["name"], None, 200),
        (group["name"], {"from": "now-5m"}, 200),
        (group["name"], {"from": "not a time"}, 400),
        ("missing-group", None, 404),
    ]
    if kind == "flamegraph":
        cases += [(group["name"], {"type": "wall", "max_nodes": "3"}, 200), (group["name"], {"type": "x"}, 400)]
    for name, params, status in cases:
        response = call(live_server, "GET", f"/api/v1/groups/{name}/{kind}", params=params)
        assert response.status_code == status, response.text
        check(response, template)
    if kind == "recommendations":
        findings = call(live_server, "GET", f"/api/v1/groups/{group['name']}/recommendations").json()
        assert findings["recommendations"], "the Lambda profile should produce a finding to validate"


def test_error_schema_rejects_multiline_messages() -> None:
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/Error"}
    validator = OAS31Validator(schema, registry=REGISTRY)
    assert validator.is_valid({"error": {"code": "not_found", "message": "one line"}})
    assert not validator.is_valid({"error": {"code": "not_found", "message": "two\nlines"}})
    assert not validator.is_valid({"error": "flat"})
