"""``greenflame attach --pid PID [--duration S] [--rate HZ] [--out FILE | --server URL]``."""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_destination, positive_float, positive_int


def register(verbs: Any) -> None:
    """Add ``attach`` to the command line."""
    attach = verbs.add_parser("attach", help="profile a running process through py-spy")
    attach.add_argument("--pid", type=positive_int, required=True)
    attach.add_argument("--duration", type=positive_float, metavar="S")
    attach.add_argument("--rate", type=positive_float, metavar="HZ")
    add_destination(attach)
    attach.set_defaults(run_verb=_attach)


def _attach(args: argparse.Namespace) -> int:
    from greenflame.devtools.attach import attach_command

    return attach_command(args.pid, duration=args.duration, rate=args.rate, out=args.out, server=args.server)
