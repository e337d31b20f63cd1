"""``greenflame lambda enable``, ``disable`` and ``status``: profile a deployed function in one command.

Through boto3 (the ``lambda`` extra), with the caller's usual AWS credentials and region:

- ``enable FUNCTION``: publish the greenflame layer in the function's region, or reuse the version
  already published with the same content (its description holds ``sha256:<hash of the zip>``),
  then change the function's configuration as :mod:`greenflame.devtools.lambda_config` plans it,
  and wait until Lambda reports the update ``Successful``. With ``--qualifier ALIAS`` the alias is
  then moved to a version published from the updated ``$LATEST`` (a version itself is immutable).
- ``disable FUNCTION``: restore what enable changed, exactly.
- ``status [FUNCTION...]``: one line per function (every function of the region by default).

Every AWS failure is one line (:class:`~greenflame.analyzer.errors.UserError`, exit status 2):
no such function, no permission (with the API call that was refused), no credentials, no region.
The permissions each command needs are in docs/lambda.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from greenflame.agent import __version__
from greenflame.analyzer.errors import UserError

from .lambda_config import (
    ENV_GROUP,
    ENV_SERVER,
    LAYER_NAME,
    SUPPORTED_RUNTIMES,
    AgentSettings,
    Plan,
    check_enable,
    is_greenflame_layer,
    plan_disable,
    plan_enable,
    profiled_layer,
)
from .lambda_layer import write_layer

__all__ = ["Target", "disable", "enable", "layer_zip", "publish_layer", "status"]

#: How long an update may take to become active before enable gives up.
UPDATE_TIMEOUT_S = 300.0
_POLL_S = 1.0
_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
_ARCHITECTURES = ["x86_64", "arm64"]


@dataclass(frozen=True)
class Target:
    """A function to act on: its name (or ARN), the qualifier, the region (None: the default)."""

    function: str
    region: Optional[str] = None
    qualifier: Optional[str] = None

    def alias(self) -> Optional[str]:
        """The alias to move after an update; refuses a numbered version (versions are immutable)."""
        if self.qualifier in (None, "$LATEST"):
            return None
        assert self.qualifier is not None
        if self.qualifier.isdigit():
            raise UserError(
                f"version {self.qualifier} of {self.function} is immutable: enable $LATEST "
                "(no --qualifier) or an alias (--qualifier ALIAS, moved to a new version)"
            )
        return self.qualifier


def _region_of(function: str, region: Optional[str]) -> Optional[str]:
    parts = function.split(":")
    if len(parts) >= 7 and parts[0] == "arn":
        return parts[3]  # an ARN names its region
    return region


def lambda_client(region: Optional[str]) -> Any:
    """A boto3 Lambda client for ``region`` (the caller's default when None)."""
    import boto3
    from botocore.exceptions import NoRegionError

    try:
        return boto3.session.Session(region_name=region).client("lambda")  # credentials read now, not cached
    except NoRegionError:
        raise UserError("no AWS region: give --region R (or set AWS_REGION)") from None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


@contextlib.contextmanager
def aws_errors(action: str, function: str = "") -> Iterator[None]:
    """Turn botocore's exceptions inside the block into one-line :class:`UserError`."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except ClientError as error:
        raise UserError(_client_error(error, action, function)) from None
    except NoCredentialsError:
        raise UserError("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
    except BotoCoreError as error:
        raise UserError(f"cannot {action}: {_first_line(str(error))}") from None


def _client_error(error: Any, action: str, function: str) -> str:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = _first_line(str(details.get("Message", "")))
    operation = getattr(error, "operation_name", "") or "the request"
    if code == "ResourceNotFoundException" and function:
        return f"no Lambda function {function} here (cannot {action}): {message}"
    if code in _DENIED:
        return (
            f"AWS refused {operation} ({action}): {message or code}; "
            "the permissions each command needs are in docs/lambda.md"
        )
    return f"cannot {action}: {code}: {message}"


def layer_zip() -> bytes:
    """The layer zip's bytes (reproducible: the same agent gives the same bytes)."""
    with tempfile.TemporaryDirectory(prefix="greenflame-layer-") as work:
        path = Path(work) / "layer.zip"
        write_layer(path)
        return path.read_bytes()


def _hash_tag(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def publish_layer(client: Any, data: bytes) -> str:
    """The ARN of a greenflame layer version holding ``data``: found by its hash, or published."""
    tag = _hash_tag(data)
    with aws_errors("list the greenflame layer's versions"):
        for page in client.get_paginator("list_layer_versions").paginate(LayerName=LAYER_NAME):
            for version in page.get("LayerVersions", []):
                if tag in (version.get("Description") or "").split():
                    return str(version["LayerVersionArn"])
    with aws_errors("publish the greenflame layer"):
        published = client.publish_layer_version(
            LayerName=LAYER_NAME,
            Description=f"greenflame agent {__version__} {tag}",
            Content={"ZipFile": data},
            CompatibleRuntimes=list(SUPPORTED_RUNTIMES),
            CompatibleArchitectures=_ARCHITECTURES,
            LicenseInfo="Apache-2.0",
        )
    return str(published["LayerVersionArn"])


def _configuration(client: Any, target: Target, qualifier: Optional[str] = None) -> Dict[str, Any]:
    extra = {"Qualifier": qualifier} if qualifier else {}
    with aws_errors("read the function's configuration", target.function):
        config: Dict[str, Any] = client.get_function_configuration(FunctionName=target.function, **extra)
    return config


def wait_updated(client: Any, target: Target, timeout_s: float = UPDATE_TIMEOUT_S) -> Dict[str, Any]:
    """Wait until the function's last update is no longer in progress; its configuration, or a refusal."""
    deadline = time.monotonic() + timeout_s
    while True:
        config = _configuration(client, target)
        status = config.get("LastUpdateStatus") or "Successful"
        if status == "Failed":
            reason = config.get("LastUpdateStatusReason") or "no reason given"
            raise UserError(f"Lambda could not update {target.function}: {_first_line(str(reason))}")
        if status == "Successful" and config.get("State", "Active") != "Pending":
            return config
        if time.monotonic() >= deadline:
            raise UserError(f"{target.function} was still updating after {timeout_s:.0f} s: see the Lambda console")
        time.sleep(_POLL_S)


def _apply(client: Any, target: Target, plan: Plan, alias: Optional[str]) -> Dict[str, Any]:
    wait_updated(client, target)  # an update in progress would refuse ours (ResourceConflictException)
    with aws_errors("update the function's configuration", target.function):
        client.update_function_configuration(
            FunctionName=target.function,
            Layers=plan.layers,
            Environment={"Variables": plan.variables},
        )
    config = wait_updated(client, target)
    if alias is not None:
        with aws_errors(f"move the alias {alias} to a new version", target.function):
            version = client.publish_version(FunctionName=target.function)["Version"]
            client.update_alias(FunctionName=target.function, Name=alias, FunctionVersion=version)
    return config


def enable(target: Target, settings: AgentSettings, client: Any = None) -> int:
    """``greenflame lambda enable``: profile the function; exit status 0."""
    alias = target.alias()  # a numbered version is refused before any work
    client = client or lambda_client(_region_of(target.function, target.region))
    config = _configuration(client, target)
    check_enable(config, settings)  # refusals come before publishing anything
    layer = publish_layer(client, layer_zip())
    plan = plan_enable(config, layer, settings)
    _apply(client, target, plan, alias)
    where = plan.variables.get(ENV_SERVER, "")
    print(f"greenflame: {target.function}: profiled with {_layer_label(layer)}, reports to {where}", file=sys.stderr)
    return 0


def disable(target: Target, client: Any = None) -> int:
    """``greenflame lambda disable``: restore the configuration enable changed; exit status 0."""
    alias = target.alias()
    client = client or lambda_client(_region_of(target.function, target.region))
    plan = plan_disable(_configuration(client, target))
    if plan is None:
        print(f"greenflame: {target.function} is not profiled: nothing to do", file=sys.stderr)
        return 0
    _apply(client, target, plan, alias)
    print(f"greenflame: {target.function}: profiling removed, configuration restored", file=sys.stderr)
    return 0


def _layer_label(arn: str) -> str:
    return ":".join(arn.split(":")[-2:])  # greenflame:7


def describe(config: Dict[str, Any]) -> str:
    """One status line for a function's configuration."""
    name = config.get("FunctionName", "?")
    if config.get("PackageType") == "Image":
        return f"{name}\tnot profiled (container image: no layers)"
    layer = profiled_layer(config)
    if layer is None:
        stale = any(is_greenflame_layer(str(item.get("Arn"))) for item in config.get("Layers") or [])
        return f"{name}\tnot profiled" + (" (greenflame layer attached, wrapper not set)" if stale else "")
    variables = (config.get("Environment") or {}).get("Variables") or {}
    group = variables.get(ENV_GROUP) or f"aws-lambda-{name} (default)"
    return f"{name}\tprofiled\t{_layer_label(layer)}\tgroup {group}\tserver {variables.get(ENV_SERVER, '-')}"


def _all_functions(client: Any) -> List[Dict[str, Any]]:
    functions: List[Dict[str, Any]] = []
    with aws_errors("list the functions"):
        for page in client.get_paginator("list_functions").paginate():
            functions.extend(page.get("Functions", []))
    return sorted(functions, key=lambda config: str(config.get("FunctionName")))


def status(
    functions: Sequence[str], region: Optional[str] = None, qualifier: Optional[str] = None, client: Any = None
) -> int:
    """``greenflame lambda status``: one line per function (all of the region's by default); exit status 0."""
    client = client or lambda_client(_region_of(functions[0], region) if functions else region)
    if functions:
        configs = [_configuration(client, Target(name, region), qualifier) for name in functions]
    else:
        configs = _all_functions(client)
    for config in configs:
        print(describe(config))
    if not configs:
        print("greenflame: no Lambda functions in this region", file=sys.stderr)
    return 0
