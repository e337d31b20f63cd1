"""``greenflame export``: in process and through the real command."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from support.formats import canonical, make_profile

from greenflame.analyzer.formats import dump_profile, load_profile, speedscope
from greenflame.cli.export import export_command


def test_export_command_in_process(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from greenflame.analyzer.errors import UserError

    source = tmp_path / "p.json"
    source.write_bytes(dump_profile(make_profile(), "json"))
    assert export_command(str(source), "collapsed", None) == 0
    assert capsysbinary.readouterr().out == dump_profile(make_profile(), "collapsed")
    assert export_command(str(source), "json", str(tmp_path / "copy.json.gz")) == 0
    assert (tmp_path / "copy.json.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert load_profile(str(tmp_path / "copy.json.gz")) == make_profile()
    assert export_command(str(source), "svg", None) == 0
    assert capsysbinary.readouterr().out.startswith(b"<?xml")
    with pytest.raises(UserError, match="unknown export format 'bmp'"):
        export_command(str(source), "bmp", None)
    with pytest.raises(UserError, match="cannot write"):
        export_command(str(source), "json", str(tmp_path / "no-such-dir" / "out.json"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", _CLI_MAIN, *args], cwd=cwd, capture_output=True, timeout=60, check=False
    )


# What the ``greenflame`` console script runs, without depending on where pip put the script.
_CLI_MAIN = "import sys; from greenflame.cli.main import main; sys.exit(main())"


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "profile.json.gz"
    path.write_bytes(gzip.compress(dump_profile(make_profile(), "json")))
    return path


def test_cli_export_writes_each_format(profile_file: Path, tmp_path: Path) -> None:
    result = _cli("export", str(profile_file), "--format", "speedscope", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["$schema"] == speedscope.SCHEMA
    result = _cli("export", str(profile_file), "--format", "pprof", "-o", "out.pb.gz", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == b"", result.stderr
    assert canonical(load_profile(str(tmp_path / "out.pb.gz"))) == canonical(make_profile())
    result = _cli("export", str(profile_file), "--format", "collapsed", cwd=tmp_path)
    assert result.stdout == dump_profile(make_profile(), "collapsed")


@pytest.mark.parametrize(
    ("make_input", "fmt", "message"),
    [
        (lambda d: d / "missing.json", "pprof", "missing.json: no such file"),
        (lambda d: d, "pprof", "is a directory"),
        (lambda d: _write(d / "bad.json", b'{"format": "greenflame-profile", "version": 7}'), "pprof", "version 7"),
        (lambda d: _write(d / "junk.bin", bytes(range(256))), "collapsed", "could not recognise"),
        (lambda d: _write(d / "junk.bin", bytes(range(256))), "svg", "could not recognise"),
    ],
)
def test_cli_export_errors_are_one_line(
    tmp_path: Path, make_input: Callable[[Path], Path], fmt: str, message: str
) -> None:
    result = _cli("export", str(make_input(tmp_path)), "--format", fmt, cwd=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert stderr.count("\n") == 1 and stderr.startswith("greenflame: error: ") and message in stderr, stderr
    assert "Traceback" not in stderr and result.stdout == b""


def test_cli_export_rejects_an_unknown_format(profile_file: Path, tmp_path: Path) -> None:
    result = _cli("export", str(profile_file), "--format", "bmp", cwd=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr
    assert "invalid choice: 'bmp'" in stderr.splitlines()[-1]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def test_export_refuses_binary_pprof_on_a_terminal(profile_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from greenflame.analyzer.errors import UserError

    terminal = _Terminal(io.BytesIO())
    monkeypatch.setattr(sys, "stdout", terminal)
    with pytest.raises(UserError, match="pprof output is binary"):
        export_command(str(profile_file), "pprof", None)
    assert export_command(str(profile_file), "collapsed", None) == 0
    assert terminal.buffer.getvalue() == dump_profile(make_profile(), "collapsed")  # type: ignore[attr-defined]
