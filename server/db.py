"""The one way the server opens its SQL database and creates its tables.

SQLite (the default) gets a thread-shareable connection, WAL, a busy timeout and foreign
keys; any other backend gets a pooled engine that checks connections before use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Union

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from greenflame.analyzer.errors import UserError


def make_engine(url: Union[str, URL]) -> Engine:
    """An engine for ``url`` (an SQLAlchemy URL); SQLite also gets its folder created.

    Raises UserError when ``url`` is not a database URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"invalid database URL {str(url)!r}") from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    options: Dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    database = parsed.database
    if not database or database == ":memory:":
        options["poolclass"] = StaticPool  # one shared connection, or each thread sees its own empty DB
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, **options)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def create_tables(metadata: MetaData, engine: Engine) -> None:
    """Create the missing tables of ``metadata``, tolerating another process doing the same."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except (OperationalError, ProgrammingError):
        # Another process created a table between the check and the CREATE.
        metadata.create_all(engine, checkfirst=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
