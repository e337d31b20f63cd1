"""Which tests are slow: the fast loop (``pytest -m "not slow"``) leaves them out.

A test is slow when it starts a real server, browser, database or Lambda runtime (its fixtures
or its folder say so), or when it is named below because it measures something over seconds.
"""

from __future__ import annotations

from typing import Iterable

import pytest

#: Folders whose tests run real processes end to end.
SLOW_FOLDERS = ("e2e", "devtools")
#: Fixtures that start a real server, browser or database.
SLOW_FIXTURES = frozenset(
    {"live_server", "server_factory", "postgres_database", "chromium", "page", "moto_server", "aws_env"}
)
#: Modules whose every test runs real processes, signals or databases.
SLOW_MODULES = frozenset(
    {
        "test_pipeline.py",
        "test_postgres.py",
        "test_migrations.py",
        "test_agent_sigprof.py",
        "test_agent_lifecycle.py",
        "test_agent_other_pythons.py",
        "test_agent_delivery.py",
        "test_agent_exporters.py",
        "test_agent_runner.py",
        "test_server_serve.py",
        "test_server_ui.py",
        "test_rollups.py",
        "test_anomalies_eval.py",
        "test_worker.py",
        "test_shutdown.py",
        "test_schemathesis.py",
        "test_signin.py",
    }
)
#: Single tests over a second in otherwise fast modules.
SLOW_TESTS = frozenset(
    {
        "test_every_rule_handles_100k_distinct_samples",
        "test_every_rule_finds_its_own_target_in_a_large_profile",
        "test_cpu_probes_tell_a_busy_thread_from_a_sleeping_one",
        "test_the_split_between_two_functions_is_roughly_right",
        "test_quality_floor",
        "test_no_anomaly_in_a_quiet_series_with_gaps",
        "test_primary_rate_limit_waits_until_reset",
        "test_cli_export_writes_each_format",
        "test_pyinstrument_profiles_a_share_of_calls",
        "test_several_processes_create_one_issue",
        "test_s3_exporter_uploads_gzipped_reports",
        "test_the_agent_ships_to_s3",
        "test_s3_failure_is_an_export_error",
        "test_upload_over_limit_is_413",
        "test_expired_tokens_and_links_stop",
    }
)


def is_slow(item: pytest.Item) -> bool:
    """Whether ``item`` belongs to the slow set (see the module's docstring)."""
    path = item.path
    fixtures: Iterable[str] = getattr(item, "fixturenames", ())
    return (
        any(folder in path.parts for folder in SLOW_FOLDERS)
        or path.name in SLOW_MODULES
        or getattr(item, "originalname", item.name) in SLOW_TESTS
        or bool(SLOW_FIXTURES.intersection(fixtures))
    )


def mark_slow(items: Iterable[pytest.Item]) -> None:
    """Add the ``slow`` marker to every slow item."""
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
