"""The ``greenflame`` command: parse the verb, run it, map errors to exit statuses.

A user mistake (:class:`~greenflame.analyzer.errors.UserError`, including a bad profile, the
agent's :class:`~greenflame.agent.config.ConfigError`, a missing file) is one line on standard
error and exit status 2; a missing optional dependency names the extra that brings it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, List, NoReturn, Optional, Sequence

from greenflame.analyzer.errors import UserError

from . import analyze, anomalies, attach, db, demo, export, lambda_, run, serve, tickets, tokens, worker

PROG = "greenflame"

#: Import name -> (its PyPI package, the smallest extra that brings it), for the missing-dependency message.
OPTIONAL_DEPENDENCIES = {
    "google": ("protobuf", "analyzer"),
    "sklearn": ("scikit-learn", "ml"),
    "numpy": ("numpy", "ml"),
    "flask": ("Flask", "server"),
    "waitress": ("waitress", "server"),
    "requests": ("requests", "server"),
    "sqlalchemy": ("SQLAlchemy", "server"),
    "alembic": ("alembic", "server"),
    "prometheus_client": ("prometheus_client", "server"),
    "authlib": ("Authlib", "server"),
    "joserfc": ("joserfc", "server"),
    "flask_wtf": ("Flask-WTF", "server"),
    "boto3": ("boto3", "lambda"),
    "botocore": ("boto3", "lambda"),
    "awslambdaric": ("awslambdaric", "lambda"),
    "psycopg": ("psycopg[binary]", "postgres"),
    "yaml": ("PyYAML", "samples"),
}

#: The verbs in the order ``--help`` lists them; each module adds its own parser.
VERBS = (run, attach, lambda_, analyze, anomalies, export, tickets, serve, worker, db, tokens, demo)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, with where to read more."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every verb."""
    parser = _Parser(prog=PROG, description="Continuous profiler and efficiency recommender for Python.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    for verb in VERBS:
        verb.register(verbs)
    return parser


def _user_errors() -> tuple:
    """Exception types that are the user's mistake, not greenflame's: shown as one line."""
    kinds: List[type] = [UserError, FileNotFoundError, IsADirectoryError, PermissionError]
    try:
        from greenflame.agent.config import ConfigError

        kinds.append(ConfigError)
    except ImportError:  # pragma: no cover - the agent always ships with the package
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
        package, extra = OPTIONAL_DEPENDENCIES.get(missing.split(".")[0], (missing, "all"))
        print(
            f"{PROG}: error: {args.verb} needs {package}, which is not installed; "
            f"install it with: pip install 'greenflame[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return str(error)
