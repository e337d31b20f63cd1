"""Argument types and option groups that several verbs share."""

from __future__ import annotations

import argparse
from typing import Any


def positive_int(text: str) -> int:
    """A whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above zero, got {text}")
    return value


def positive_float(text: str) -> float:
    """A number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above zero, got {text}")
    return value


def add_destination(parser: argparse.ArgumentParser) -> None:
    """``--out FILE`` or ``--server URL``: where a profile goes."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="FILE", help="write the profile to FILE (greenflame JSON, .gz to compress)")
    where.add_argument("--server", metavar="URL", help="ship the profile to a greenflame server")


def add_verb_group(verbs: Any, name: str, help_text: str) -> Any:
    """Add ``name`` as a verb whose own verbs are required (``greenflame NAME VERB``); return them."""
    group = verbs.add_parser(name, help=help_text)
    sub_verbs = group.add_subparsers(dest=f"{name}_verb", metavar="VERB")
    sub_verbs.required = True
    return sub_verbs
