"""``greenflame export FILE --format pprof|collapsed|speedscope|svg|json [-o OUT]``."""

from __future__ import annotations

import contextlib
import gzip
import os
import sys
from typing import Any, Optional

from greenflame.analyzer.errors import UserError


def register(verbs: Any) -> None:
    """Add ``export`` to the command line."""
    export = verbs.add_parser("export", help="convert a profile to another format")
    export.add_argument("file", metavar="FILE")
    export.add_argument("--format", choices=["pprof", "collapsed", "speedscope", "svg", "json"], required=True)
    export.add_argument("-o", "--output", metavar="OUT", help="output file (default: standard output)")
    export.set_defaults(run_verb=lambda args: export_command(args.file, fmt=args.format, out=args.output))


def export_command(file: str, fmt: str, out: Optional[str] = None) -> int:
    """Convert a profile file; returns the exit status.

    ``svg`` is a flame graph (see :func:`greenflame.analyzer.svg.render_svg`). Writes to
    standard output when ``out`` is None; ``-o NAME.gz`` gzips the output.
    """
    from greenflame.analyzer.formats import FORMATS, dump_profile, load_profile

    if fmt == "svg":
        from greenflame.analyzer.svg import render_svg

        data = render_svg(load_profile(file)).encode("utf-8")
    elif fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}, svg")
    else:
        data = dump_profile(load_profile(file), fmt)
    if out is None:
        _write_stdout(data, fmt)
    else:
        _write_file(out, data)
    return 0


def _write_stdout(data: bytes, fmt: str) -> None:
    if fmt == "pprof" and sys.stdout.isatty():
        raise UserError("pprof output is binary: give -o FILE or redirect standard output")
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _write_file(out: str, data: bytes) -> None:
    from greenflame.analyzer.formats._common import GZIP_MAGIC

    if out.endswith(".gz") and not data.startswith(GZIP_MAGIC):
        data = gzip.compress(data, mtime=0)
    opened = False
    try:
        with open(out, "wb") as handle:
            opened = True
            handle.write(data)
    except OSError as problem:
        if opened:  # do not leave a truncated file that a later read would call corrupt
            with contextlib.suppress(OSError):
                os.remove(out)
        raise UserError(f"cannot write {out}: {problem.strerror or problem}") from None
