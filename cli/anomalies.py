"""``greenflame anomalies FILE... [--format text|json]``."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Mapping, Optional, Sequence

from greenflame.analyzer.errors import UserError


def register(verbs: Any) -> None:
    """Add ``anomalies`` to the command line."""
    anomalies = verbs.add_parser("anomalies", help="detect anomalies over a series of profiles")
    anomalies.add_argument("files", nargs="+", metavar="FILE")
    anomalies.add_argument("--format", choices=["text", "json"], default="text")
    anomalies.set_defaults(run_verb=_anomalies)


def _anomalies(args: argparse.Namespace) -> int:
    sys.stdout.write(anomalies_command(args.files, fmt=args.format))
    return 0


def anomalies_command(files: Sequence[str], fmt: str = "text", feedback: Optional[Mapping[str, Any]] = None) -> str:
    """What ``greenflame anomalies FILE... --format text|json`` prints."""
    from greenflame.analyzer.anomalies import detect_profiles, render
    from greenflame.analyzer.formats import load_profile

    if fmt not in ("text", "json"):
        raise UserError(f"unknown format {fmt!r}: use text or json")
    profiles = [load_profile(path) for path in files]
    return render(detect_profiles(profiles, feedback=feedback), fmt)
