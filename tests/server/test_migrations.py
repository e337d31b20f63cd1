"""Alembic migrations over the one metadata, on real SQLite files and the real PostgreSQL.

From an empty database; from the schema greenflame 0.1.0 created without migrations (its DDL is
frozen under ``data/``, rows written into it must survive); the declared metadata and the
migrations agree (a column added without a revision fails here); two processes upgrading one
database at once; ``greenflame serve`` and ``greenflame db upgrade`` doing it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from support.server import LiveServer

from greenflame.analyzer.errors import UserError
from greenflame.cli.main import main
from greenflame.server import db
from greenflame.server.db import BASELINE, Upgrade, alembic_config, head_revision, make_engine, upgrade_database
from greenflame.server.schema import metadata
from greenflame.server.storage import hash_key

DATA = Path(__file__).resolve().parent / "data"
DIALECTS = ["sqlite", "postgresql"]
TABLES_0_1_0 = {
    "groups",
    "profiles",
    "analysis_state",
    "analysis_runs",
    "finding_states",
    "anomalies",
    "anomaly_votes",
    "group_channels",
    "ticket_links",
}
#: Tables the revisions after 0001 added.
TABLES_ADDED_LATER = {"series_buckets", "api_tokens", "anomaly_fits", "rollup_buckets", "ended_sessions"}


@pytest.fixture
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``new_database(dialect)``: the URL of a fresh, empty database of that dialect."""
    made: List[str] = []

    def make(dialect: str) -> str:
        made.append(dialect)
        if dialect == "sqlite":
            return f"sqlite:///{tmp_path / f'db{len(made)}.sqlite'}"
        postgres: Callable[[], str] = request.getfixturevalue("postgres_database")
        return postgres()

    return make


@contextmanager
def connected(url: str) -> Iterator[sa.Connection]:
    """A connection to ``url`` in a transaction committed at the end of the block."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def load_0_1_0_schema(url: str) -> None:
    """Create the tables as greenflame 0.1.0 did (its frozen DDL for the URL's dialect)."""
    with connected(url) as connection:
        text = (DATA / f"schema_0_1_0_{connection.dialect.name}.sql").read_text()
        sql = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
        for statement in filter(str.strip, sql.split(";")):
            connection.exec_driver_sql(statement)


def a_0_1_0_database_with_rows(url: str) -> Dict[str, Dict[str, Any]]:
    """Create 0.1.0's tables at ``url`` with one row in each; the rows written, by table."""
    load_0_1_0_schema(url)
    return fill_every_table(url)


def fill_every_table(url: str) -> Dict[str, Dict[str, Any]]:
    """Insert one row into each table the database holds, made from its reflected columns."""
    rows: Dict[str, Dict[str, Any]] = {}
    with connected(url) as connection:
        reflected = sa.MetaData()
        reflected.reflect(connection)
        for table in reflected.sorted_tables:  # referenced tables first
            row = {column.name: _value(index, column) for index, column in enumerate(table.columns)}
            for key in table.foreign_keys:
                row[key.parent.name] = rows[key.column.table.name][key.column.name]
            connection.execute(table.insert().values(**row))
            rows[table.name] = row
    return rows


def _value(index: int, column: sa.Column) -> Any:
    return 1000 + index if isinstance(column.type, sa.Integer) else f"v{index}"


def read_rows(url: str, tables: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The one row of each table, restricted to the columns it was written with."""
    found = {}
    with connected(url) as connection:
        for name, row in tables.items():
            stored = connection.execute(sa.select(metadata.tables[name])).mappings().all()
            found[name] = {column: stored[0][column] for column in row} if len(stored) == 1 else stored
    return found


def differences(url: str, declared: sa.MetaData = metadata) -> List[Any]:
    """What Alembic's autogenerate would change to make the database match the declared metadata."""
    with connected(url) as connection:
        return compare_metadata(MigrationContext.configure(connection), declared)


def revision_of(url: str) -> Any:
    with connected(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def snapshot(url: str, with_names: bool) -> Dict[str, Tuple[Any, ...]]:
    """Each table's columns, keys, unique constraints and indexes as reflected (names optional)."""
    name: Callable[[Dict[str, Any]], Any] = (lambda item: item.get("name")) if with_names else (lambda _: None)
    tables = {}
    with connected(url) as connection:
        inspector = sa.inspect(connection)
        for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
            columns = tuple((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table))
            key = inspector.get_pk_constraint(table)
            uniques = sorted((name(u), tuple(u["column_names"])) for u in inspector.get_unique_constraints(table))
            foreign = sorted(
                (name(f), tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            )
            indexes = sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table))
            tables[table] = (columns, name(key), tuple(key["constrained_columns"]), uniques, foreign, indexes)
    return tables


def upgrade(url: str) -> Upgrade:
    engine = make_engine(url)
    try:
        return upgrade_database(engine)
    finally:
        engine.dispose()


# -- from an empty database ---------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_empty_database_gets_every_revision_and_the_declared_schema(
    dialect: str, new_database: Callable[[str], str]
) -> None:
    url = new_database(dialect)
    assert upgrade(url) == Upgrade(before=None, after=head_revision())
    assert revision_of(url) == head_revision()
    assert differences(url) == []  # the metadata and the migrations agree
    assert upgrade(url) == Upgrade(before=head_revision(), after=head_revision())  # again: nothing to do
    assert not upgrade(url).changed


def test_a_column_declared_without_a_revision_is_a_difference(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    extended = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(extended)
    assert differences(url, extended) == []
    extended.tables["groups"].append_column(sa.Column("colour", sa.String(16)))
    assert [(d[0], d[3].name) for d in differences(url, extended)] == [("add_column", "colour")]


# -- from greenflame 0.1.0's schema -------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
def test_0_1_0_database_is_adopted_and_keeps_its_rows(dialect: str, new_database: Callable[[str], str]) -> None:
    url = new_database(dialect)
    rows = a_0_1_0_database_with_rows(url)
    assert set(rows) == TABLES_0_1_0
    assert upgrade(url) == Upgrade(before=None, after=head_revision(), adopted=True)
    assert revision_of(url) == head_revision()
    assert read_rows(url, rows) == rows
    if dialect == "postgresql":
        assert differences(url) == []
    else:  # SQLite keeps 0.1.0's unnamed UNIQUE; batch migrations name it (docs/operations.md)
        assert [(d[0], d[1].name, tuple(d[1].columns.keys())) for d in differences(url)] == [
            ("add_constraint", "groups_ingest_key_sha256_key", ("ingest_key_sha256",))
        ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_baseline_revision_is_the_0_1_0_schema(dialect: str, new_database: Callable[[str], str]) -> None:
    old, new = new_database(dialect), new_database(dialect)
    load_0_1_0_schema(old)
    with connected(new) as connection:
        command.upgrade(alembic_config(connection=connection), BASELINE)
    # PostgreSQL named 0.1.0's constraints itself; the naming convention gives the same names.
    with_names = dialect == "postgresql"
    assert snapshot(new, with_names) == snapshot(old, with_names)


def test_0_1_0_database_with_some_tables_gets_the_others(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tickets-only.sqlite'}"
    text = (DATA / "schema_0_1_0_sqlite.sql").read_text()
    ticket_links = text[text.index("CREATE TABLE ticket_links") :].rstrip().rstrip(";")
    with connected(url) as connection:
        connection.exec_driver_sql(ticket_links)  # what `greenflame tickets push` alone left
    rows = fill_every_table(url)
    assert upgrade(url).adopted
    assert read_rows(url, rows) == rows
    assert set(snapshot(url, with_names=False)) == TABLES_0_1_0 | TABLES_ADDED_LATER
    assert differences(url) == []


def test_unknown_schema_is_refused_untouched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    with connected(url) as connection:
        connection.exec_driver_sql("CREATE TABLE groups (name VARCHAR(10) PRIMARY KEY, colour TEXT)")
    with pytest.raises(UserError, match="groups lacks the columns created_unix_ns, ingest_key_sha256"):
        upgrade(url)
    assert revision_of(url) is None
    assert set(snapshot(url, with_names=False)) == {"groups"}


LATER_REVISION = """
import sqlalchemy as sa
from alembic import op
from greenflame.server.schema import NAMING_CONVENTION

revision = "9001"
down_revision = "{head}"


def upgrade() -> None:
{body}
"""

# SQLite cannot alter a column's type: batch mode copies the table (referenced by profiles),
# naming the constraints 0.1.0 left unnamed.
WIDER_KEYS = """
    with op.batch_alter_table("groups", naming_convention=NAMING_CONVENTION) as batch:
        batch.alter_column("ingest_key_sha256", type_=sa.String(128), existing_nullable=False)
"""

HALF_DONE = """
    op.add_column("groups", sa.Column("colour", sa.String(16)))
    raise RuntimeError("a revision that fails half-way")
"""


@pytest.fixture
def later_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """``later_revision(body)``: the migrations folder gets one more revision, as the next change adds."""
    folder = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))

    def add(body: str) -> str:
        text = LATER_REVISION.format(head=head_revision(), body=body.strip("\n"))
        (folder / "versions" / "9001_later.py").write_text(text)
        monkeypatch.setattr(db, "MIGRATIONS", folder)
        head_revision.cache_clear()
        return "9001"

    yield add
    monkeypatch.undo()
    head_revision.cache_clear()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_later_revision_alters_a_referenced_table_of_a_0_1_0_database(
    dialect: str, new_database: Callable[[str], str], later_revision: Callable[[str], str]
) -> None:
    url = new_database(dialect)
    rows = a_0_1_0_database_with_rows(url)
    later = later_revision(WIDER_KEYS)
    assert upgrade(url) == Upgrade(before=None, after=later, adopted=True)
    assert read_rows(url, rows) == rows
    columns, _, _, uniques, _, _ = snapshot(url, with_names=True)["groups"]
    assert ("ingest_key_sha256", "VARCHAR(128)", False) in columns
    assert uniques == [("groups_ingest_key_sha256_key", ("ingest_key_sha256",))]
    with connected(url) as connection:
        if dialect == "sqlite":  # foreign keys back on, and still holding
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
            connection.execute(metadata.tables["profiles"].update().values(group_name="no-such-group"))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_failing_revision_leaves_the_database_as_it_was(
    dialect: str, new_database: Callable[[str], str], later_revision: Callable[[str], str]
) -> None:
    url = new_database(dialect)
    rows = a_0_1_0_database_with_rows(url)
    before = snapshot(url, with_names=True)
    later_revision(HALF_DONE)
    with pytest.raises(RuntimeError, match="fails half-way"):
        upgrade(url)
    assert revision_of(url) is None  # not even the baseline's stamp
    assert snapshot(url, with_names=True) == before
    assert read_rows(url, rows) == rows


def test_a_database_upgraded_by_a_newer_greenflame_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.sqlite'}"
    upgrade(url)
    with connected(url) as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(UserError, match=f"at schema revision 9999, which .* latest is {head_revision()}"):
        upgrade(url)
    assert revision_of(url) == "9999"


def test_greenflame_serve_upgrades_a_0_1_0_database(server_factory: Callable[..., LiveServer], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    load_0_1_0_schema(url)
    with connected(url) as connection:
        row = {"name": "from-0-1-0", "ingest_key_sha256": hash_key("gfi_old"), "created_unix_ns": 1}
        connection.execute(metadata.tables["groups"].insert().values(**row))
    server = server_factory(env={"GREENFLAME_DATABASE_URL": url})
    groups = server.session.get(server.api("/api/v1/groups"), timeout=30).json()["groups"]
    assert [g["name"] for g in groups] == ["from-0-1-0"]
    assert revision_of(url) == head_revision()


# -- several processes --------------------------------------------------------------------------

UPGRADE_AT = """
import sys, time
from greenflame.server.db import make_engine, upgrade_database
engine = make_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
print(upgrade_database(engine).before)
"""


@pytest.mark.parametrize("dialect", DIALECTS)
def test_two_processes_upgrading_at_once_upgrade_once(dialect: str, new_database: Callable[[str], str]) -> None:
    url = new_database(dialect)
    start_at = str(time.time() + 3.0)  # both past their imports, then at the same instant
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE_AT, url, start_at], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sorted(out.strip() for out, _ in outputs) == sorted(["None", head_revision()])
    assert differences(url) == []


# -- greenflame db upgrade ----------------------------------------------------------------------


def test_db_upgrade_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    assert capsys.readouterr().out == f"{url}: upgraded from revision (empty) to {head_revision()}\n"
    assert main(["db", "upgrade", "--db", url]) == 0
    assert capsys.readouterr().out == f"{url}: already at revision {head_revision()} (the latest)\n"
    old = f"sqlite:///{tmp_path / 'old.sqlite'}"
    load_0_1_0_schema(old)
    assert main(["db", "upgrade", "--db", old]) == 0
    assert "0.1.0 schema adopted and upgraded to revision" in capsys.readouterr().out


def test_db_upgrade_defaults_to_the_servers_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GREENFLAME_DATABASE_URL", raising=False)
    monkeypatch.setenv("GREENFLAME_DATA_DIR", str(tmp_path / "data"))
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "data" / "greenflame.db").is_file()
    assert revision_of(f"sqlite:///{tmp_path / 'data' / 'greenflame.db'}") == head_revision()


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a url", "invalid database URL 'not a url'"),
        (
            "postgresql+psycopg://someone:secret@127.0.0.1:1/db",
            "cannot open the database postgresql+psycopg://someone:***@",
        ),
    ],
)
def test_db_upgrade_on_a_bad_url_is_one_line_exit_2(url: str, message: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "greenflame.cli", "db", "upgrade", "--db", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stdout == "" and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"greenflame: error: {message}")
    assert "secret" not in run.stderr


def test_percent_in_a_url_survives_the_alembic_configuration() -> None:
    url = "postgresql+psycopg://user:p%40ss@host/db"
    assert alembic_config(url).get_main_option("sqlalchemy.url") == url
