"""Shared fixtures: each area keeps its own in a plugin module beside this file.

On CI (``CI=true``) a skipped test or module is turned into a failure: there, a missing
dependency must fail the run, never hide a test.
"""

from __future__ import annotations

import os
from typing import Any, Generator

import pytest
from support.speed import mark_slow

pytest_plugins = ["support.agent", "support.server", "support.browser"]

ON_CI = os.environ.get("CI") == "true"


def _fail_skip(report: Any) -> None:
    if ON_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, where every dependency must be present: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    _fail_skip(outcome.get_result())


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Mark the slow tests, so that ``pytest -m "not slow"`` is the fast loop."""
    mark_slow(items)
