"""Server settings, declared once: each field names its ``GREENFLAME_*`` variable, default and help.

``Settings.from_env()`` reads the environment; explicit overrides (from the command line or
a test) win over it. The table in ``docs/api.md`` lists the same settings; a test keeps the
two in step.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, get_type_hints

from greenflame.analyzer.errors import UserError

from .private_files import private_dir

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"
SESSION_KEY_FILE = "session-key"
MIB = 1024 * 1024
#: Deepest stack setting allowed: a flame graph node is two JSON levels (object, children
#: array) and Python's JSON encoder stops near 1000 levels.
MAX_STACK_DEPTH = 400
_POSITIVE = (
    "max_upload_bytes",
    "max_decompressed_bytes",
    "max_query_profiles",
    "max_summed_profiles",
    "analysis_window_s",
    "ingest_max_age_s",
    "ingest_max_ahead_s",
    "max_metadata_bytes",
    "connection_limit",
    "channel_timeout_s",
    "headers_timeout_s",
    "body_timeout_s",
    "auth_failure_limit",
    "feedback_limit",
    "analysis_workers",
    "analysis_budget_s",
    "worker_poll_s",
    "processes",
    "session_max_age_s",
    "raw_retention_s",
    "hourly_retention_s",
    "daily_retention_s",
    "compaction_interval_s",
)

#: ``analysis`` values: each server process analyses, or only ``greenflame worker`` processes do.
IN_PROCESS = "in-process"
WORKERS = "workers"
_CHOICES = {
    "log_format": ("text", "json"),
    "metrics_access": ("admin", "public"),
    "analysis": (IN_PROCESS, WORKERS),
    "anonymous_read": ("off", "on"),
    "secure_cookies": ("auto", "always"),
}


def _setting(env: str, default: Any, help: str) -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    """Everything the server can be configured with."""

    data_dir: str = _setting(
        "GREENFLAME_DATA_DIR", "./greenflame-data", "folder for the default database, profiles and admin token"
    )
    database_url: Optional[str] = _setting(
        "GREENFLAME_DATABASE_URL", None, "SQLAlchemy database URL (default: SQLite file in the data folder)"
    )
    blobs_url: Optional[str] = _setting(
        "GREENFLAME_BLOBS_URL",
        None,
        "where profiles are stored: a folder path, file:// URL or s3://bucket/prefix (default: data folder)",
    )
    admin_token: Optional[str] = _setting(
        "GREENFLAME_ADMIN_TOKEN", None, "token for admin calls (default: generated once, kept in the data folder)"
    )
    secret_keys: Optional[str] = _setting(
        "GREENFLAME_SECRET_KEYS",
        None,
        "Fernet keys sealing stored credentials, comma-separated, the sealing one first (default: a key file)",
    )
    anonymous_read: str = _setting(
        "GREENFLAME_ANONYMOUS_READ",
        "off",
        "off: every read needs a token or a signed-in session; on: anyone who can reach the server reads every group",
    )
    session_key: Optional[str] = _setting(
        "GREENFLAME_SESSION_KEY", None, "key signing the web UI's session cookies (default: generated once, a file)"
    )
    session_max_age_s: int = _setting(
        "GREENFLAME_SESSION_MAX_AGE_S", 12 * 3600, "a web UI sign-in lasts this long, then the browser signs in again"
    )
    secure_cookies: str = _setting(
        "GREENFLAME_SECURE_COOKIES",
        "auto",
        "auto: cookies are Secure when the request or public_url is https; always: Secure on every response",
    )
    oidc_issuer: Optional[str] = _setting(
        "GREENFLAME_OIDC_ISSUER", None, "OpenID Connect issuer URL for UI sign-in (unset: token sign-in only)"
    )
    oidc_metadata_url: Optional[str] = _setting(
        "GREENFLAME_OIDC_METADATA_URL",
        None,
        "the provider's discovery document (default: <issuer>/.well-known/openid-configuration)",
    )
    oidc_client_id: Optional[str] = _setting(
        "GREENFLAME_OIDC_CLIENT_ID", None, "this server's OpenID Connect client id"
    )
    oidc_client_secret: Optional[str] = _setting(
        "GREENFLAME_OIDC_CLIENT_SECRET", None, "this server's OpenID Connect client secret"
    )
    oidc_allowed: Optional[str] = _setting(
        "GREENFLAME_OIDC_ALLOWED",
        None,
        "who may sign in through OIDC: comma-separated verified emails or @domains (default: every provider user)",
    )
    oidc_admins: Optional[str] = _setting(
        "GREENFLAME_OIDC_ADMINS", None, "comma-separated verified emails or subjects signed in with admin scope"
    )
    max_upload_bytes: int = _setting(
        "GREENFLAME_MAX_UPLOAD_BYTES", 8 * MIB, "largest accepted ingest body, as sent (compressed)"
    )
    max_decompressed_bytes: int = _setting(
        "GREENFLAME_MAX_DECOMPRESSED_BYTES", 64 * MIB, "largest accepted ingest body after decompression"
    )
    max_query_profiles: int = _setting(
        "GREENFLAME_MAX_QUERY_PROFILES",
        5000,
        "most profiles a query with label filters, or for recommendations, may merge (each merged with its labels)",
    )
    max_summed_profiles: int = _setting(
        "GREENFLAME_MAX_SUMMED_PROFILES",
        400_000,
        "most profiles a flame graph, sandwich, functions or diff read without label filters may sum from"
        " the rollups (an hour of a fleet sending 100 reports a second is 360,000)",
    )
    read_deadline_ms: int = _setting(
        "GREENFLAME_READ_DEADLINE_MS",
        100,
        "how long a flame graph, sandwich, functions or labels read waits for a fresh answer before it"
        " takes the last one (none when the last two answers each took longer; see read_max_stale_s)",
    )
    read_max_stale_s: int = _setting(
        "GREENFLAME_READ_MAX_STALE_S",
        10,
        "oldest last answer a late read may take instead (its age in the Age header); 0: always wait",
    )
    read_refresh_s: int = _setting(
        "GREENFLAME_READ_REFRESH_S",
        5,
        "while a question's last two answers were each late, how often it is computed again (reads in"
        " between take the last answer; at most read_max_stale_s); 0: a new computation for every read",
    )
    rollup_queue_limit: int = _setting(
        "GREENFLAME_ROLLUP_QUEUE_LIMIT",
        2000,
        "reports waiting to be added to their rollups beyond which ingest waits for room (up to 5 s, then 503"
        " with Retry-After; nothing is stored); 0: no wait (beyond 10,000 the work is left to the first read)",
    )
    public_url: Optional[str] = _setting(
        "GREENFLAME_PUBLIC_URL", None, "the server's URL as users reach it, for links in tickets (default: no links)"
    )
    analysis_delay_ms: int = _setting(
        "GREENFLAME_ANALYSIS_DELAY_MS",
        2000,
        "wait after a group's first new profile before analysing it (batches bursts)",
    )
    analysis_interval_s: int = _setting(
        "GREENFLAME_ANALYSIS_INTERVAL_S",
        60,
        "a group is analysed at most once per this many seconds by each process (a vote asks at once)",
    )
    analysis_window_s: int = _setting(
        "GREENFLAME_ANALYSIS_WINDOW_S", 3600, "span of recent profiles merged for findings, up to the group's latest"
    )
    analysis: str = _setting(
        "GREENFLAME_ANALYSIS",
        "in-process",
        "who analyses groups: in-process (each server) or workers (only `greenflame worker` processes)",
    )
    worker_poll_s: int = _setting(
        "GREENFLAME_WORKER_POLL_S", 2, "how often `greenflame worker` asks the database for groups with new data"
    )
    analysis_workers: int = _setting(
        "GREENFLAME_ANALYSIS_WORKERS", 2, "threads analysing groups at once, so one slow group does not hold the others"
    )
    analysis_budget_s: int = _setting(
        "GREENFLAME_ANALYSIS_BUDGET_S", 120, "a group's analysis running longer gives its thread to the other groups"
    )
    anomaly_history_s: int = _setting(
        "GREENFLAME_ANOMALY_HISTORY_S", 7 * 86400, "span of history anomaly detection learns from"
    )
    raw_retention_s: int = _setting(
        "GREENFLAME_RAW_RETENTION_S",
        15 * 86400,
        "raw profiles are kept this long, then merged into hourly profiles (at least the anomaly history)",
    )
    hourly_retention_s: int = _setting(
        "GREENFLAME_HOURLY_RETENTION_S", 60 * 86400, "hourly profiles are kept this long, then merged into daily ones"
    )
    daily_retention_s: int = _setting(
        "GREENFLAME_DAILY_RETENTION_S", 3 * 365 * 86400, "daily profiles are kept this long, then deleted"
    )
    compaction_interval_s: int = _setting(
        "GREENFLAME_COMPACTION_INTERVAL_S", 3600, "how often each server process applies retention"
    )
    ingest_max_age_s: int = _setting(
        "GREENFLAME_INGEST_MAX_AGE_S", 10 * 365 * 86400, "oldest accepted profile start, s before the server's clock"
    )
    ingest_max_ahead_s: int = _setting(
        "GREENFLAME_INGEST_MAX_AHEAD_S", 3600, "latest accepted profile end, in seconds after the server's clock"
    )
    max_stack_depth: int = _setting(
        "GREENFLAME_MAX_STACK_DEPTH", 256, "frames kept per stack at ingest (root side; deeper ones end in [truncated])"
    )
    max_metadata_bytes: int = _setting(
        "GREENFLAME_MAX_METADATA_BYTES", 64 * 1024, "largest accepted profile metadata, as compact JSON"
    )
    connection_limit: int = _setting(
        "GREENFLAME_CONNECTION_LIMIT", 1000, "most open connections `greenflame serve` keeps; more wait to be accepted"
    )
    channel_timeout_s: int = _setting(
        "GREENFLAME_CHANNEL_TIMEOUT_S", 30, "an idle connection (no request in progress) is closed after this long"
    )
    headers_timeout_s: int = _setting(
        "GREENFLAME_HEADERS_TIMEOUT_S", 10, "a request's line and headers must arrive within this long of its start"
    )
    body_timeout_s: int = _setting(
        "GREENFLAME_BODY_TIMEOUT_S", 60, "a whole request, body included, must arrive within this long of its start"
    )
    auth_failure_limit: int = _setting(
        "GREENFLAME_AUTH_FAILURE_LIMIT", 20, "wrong admin tokens or ingest keys one client may send per minute"
    )
    feedback_limit: int = _setting("GREENFLAME_FEEDBACK_LIMIT", 10, "anomaly votes one client may send per minute")
    log_format: str = _setting("GREENFLAME_LOG_FORMAT", "text", "server log lines: text, or json (one object per line)")
    metrics_access: str = _setting(
        "GREENFLAME_METRICS_ACCESS", "admin", "who may read /metrics: admin (the admin token) or public (anyone)"
    )
    processes: int = _setting(
        "GREENFLAME_PROCESSES", 1, "`greenflame serve` processes sharing the listening socket (each with its threads)"
    )
    gc_young_threshold: int = _setting(
        "GREENFLAME_GC_YOUNG_THRESHOLD",
        50000,
        "new container objects between the garbage collector's young passes (0: Python's own)",
    )
    shutdown_timeout_s: int = _setting(
        "GREENFLAME_SHUTDOWN_TIMEOUT_S", 25, "on SIGTERM, how long requests in flight may take to finish"
    )
    host: str = _setting("GREENFLAME_HOST", "127.0.0.1", "address `greenflame serve` listens on")
    port: int = _setting("GREENFLAME_PORT", 8080, "port `greenflame serve` listens on")

    @classmethod
    def from_env(
        cls, overrides: Optional[Mapping[str, Any]] = None, environ: Optional[Mapping[str, str]] = None
    ) -> Settings:
        """Settings from ``GREENFLAME_*`` variables, then ``overrides`` (None values are ignored)."""
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: Dict[str, Any] = {}
        for item in fields(cls):
            text = env.get(item.metadata["env"])
            if text is not None and text != "":
                values[item.name] = _convert(item.metadata["env"], text, hints[item.name])
        unknown = set(overrides or {}) - {item.name for item in fields(cls)}
        if unknown:
            raise UserError(f"unknown server setting(s): {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise UserError for values that cannot work."""
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise UserError(f"{name} must be above zero, got {getattr(self, name)}")
        for name in (
            "gc_young_threshold",
            "analysis_delay_ms",
            "analysis_interval_s",
            "anomaly_history_s",
            "shutdown_timeout_s",
            "read_deadline_ms",
            "read_max_stale_s",
            "read_refresh_s",
            "rollup_queue_limit",
        ):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.raw_retention_s < max(self.anomaly_history_s, self.analysis_window_s):
            raise UserError("raw_retention_s must be at least anomaly_history_s and analysis_window_s")
        if not self.raw_retention_s <= self.hourly_retention_s <= self.daily_retention_s:
            raise UserError("retention must not shrink: raw_retention_s <= hourly_retention_s <= daily_retention_s")
        if not 2 <= self.max_stack_depth <= MAX_STACK_DEPTH:
            raise UserError(f"max_stack_depth must be between 2 and {MAX_STACK_DEPTH}, got {self.max_stack_depth}")
        if self.headers_timeout_s > self.body_timeout_s:
            raise UserError("headers_timeout_s must not be above body_timeout_s")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not 0 <= self.port <= 65535:
            raise UserError(f"port must be between 0 and 65535, got {self.port}")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise UserError(f"public_url must start with http:// or https://, got {self.public_url!r}")
        oidc = (self.oidc_issuer or self.oidc_metadata_url, self.oidc_client_id, self.oidc_client_secret)
        if any(oidc) and not all(oidc):
            raise UserError("OIDC sign-in needs GREENFLAME_OIDC_ISSUER, GREENFLAME_OIDC_CLIENT_ID and _CLIENT_SECRET")

    @property
    def oidc_enabled(self) -> bool:
        """Whether the web UI offers OpenID Connect sign-in."""
        return bool(self.oidc_client_id and (self.oidc_issuer or self.oidc_metadata_url))

    @property
    def data_path(self) -> Path:
        """The data folder as an absolute path."""
        return Path(self.data_dir).expanduser().resolve()

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data folder."""
        return self.database_url or f"sqlite:///{self.data_path / 'greenflame.db'}"

    def resolved_blobs_url(self) -> str:
        """The blob store URL, defaulting to a folder in the data folder."""
        return self.blobs_url or str(self.data_path / "profiles")

    def with_admin_token(self) -> Settings:
        """These settings with ``admin_token`` and ``session_key`` set, generating and storing them if needed."""
        admin_token = self.admin_token or load_or_create_admin_token(self.data_path)
        session_key = self.session_key or load_or_create_secret(self.data_path, SESSION_KEY_FILE, "session key")
        return replace(self, admin_token=admin_token, session_key=session_key)


def load_or_create_admin_token(data_dir: Path) -> str:
    """The admin token kept in ``data_dir``; on first use generate it and write it with mode 0600."""
    return load_or_create_secret(data_dir, ADMIN_TOKEN_FILE, "admin token")


def load_or_create_secret(data_dir: Path, filename: str, what: str) -> str:
    """The secret kept in ``data_dir/filename``; on first use generate it and write it with mode 0600."""
    path = data_dir / filename
    private_dir(data_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text(encoding="utf-8").strip()
        if not token:
            raise UserError(f"{path} is empty: delete it to generate a new {what}") from None
        log.info("%s read from %s", what, path)
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    log.warning("generated the %s and stored it in %s (readable by this user only)", what, path)
    return token


def describe() -> List[Tuple[str, str, str, str, str]]:
    """Rows of (name, variable, type, default, help) for documentation."""
    hints = get_type_hints(Settings)
    rows = []
    for item in fields(Settings):
        kind = _type_name(hints[item.name])
        rows.append((item.name, item.metadata["env"], kind, repr(item.default), item.metadata["help"]))
    return rows


def _type_name(kind: Any) -> str:
    if kind is int:
        return "int"
    if kind is str:
        return "str"
    return "str, optional"


def _convert(env: str, text: str, kind: Any) -> Any:
    if kind is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise UserError(f"{env} must be a whole number, got {text!r}") from None
    return text
