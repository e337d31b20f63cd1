"""Checks HTTP responses against the server's OpenAPI description."""

from __future__ import annotations

from typing import Any, Dict

import requests
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from greenflame.server.pipeline_openapi import merged_spec

# server/openapi.yaml with the pipeline's server/openapi_pipeline.yaml merged in.
SPEC: Dict[str, Any] = merged_spec()
SPEC_URI = "urn:greenflame:openapi"
REGISTRY: Registry = Registry().with_resource(SPEC_URI, Resource.from_contents(SPEC, DRAFT202012))


def pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def resolve(node: Dict[str, Any]) -> Dict[str, Any]:
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def check(response: requests.Response, template: str, method: str = "get") -> None:
    """``response`` has a status the spec lists for this operation, and a body its schema accepts."""
    responses = SPEC["paths"][template][method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method.upper()} {template} answered {status}, which the spec does not list"
    documented = resolve(responses[status])
    media = response.headers["Content-Type"].split(";")[0].strip()
    assert media in documented["content"], f"{status} with {media} is not documented"
    reference = pointer("paths", template, method, "responses", status)
    if "$ref" in responses[status]:
        reference = responses[status]["$ref"].lstrip("#/")
    schema = {"$ref": f"{SPEC_URI}#/{reference}/content/{pointer(media)}/schema"}
    body = response.json() if media == "application/json" else response.text
    OAS31Validator(schema, registry=REGISTRY).validate(body)
