"""The Dockerfile and compose.yaml stay in step with the CLI and the settings.

Docker does not run in the test environment, so the files are parsed: every ``greenflame``
command line they run must parse with the CLI's own parser, and every ``GREENFLAME_*``
variable they set must be a declared setting whose value the server accepts.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml
from support.paths import ROOT

from greenflame.cli.main import build_parser
from greenflame.server.settings import Settings, describe

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
_SHELL_SEPARATORS = re.compile(r"&&|\|\||;|\|")
_INTERPOLATED = re.compile(r"\$\{[^}]*\}")


def dockerfile_instructions(text: str) -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def command_lines(arguments: str) -> Iterator[List[str]]:
    """The simple commands of a RUN/CMD argument: exec form (a JSON array) or shell form."""
    if arguments.startswith("["):
        argv = json.loads(arguments)
        if argv[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
            yield from shell_commands(" ".join(argv[2:]))
        else:
            yield argv
        return
    yield from shell_commands(arguments)


def shell_commands(script: str) -> Iterator[List[str]]:
    for part in _SHELL_SEPARATORS.split(script):
        argv = [word for word in shlex.split(part) if word != ">" and not word.startswith(("/dev/", ">"))]
        if argv:
            yield argv


def dockerfile_env(arguments: str) -> Dict[str, str]:
    """The variables of one ENV instruction (``KEY=value`` pairs, or the ``KEY value`` form)."""
    words = shlex.split(arguments)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def compose_commands(service: Dict[str, Any]) -> Iterator[List[str]]:
    for key in ("command", "entrypoint"):
        value = service.get(key)
        if isinstance(value, str):
            yield from shell_commands(value)
        elif isinstance(value, list):
            yield from command_lines(json.dumps(value))
    test = service.get("healthcheck", {}).get("test")
    if isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL"):
        yield from (command_lines(json.dumps(test[1:])) if test[0] == "CMD" else shell_commands(test[1]))


def compose_env(service: Dict[str, Any]) -> Dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def greenflame_commands(commands: Iterator[List[str]]) -> List[List[str]]:
    return [argv for argv in commands if argv and argv[0] == "greenflame"]


def check_parses(argv: List[str]) -> None:
    try:
        build_parser().parse_args(argv[1:])
    except SystemExit as stop:  # --help exits 0 after parsing
        if stop.code != 0:
            pytest.fail(f"{' '.join(argv)!r} does not parse with the CLI (exit {stop.code})")


def check_settings(env: Dict[str, str]) -> None:
    declared = {variable for _, variable, _, _, _ in describe()}
    ours = {key: value for key, value in env.items() if key.startswith("GREENFLAME_")}
    assert set(ours) <= declared, f"undeclared settings: {sorted(set(ours) - declared)}"
    concrete = {key: value for key, value in ours.items() if not _INTERPOLATED.search(value)}
    Settings.from_env(environ=concrete)  # UserError for a value the server would refuse


def test_dockerfile_runs_commands_the_cli_accepts_and_declared_settings() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    commands: List[List[str]] = []
    env: Dict[str, str] = {}
    for instruction, arguments in instructions:
        if instruction in ("RUN", "CMD", "ENTRYPOINT"):
            commands += greenflame_commands(command_lines(arguments))
        elif instruction == "ENV":
            env.update(dockerfile_env(arguments))
    assert ["greenflame", "serve"] in commands  # the image's command is the server
    assert not [arguments for instruction, arguments in instructions if instruction == "ENTRYPOINT"]
    for argv in commands:
        check_parses(argv)
    assert "GREENFLAME_DATA_DIR" in env
    check_settings(env)


def test_compose_runs_commands_the_cli_accepts_and_declared_settings() -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    assert {"server", "postgres", "minio"} <= set(services)
    served = greenflame_commands(compose_commands(services["server"]))
    assert served and served[0][:2] == ["greenflame", "serve"]
    for service in services.values():
        for argv in greenflame_commands(compose_commands(service)):
            check_parses(argv)
        check_settings(compose_env(service))
    env = compose_env(services["server"])
    assert env["GREENFLAME_BLOBS_URL"].startswith("s3://") and "AWS_ENDPOINT_URL" in env
    assert env["GREENFLAME_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_the_checks_catch_drift() -> None:
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        check_parses(["greenflame", "serve", "--no-such-flag"])
    with pytest.raises(AssertionError, match="undeclared settings"):
        check_settings({"GREENFLAME_NO_SUCH_SETTING": "1"})
    assert greenflame_commands(shell_commands("pip install x && greenflame serve --help > /dev/null")) == [
        ["greenflame", "serve", "--help"]
    ]
    parsed = dockerfile_instructions('ENV A=1 \\\n    B=2\n# x\nCMD ["a"]')
    assert parsed == [("ENV", "A=1      B=2"), ("CMD", '["a"]')]
