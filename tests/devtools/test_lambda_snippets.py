"""The copy-paste snippets of docs/lambda.md (SAM, CDK Python, Terraform, Serverless), parsed and validated.

Deploying is not possible here; each snippet goes through the strictest check that runs offline
(cfn-lint with the SAM transform; a real CDK synthesis; HCL parsing; a schema for the Serverless
subset used), and every one must set what the layer needs, named as the code names it: the
wrapper path, the agent's variables, a supported runtime, and an ingest key that is not plain text.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import yaml
from support.paths import ROOT

from greenflame.devtools.lambda_config import (
    ENV_INGEST_KEY,
    ENV_INGEST_KEY_SSM,
    ENV_SERVER,
    ENV_WRAPPER,
    LAYER_NAME,
    SUPPORTED_RUNTIMES,
)
from greenflame.devtools.lambda_layer import WRAPPER_PATH

SNIPPETS = ROOT / "docs" / "snippets"
ARCHITECTURES = ["x86_64", "arm64"]


def assert_profiled(variables: Dict[str, Any]) -> None:
    """What every snippet must set in the function's environment."""
    assert variables[ENV_WRAPPER] == WRAPPER_PATH
    assert ENV_SERVER in variables
    assert ENV_INGEST_KEY_SSM in variables and ENV_INGEST_KEY not in variables


# -- AWS SAM --------------------------------------------------------------------------------------


def sam_lint(text: str) -> List[str]:
    """cfn-lint's errors and warnings (its informational I-rules, which newer releases add, are advice)."""
    cfnlint_api = pytest.importorskip("cfnlint.api")
    return [str(match) for match in cfnlint_api.lint_all(text) if not match.rule.id.startswith("I")]


def test_sam_template_passes_cfn_lint_and_profiles_the_function() -> None:
    text = (SNIPPETS / "sam" / "template.yaml").read_text()
    assert sam_lint(text) == []
    from cfnlint.decode import decode_str

    template, problems = decode_str(text)
    assert not problems
    function = template["Resources"]["OrdersFunction"]["Properties"]
    assert function["Runtime"] in SUPPORTED_RUNTIMES and set(function["Architectures"]) <= set(ARCHITECTURES)
    assert function["Layers"] == [{"Ref": "GreenflameLayerArn"}]
    assert_profiled(function["Environment"]["Variables"])


def test_cfn_lint_does_catch_a_broken_sam_template() -> None:
    text = (SNIPPETS / "sam" / "template.yaml").read_text()
    assert "Runtime: python3.12" in text
    # A property of the wrong type: an error in every cfn-lint release (a retired runtime is only
    # advice in newer ones).
    assert sam_lint(text.replace("Runtime: python3.12", "Runtime: [python3.12]"))


# -- CDK (Python) ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdk_module() -> Iterator[Any]:
    pytest.importorskip("aws_cdk")
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_RELEASE", "1")
    spec = importlib.util.spec_from_file_location("greenflame_stack", SNIPPETS / "cdk" / "greenflame_stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["greenflame_stack"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("greenflame_stack", None)


@pytest.mark.timeout(300)
def test_cdk_stack_synthesizes_with_the_layer_the_variables_and_the_grant(cdk_module: Any) -> None:
    import aws_cdk as cdk
    from aws_cdk import assertions
    from aws_cdk import aws_lambda as lambda_

    layer = f"arn:aws:lambda:eu-west-1:123456789012:layer:{LAYER_NAME}:7"
    app = cdk.App(context={"greenflame_layer_arn": layer, "greenflame_server": "https://gf.example.com"})
    stack = cdk_module.OrdersStack(app, "Orders", code=lambda_.Code.from_inline("def lambda_handler(e, c): pass"))
    template = assertions.Template.from_stack(stack).to_json()

    (function,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert function["Layers"] == [layer]
    assert function["Runtime"] in SUPPORTED_RUNTIMES and function["Architectures"] == ["arm64"]
    assert_profiled(function["Environment"]["Variables"])
    policies = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    actions = {a for p in policies for s in p["PolicyDocument"]["Statement"] for a in _listed(s["Action"])}
    assert "ssm:GetParameter" in actions


def _listed(value: Any) -> List[str]:
    return value if isinstance(value, list) else [value]


# -- Terraform ------------------------------------------------------------------------------------


def _terraform() -> Dict[str, Any]:
    hcl2 = pytest.importorskip("hcl2")
    with open(SNIPPETS / "terraform" / "main.tf") as handle:
        document: Dict[str, Any] = hcl2.load(handle)
    return document


def _resources(document: Dict[str, Any], kind: str) -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for block in document.get("resource", []):
        for name, body in block.get(kind, {}).items():
            found[name.strip('"')] = body
    return found


def _unquoted(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip('"')
    if isinstance(value, list):
        return [_unquoted(item) for item in value]
    if isinstance(value, dict):
        return {_unquoted(key): _unquoted(item) for key, item in value.items()}
    return value


def test_terraform_publishes_the_layer_and_profiles_the_function() -> None:
    document = _unquoted(_terraform())
    layer = _resources(document, "aws_lambda_layer_version")["greenflame"]
    assert layer["layer_name"] == LAYER_NAME
    assert layer["compatible_runtimes"] == list(SUPPORTED_RUNTIMES)
    assert layer["compatible_architectures"] == ARCHITECTURES
    function = _resources(document, "aws_lambda_function")["orders"]
    assert function["runtime"] in SUPPORTED_RUNTIMES
    assert "aws_lambda_layer_version.greenflame.arn" in str(function["layers"])
    environment = function["environment"]
    variables = (environment[0] if isinstance(environment, list) else environment)["variables"]
    assert_profiled(variables)
    policy = _resources(document, "aws_iam_role_policy")["greenflame_ingest_key"]
    assert "ssm:GetParameter" in str(policy["policy"])


# -- Serverless Framework -------------------------------------------------------------------------

#: The part of the Serverless Framework's configuration schema the snippet uses.
SERVERLESS_SCHEMA = {
    "type": "object",
    "required": ["service", "provider", "functions"],
    "properties": {
        "service": {"type": "string"},
        "frameworkVersion": {"type": "string"},
        "params": {"type": "object"},
        "provider": {
            "type": "object",
            "required": ["name", "runtime"],
            "properties": {
                "name": {"const": "aws"},
                "runtime": {"enum": list(SUPPORTED_RUNTIMES)},
                "architecture": {"enum": ARCHITECTURES},
                "region": {"type": "string"},
                "iam": {"type": "object"},
            },
            "additionalProperties": False,
        },
        "functions": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["handler", "layers", "environment"],
                "properties": {
                    "handler": {"type": "string", "pattern": r"^[\w/.]+\.\w+$"},
                    "layers": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
                    "environment": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


def test_serverless_configuration_matches_the_schema_and_profiles_the_function() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    document = yaml.safe_load((SNIPPETS / "serverless" / "serverless.yml").read_text())
    jsonschema.validate(document, SERVERLESS_SCHEMA)
    (function,) = document["functions"].values()
    assert ":layer:greenflame:" in document["params"]["default"]["greenflameLayerArn"]
    assert_profiled(function["environment"])
    statements = document["provider"]["iam"]["role"]["statements"]
    assert any(s["Action"] == "ssm:GetParameter" for s in statements)


def test_the_serverless_schema_does_catch_a_broken_configuration() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    document = yaml.safe_load((SNIPPETS / "serverless" / "serverless.yml").read_text())
    document["provider"]["runtime"] = "python2.7"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SERVERLESS_SCHEMA)


def test_every_snippet_folder_is_tested() -> None:
    assert sorted(path.name for path in SNIPPETS.iterdir() if path.is_dir()) == [
        "cdk",
        "sam",
        "serverless",
        "terraform",
    ]


def test_snippets_name_the_wrapper_as_the_layer_ships_it() -> None:
    texts = [path.read_text() for path in Path(SNIPPETS).rglob("*") if path.is_file() and path.suffix != ".pyc"]
    assert all(WRAPPER_PATH in text for text in texts if "greenflame" in text)
