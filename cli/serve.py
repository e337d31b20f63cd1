"""``greenflame serve [--host H] [--port P] [--db URL] [--blobs URL]``."""

from __future__ import annotations

import argparse
from typing import Any


def register(verbs: Any) -> None:
    """Add ``serve`` to the command line."""
    serve = verbs.add_parser("serve", help="run the greenflame server and web UI")
    serve.add_argument("--host", help="address to listen on (default: GREENFLAME_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: GREENFLAME_PORT, else 8080; 0 picks a free one)")
    serve.add_argument("--db", metavar="URL", help="database URL (default: SQLite in the data folder)")
    serve.add_argument("--blobs", metavar="URL", help="profile storage: folder or s3://bucket/prefix")
    serve.set_defaults(run_verb=_serve)


def _serve(args: argparse.Namespace) -> int:
    from greenflame.server.app import serve

    return serve(host=args.host, port=args.port, db=args.db, blobs=args.blobs)
