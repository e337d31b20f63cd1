"""The agent reads its ingest key from SSM Parameter Store or Secrets Manager at a cold start (moto, server mode)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.aws import MotoServer, aws_env, moto_server  # noqa: F401

import greenflame.agent as agent
from greenflame.agent import aws_lambda, profiler
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


def test_the_lambda_agent_starts_with_the_key_it_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from greenflame.agent import lambda_secrets

    monkeypatch.setattr(aws_lambda, "_SESSION", aws_lambda._Session())
    monkeypatch.setattr(lambda_secrets, "ingest_key_from_aws", lambda env=None: "gf_from_ssm")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    try:
        assert aws_lambda.start_lambda_agent(server="http://127.0.0.1:9", report_interval_s=3600)
        running = profiler.current()
        assert running is not None and running.config.ingest_key == "gf_from_ssm"
    finally:
        agent.stop(flush=False)
