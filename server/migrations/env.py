"""Alembic's environment for greenflame's database: the target is :data:`greenflame.server.schema.metadata`.

The server runs migrations through :func:`greenflame.server.db.upgrade_database`, which passes an
open connection (holding the upgrade lock) in ``config.attributes["connection"]``. Without one
(a developer generating a revision, see docs/operations.md) the engine is made from the
configuration's ``sqlalchemy.url``, or SQL is written out in offline mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from greenflame.server.db import make_engine
from greenflame.server.schema import metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters a table by copying it: batch mode does that for every ALTER.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate through the caller's connection, else one made from ``sqlalchemy.url``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url", ""))
    try:
        with engine.connect() as fresh:
            _configure(fresh)
    finally:
        engine.dispose()


def run_offline() -> None:
    """Write the migrations' SQL for ``sqlalchemy.url``'s dialect instead of running it."""
    url = context.config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
