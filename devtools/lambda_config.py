"""What ``greenflame lambda enable`` and ``disable`` change in a function's configuration: pure planning.

:func:`plan_enable` and :func:`plan_disable` take the function's configuration as Lambda returns it
(``GetFunctionConfiguration``) and give the layers and environment to set; nothing here talks to
AWS (that is :mod:`greenflame.devtools.lambda_enable`), so every rule is tested on plain data.

The rules:

- **Layers.** The greenflame layer is appended; the function's other layers keep their order. A
  greenflame layer already there (an earlier enable) is replaced, so enabling twice upgrades.
  Lambda allows at most :data:`MAX_LAYERS` layers: with five others already, enabling is refused.
- **Wrapper.** ``AWS_LAMBDA_EXEC_WRAPPER`` points at greenflame's wrapper. A wrapper the function
  already had (another vendor's) is *chained*, not dropped: it moves to ``GREENFLAME_NEXT_WRAPPER``
  and greenflame's wrapper runs it after its own step, with the same arguments, as Lambda would.
- **Variables.** The agent's variables are set; every other variable is left alone. Each variable
  enable sets or removes is recorded, with its previous value (or its absence), in
  ``GREENFLAME_LAMBDA_SAVED`` (JSON, with the greenflame layers the function had before, if any),
  which is how ``disable`` restores the configuration exactly.
- **Ingest key.** At most one of the three sources: ``GREENFLAME_INGEST_KEY_SSM`` (an SSM
  parameter name), ``GREENFLAME_INGEST_KEY_SECRET`` (a Secrets Manager ARN) or, only when asked for
  explicitly, ``GREENFLAME_INGEST_KEY`` in plain text; choosing one removes the other two.
- **Runtimes.** Zip functions on python3.9 to python3.13, x86_64 or arm64 (the layer is pure Python
  and serves both). A container image has no layers: it is refused with what to do instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from greenflame.agent.config import ENV_PREFIX
from greenflame.analyzer.errors import UserError

from .lambda_layer import ENV_NEXT_WRAPPER, WRAPPER_PATH

__all__ = [
    "ENV_SAVED",
    "ENV_WRAPPER",
    "LAYER_NAME",
    "MAX_LAYERS",
    "SUPPORTED_RUNTIMES",
    "AgentSettings",
    "Plan",
    "check_enable",
    "check_function",
    "is_greenflame_layer",
    "plan_disable",
    "plan_enable",
    "profiled_layer",
]

ENV_WRAPPER = "AWS_LAMBDA_EXEC_WRAPPER"
#: What enable changed (JSON): {"variables": {name: previous value, or null when absent}, "layers": [...]}.
ENV_SAVED = ENV_PREFIX + "LAMBDA_SAVED"
ENV_SERVER = ENV_PREFIX + "SERVER"
ENV_GROUP = ENV_PREFIX + "GROUP"
ENV_INGEST_KEY = ENV_PREFIX + "INGEST_KEY"
ENV_INGEST_KEY_SSM = ENV_PREFIX + "INGEST_KEY_SSM"
ENV_INGEST_KEY_SECRET = ENV_PREFIX + "INGEST_KEY_SECRET"
_KEY_SOURCES = (ENV_INGEST_KEY, ENV_INGEST_KEY_SSM, ENV_INGEST_KEY_SECRET)
#: The layer's name in every region (its versions' descriptions hold the content hash).
LAYER_NAME = "greenflame"
MAX_LAYERS = 5
SUPPORTED_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")


@dataclass(frozen=True)
class AgentSettings:
    """What the user asked ``enable`` to set; None leaves a setting as the function has it."""

    server: Optional[str] = None
    group: Optional[str] = None
    ingest_key: Optional[str] = None
    ingest_key_ssm: Optional[str] = None
    ingest_key_secret: Optional[str] = None

    def variables(self) -> Dict[str, str]:
        """The agent variables to set (the ingest key source included)."""
        pairs = (
            (ENV_SERVER, self.server),
            (ENV_GROUP, self.group),
            (ENV_INGEST_KEY, self.ingest_key),
            (ENV_INGEST_KEY_SSM, self.ingest_key_ssm),
            (ENV_INGEST_KEY_SECRET, self.ingest_key_secret),
        )
        return {name: value for name, value in pairs if value is not None}


@dataclass
class Plan:
    """The layers (ARNs, in order) and environment variables a function should have."""

    layers: List[str]
    variables: Dict[str, str]


def is_greenflame_layer(arn: str) -> bool:
    """Whether ``arn`` is a version of the greenflame layer (``...:layer:greenflame:N``)."""
    parts = arn.split(":")
    return len(parts) == 8 and parts[5] == "layer" and parts[6] == LAYER_NAME


def _layer_arns(config: Mapping[str, Any]) -> List[str]:
    return [str(layer["Arn"]) for layer in config.get("Layers") or []]


def _variables(config: Mapping[str, Any]) -> Dict[str, str]:
    return dict((config.get("Environment") or {}).get("Variables") or {})


def _name(config: Mapping[str, Any]) -> str:
    return str(config.get("FunctionName", "the function"))


def check_function(config: Mapping[str, Any]) -> None:
    """Refuse, in one line, a function the layer cannot serve: a container image, another runtime."""
    name = _name(config)
    if config.get("PackageType") == "Image":
        raise UserError(
            f"{name} is a container image function, which has no layers: install greenflame in the image "
            "(pip install greenflame) and decorate the handler with "
            "greenflame.agent.aws_lambda.profile_handler, or set AWS_LAMBDA_EXEC_WRAPPER to a copy of the wrapper"
        )
    runtime = str(config.get("Runtime") or "")
    if runtime not in SUPPORTED_RUNTIMES:
        raise UserError(
            f"{name} runs on {runtime or 'a custom runtime'}, and the greenflame layer serves "
            f"{', '.join(SUPPORTED_RUNTIMES)}: move the function to one of them, "
            "or decorate its handler with greenflame.agent.aws_lambda.profile_handler"
        )


@dataclass
class _Saved:
    """What enable changed, kept in ``GREENFLAME_LAMBDA_SAVED``: each variable's previous value (None:
    absent) and the greenflame layers the function had before (usually none)."""

    variables: Dict[str, Optional[str]] = field(default_factory=dict)
    layers: List[str] = field(default_factory=list)

    @classmethod
    def read(cls, variables: Mapping[str, str]) -> Optional[_Saved]:
        text = variables.get(ENV_SAVED)
        if not text:
            return None
        try:
            document = json.loads(text)
            return cls(dict(document["variables"]), list(document["layers"]))
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{ENV_SAVED} is not the JSON greenflame wrote: restore the function by hand") from None

    def text(self) -> str:
        document = {"variables": self.variables, "layers": self.layers}
        return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _wanted_variables(function: str, current: Mapping[str, str], settings: AgentSettings) -> Dict[str, Optional[str]]:
    """{variable: new value, or None to remove it} for enable."""
    wanted: Dict[str, Optional[str]] = dict(settings.variables())
    chosen = [source for source in _KEY_SOURCES if source in wanted]
    if len(chosen) > 1:
        raise UserError("give one ingest key source: --ingest-key-ssm, --ingest-key-secret or --ingest-key")
    if chosen:
        wanted.update({source: None for source in _KEY_SOURCES if source not in chosen})
    wrapper = current.get(ENV_WRAPPER)
    if wrapper != WRAPPER_PATH:
        wanted[ENV_WRAPPER] = WRAPPER_PATH
        wanted[ENV_NEXT_WRAPPER] = wrapper  # None (removed) when there was no wrapper to chain
    if ENV_SERVER not in wanted and not current.get(ENV_SERVER):
        raise UserError(f"{function} has no {ENV_SERVER}: give --server URL, where the agent sends its reports")
    return wanted


def _split_layers(config: Mapping[str, Any]) -> Tuple[List[str], List[str]]:
    """(the function's other layers, its greenflame layers), each in order."""
    layers = _layer_arns(config)
    return [arn for arn in layers if not is_greenflame_layer(arn)], [arn for arn in layers if is_greenflame_layer(arn)]


def check_enable(config: Mapping[str, Any], settings: AgentSettings) -> Dict[str, Optional[str]]:
    """Refuse what enable cannot do, in one line; else {variable: new value, or None to remove it}."""
    check_function(config)
    others, _ = _split_layers(config)
    if len(others) >= MAX_LAYERS:
        raise UserError(
            f"{_name(config)} already has {len(others)} layers, Lambda's limit: remove one to add greenflame's"
        )
    _Saved.read(_variables(config))
    return _wanted_variables(_name(config), _variables(config), settings)


def plan_enable(config: Mapping[str, Any], layer_arn: str, settings: AgentSettings) -> Plan:
    """The configuration that profiles the function with ``layer_arn`` (see the module doc)."""
    wanted = check_enable(config, settings)
    others, ours = _split_layers(config)
    variables = _variables(config)
    saved = _Saved.read(variables) or _Saved(layers=ours)
    for name, value in wanted.items():
        saved.variables.setdefault(name, variables.get(name))  # the first change keeps the original
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    variables[ENV_SAVED] = saved.text()
    return Plan([*others, layer_arn], variables)


def plan_disable(config: Mapping[str, Any]) -> Optional[Plan]:
    """The configuration before :func:`plan_enable`; None when the function is not profiled.

    A greenflame layer that enable did not add (a setup by hand) is refused: there is nothing
    recorded to restore.
    """
    variables = _variables(config)
    others, ours = _split_layers(config)
    saved = _Saved.read(variables)
    if saved is None:
        if ours:
            raise UserError(
                f"{_name(config)} has the greenflame layer, but not from greenflame lambda enable "
                f"(no {ENV_SAVED}): remove the layer and AWS_LAMBDA_EXEC_WRAPPER by hand"
            )
        return None
    for name, value in saved.variables.items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    variables.pop(ENV_SAVED, None)
    return Plan([*others, *saved.layers], variables)


def profiled_layer(config: Mapping[str, Any]) -> Optional[str]:
    """The greenflame layer version ARN of a profiled function (wrapper set, layer attached), else None."""
    if _variables(config).get(ENV_WRAPPER) != WRAPPER_PATH:
        return None
    layers: Sequence[str] = [arn for arn in _layer_arns(config) if is_greenflame_layer(arn)]
    return layers[-1] if layers else None
