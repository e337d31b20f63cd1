"""``greenflame lambda invoke``, ``layer``, and ``enable``/``disable``/``status`` on deployed functions."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_destination, add_verb_group, positive_float, positive_int

#: Lambda's largest function timeout, in seconds.
MAX_TIMEOUT_S = 900.0


def lambda_timeout(text: str) -> float:
    """A function timeout as Lambda accepts it: above zero, at most 900 seconds."""
    value = positive_float(text)
    if value > MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"Lambda's timeout is at most {MAX_TIMEOUT_S:.0f} seconds, got {text}")
    return value


def register(verbs: Any) -> None:
    """Add ``lambda`` and its verbs to the command line."""
    lam_verbs = add_verb_group(verbs, "lambda", "run and package AWS Lambda functions with the agent")
    invoke = lam_verbs.add_parser("invoke", help="run a handler N times as Lambda would, with the agent enabled")
    invoke.add_argument("handler", metavar="MODULE:FUNCTION", help="the handler, as module:function or module.function")
    invoke.add_argument("--invocations", type=positive_int, default=1, metavar="N")
    invoke.add_argument("--event", default="{}", metavar="JSON", help="the event, as JSON text or @FILE")
    invoke.add_argument("--memory-mb", type=positive_int, default=128, metavar="MB")
    invoke.add_argument("--arch", choices=["x86_64", "arm64"], default="x86_64")
    invoke.add_argument("--region", default="us-east-1", metavar="R")
    invoke.add_argument(
        "--timeout",
        type=lambda_timeout,
        default=3.0,
        metavar="S",
        help="seconds an invocation may run before Lambda stops it and resets the sandbox (default 3, at most 900)",
    )
    add_destination(invoke)
    invoke.set_defaults(run_verb=_invoke)
    layer = lam_verbs.add_parser("layer", help="build the greenflame Lambda layer zip")
    layer.add_argument("-o", "--output", required=True, metavar="layer.zip")
    layer.add_argument(
        "--python",
        action="append",
        metavar="PATH",
        help="also ship bytecode for this interpreter (repeatable; default: only the one running greenflame)",
    )
    layer.set_defaults(run_verb=_layer)
    _register_deployed(lam_verbs)


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", metavar="R", help="the function's region (default: the AWS configuration's)")
    parser.add_argument("--qualifier", metavar="ALIAS", help="also move this alias to a version with the change")


def _register_deployed(lam_verbs: Any) -> None:
    enable = lam_verbs.add_parser("enable", help="profile a deployed function: add the layer, wrapper and variables")
    enable.add_argument("function", metavar="FUNCTION", help="the function's name or ARN")
    enable.add_argument("--server", metavar="URL", help="the greenflame server the function reports to")
    enable.add_argument("--group", metavar="G", help="the profiling group (default: aws-lambda-FUNCTION)")
    key = enable.add_mutually_exclusive_group()
    key.add_argument("--ingest-key-ssm", metavar="PARAM", help="read the ingest key from this SSM parameter")
    key.add_argument("--ingest-key-secret", metavar="ARN", help="read the ingest key from this Secrets Manager secret")
    key.add_argument("--ingest-key", metavar="KEY", help="put the ingest key in the configuration, in plain text")
    _add_target(enable)
    enable.set_defaults(run_verb=_enable)
    disable = lam_verbs.add_parser("disable", help="stop profiling a function: restore its previous configuration")
    disable.add_argument("function", metavar="FUNCTION", help="the function's name or ARN")
    _add_target(disable)
    disable.set_defaults(run_verb=_disable)
    status = lam_verbs.add_parser("status", help="which functions are profiled, with which layer version")
    status.add_argument("functions", nargs="*", metavar="FUNCTION", help="default: every function of the region")
    _add_target(status)
    status.set_defaults(run_verb=_status)


def _invoke(args: argparse.Namespace) -> int:
    from greenflame.devtools.lambda_invoke import invoke

    return invoke(
        args.handler,
        invocations=args.invocations,
        event=args.event,
        memory_mb=args.memory_mb,
        arch=args.arch,
        region=args.region,
        timeout_s=args.timeout,
        out=args.out,
        server=args.server,
    )


def _layer(args: argparse.Namespace) -> int:
    from greenflame.devtools.lambda_layer import build_layer

    return build_layer(args.output, pythons=args.python or ())


def _target(args: argparse.Namespace) -> Any:
    from greenflame.devtools.lambda_enable import Target

    return Target(args.function, args.region, args.qualifier)


def _enable(args: argparse.Namespace) -> int:
    from greenflame.devtools.lambda_config import AgentSettings
    from greenflame.devtools.lambda_enable import enable

    settings = AgentSettings(args.server, args.group, args.ingest_key, args.ingest_key_ssm, args.ingest_key_secret)
    return enable(_target(args), settings)


def _disable(args: argparse.Namespace) -> int:
    from greenflame.devtools.lambda_enable import disable

    return disable(_target(args))


def _status(args: argparse.Namespace) -> int:
    from greenflame.devtools.lambda_enable import status

    return status(args.functions, args.region, args.qualifier)
