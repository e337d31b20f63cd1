"""The agent reads its ingest key from SSM Parameter Store or Secrets Manager at a cold start (moto, server mode)."""

from __future__ import annotations

import pytest
from support.aws import MotoServer, aws_env, moto_server  # noqa: F401

from greenflame.agent.lambda_secrets import ENV_INGEST_KEY_SECRET, ENV_INGEST_KEY_SSM, ingest_key_from_aws

pytest.importorskip("boto3")


def test_the_key_comes_from_an_ssm_secure_string(aws_env: MotoServer) -> None:  # noqa: F811
    aws_env.client("ssm").put_parameter(Name="/gf/key-ssm", Value="gf_ssm_key", Type="SecureString")
    assert ingest_key_from_aws({ENV_INGEST_KEY_SSM: "/gf/key-ssm"}) == "gf_ssm_key"


def test_the_key_comes_from_secrets_manager(aws_env: MotoServer) -> None:  # noqa: F811
    arn = aws_env.client("secretsmanager").create_secret(Name="gf-key", SecretString="gf_secret_key")["ARN"]
    assert ingest_key_from_aws({ENV_INGEST_KEY_SECRET: arn}) == "gf_secret_key"


def test_a_plain_key_wins_and_no_source_reads_nothing(aws_env: MotoServer) -> None:  # noqa: F811
    assert ingest_key_from_aws({"GREENFLAME_INGEST_KEY": "plain", ENV_INGEST_KEY_SSM: "/missing"}) is None
    assert ingest_key_from_aws({}) is None


def test_a_missing_parameter_raises_for_the_caller_to_log(aws_env: MotoServer) -> None:  # noqa: F811
    with pytest.raises(Exception, match="ParameterNotFound"):
        ingest_key_from_aws({ENV_INGEST_KEY_SSM: "/gf/absent"})
