"""The ingest key from SSM Parameter Store or Secrets Manager, read once at a Lambda cold start.

``greenflame lambda enable --ingest-key-ssm PARAM`` sets ``GREENFLAME_INGEST_KEY_SSM`` (the
parameter's name or ARN; a SecureString is decrypted) and ``--ingest-key-secret ARN`` sets
``GREENFLAME_INGEST_KEY_SECRET`` (the secret's ARN or name; its ``SecretString``), so the key never
sits in the function's configuration in plain text. An explicit ``GREENFLAME_INGEST_KEY`` wins.

Those calls need AWS Signature V4, so this module imports boto3 lazily, here only: every AWS
Lambda Python runtime ships boto3, so the layer does not carry it and the agent's own footprint
stays the standard library. The function's execution role needs ``ssm:GetParameter`` (and
``kms:Decrypt`` for a customer-managed key) or ``secretsmanager:GetSecretValue``.
"""

from __future__ import annotations

import os

from .config import ENV_PREFIX

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional

__all__ = ["ENV_INGEST_KEY_SECRET", "ENV_INGEST_KEY_SSM", "ingest_key_from_aws"]

ENV_INGEST_KEY_SSM = ENV_PREFIX + "INGEST_KEY_SSM"
ENV_INGEST_KEY_SECRET = ENV_PREFIX + "INGEST_KEY_SECRET"
#: Seconds for connecting and for each read: a cold start must not hang on a slow endpoint.
TIMEOUT_S = 2.0


def _client(service: str) -> Any:
    import boto3  # lazily: see the module doc
    from botocore.config import Config

    config = Config(connect_timeout=TIMEOUT_S, read_timeout=TIMEOUT_S, retries={"max_attempts": 2})
    return boto3.client(service, config=config)


def ingest_key_from_aws(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The ingest key the configuration points at, or None when it names none (or gives it plainly).

    Raises what boto3 raises (no permission, no such parameter): the caller logs it once.
    """
    environ = os.environ if env is None else env
    if environ.get(ENV_PREFIX + "INGEST_KEY"):
        return None
    parameter = environ.get(ENV_INGEST_KEY_SSM)
    if parameter:
        found = _client("ssm").get_parameter(Name=parameter, WithDecryption=True)
        return str(found["Parameter"]["Value"])
    secret = environ.get(ENV_INGEST_KEY_SECRET)
    if secret:
        return str(_client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"])
    return None
