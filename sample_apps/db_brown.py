"""Lambda handler that creates its SQLAlchemy engine on every invocation (local SQLite file).

Each call builds an Engine (dialect, pool, events), connects, runs the dialect's first-connect
initialisation, queries, and disposes of the pool. Triggers ``db-connection-per-invocation``;
``db_green`` is the fixed twin. The database is a SQLite file in the temporary directory
(``SAMPLE_DB_PATH`` to choose another), created with a few orders on first use: no network.

    greenflame lambda invoke greenflame.sample_apps.db_brown.lambda_handler --invocations 150 --out db_brown.json
"""

from __future__ import annotations

from typing import Any, Dict

from sqlalchemy import create_engine

from ._orders_db import database_url, ensure_orders, summary


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Order count and revenue for ``event['customer']``."""
    engine = create_engine(database_url())
    try:
        with engine.connect() as connection:
            return summary(connection, event.get("customer", "c-7"))
    finally:
        engine.dispose()


ensure_orders()
