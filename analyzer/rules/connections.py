"""Rules for connections rebuilt on every call: HTTP, TLS contexts and database connections.

Target frames were read from the installed sources of CPython 3.11 (``http/client.py``,
``socket.py``, ``ssl.py``, ``urllib/request.py``), urllib3 2.x, requests 2.3x and SQLAlchemy 2.x.
"""

from __future__ import annotations

from typing import Optional, Tuple

from ..model import Frame
from .frames import FrameMatcher
from .pattern import Pattern, define
from .scope import LAMBDA

_CONTEXT = (
    "per invocation (samples of the Lambda handler's invoke phase) or per request (samples of a "
    "service's request context: a request label or a request-dispatch frame)"
)

# -- http-connection-per-request ---------------------------------------------------

#: Frames that make a new HTTP client for one call: the module-level requests functions build a
#: Session (adapters, pool manager) each time; urllib.request never keeps a connection alive.
NEW_CLIENT_FRAMES: Tuple[FrameMatcher, ...] = (
    FrameMatcher("requests/api.py", ("request",)),
    FrameMatcher("urllib/request.py", ("urlopen", "OpenerDirector.open")),
)
#: A connection pool kept between calls: a connect under it, without a new-client frame above,
#: is the pool replacing a connection the server closed (``Connection: close``), not a new pool.
KEPT_POOL_FRAMES: Tuple[FrameMatcher, ...] = (
    FrameMatcher("urllib3/connectionpool.py", ("HTTPConnectionPool.urlopen",)),
)
#: An AWS SDK call: its client's pool belongs to the client, so a new client per invocation (and its
#: new connections) is one root cause, reported by ``aws-sdk-client-per-invocation``.
SDK_FRAMES: Tuple[FrameMatcher, ...] = (FrameMatcher("botocore/httpsession.py", ("URLLib3Session.send",)),)


def _any(matchers: Tuple[FrameMatcher, ...], frames: Tuple[Frame, ...]) -> bool:
    return any(matcher.matches(frame) for frame in frames for matcher in matchers)


def _http_entry(stack: Tuple[Frame, ...], found: Optional[Tuple[str, int]]) -> Optional[int]:
    """The HTTP pattern's entry in ``stack``; None for an AWS SDK call's connections."""
    if found is None or found[0] != HTTP_RULE_ID or _any(SDK_FRAMES, stack[: found[1]]):
        return None
    return found[1]


def _reuses_kept_pool(stack: Tuple[Frame, ...], entry: int) -> bool:
    """Whether the connection at ``entry`` is opened by a kept pool rather than a new client."""
    callers = stack[:entry]
    return _any(KEPT_POOL_FRAMES, callers) and not _any(NEW_CLIENT_FRAMES, callers)


HTTP_RULE_ID = "http-connection-per-request"

HTTP = Pattern(
    rule_id=HTTP_RULE_ID,
    title="New HTTP connection (or connection pool) for every request",
    targets=(
        # requests: a Session (and its adapters and pool manager) built and torn down per call,
        # which is what the module-level requests.get()/post() do.
        FrameMatcher("requests/sessions.py", ("Session.__init__", "Session.close")),
        FrameMatcher("requests/adapters.py", ("HTTPAdapter.__init__", "HTTPAdapter.close")),
        # urllib3: pools, and connections opened (TCP connect, TLS handshake) because none was reused.
        FrameMatcher("urllib3/poolmanager.py", ("PoolManager.__init__", "PoolManager._new_pool", "PoolManager.clear")),
        FrameMatcher("urllib3/connectionpool.py", ("HTTPConnectionPool._new_conn", "HTTPSConnectionPool._new_conn")),
        FrameMatcher("urllib3/connection.py", ("HTTPConnection.connect", "HTTPSConnection.connect")),
        # The standard library: http.client connects lazily in connect(); urllib.request never
        # keeps a connection alive, so each urlopen() reaches HTTPConnection.connect.
        FrameMatcher("http/client.py", ("HTTPConnection.connect", "HTTPSConnection.connect")),
        FrameMatcher("socket.py", ("create_connection",)),
        FrameMatcher("ssl.py", ("SSLContext.wrap_socket", "SSLSocket.do_handshake")),
    ),
    expected_share=0.01,
    threshold_share=0.05,
    what="HTTP connections (or connection pools) are opened for each call",
    advice="Keep one client for the process (a module-level requests.Session, urllib3.PoolManager or "
    "http.client connection) and reuse its kept-alive connections.",
    locate=_http_entry,
    kept=_reuses_kept_pool,
)

define(
    HTTP,
    description=(
        "Opening an HTTP connection costs a TCP handshake, and over TLS a TLS handshake with "
        "certificate verification (a few milliseconds of CPU and one or two network round trips); "
        "requests.get() and friends also build and tear down a whole Session and connection pool. "
        "A client kept for the life of the process reuses kept-alive connections, so connection "
        "set-up happens once per connection, not once per call. Connections a kept pool opens "
        "again because the server closed the last one (Connection: close) are not counted unless the "
        "same call site also builds new pools in later invocations; connections of AWS SDK calls are "
        "left to aws-sdk-client-per-invocation (a new client brings its own pool). A plain "
        "http.client connection object cannot be told from a new one: its reconnects count."
    ),
    context=_CONTEXT,
    fix=HTTP.advice,
    bad_example=(
        "import requests\n\n"
        "def handler(event, context):\n"
        "    return requests.get(API + '/prices').json()  # new Session, pool and connection\n"
    ),
    good_example=(
        "import requests\n\n"
        "SESSION = requests.Session()  # kept-alive connections, reused\n\n"
        "def handler(event, context):\n"
        "    return SESSION.get(API + '/prices').json()\n"
    ),
)

# -- ssl-context-per-call ----------------------------------------------------------

SSL_CONTEXT = Pattern(
    rule_id="ssl-context-per-call",
    title="TLS context created for every call",
    targets=(
        FrameMatcher(
            "ssl.py",
            (
                "create_default_context",
                "_create_unverified_context",
                "SSLContext.__new__",
                "SSLContext.load_default_certs",
            ),
        ),
        FrameMatcher("urllib3/util/ssl_.py", ("create_urllib3_context",)),
    ),
    expected_share=0.01,
    threshold_share=0.05,
    what="TLS contexts are created (and CA certificates loaded) for each call",
    advice="Create the ssl.SSLContext once (module level) and pass the same context to every connection.",
)

define(
    SSL_CONTEXT,
    description=(
        "ssl.create_default_context() allocates an OpenSSL context and loads the whole CA bundle "
        "(load_default_certs / load_verify_locations parse hundreds of certificates): about a "
        "millisecond or more of CPU each time. A context is immutable once configured and safe to "
        "share between connections and threads."
    ),
    context=_CONTEXT,
    fix=SSL_CONTEXT.advice,
    bad_example=(
        "import http.client, ssl\n\n"
        "def handler(event, context):\n"
        "    tls = ssl.create_default_context(cafile=CA_FILE)  # CA bundle parsed every call\n"
        "    conn = http.client.HTTPSConnection(HOST, context=tls)\n"
    ),
    good_example=(
        "import http.client, ssl\n\n"
        "TLS = ssl.create_default_context(cafile=CA_FILE)  # once per process\n\n"
        "def handler(event, context):\n"
        "    conn = http.client.HTTPSConnection(HOST, context=TLS)\n"
    ),
)

# -- db-connection-per-invocation --------------------------------------------------

DB = Pattern(
    rule_id="db-connection-per-invocation",
    title="Database engine or connection created on every invocation",
    targets=(
        # SQLAlchemy 2: an Engine (dialect, pool, event set-up) built per call; connections made
        # by the pool because none was pooled; the dialect's first-connect initialisation, which
        # runs once per new Engine; and the dispose() that throws the pool away.
        FrameMatcher("sqlalchemy/engine/create.py", ("create_engine",)),
        FrameMatcher("sqlalchemy/engine/base.py", ("Engine.dispose",)),
        FrameMatcher("sqlalchemy/pool/base.py", ("_ConnectionRecord.__connect", "Pool._create_connection")),
        FrameMatcher("sqlalchemy/engine/default.py", ("DefaultDialect.initialize",)),
    ),
    expected_share=0.01,
    threshold_share=0.03,
    what="Database engines or connections are created while the handler runs",
    advice="Create the engine (or connection) once at module level and reuse it; keep a small pool.",
    contexts=(LAMBDA,),
)

define(
    DB,
    description=(
        "Building an SQLAlchemy Engine creates its dialect, pool and event machinery, and its first "
        "connection runs the dialect's initialisation (server version, default schema, isolation "
        "level queries). For a network database a new connection adds the TCP and TLS handshakes "
        "and authentication round trips. A Lambda execution environment serves many invocations "
        "one at a time, so one engine with a pool of one connection, built at init, serves them all. "
        "The standard library's sqlite3.connect() is implemented in C and has no Python frame: a "
        "plain sqlite3 connection per call cannot be seen by a Python stack sampler (it is cheap "
        "next to a network connection)."
    ),
    context=(
        "invoke phase of an AWS Lambda function (samples labelled lambda_phase=invoke, or under the "
        "handler named in metadata.lambda.handler)"
    ),
    fix=DB.advice,
    bad_example=(
        "from sqlalchemy import create_engine, text\n\n"
        "def handler(event, context):\n"
        "    engine = create_engine(DB_URL)  # dialect, pool and first connect every call\n"
        "    with engine.connect() as conn:\n"
        "        return conn.execute(text('select count(*) from orders')).scalar()\n"
    ),
    good_example=(
        "from sqlalchemy import create_engine, text\n\n"
        "ENGINE = create_engine(DB_URL, pool_size=1)  # once per execution environment\n\n"
        "def handler(event, context):\n"
        "    with ENGINE.connect() as conn:\n"
        "        return conn.execute(text('select count(*) from orders')).scalar()\n"
    ),
)
