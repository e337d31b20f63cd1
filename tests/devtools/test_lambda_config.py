"""What enable/disable plan for a function's configuration (pure), and the mapping of AWS errors to one line.

The access-denied case uses botocore's Stubber: moto (server mode) does not check IAM permissions
for Lambda's REST calls reliably (its signature check fails on them), so the refusal Lambda sends
is given here exactly as AWS words it.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest

from greenflame.analyzer.errors import UserError
from greenflame.devtools.lambda_config import (
    ENV_SAVED,
    AgentSettings,
    plan_disable,
    plan_enable,
    profiled_layer,
)
from greenflame.devtools.lambda_layer import ENV_NEXT_WRAPPER, WRAPPER_PATH

LAYER = "arn:aws:lambda:eu-west-1:123456789012:layer:greenflame:4"
OLD_LAYER = "arn:aws:lambda:eu-west-1:123456789012:layer:greenflame:2"
OTHER = "arn:aws:lambda:eu-west-1:580247275435:layer:LambdaInsightsExtension:14"
SERVER = AgentSettings(server="https://gf.example.com")


def config(
    layers: Optional[List[str]] = None, variables: Optional[Dict[str, str]] = None, **extra: Any
) -> Dict[str, Any]:
    base: Dict[str, Any] = {"FunctionName": "orders", "Runtime": "python3.12", "PackageType": "Zip"}
    base.update(extra)
    base["Layers"] = [{"Arn": arn} for arn in layers or []]
    if variables is not None:
        base["Environment"] = {"Variables": variables}
    return base


def applied(before: Dict[str, Any], layers: List[str], variables: Dict[str, str]) -> Dict[str, Any]:
    return config(layers, variables, **{k: v for k, v in before.items() if k not in ("Layers", "Environment")})


def roundtrip(before: Dict[str, Any], settings: AgentSettings = SERVER) -> Dict[str, Any]:
    plan = plan_enable(before, LAYER, settings)
    enabled = applied(before, plan.layers, plan.variables)
    restored = plan_disable(enabled)
    assert restored is not None
    return {"enabled": enabled, "layers": restored.layers, "variables": restored.variables}


def test_disable_restores_exactly_what_enable_changed() -> None:
    before = config([OTHER], {"A": "1", "GREENFLAME_SERVER": "https://old", "AWS_LAMBDA_EXEC_WRAPPER": "/opt/w"})
    result = roundtrip(before, AgentSettings(server="https://new", ingest_key_secret="arn:secret"))
    assert result["layers"] == [OTHER]
    assert result["variables"] == before["Environment"]["Variables"]
    enabled = result["enabled"]["Environment"]["Variables"]
    assert enabled[ENV_NEXT_WRAPPER] == "/opt/w" and enabled["AWS_LAMBDA_EXEC_WRAPPER"] == WRAPPER_PATH


def test_an_earlier_greenflame_layer_is_replaced_not_duplicated() -> None:
    plan = plan_enable(config([OLD_LAYER, OTHER]), LAYER, SERVER)
    assert plan.layers == [OTHER, LAYER]


def test_the_ingest_key_has_one_source() -> None:
    before = config([], {"GREENFLAME_INGEST_KEY": "plain", "GREENFLAME_SERVER": "https://gf"})
    plan = plan_enable(before, LAYER, AgentSettings(ingest_key_ssm="/gf/key"))
    assert "GREENFLAME_INGEST_KEY" not in plan.variables
    assert plan.variables["GREENFLAME_INGEST_KEY_SSM"] == "/gf/key"
    assert json.loads(plan.variables[ENV_SAVED])["variables"]["GREENFLAME_INGEST_KEY"] == "plain"


def test_layer_limit_is_refused() -> None:
    others = [f"arn:aws:lambda:eu-west-1:1:layer:l{i}:1" for i in range(5)]
    with pytest.raises(UserError, match="Lambda's limit"):
        plan_enable(config(others), LAYER, SERVER)


def test_a_function_never_enabled_has_nothing_to_disable() -> None:
    assert plan_disable(config([OTHER], {"A": "1"})) is None
    assert profiled_layer(config([OTHER], {"A": "1"})) is None


def test_status_needs_the_wrapper_and_the_layer() -> None:
    plan = plan_enable(config(), LAYER, SERVER)
    assert profiled_layer(config(plan.layers, plan.variables)) == LAYER


def test_a_layer_set_up_by_hand_comes_back_after_disable() -> None:
    by_hand = config([OTHER, OLD_LAYER], {"AWS_LAMBDA_EXEC_WRAPPER": WRAPPER_PATH, "GREENFLAME_SERVER": "https://gf"})
    result = roundtrip(by_hand, AgentSettings(group="checkout"))
    assert result["enabled"]["Layers"] == [{"Arn": OTHER}, {"Arn": LAYER}]
    assert result["layers"] == [OTHER, OLD_LAYER]
    assert result["variables"] == by_hand["Environment"]["Variables"]


def test_disable_refuses_a_greenflame_layer_it_did_not_add() -> None:
    with pytest.raises(UserError, match="by hand"):
        plan_disable(config([LAYER], {"AWS_LAMBDA_EXEC_WRAPPER": WRAPPER_PATH}))


def test_a_tampered_saved_state_is_refused() -> None:
    with pytest.raises(UserError, match="restore the function by hand"):
        plan_disable(config([LAYER], {ENV_SAVED: "not json"}))


def test_access_denied_is_one_line_naming_the_refused_call(capsys: pytest.CaptureFixture[str]) -> None:
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    from greenflame.devtools.lambda_enable import Target, enable

    client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_function_configuration",
            service_error_code="AccessDeniedException",
            service_message=(
                "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: "
                "lambda:GetFunctionConfiguration on resource: arn:aws:lambda:eu-west-1:123456789012:function:orders"
            ),
            http_status_code=403,
        )
        with pytest.raises(UserError) as refused:
            enable(Target("orders"), SERVER, client=client)
    message = str(refused.value)
    assert "\n" not in message
    assert "GetFunctionConfiguration" in message and "docs/lambda.md" in message
