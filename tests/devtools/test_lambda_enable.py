"""``greenflame lambda enable``/``disable``/``status`` against a real AWS API implementation (moto, server mode).

Each test reads the function's configuration before and after through boto3, as a user would in
the console, and runs the command line in-process (exit statuses and the one-line errors).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import pytest
from support.aws import REGION, MotoServer, aws_env, function_zip, moto_server  # noqa: F401
from support.paths import ROOT

from greenflame.cli.main import main
from greenflame.devtools import lambda_enable
from greenflame.devtools.lambda_config import ENV_SAVED
from greenflame.devtools.lambda_enable import layer_zip
from greenflame.devtools.lambda_layer import ENV_NEXT_WRAPPER, WRAPPER_PATH

pytest.importorskip("boto3")
pytestmark = pytest.mark.timeout(120)

SERVER = "https://greenflame.example.com"
OTHER_WRAPPER = "/opt/otel-instrument"


class Functions:
    """Creates functions on the moto server and reads their configuration."""

    def __init__(self, server: MotoServer) -> None:
        self.client = server.client("lambda")
        iam = server.client("iam")
        try:
            self.role = iam.get_role(RoleName="greenflame-test")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            self.role = iam.create_role(RoleName="greenflame-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

    def other_layer(self, name: str) -> str:
        published = self.client.publish_layer_version(LayerName=name, Content={"ZipFile": function_zip()})
        return str(published["LayerVersionArn"])

    def create(
        self, layers: Optional[List[str]] = None, variables: Optional[Dict[str, str]] = None, **extra: Any
    ) -> str:
        name = f"fn-{uuid.uuid4().hex[:12]}"
        settings: Dict[str, Any] = {"Runtime": "python3.12", "Handler": "app.handler", **extra}
        settings.update(FunctionName=name, Role=self.role)
        if "Code" not in settings:
            settings["Code"] = {"ZipFile": function_zip()}
        if layers:
            settings["Layers"] = layers
        if variables is not None:
            settings["Environment"] = {"Variables": variables}
        self.client.create_function(**settings)
        return name

    def config(self, name: str) -> Dict[str, Any]:
        config: Dict[str, Any] = self.client.get_function_configuration(FunctionName=name)
        return config

    def layers(self, name: str) -> List[str]:
        return [layer["Arn"] for layer in self.config(name).get("Layers") or []]

    def variables(self, name: str) -> Dict[str, str]:
        return dict((self.config(name).get("Environment") or {}).get("Variables") or {})


@pytest.fixture
def functions(aws_env: MotoServer) -> Iterator[Functions]:  # noqa: F811
    yield Functions(aws_env)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main(["lambda", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_enable_then_disable_a_plain_function(functions: Functions, capsys: pytest.CaptureFixture[str]) -> None:
    name = functions.create()
    assert functions.layers(name) == [] and functions.variables(name) == {}
    code, _, err = run(capsys, "enable", name, "--server", SERVER, "--group", "checkout")
    assert code == 0, err
    layers = functions.layers(name)
    assert len(layers) == 1 and ":layer:greenflame:" in layers[0]
    variables = functions.variables(name)
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == WRAPPER_PATH
    assert variables["GREENFLAME_SERVER"] == SERVER and variables["GREENFLAME_GROUP"] == "checkout"
    assert ENV_NEXT_WRAPPER not in variables
    assert functions.config(name)["LastUpdateStatus"] == "Successful"
    code, out, _ = run(capsys, "status", name)
    assert code == 0 and out.split("\t")[:2] == [name, "profiled"] and "greenflame:" in out
    code, _, err = run(capsys, "disable", name)
    assert code == 0, err
    assert functions.layers(name) == [] and functions.variables(name) == {}
    code, out, _ = run(capsys, "status", name)
    assert out.strip() == f"{name}\tnot profiled"


def test_enable_keeps_other_layers_variables_and_chains_another_wrapper(
    functions: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    others = [functions.other_layer("insights"), functions.other_layer("pandas")]
    before_vars = {"TABLE": "orders", "AWS_LAMBDA_EXEC_WRAPPER": OTHER_WRAPPER, "GREENFLAME_GROUP": "mine"}
    name = functions.create(layers=others, variables=before_vars)
    code, _, err = run(capsys, "enable", name, "--server", SERVER, "--group", "checkout", "--ingest-key-ssm", "/gf/key")
    assert code == 0, err
    layers = functions.layers(name)
    assert layers[:2] == others and ":layer:greenflame:" in layers[2] and len(layers) == 3
    variables = functions.variables(name)
    assert variables["TABLE"] == "orders"
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == WRAPPER_PATH and variables[ENV_NEXT_WRAPPER] == OTHER_WRAPPER
    assert variables["GREENFLAME_GROUP"] == "checkout" and variables["GREENFLAME_INGEST_KEY_SSM"] == "/gf/key"
    assert "GREENFLAME_INGEST_KEY" not in variables
    assert json.loads(variables[ENV_SAVED])["variables"]["GREENFLAME_GROUP"] == "mine"
    # Enabling again (another group) keeps the original values to restore.
    code, _, err = run(capsys, "enable", name, "--group", "payments")
    assert code == 0, err
    assert functions.variables(name)["GREENFLAME_GROUP"] == "payments"
    assert functions.layers(name) == layers  # same content: the same layer version, reused
    code, _, err = run(capsys, "disable", name)
    assert code == 0, err
    assert functions.layers(name) == others and functions.variables(name) == before_vars


def test_the_layer_is_published_once_per_content(functions: Functions, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = functions.create(), functions.create()
    assert run(capsys, "enable", first, "--server", SERVER)[0] == 0
    assert run(capsys, "enable", second, "--server", SERVER)[0] == 0
    assert functions.layers(first) == functions.layers(second)
    versions = functions.client.list_layer_versions(LayerName="greenflame")["LayerVersions"]
    digest = hashlib.sha256(layer_zip()).hexdigest()
    assert [v["Description"].split()[-1] for v in versions] == [f"sha256:{digest}"]


def test_arm64_functions_are_enabled_too(functions: Functions, capsys: pytest.CaptureFixture[str]) -> None:
    name = functions.create(Architectures=["arm64"])
    assert run(capsys, "enable", name, "--server", SERVER)[0] == 0
    assert functions.variables(name)["AWS_LAMBDA_EXEC_WRAPPER"] == WRAPPER_PATH


def test_status_lists_every_function_of_the_region(functions: Functions, capsys: pytest.CaptureFixture[str]) -> None:
    profiled, plain = functions.create(), functions.create()
    assert run(capsys, "enable", profiled, "--server", SERVER)[0] == 0
    code, out, _ = run(capsys, "status", "--region", REGION)
    lines = {line.split("\t")[0]: line.split("\t")[1] for line in out.splitlines()}
    assert code == 0 and lines[profiled] == "profiled" and lines[plain] == "not profiled"


def test_alias_qualifier_moves_the_alias_to_the_enabled_version(
    functions: Functions, capsys: pytest.CaptureFixture[str]
) -> None:
    name = functions.create()
    version = functions.client.publish_version(FunctionName=name)["Version"]
    functions.client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    assert run(capsys, "enable", name, "--server", SERVER, "--qualifier", "live")[0] == 0
    moved = functions.client.get_function_configuration(FunctionName=name, Qualifier="live")
    assert moved["Version"] != version
    assert moved["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == WRAPPER_PATH


@pytest.mark.parametrize(
    "make, argv, message",
    [
        (None, ["enable", "no-such-function", "--server", SERVER], "no Lambda function no-such-function"),
        (None, ["disable", "no-such-function"], "no Lambda function no-such-function"),
        (None, ["status", "no-such-function"], "no Lambda function no-such-function"),
        ("image", ["enable", "{name}", "--server", SERVER], "is a container image function"),
        ("python3.8", ["enable", "{name}", "--server", SERVER], "runs on python3.8"),
        ("plain", ["enable", "{name}"], "give --server URL"),
        ("plain", ["enable", "{name}", "--server", SERVER, "--qualifier", "3"], "is immutable"),
    ],
)
def test_errors_are_one_line_and_exit_status_2(
    functions: Functions, capsys: pytest.CaptureFixture[str], make: Optional[str], argv: List[str], message: str
) -> None:
    name = "unused"
    if make == "image":
        image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:latest"
        name = functions.create(PackageType="Image", Code={"ImageUri": image})
    elif make == "python3.8":
        name = functions.create(Runtime="python3.8")
    elif make == "plain":
        name = functions.create()
    before = functions.config(name) if make else None
    code, _, err = run(capsys, *[arg.format(name=name) for arg in argv])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("greenflame: error: ") and message in err, err
    if before is not None:
        assert functions.config(name).get("Environment") == before.get("Environment")
        assert functions.layers(name) == [layer["Arn"] for layer in before.get("Layers") or []]


def _documented_policies() -> List[Set[str]]:
    """The actions of each IAM policy in docs/lambda.md, in order: enable, disable, status, execution role."""
    text = (ROOT / "docs" / "lambda.md").read_text()
    policies = []
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        statements = json.loads(block)["Statement"]
        actions = [s["Action"] if isinstance(s["Action"], list) else [s["Action"]] for s in statements]
        policies.append({action for listed in actions for action in listed})
    return policies


def test_the_documented_policies_allow_every_call_each_command_makes(
    functions: Functions, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: List[str] = []
    made = lambda_enable.lambda_client

    def recording_client(region: Optional[str]) -> Any:
        client = made(region)
        client.meta.events.register("before-call.lambda", lambda model, **kwargs: calls.append(model.name))
        return client

    monkeypatch.setattr(lambda_enable, "lambda_client", recording_client)
    enable_policy, disable_policy, status_policy, _ = _documented_policies()
    name = functions.create()
    version = functions.client.publish_version(FunctionName=name)["Version"]
    functions.client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    for argv, policy in (
        (["enable", name, "--server", SERVER, "--qualifier", "live"], enable_policy),
        (["disable", name, "--qualifier", "live"], disable_policy),
        (["status"], status_policy),
        (["status", name], status_policy),
    ):
        calls.clear()
        assert run(capsys, *argv)[0] == 0
        assert calls and {f"lambda:{call}" for call in calls} <= policy, (argv, calls)


@pytest.mark.parametrize(
    "unset, message",
    [
        (["AWS_REGION", "AWS_DEFAULT_REGION"], "no AWS region: give --region R"),
        (["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"], "no AWS credentials"),
    ],
)
def test_missing_region_or_credentials_is_one_line(
    aws_env: MotoServer,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    unset: List[str],
    message: str,
) -> None:
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    code, _, err = run(capsys, "status", "orders")
    assert code == 2 and err.count("\n") == 1 and message in err, err
