"""The fixed twin of ``db_brown``: one SQLAlchemy engine (a pool of one connection) per environment.

Must not trigger ``db-connection-per-invocation``.

    greenflame lambda invoke greenflame.sample_apps.db_green.lambda_handler --invocations 150 --out db_green.json
"""

from __future__ import annotations

from typing import Any, Dict

from sqlalchemy import create_engine

from ._orders_db import database_url, ensure_orders, summary

ensure_orders()
# Initialization code: the engine and its pooled connection serve every warm invocation.
ENGINE = create_engine(database_url(), pool_size=1)
with ENGINE.connect():  # connect (and initialise the dialect) during init, not in the first call
    pass


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Order count and revenue for ``event['customer']``."""
    with ENGINE.connect() as connection:
        return summary(connection, event.get("customer", "c-7"))
