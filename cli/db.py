"""``greenflame db upgrade [--db URL]``: bring the server's database to the current schema.

``greenflame serve`` does the same at start-up; this verb lets a deployment upgrade once, before
starting its server processes (or check that a database URL works).
"""

from __future__ import annotations

import argparse
from typing import Any

from .options import add_verb_group


def register(verbs: Any) -> None:
    """Add ``db`` and its verbs to the command line."""
    db_verbs = add_verb_group(verbs, "db", "manage the server's database")
    upgrade = db_verbs.add_parser("upgrade", help="apply the schema migrations the database lacks")
    upgrade.add_argument("--db", metavar="URL", help="database URL (default: as `greenflame serve`)")
    upgrade.set_defaults(run_verb=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    from greenflame.server.db import make_engine, upgrade_database
    from greenflame.server.settings import Settings

    engine = make_engine(args.db or Settings.from_env().resolved_database_url())
    try:
        done = upgrade_database(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if not done.changed:
        print(f"{where}: already at revision {done.after} (the latest)")
    elif done.adopted:
        print(f"{where}: greenflame 0.1.0 schema adopted and upgraded to revision {done.after}")
    else:
        print(f"{where}: upgraded from revision {done.before or '(empty)'} to {done.after}")
    return 0
