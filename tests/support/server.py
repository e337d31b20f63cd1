"""Fixtures for server tests: a real ``greenflame serve`` process on a free port.

``live_server`` (one per test session) and ``server_factory`` (for servers with their own
settings) start the command line in a subprocess with a temporary data folder, wait until
it answers, and stop it with SIGTERM at teardown (killing it if it does not stop in time).

Access control is on, as in production: each server's ``session`` sends a read token (every
group) made through the admin API at start; ``anonymous`` sends nothing, ``admin_headers()``
the admin token.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests

from greenflame.agent.exporters import encode
from greenflame.analyzer.formats import greenflame_json
from greenflame.analyzer.model import Frame, Profile

ADMIN_TOKEN = "test-admin-token-" + "x" * 16
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_URL_LINE = re.compile(r"listening on (http://\S+)")


@dataclass
class LiveServer:
    """A running ``greenflame serve`` and helpers to talk to it."""

    url: str
    admin_token: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    session: requests.Session = field(default_factory=requests.Session)
    anonymous: requests.Session = field(default_factory=requests.Session)
    read_token: str = ""

    def api(self, path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``)."""
        return self.url.rstrip("/") + path

    def admin_headers(self) -> Dict[str, str]:
        """The Authorization header with the admin token."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def create_token(self, scope: str, group: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
        """Make an API token (or, with ``kind="link"``, a sign-in link) with the admin token; its JSON."""
        body = {"name": f"test {scope}", "scope": scope, "group": group, **fields}
        response = requests.post(self.api("/api/v1/tokens"), json=body, headers=self.admin_headers(), timeout=10)
        if response.status_code != 201:
            raise AssertionError(f"making a {scope} token failed: {response.status_code} {response.text}")
        made: Dict[str, Any] = response.json()
        return made

    def create_group(self, name: str) -> str:
        """Create group ``name`` with the admin token; return its ingest key."""
        response = self.session.post(
            self.api("/api/v1/groups"),
            json={"name": name},
            headers=self.admin_headers(),
            timeout=10,
        )
        if response.status_code != 201:
            raise AssertionError(f"creating group {name!r} failed: {response.status_code} {response.text}")
        key: str = response.json()["ingest_key"]
        return key

    def log(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send SIGTERM and wait; kill the process if it outlives ``timeout``. Returns the exit code."""
        self.session.close()
        self.anonymous.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode


def unique_name(prefix: str = "group") -> str:
    """A group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_profile(group: str, start_time_unix_ns: int = 1_700_000_000 * 10**9, scale: int = 1) -> Profile:
    """A small profile of ``group``: a handler calling a hot function and an idle wait.

    Values are (wall, cpu): parse (6, 5), handler itself (2, 1), sleep (4, 0); all times ``scale``.
    """
    profile = Profile(group=group, start_time_unix_ns=start_time_unix_ns, duration_ns=60 * 10**9)
    handler = Frame("app.handler", "/srv/app.py", 10)
    profile.add(
        [Frame("<module>", "/srv/main.py", 1), handler, Frame("app.parse", "/srv/app.py", 30)], [6 * scale, 5 * scale]
    )
    profile.add([Frame("<module>", "/srv/main.py", 1), handler], [2 * scale, 1 * scale])
    profile.add([Frame("<module>", "/srv/main.py", 1), Frame("time.sleep", "", 0)], [4 * scale, 0])
    return profile


def ingest(
    server: LiveServer,
    key: Optional[str],
    body: bytes,
    headers: Optional[Dict[str, str]] = None,
    gzipped: bool = True,
) -> requests.Response:
    """POST ``body`` (compressed here unless ``gzipped`` is false) to the ingest endpoint."""
    sent = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    if gzipped:
        sent["Content-Encoding"] = "gzip"
        body = gzip.compress(body)
    # No key: no Authorization header at all (None drops the session's read token).
    sent: Dict[str, Optional[str]] = {**sent, "Authorization": f"Bearer {key}" if key is not None else None}
    sent.update(headers or {})
    return server.session.post(server.api("/api/v1/ingest"), data=body, headers=sent, timeout=30)


def ingest_profile(
    server: LiveServer, key: Optional[str], profile: Profile, headers: Optional[Dict[str, str]] = None
) -> requests.Response:
    """POST ``profile`` as gzipped wire-format JSON, its frames and samples in columns as the agent sends them."""
    return ingest(server, key, agent_body(profile), headers)


def agent_body(profile: Profile, compress: bool = False) -> bytes:
    """``profile`` as the agent sends it: wire format version 2, through the agent's own encoder."""
    return encode(greenflame_json.profile_to_dict(profile), compress=compress, columns=True)


def server_command(*args: str) -> List[str]:
    """The installed ``greenflame`` command beside this interpreter (else its entry point run by it)."""
    script = Path(sys.executable).parent / "greenflame"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from greenflame.cli.main import main; sys.exit(main())", *args]


def server_env(data_dir: Path, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for a test server: no inherited GREENFLAME_* settings, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENFLAME_")}
    env.update({"GREENFLAME_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def start_server(
    data_dir: Path, env: Optional[Dict[str, str]] = None, admin_token: Optional[str] = ADMIN_TOKEN
) -> LiveServer:
    """Start ``greenflame serve`` on a free port and wait until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    extra = dict(env or {})
    if admin_token is not None:
        extra["GREENFLAME_ADMIN_TOKEN"] = admin_token
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            server_command("serve", "--host", "127.0.0.1", "--port", "0"),
            env=server_env(data_dir, extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = LiveServer("", admin_token or "", data_dir, process, log_path)
    try:
        server.url = _wait_for_url(server)
        _wait_until_healthy(server)
        if not server.admin_token:  # generated by the server, in its data folder
            folder = Path(extra.get("GREENFLAME_DATA_DIR", data_dir))
            server.admin_token = (folder / "admin-token").read_text(encoding="utf-8").strip()
        server.read_token = server.create_token("read")["token"]
        server.session.headers["Authorization"] = f"Bearer {server.read_token}"
    except BaseException:
        server.stop()
        raise
    return server


def _wait_for_url(server: LiveServer) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _URL_LINE.search(server.log())
        if found:
            return found.group(1)
        if server.process.poll() is not None:
            raise RuntimeError(f"greenflame serve exited with {server.process.returncode}:\n{server.log()}")
        time.sleep(0.05)
    raise RuntimeError(f"greenflame serve printed no URL within {START_TIMEOUT_S} s:\n{server.log()}")


def _wait_until_healthy(server: LiveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if requests.get(server.api("/api/v1/health"), timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"greenflame serve did not answer within {START_TIMEOUT_S} s:\n{server.log()}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server for the session; tests use their own group names (see ``unique_name``)."""
    server = start_server(tmp_path_factory.mktemp("live-server") / "data")
    yield server
    server.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers with their own settings: ``server_factory(env={...}, admin_token=...)``."""
    started: List[LiveServer] = []

    def start(env: Optional[Dict[str, str]] = None, admin_token: Optional[str] = ADMIN_TOKEN) -> LiveServer:
        server = start_server(tmp_path / f"data{len(started)}", env, admin_token)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


POSTGRES_URL_VARIABLE = "GREENFLAME_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_database() -> Iterator[Callable[[], str]]:
    """Make fresh databases on the test PostgreSQL server, each dropped afterwards: ``url = postgres_database()``.

    ``scripts/test`` starts the server (``scripts/start-postgres``) and names it in
    ``GREENFLAME_TEST_POSTGRES_URL``; without it the test is skipped (a failure on CI).
    """
    base = os.environ.get(POSTGRES_URL_VARIABLE)
    if not base:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set (scripts/test starts PostgreSQL and sets it)")
    import sqlalchemy

    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    made: List[str] = []

    def make() -> str:
        name = f"greenflame_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return f"{base.rsplit('/', 1)[0]}/{name}"

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


def assert_error(response: requests.Response, status: int, code: str) -> None:
    """The response is a one-line JSON error with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and "\n" not in error["message"]
    assert "Traceback" not in response.text


def read_client(app: Any) -> Any:
    """A Flask test client of ``app`` sending a read token for every group by default (made in its
    database); a request's own ``Authorization`` header replaces it."""
    from greenflame.server.storage import EXTENSION_KEY
    from greenflame.server.tokens import TokenStore

    token = TokenStore(app.extensions[EXTENSION_KEY].engine).create("read", name="tests").secret
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client
