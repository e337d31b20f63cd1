"""The pipeline prices findings with the group's observed traffic, never with a local loop's rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.builders import lambda_profile

from greenflame.analyzer import impact
from greenflame.analyzer.model import Profile
from greenflame.analyzer.rules.finding import Setting
from greenflame.server.pipeline import Pipeline, PipelineConfig
from greenflame.server.pipeline_store import PipelineStore
from greenflame.server.storage import Storage
from greenflame.server.tickets.store import TicketStore

GROUP = "orders"


@pytest.fixture()
def storage(tmp_path: Path) -> Storage:
    opened = Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "blobs"))
    opened.create_group(GROUP)
    return opened


def _rate_after_run(storage: Storage, *profiles: Profile) -> Setting:
    store = PipelineStore(storage.engine)
    for profile in profiles:
        storage.add_profile(GROUP, profile, None)
    pipeline = Pipeline(storage, store, TicketStore(storage.engine), PipelineConfig(), environ={})
    assert pipeline.run_group(GROUP) is not None
    (state,) = store.finding_states(GROUP)
    rate = state.finding.inputs.invocations_per_month
    assert rate is not None
    return rate


def test_two_environments_reports_are_summed_over_their_span(storage: Storage) -> None:
    first, second = lambda_profile(), lambda_profile()  # 100 invocations in 60 s each
    second.start_time_unix_ns += 30 * 10**9
    rate = _rate_after_run(storage, first, second)
    assert rate.source == "observed"
    assert rate.value == pytest.approx(200 / 90 * impact.SECONDS_PER_MONTH)


def test_a_local_runner_report_is_assumed(storage: Storage) -> None:
    local = lambda_profile()
    local.metadata["lambda"]["local_runner"] = "greenflame lambda invoke"
    rate = _rate_after_run(storage, local)
    assert (rate.source, rate.value) == ("assumed", impact.ASSUMED_INVOCATIONS_PER_MONTH)
