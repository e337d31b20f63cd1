"""The orders database of the ``db_*`` samples: a local SQLite file, created on first use."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from typing import Any, Dict

from sqlalchemy import text
from sqlalchemy.engine import Connection

CUSTOMERS = 50
ORDERS = 2000


def database_path() -> str:
    """``SAMPLE_DB_PATH``, else ``greenflame-sample-orders.db`` in the temporary directory."""
    return os.environ.get("SAMPLE_DB_PATH") or os.path.join(tempfile.gettempdir(), "greenflame-sample-orders.db")


def database_url() -> str:
    """The SQLAlchemy URL of the database file."""
    return f"sqlite:///{database_path()}"


def ensure_orders() -> None:
    """Create the ``orders`` table with its rows unless it is already there."""
    with sqlite3.connect(database_path()) as db:
        db.execute("create table if not exists orders (id integer primary key, customer text, cents integer)")
        if db.execute("select count(*) from orders").fetchone()[0] == 0:
            rows = [(i, f"c-{i % CUSTOMERS}", 100 + (i * 7919) % 9000) for i in range(ORDERS)]
            db.executemany("insert into orders values (?, ?, ?)", rows)
            db.execute("create index if not exists orders_customer on orders (customer)")


def summary(connection: Connection, customer: str) -> Dict[str, Any]:
    """Number of orders and revenue in cents of one customer."""
    query = text("select count(*), coalesce(sum(cents), 0) from orders where customer = :customer")
    count, cents = connection.execute(query, {"customer": customer}).one()
    return {"customer": customer, "orders": count, "revenue_cents": cents}
