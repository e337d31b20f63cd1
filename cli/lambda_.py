"""``greenflame lambda invoke`` and ``greenflame lambda layer``."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_destination, positive_int


def register(verbs: Any) -> None:
    """Add ``lambda`` and its verbs to the command line."""
    lam = verbs.add_parser("lambda", help="run and package AWS Lambda functions with the agent")
    lam_verbs = lam.add_subparsers(dest="lambda_verb", metavar="VERB")
    lam_verbs.required = True
    invoke = lam_verbs.add_parser("invoke", help="run a handler N times as Lambda would, with the agent enabled")
    invoke.add_argument("handler", metavar="MODULE:FUNCTION", help="the handler, as module:function or module.function")
    invoke.add_argument("--invocations", type=positive_int, default=1, metavar="N")
    invoke.add_argument("--event", default="{}", metavar="JSON", help="the event, as JSON text or @FILE")
    invoke.add_argument("--memory-mb", type=positive_int, default=128, metavar="MB")
    invoke.add_argument("--arch", choices=["x86_64", "arm64"], default="x86_64")
    invoke.add_argument("--region", default="us-east-1", metavar="R")
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


def _invoke(args: argparse.Namespace) -> int:
    from greenflame.devtools.lambda_invoke import invoke

    return invoke(
        args.handler,
        invocations=args.invocations,
        event=args.event,
        memory_mb=args.memory_mb,
        arch=args.arch,
        region=args.region,
        out=args.out,
        server=args.server,
    )


def _layer(args: argparse.Namespace) -> int:
    from greenflame.devtools.lambda_layer import build_layer

    return build_layer(args.output, pythons=args.python or ())
