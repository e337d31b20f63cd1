"""Schemathesis over the whole API (the merged OpenAPI document) against a real ``greenflame serve``,
authenticated with tokens: no server error, and every status, content type, header and body as
the document says, with the admin token (every operation let in) and with a read token (admin
operations answer 403, which must be documented too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.server import LiveServer, ingest_profile, make_profile, start_server

from greenflame.server.pipeline_openapi import merged_spec

SCHEMA = schemathesis.openapi.from_dict(merged_spec())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """A server of its own (the fuzzer makes groups and tokens), with a group holding a profile."""
    server: LiveServer = start_server(tmp_path_factory.mktemp("schemathesis") / "data")
    key = server.create_group("fuzz")
    assert ingest_profile(server, key, make_profile("fuzz")).status_code == 202
    credentials = {"admin": server.admin_token, "read": server.read_token}
    yield {"server": server, "credentials": credentials}
    server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]


@pytest.mark.parametrize("who", ["admin", "read"])
@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_with_tokens(case: Any, fuzzed: Dict[str, Any], who: str, tmp_path: Path) -> None:
    server: LiveServer = fuzzed["server"]
    headers = {"Authorization": f"Bearer {fuzzed['credentials'][who]}"}
    case.call_and_validate(base_url=server.url.rstrip("/"), headers=headers, checks=CHECKS, timeout=60)
