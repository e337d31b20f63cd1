"""``greenflame demo``: the seed's two Lambda functions profiled, and their recommendations."""

from __future__ import annotations

import argparse
from typing import Any


def register(verbs: Any) -> None:
    """Add ``demo`` to the command line."""
    demo = verbs.add_parser("demo", help="profile the seed's two Lambda functions and show the recommendations")
    demo.set_defaults(run_verb=_demo)


def _demo(args: argparse.Namespace) -> int:
    from greenflame.devtools.demo import run_demo

    return run_demo()
