"""The guard swallows (and records) the agent's exceptions, never the user's; the fixture reports them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from greenflame.agent import guard

TESTS = Path(__file__).resolve().parents[1]


def test_guard_logs_swallows_and_records(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="greenflame.agent"):
        with guard.guard("sampling"):
            raise KeyError("boom")
        with guard.guard("sampling"):
            raise KeyError("again")
    records = guard.swallowed()
    assert [(r.where, type(r.error)) for r in records] == [("sampling", KeyError), ("sampling", KeyError)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info  # repeats are logged at debug level only
    guard.clear()


def test_guarded_returns_the_default_on_error() -> None:
    @guard.guarded("flush", default=False)
    def flush() -> bool:
        raise OSError("disk full")

    assert flush() is False
    assert [r.where for r in guard.swallowed()] == ["flush"]
    guard.clear()


def test_interrupts_and_exits_are_never_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt), guard.guard("tick"):
        raise KeyboardInterrupt
    with pytest.raises(SystemExit), guard.guard("tick"):
        raise SystemExit(3)
    assert guard.swallowed() == []


@pytest.mark.agent_errors_expected
def test_the_marker_lets_a_test_provoke_agent_errors() -> None:
    with guard.guard("provoked"):
        raise RuntimeError("on purpose")


def test_the_fixture_fails_a_test_whose_agent_errors_were_swallowed(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["support.agent"]\n')
    (tmp_path / "test_hidden_bug.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from greenflame.agent import guard

            def test_hidden_bug():
                with guard.guard("scheduler"):
                    raise ValueError("hidden agent bug")

            @pytest.mark.agent_errors_expected
            def test_expected():
                with guard.guard("scheduler"):
                    raise ValueError("expected")

            def test_clean():
                pass
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 failed, 2 passed" in result.stdout, result.stdout + result.stderr
    assert "scheduler: ValueError: hidden agent bug" in result.stdout
