"""``greenflame run [--group G] [--rate HZ] [--out FILE | --server URL] -- CMD [ARGS...]``."""

from __future__ import annotations

import argparse
from typing import Any

from greenflame.analyzer.errors import UserError

from .options import add_destination, positive_float


def register(verbs: Any) -> None:
    """Add ``run`` to the command line."""
    run = verbs.add_parser("run", help="profile an unmodified Python program")
    run.add_argument("--group", help="profiling group name (default: the script's name)")
    run.add_argument("--rate", type=positive_float, metavar="HZ", help="samples per second (default 100)")
    add_destination(run)
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    run.set_defaults(run_verb=_run)


def _run(args: argparse.Namespace) -> int:
    from greenflame.agent.runner import run_command

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UserError("nothing to run: give a command after '--', e.g. greenflame run -- python app.py")
    return run_command(command, group=args.group, rate_hz=args.rate, out=args.out, server=args.server)
