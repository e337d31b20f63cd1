"""``greenflame serve`` as a process: start-up, admin token, port in use, clean shutdown."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
from pathlib import Path
from typing import Callable

from support.server import LiveServer, server_command, server_env


def test_sigterm_stops_the_server_cleanly(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory()
    assert server.url.startswith("http://127.0.0.1:")
    assert server.stop() == 0
    assert "greenflame server stopped" in server.log()
    assert "Traceback" not in server.log()


def test_sigint_stops_the_server_cleanly(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory()
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=15) == 0
    assert "Traceback" not in server.log()


def test_admin_token_is_generated_once_with_mode_0600(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(admin_token=None)
    token_file = server.data_dir / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert str(token_file) in server.log()
    server.admin_token = token_file.read_text().strip()
    assert server.create_group("made-with-generated-token").startswith("gfi_")
    assert server.stop() == 0
    token_before = token_file.read_text()
    again = server_factory(admin_token=None, env={"GREENFLAME_DATA_DIR": str(server.data_dir)})
    assert token_file.read_text() == token_before
    groups = again.session.get(again.api("/api/v1/groups"), timeout=10).json()["groups"]
    assert [g["name"] for g in groups] == ["made-with-generated-token"]  # data survived the restart


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            server_command("serve", "--host", "127.0.0.1", "--port", str(port)),
            env=server_env(tmp_path, {"GREENFLAME_ADMIN_TOKEN": "t"}),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        server_command("serve", "--port", "0"),
        env=server_env(tmp_path, {"GREENFLAME_MAX_UPLOAD_BYTES": "lots"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "greenflame: error: GREENFLAME_MAX_UPLOAD_BYTES must be a whole number, got 'lots'"


def test_unsupported_blob_store_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        server_command("serve", "--port", "0", "--blobs", "gs://bucket/profiles"),
        env=server_env(tmp_path, {"GREENFLAME_ADMIN_TOKEN": "t"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("greenflame: error: blob store 'gs://bucket/profiles'")
