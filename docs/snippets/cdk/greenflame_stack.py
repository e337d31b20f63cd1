"""AWS CDK (Python): a function profiled by greenflame (the layer and its exec wrapper: no code change).

``profile_with_greenflame`` adds the layer, the wrapper and the agent's variables to any
``aws_lambda.Function`` and lets it read the ingest key from SSM Parameter Store at cold start.
The layer ARN is what ``greenflame lambda enable`` published in the region (see docs/lambda.md).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

GREENFLAME_WRAPPER = "/opt/greenflame-wrapper"


def profile_with_greenflame(
    function: lambda_.Function, *, layer_arn: str, server: str, ingest_key_parameter: str
) -> None:
    """Profile ``function``: the greenflame layer, its wrapper, the server, the ingest key from SSM."""
    scope = function.node.scope
    assert scope is not None
    layer = lambda_.LayerVersion.from_layer_version_arn(scope, f"{function.node.id}Greenflame", layer_arn)
    function.add_layers(layer)
    function.add_environment("AWS_LAMBDA_EXEC_WRAPPER", GREENFLAME_WRAPPER)
    function.add_environment("GREENFLAME_SERVER", server)
    function.add_environment("GREENFLAME_INGEST_KEY_SSM", ingest_key_parameter)
    key = ssm.StringParameter.from_secure_string_parameter_attributes(
        scope, f"{function.node.id}GreenflameKey", parameter_name=ingest_key_parameter
    )
    key.grant_read(function)


class OrdersStack(cdk.Stack):
    """One function, profiled."""

    def __init__(self, scope: Construct, construct_id: str, *, code: lambda_.Code, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        orders = lambda_.Function(
            self,
            "Orders",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler="app.lambda_handler",
            code=code,
        )
        profile_with_greenflame(
            orders,
            layer_arn=self.node.try_get_context("greenflame_layer_arn")
            or "arn:aws:lambda:eu-west-1:123456789012:layer:greenflame:1",
            server=self.node.try_get_context("greenflame_server") or "https://greenflame.example.com",
            ingest_key_parameter="/greenflame/ingest-key",
        )


if __name__ == "__main__":
    app = cdk.App()
    OrdersStack(app, "Orders", code=lambda_.Code.from_asset("src"))
    app.synth()
