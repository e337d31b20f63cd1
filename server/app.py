"""The Flask app factory and ``greenflame serve``.

``create_app`` builds the app from settings (``GREENFLAME_*`` variables unless given);
``serve`` runs it under waitress, a production WSGI server, until SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Dict, List, Mapping, Optional, Union

from flask import Flask, Response

from greenflame.analyzer.errors import UserError

from . import (
    access,
    api,
    collector,
    delivery,
    errors,
    events,
    ingest,
    ops,
    pipeline_api,
    pipeline_worker,
    retention,
    rollups,
    signin,
    slow_clients,
    storage,
    timely,
    tokens_api,
    web,
)
from .context import SETTINGS_KEY
from .logs import configure_process_logging
from .settings import Settings
from .shutdown import run_until_stopped, stop_on_signals

log = logging.getLogger(__name__)

SERVER_THREADS = 8
#: How often (seconds) waitress looks for idle or overdue connections to close.
CLEANUP_INTERVAL_S = 1
#: Bytes waitress reads from a socket at once (its default is 8 KiB): a report's body arrives in
#: a few reads, each of which needs the interpreter lock, instead of a dozen.
RECV_BYTES = 256 * 1024


def create_app(settings: Union[Settings, Mapping[str, Any], None] = None) -> Flask:
    """The greenflame WSGI app.

    ``settings`` is a :class:`Settings`, or a mapping of overrides applied over the
    ``GREENFLAME_*`` environment variables (None: the environment alone).
    """
    if not isinstance(settings, Settings):
        settings = Settings.from_env(settings)
    settings = settings.with_admin_token()
    app = Flask(__name__)
    app.config[SETTINGS_KEY] = settings
    # Werkzeug refuses larger bodies on every route; ingest applies its own limits too.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    errors.init_app(app)
    storage.init_app(app)
    access.init_app(app)  # every request's credential is checked before its view runs
    signin.init_app(app)  # the web UI's sign-in pages (token, one-time link, OpenID Connect)
    app.register_blueprint(tokens_api.bp)
    app.register_blueprint(ingest.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(pipeline_api.bp)
    app.register_blueprint(ops.bp)  # /livez, /readyz, /metrics
    # Both listen to the storage's profile_stored signal, and queue their work on their own thread.
    pipeline_worker.init_app(app)  # a stored profile's group is analysed
    rollups.init_app(app)  # a stored profile is folded; the last day's hourly rollups are read back
    retention.init_app(app)  # raw profiles past their span become hourly, then daily profiles
    timely.init_app(app)  # reads answered on helper threads, the last answer when a fresh one is late
    delivery.init_app(app)  # gzip, cache headers and versioned static URLs
    app.after_request(_security_headers)
    return app


# Scripts and styles come from our own static files only, so injected markup cannot run.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def serve(
    host: Optional[str] = None, port: Optional[int] = None, db: Optional[str] = None, blobs: Optional[str] = None
) -> int:
    """Run the server until SIGTERM or SIGINT; arguments given override the settings.

    With ``GREENFLAME_PROCESSES`` above 1, that many processes serve one listening socket
    (:mod:`.processes`).
    """
    settings = Settings.from_env({"host": host, "port": port, "database_url": db, "blobs_url": blobs})
    configure_process_logging(settings.log_format)
    if settings.processes > 1:
        from .processes import serve_processes

        return serve_processes(settings.with_admin_token(), serve_app)
    return serve_app(settings)


def serve_app(settings: Settings, sockets: Optional[List[socket.socket]] = None) -> int:
    """Serve one app on ``sockets`` (else on the settings' address) until SIGTERM or SIGINT, then drain."""
    app = create_app(settings)
    settings = app.config[SETTINGS_KEY]  # with the admin token
    server = _bind(app, settings, sockets)
    collector.tune(settings.gc_young_threshold)
    scheduler = pipeline_worker.get_scheduler(app)
    if pipeline_worker.analyses_in_process(app):
        scheduler.start()
    if sockets is None:
        print(f"greenflame server listening on {_url(server, settings)}", flush=True)
    stop = threading.Event()
    with stop_on_signals(stop):
        run_until_stopped(server, stop, settings.shutdown_timeout_s)
    shut_down(app, settings.shutdown_timeout_s)
    print("greenflame server stopped", flush=True)
    return 0


def shut_down(app: Flask, timeout_s: float) -> bool:
    """End ``app``'s work off the request path: the pipeline's scheduler stops, timely reads take no
    more, changed rollups are written (for up to ``timeout_s``: not rebuilt after a restart) and the
    rollup worker's thread ends, the app leaves the storage signals. False if rollups were left."""
    pipeline_worker.get_scheduler(app).stop()
    timely.close_app(app)
    written = rollups.finish(app, timeout_s)
    events.disconnect_app(app)
    return written


def _bind(app: Flask, settings: Settings, sockets: Optional[List[socket.socket]] = None) -> Any:
    from waitress.server import create_server

    where: Dict[str, Any] = {"sockets": sockets} if sockets else {"host": settings.host, "port": settings.port}
    try:
        server = create_server(
            app,
            **where,
            threads=SERVER_THREADS,
            ident="greenflame",
            # Far larger bodies are refused by waitress itself (plain text 413) before
            # they are buffered; anything near the limit reaches the app's JSON 413.
            max_request_body_size=2 * settings.max_upload_bytes,
            # Slow clients: see docs/security.md ("Connections").
            connection_limit=settings.connection_limit,
            channel_timeout=settings.channel_timeout_s,
            cleanup_interval=CLEANUP_INTERVAL_S,
            recv_bytes=RECV_BYTES,
        )
    except OSError as error:
        reason = error.strerror or str(error)
        raise UserError(f"cannot listen on {settings.host}:{settings.port}: {reason}") from None
    slow_clients.enforce_deadlines(server, settings.headers_timeout_s, settings.body_timeout_s)
    return server


def _url(server: Any, settings: Settings) -> str:
    port = getattr(server, "effective_port", None)
    if port is None:  # several sockets (e.g. localhost as IPv4 and IPv6)
        port = server.effective_listen[0][1]
    host = settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"
