"""Operations endpoints: ``/livez`` (the process answers), ``/readyz`` (the database answers
and its schema is at head) and ``/metrics`` (Prometheus text format).

``/metrics`` needs admin scope unless ``GREENFLAME_METRICS_ACCESS`` is ``public`` (secure by
default; a scraper on a private network can be let in without a token): :data:`.access.RULES`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Tuple

from flask import Blueprint, Response, current_app, jsonify

from . import metrics, pipeline_worker, rollups
from .db import current_revision, head_revision
from .storage import get_storage

bp = Blueprint("ops", __name__)
#: The migrations' head is fixed for the life of the process; reading the scripts costs milliseconds.
_head = lru_cache(maxsize=1)(head_revision)


@bp.get("/livez")
def livez() -> Any:
    """200 while the process serves requests."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Tuple[Response, int]:
    """200 when the database answers and its schema is at head; 503 otherwise."""
    try:
        revision = current_revision(get_storage().engine)
    except Exception as error:  # any driver error means "not ready", reported, not raised
        return jsonify({"status": "unavailable", "reason": f"database unreachable: {type(error).__name__}"}), 503
    head = _head()
    if revision != head:
        return jsonify({"status": "unavailable", "reason": f"schema at {revision}, expected {head}"}), 503
    return jsonify({"status": "ok"}), 200


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """The server's metrics in Prometheus text format."""
    analysis = pipeline_worker.get_scheduler(current_app).pending
    folding = rollups.get_rollups(get_storage()).worker.depth
    return Response(metrics.exposition(analysis, folding), content_type=metrics.CONTENT_TYPE)
