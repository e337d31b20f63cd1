"""The ``greenflame`` command line: the one entry point, whose verbs are a public contract.

Only the standard library is imported here, so that ``greenflame run`` works with the agent
alone installed; every verb imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, List, NoReturn, Optional, Sequence

PROG = "greenflame"


class CommandError(Exception):
    """A user mistake or an unmet precondition: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, with where to read more."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


# -- verb handlers (each imports its implementation lazily) -----------------


def _run(args: argparse.Namespace) -> int:
    from greenflame.agent.runner import run_command

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise CommandError("nothing to run: give a command after '--', e.g. greenflame run -- python app.py")
    return run_command(command, group=args.group, rate_hz=args.rate, out=args.out, server=args.server)


def _attach(args: argparse.Namespace) -> int:
    from greenflame.server.attach import attach_command

    return attach_command(args.pid, duration=args.duration, rate=args.rate, out=args.out, server=args.server)


def _lambda_invoke(args: argparse.Namespace) -> int:
    from greenflame.server.lambda_invoke import invoke

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


def _lambda_layer(args: argparse.Namespace) -> int:
    from greenflame.server.lambda_layer import build_layer

    return build_layer(args.output, pythons=args.python or ())


def _analyze(args: argparse.Namespace) -> int:
    from greenflame.analyzer.report import analyze_command

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


def _anomalies(args: argparse.Namespace) -> int:
    from greenflame.analyzer.anomalies import anomalies_command

    sys.stdout.write(anomalies_command(args.files, fmt=args.format))
    return 0


def _export(args: argparse.Namespace) -> int:
    from greenflame.analyzer.formats import export_command

    return export_command(args.file, fmt=args.format, out=args.output)


def _tickets_push(args: argparse.Namespace) -> int:
    from greenflame.server.tickets.commands import push_command

    return push_command(args.files, args.to, args.api_url, args.min_usd, args.dry_run)


def _tickets_status(args: argparse.Namespace) -> int:
    from greenflame.server.tickets.commands import status_command

    return status_command(database=args.db)


def _serve(args: argparse.Namespace) -> int:
    from greenflame.server.app import serve

    return serve(host=args.host, port=args.port, db=args.db, blobs=args.blobs)


def _demo(args: argparse.Namespace) -> int:
    from greenflame.server.demo import run_demo

    return run_demo()


# -- parser -----------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above zero, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above zero, got {text}")
    return value


def _add_destination(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="FILE", help="write the profile to FILE (greenflame JSON, .gz to compress)")
    where.add_argument("--server", metavar="URL", help="ship the profile to a greenflame server")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every verb."""
    parser = _Parser(prog=PROG, description="Continuous profiler and efficiency recommender for Python.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    run = verbs.add_parser("run", help="profile an unmodified Python program")
    run.add_argument("--group", help="profiling group name (default: the script's name)")
    run.add_argument("--rate", type=_positive_float, metavar="HZ", help="samples per second (default 100)")
    _add_destination(run)
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    run.set_defaults(run_verb=_run)

    attach = verbs.add_parser("attach", help="profile a running process through py-spy")
    attach.add_argument("--pid", type=_positive_int, required=True)
    attach.add_argument("--duration", type=_positive_float, metavar="S")
    attach.add_argument("--rate", type=_positive_float, metavar="HZ")
    _add_destination(attach)
    attach.set_defaults(run_verb=_attach)

    lam = verbs.add_parser("lambda", help="run and package AWS Lambda functions with the agent")
    lam_verbs = lam.add_subparsers(dest="lambda_verb", metavar="VERB")
    lam_verbs.required = True
    invoke = lam_verbs.add_parser("invoke", help="run a handler N times as Lambda would, with the agent enabled")
    invoke.add_argument("handler", metavar="MODULE:FUNCTION", help="the handler, as module:function or module.function")
    invoke.add_argument("--invocations", type=_positive_int, default=1, metavar="N")
    invoke.add_argument("--event", default="{}", metavar="JSON", help="the event, as JSON text or @FILE")
    invoke.add_argument("--memory-mb", type=_positive_int, default=128, metavar="MB")
    invoke.add_argument("--arch", choices=["x86_64", "arm64"], default="x86_64")
    invoke.add_argument("--region", default="us-east-1", metavar="R")
    _add_destination(invoke)
    invoke.set_defaults(run_verb=_lambda_invoke)
    layer = lam_verbs.add_parser("layer", help="build the greenflame Lambda layer zip")
    layer.add_argument("-o", "--output", required=True, metavar="layer.zip")
    layer.add_argument(
        "--python",
        action="append",
        metavar="PATH",
        help="also ship bytecode for this interpreter (repeatable; default: only the one running greenflame)",
    )
    layer.set_defaults(run_verb=_lambda_layer)

    analyze = verbs.add_parser("analyze", help="recommendations with cost and CO2e for profiles")
    analyze.add_argument("files", nargs="+", metavar="FILE")
    analyze.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    analyze.add_argument(
        "--region", metavar="R", help="AWS region for carbon factors (default: from the profile, else us-east-1)"
    )
    analyze.add_argument(
        "--invocations-per-month", type=_positive_float, metavar="N", help="override the measured rate"
    )
    analyze.add_argument(
        "--requests-per-month",
        type=_positive_float,
        metavar="N",
        help="services: requests a month, for SCI per request",
    )
    analyze.add_argument(
        "--platform",
        metavar="NAME",
        help="services: where the code runs, for the vCPU price and power (e.g. fargate-x86_64, ec2-m7g)",
    )
    analyze.add_argument(
        "--usd-per-vcpu-hour", type=_positive_float, metavar="USD", help="services: your price of one vCPU-hour"
    )
    analyze.set_defaults(run_verb=_analyze)

    anomalies = verbs.add_parser("anomalies", help="detect anomalies over a series of profiles")
    anomalies.add_argument("files", nargs="+", metavar="FILE")
    anomalies.add_argument("--format", choices=["text", "json"], default="text")
    anomalies.set_defaults(run_verb=_anomalies)

    export = verbs.add_parser("export", help="convert a profile to another format")
    export.add_argument("file", metavar="FILE")
    export.add_argument("--format", choices=["pprof", "collapsed", "speedscope", "svg", "json"], required=True)
    export.add_argument("-o", "--output", metavar="OUT", help="output file (default: standard output)")
    export.set_defaults(run_verb=_export)

    tickets = verbs.add_parser("tickets", help="turn findings into GitHub, GitLab or Jira tickets")
    ticket_verbs = tickets.add_subparsers(dest="tickets_verb", metavar="VERB")
    ticket_verbs.required = True
    push = ticket_verbs.add_parser("push", help="analyse profiles and create, update or close one ticket per finding")
    push.add_argument("files", nargs="+", metavar="FILE")
    push.add_argument("--to", required=True, metavar="github:OWNER/REPO|gitlab:PROJECT|jira:KEY|webhook:URL")
    push.add_argument("--api-url", metavar="URL", help="the tracker's API base URL (self-hosted GitLab, Jira)")
    push.add_argument("--min-usd", type=float, metavar="X", help="only findings costing at least X dollars a month")
    push.add_argument("--dry-run", action="store_true", help="show what would be posted, post nothing")
    push.set_defaults(run_verb=_tickets_push)
    status = ticket_verbs.add_parser("status", help="the tickets greenflame keeps, with their delivery status")
    status.add_argument("--db", metavar="URL", help="the server's database URL (default: as `greenflame serve`)")
    status.set_defaults(run_verb=_tickets_status)

    serve = verbs.add_parser("serve", help="run the greenflame server and web UI")
    serve.add_argument("--host", help="address to listen on (default: GREENFLAME_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: GREENFLAME_PORT, else 8080; 0 picks a free one)")
    serve.add_argument("--db", metavar="URL", help="database URL (default: SQLite in the data folder)")
    serve.add_argument("--blobs", metavar="URL", help="profile storage (default: a local folder)")
    serve.set_defaults(run_verb=_serve)

    demo = verbs.add_parser("demo", help="profile the seed's two Lambda functions and show the recommendations")
    demo.set_defaults(run_verb=_demo)
    return parser


def _user_errors() -> tuple:
    """Exception types that are the user's mistake, not greenflame's: shown as one line."""
    kinds: List[type] = [CommandError, FileNotFoundError, IsADirectoryError, PermissionError]
    try:
        from greenflame.analyzer.model import ProfileError

        kinds.append(ProfileError)
    except ImportError:  # pragma: no cover - analyzer always ships with the package
        pass
    try:
        from greenflame.agent.config import ConfigError

        kinds.append(ConfigError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(kinds)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one verb; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run_verb: Callable[[argparse.Namespace], int] = args.run_verb
    try:
        return run_verb(args)
    except _user_errors() as error:
        print(f"{PROG}: error: {_describe(error)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        missing = error.name or "a dependency"
        if missing.startswith("greenflame"):
            raise
        print(
            f"{PROG}: error: {args.verb} needs {missing}, which is not installed; "
            f"install it with: pip install 'greenflame[server]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return str(error)
