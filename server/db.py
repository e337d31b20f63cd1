"""The one way the server opens its SQL database and brings it to the current schema.

SQLite (the default) gets a thread-shareable connection, WAL (synchronous NORMAL), a busy timeout and foreign
keys; any other backend gets a pooled engine that checks connections before use.

:func:`upgrade_database` applies the Alembic revisions in ``migrations/versions`` (the schema
itself is :mod:`.schema`). ``greenflame serve`` runs it at start-up (every store runs it when it
opens) and ``greenflame db upgrade`` runs it alone.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Set, Union

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from greenflame.analyzer.errors import UserError

from .private_files import private_file

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# The revision equal to the schema of greenflame 0.1.0, the last release without migrations.
BASELINE = "0001"

# How long an SQLite connection waits for another's lock before answering "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30

# The key of the PostgreSQL advisory lock held while upgrading (any fixed 64-bit number, shared by
# every greenflame process: two servers starting together upgrade one after the other).
UPGRADE_LOCK_KEY = 0x67666D6967726174  # "gfmigrat"


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade_database` did: the revision before (None: unversioned) and after."""

    before: Optional[str]
    after: str
    adopted: bool = False  # the database was the unversioned schema of greenflame 0.1.0

    @property
    def changed(self) -> bool:
        """True when the database's revision moved."""
        return self.before != self.after


def make_engine(url: Union[str, URL]) -> Engine:
    """An engine for ``url`` (an SQLAlchemy URL); SQLite also gets its folder (0700) and file (0600) created.

    Raises UserError when ``url`` is not a database URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"invalid database URL {str(url)!r}") from None
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    options: Dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}}
    database = parsed.database
    if not database or database == ":memory:":
        options["poolclass"] = StaticPool  # one shared connection, or each thread sees its own empty DB
    else:
        private_file(Path(database).expanduser())  # SQLite gives its -wal and -shm files the same mode
    engine = create_engine(parsed, **options)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(url: Optional[str] = None, connection: Optional[Connection] = None) -> Config:
    """Alembic's configuration for greenflame's migrations, built in code (no alembic.ini).

    ``connection``: migrate through it (the caller commits); else ``url`` names the database.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser interpolates %
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The latest revision in ``migrations/versions``."""
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return head


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def current_revision(engine: Engine) -> Optional[str]:
    """The database's revision, or None when it has none (empty, or greenflame 0.1.0's schema)."""
    with _connect(engine) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(engine: Engine) -> Upgrade:
    """Bring the database to the latest revision; safe to call from many processes at once.

    An empty database gets every revision. A database that greenflame 0.1.0 created (its tables,
    no ``alembic_version``) is checked against the baseline revision, which then creates only the
    baseline tables it lacks (with all present, that is stamping it), and the later revisions
    follow. A versioned database gets the revisions after its own. The upgrade runs in one
    transaction under a lock (see :func:`_upgrade_transaction`), so processes starting together
    upgrade one after the other and a failed revision leaves the database as it was.
    """
    head = head_revision()
    if current_revision(engine) == head:
        return Upgrade(head, head)
    with _connect(engine) as connection, _upgrade_transaction(connection):
        before = MigrationContext.configure(connection).get_current_revision()
        _check_known(before, engine)
        adopted = before is None and _check_previous_release(connection)
        command.upgrade(alembic_config(connection=connection), "head")
    log.info("database upgraded from revision %s to %s", before or "(none)", head)
    return Upgrade(before, head, adopted)


def _connect(engine: Engine) -> Connection:
    try:
        return engine.connect()
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise UserError(f"cannot open the database {_shown(engine)}: {reason}") from None


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def _upgrade_transaction(connection: Connection) -> Iterator[None]:
    """One transaction holding the upgrade lock, committed when the block ends without error.

    PostgreSQL: a transaction-level advisory lock. SQLite: ``BEGIN IMMEDIATE`` takes the file's
    write lock (waiting up to the busy timeout), with foreign keys off meanwhile and checked before
    the commit, as SQLite's procedure for schema changes asks: batch mode re-creates a table by
    copy, drop and rename, and dropping a referenced table would otherwise fail.
    """
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before BEGIN
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK_KEY})")
    try:
        yield
        if sqlite:
            _check_foreign_keys(connection)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        if sqlite and not connection.invalidated:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"the migration broke foreign keys (table, rowid, parent, key): {broken[:5]}")


def _check_known(revision: Optional[str], engine: Engine) -> None:
    """Raises UserError when ``revision`` is not one of ours (a newer greenflame upgraded the database)."""
    if revision is None or revision in {script.revision for script in _scripts().walk_revisions()}:
        return
    raise UserError(
        f"the database {_shown(engine)} is at schema revision {revision}, which this greenflame does not know"
        f" (its latest is {head_revision()}): a newer greenflame upgraded it; install that version"
    )


def _check_previous_release(connection: Connection) -> bool:
    """True when the unversioned database holds tables of greenflame 0.1.0, after checking their columns.

    Raises UserError when one of them lacks a column of the baseline: that is not our schema.
    """
    present = set(inspect(connection).get_table_names())
    baseline = _baseline_columns()
    for table in sorted(present & baseline.keys()):
        columns = {column["name"] for column in inspect(connection).get_columns(table)}
        missing = baseline[table] - columns
        if missing:
            raise UserError(
                f"the database's table {table} lacks the columns {', '.join(sorted(missing))} of greenflame's"
                f" schema (revision {BASELINE}): not upgrading a schema it does not know"
            )
    return bool(present & baseline.keys())


@cache
def _baseline_columns() -> Dict[str, Set[str]]:
    """Each baseline table's columns, read back from the baseline revision run on an in-memory SQLite."""
    engine = make_engine("sqlite://")
    try:
        with engine.connect() as connection:
            command.upgrade(alembic_config(connection=connection), BASELINE)
            reflected = inspect(connection)
            tables = [name for name in reflected.get_table_names() if name != "alembic_version"]
            return {name: {column["name"] for column in reflected.get_columns(name)} for name in tables}
    finally:
        engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    _enable_wal(cursor)
    # With WAL, NORMAL syncs at checkpoints rather than at every commit: a committed transaction
    # is in the WAL file and survives the process's death (kill -9), as the profile bodies written
    # before it do (the blob store's files are not synced either); an OS crash or power loss can
    # lose the last commits. FULL (the default) made each ingest wait for an fsync.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the file to write-ahead logging, retrying while another connection holds it.

    Two processes opening a new file at once both try the switch; SQLite answers the second
    "database is locked" at once, without waiting for the busy timeout, so wait here instead.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
