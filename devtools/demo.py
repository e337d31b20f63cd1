"""``greenflame demo``: the seed post's workflow, end to end, on this machine.

It starts ``greenflame serve`` on the embedded default storage (SQLite and a local folder, in a
fresh folder of its own), runs the seed's two Lambda functions under the agent through
``greenflame lambda invoke`` (the brown one creates a boto3 client in its handler, the green one at
init), waits until their profiles are stored, and prints the URL and each function's
recommendations, and a one-time sign-in link to the web UI. On a terminal the server keeps running
until Ctrl+C so the flame graphs can be read in a browser.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from greenflame.analyzer.errors import UserError

#: The seed's two functions: (group, handler, whether the rule must flag it).
FUNCTIONS = (
    ("demo-brown", "greenflame.sample_apps.seed_brown.lambda_handler"),
    ("demo-green", "greenflame.sample_apps.seed_green.lambda_handler"),
)
INVOCATIONS = 1500
STARTUP_TIMEOUT_S = 30.0


@dataclass
class DemoServer:
    """A ``greenflame serve`` child process and how to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    admin_token: str

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        """One JSON request to the server's API."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.admin_token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        """Stop the server, waiting a few seconds before killing it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _greenflame(*args: str) -> List[str]:
    return [sys.executable, "-m", "greenflame.cli", *args]


def start_server(data_dir: str) -> DemoServer:
    """Start ``greenflame serve`` on a free port with its data in ``data_dir``."""
    port = _free_port()
    token = secrets.token_urlsafe(24)
    env = dict(os.environ, GREENFLAME_DATA_DIR=data_dir, GREENFLAME_ADMIN_TOKEN=token)
    log = open(os.path.join(data_dir, "server.log"), "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        _greenflame("serve", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = DemoServer(process, f"http://127.0.0.1:{port}", token)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise UserError(f"the server did not start; see {log.name}")
        try:
            server.request("GET", "/api/v1/groups")
            return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    server.stop()
    raise UserError(f"the server did not answer within {STARTUP_TIMEOUT_S:.0f} s; see {log.name}")


def run_function(server: DemoServer, group: str, handler: str, invocations: int) -> None:
    """Run one Lambda handler ``invocations`` times under the agent, shipping to ``server``."""
    key = server.request("POST", "/api/v1/groups", {"name": group})["ingest_key"]
    env = dict(os.environ, GREENFLAME_INGEST_KEY=key, GREENFLAME_GROUP=group, GREENFLAME_REPORT_INTERVAL_S="5")
    print(f"running {handler} {invocations} times under the agent ...", file=sys.stderr, flush=True)
    result = subprocess.run(
        _greenflame("lambda", "invoke", handler, "--invocations", str(invocations), "--server", server.url),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=sys.stderr,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise UserError(f"running {handler} failed with exit status {result.returncode}")


def recommendations(server: DemoServer, group: str) -> Dict[str, Any]:
    """The group's analysis document from the server's API."""
    report: Dict[str, Any] = server.request("GET", f"/api/v1/groups/{group}/recommendations")
    return report


def print_report(server: DemoServer, group: str, report: Dict[str, Any]) -> None:
    """Print one group's recommendations with the text renderer and the page's URL."""
    from greenflame.analyzer.renderers import text
    from greenflame.analyzer.report import Report

    print(f"\n== {group}: {server.url}/groups/{group}")
    print(text.render(Report.from_dict(report)))


def sign_in_link(server: DemoServer) -> str:
    """A one-time link that signs a browser in to the demo server with read scope."""
    body = {"name": "greenflame demo", "scope": "read", "kind": "link", "expires_in_s": 86400}
    link: str = server.request("POST", "/api/v1/tokens", body)["sign_in_url"]
    return link


def run_demo(invocations: int = INVOCATIONS) -> int:
    """Run the demo; return the exit status."""
    data_dir = tempfile.mkdtemp(prefix="greenflame-demo-")
    server = start_server(data_dir)
    try:
        print(f"greenflame server: {server.url}  (data in {data_dir})", file=sys.stderr, flush=True)
        for group, handler in FUNCTIONS:
            run_function(server, group, handler, invocations)
        for group, _ in FUNCTIONS:
            print_report(server, group, recommendations(server, group))
        print(f"\nOpen {sign_in_link(server)} to read the flame graphs.", flush=True)
        print("(a one-time sign-in link, valid for a day; it signs this browser in with read scope)", flush=True)
        if sys.stdout.isatty():
            print("The server keeps running; press Ctrl+C to stop it.", file=sys.stderr, flush=True)
            server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
