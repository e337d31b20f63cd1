"""``metadata.invocations.first_sequence`` and the local runner's mark in ``metadata.lambda``."""

from __future__ import annotations

from greenflame.agent.aws_lambda import ENV_LOCAL_RUNNER, lambda_metadata
from greenflame.agent.invocations import InvocationStats


def test_first_sequence_numbers_each_window_from_the_process_start() -> None:
    stats = InvocationStats()
    stats.record(3.0, cold_start=True)
    stats.record(2.0, cold_start=False)
    first = stats.take()
    stats.record(1.0, cold_start=False)
    second = stats.take()
    assert first is not None and second is not None
    assert (first["first_sequence"], second["first_sequence"]) == (1, 3)


def test_the_local_runner_is_recorded_only_when_set() -> None:
    assert lambda_metadata(env={ENV_LOCAL_RUNNER: "greenflame lambda invoke"})["local_runner"] == (
        "greenflame lambda invoke"
    )
    assert "local_runner" not in lambda_metadata(env={})
