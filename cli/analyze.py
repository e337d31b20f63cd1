"""``greenflame analyze FILE... [--format text|json|markdown] [--region R] [--invocations-per-month N]``."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from greenflame.analyzer.errors import UserError

from .options import positive_float


def register(verbs: Any) -> None:
    """Add ``analyze`` to the command line."""
    analyze = verbs.add_parser("analyze", help="recommendations with cost and CO2e for profiles")
    analyze.add_argument("files", nargs="+", metavar="FILE")
    analyze.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    analyze.add_argument(
        "--region", metavar="R", help="AWS region for carbon factors (default: from the profile, else us-east-1)"
    )
    analyze.add_argument("--invocations-per-month", type=positive_float, metavar="N", help="override the measured rate")
    analyze.add_argument(
        "--requests-per-month",
        type=positive_float,
        metavar="N",
        help="services: requests a month, for SCI per request",
    )
    analyze.add_argument(
        "--platform",
        metavar="NAME",
        help="services: where the code runs, for the vCPU price and power (e.g. fargate-x86_64, ec2-m7g)",
    )
    analyze.add_argument(
        "--usd-per-vcpu-hour", type=positive_float, metavar="USD", help="services: your price of one vCPU-hour"
    )
    analyze.set_defaults(run_verb=_analyze)


def _analyze(args: argparse.Namespace) -> int:
    sys.stdout.write(
        analyze_command(
            args.files,
            fmt=args.format,
            region=args.region,
            invocations_per_month=args.invocations_per_month,
            requests_per_month=args.requests_per_month,
            platform=args.platform,
            usd_per_vcpu_hour=args.usd_per_vcpu_hour,
        )
    )
    return 0


def analyze_command(files: Sequence[str], fmt: str = "text", **overrides: Any) -> str:
    """Load, merge and analyse ``files``; return the report rendered as ``fmt``.

    ``overrides`` are passed to :func:`greenflame.analyzer.report.analyze_profile`; ``None``
    values are left out.
    """
    from greenflame.analyzer.formats import load_profile
    from greenflame.analyzer.model import merge
    from greenflame.analyzer.renderers import RENDERERS
    from greenflame.analyzer.report import analyze_profile

    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise UserError(f"unknown format {fmt!r}: expected one of {', '.join(sorted(RENDERERS))}")
    if not files:
        raise UserError("no profile files given")
    profiles = [load_profile(path) for path in files]
    profile = profiles[0] if len(profiles) == 1 else merge(profiles)
    try:
        report = analyze_profile(profile, **{key: value for key, value in overrides.items() if value is not None})
    except ValueError as error:
        if type(error) is not ValueError:  # ProfileError: the CLI reports it as bad profile data
            raise
        raise UserError(str(error)) from None
    return renderer(report)
