"""``greenflame tokens create|list|revoke``: API tokens and sign-in links, on the server's database.

Run where the server's settings are (the same ``GREENFLAME_*`` variables, or ``--db``); the
admin API (``/api/v1/tokens``) does the same over HTTP. A new token's secret is printed once.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional

from .options import add_verb_group, positive_int


def register(verbs: Any) -> None:
    """Add ``tokens`` and its verbs to the command line."""
    token_verbs = add_verb_group(verbs, "tokens", "make, list and revoke API tokens and sign-in links")
    create = token_verbs.add_parser("create", help="make a token (its secret is printed once)")
    create.add_argument("--scope", required=True, choices=("read", "ingest", "admin"))
    create.add_argument("--group", metavar="G", help="the one group it is for (default: every group)")
    create.add_argument("--name", default="token", help="what it is for, shown when tokens are listed")
    create.add_argument("--link", action="store_true", help="a one-time sign-in link for the web UI instead")
    create.add_argument("--expires-in", type=positive_int, metavar="S", help="seconds until it stops working")
    create.add_argument("--db", metavar="URL", help="the server's database URL (default: as `greenflame serve`)")
    create.set_defaults(run_verb=_create)
    listing = token_verbs.add_parser("list", help="every token and link, without secrets")
    listing.add_argument("--db", metavar="URL", help="the server's database URL (default: as `greenflame serve`)")
    listing.set_defaults(run_verb=_list)
    revoke = token_verbs.add_parser("revoke", help="revoke a token or link (it stops working at once)")
    revoke.add_argument("id", metavar="ID")
    revoke.add_argument("--db", metavar="URL", help="the server's database URL (default: as `greenflame serve`)")
    revoke.set_defaults(run_verb=_revoke)


def _store(database: Optional[str]) -> Any:
    from greenflame.server.db import make_engine, upgrade_database
    from greenflame.server.settings import Settings
    from greenflame.server.tokens import TokenStore

    engine = make_engine(database or Settings.from_env().resolved_database_url())
    upgrade_database(engine)
    return TokenStore(engine)


def _create(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from greenflame.analyzer.errors import UserError
    from greenflame.server.schema import groups
    from greenflame.server.tokens import LINK, TOKEN

    store = _store(args.db)
    try:
        if args.group is not None:
            with store.engine.connect() as conn:
                if conn.execute(select(groups.c.name).where(groups.c.name == args.group)).first() is None:
                    raise UserError(f"there is no group {args.group!r}")
        made = store.create(args.scope, args.group, args.name, LINK if args.link else TOKEN, args.expires_in)
    finally:
        store.engine.dispose()
    record = made.record
    print(f"id:     {record.id}\nscope:  {record.scope}\ngroup:  {record.group or '(every group)'}")
    if args.link:
        base = (os.environ.get("GREENFLAME_PUBLIC_URL") or "").rstrip("/")
        print(f"sign-in link (works once): {base}/sign-in/link/{made.secret}")
        if not base:
            print("(prefix it with the server's URL, or set GREENFLAME_PUBLIC_URL)", file=sys.stderr)
    else:
        print(f"token:  {made.secret}")
        print("The token is shown only now; send it as 'Authorization: Bearer <token>'.", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args.db)
    try:
        records = store.list()
    finally:
        store.engine.dispose()
    print(f"{'id':32}  {'kind':5}  {'scope':6}  {'group':20}  {'state':8}  name")
    for record in records:
        state = "revoked" if record.revoked_unix_ns else ("used" if record.used_unix_ns else "active")
        print(f"{record.id:32}  {record.kind:5}  {record.scope:6}  {record.group or '*':20}  {state:8}  {record.name}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from greenflame.analyzer.errors import UserError

    store = _store(args.db)
    try:
        record = store.revoke(args.id)
    finally:
        store.engine.dispose()
    if record is None:
        raise UserError(f"there is no token {args.id!r} (see `greenflame tokens list`)")
    print(f"revoked {record.id} ({record.name}, {record.scope})")
    return 0
