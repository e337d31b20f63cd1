"""Kept detector fits in the database (server/anomaly_fits.py): a process's first run of a group
scores only the new points, with the fits another process made, and finds what a whole-history
run finds."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest
from sqlalchemy import select

from greenflame.analyzer.model import Frame, Profile
from greenflame.server.schema import anomaly_fits
from greenflame.server.storage import Storage, StoredProfile

pytest.importorskip("sklearn")

GROUP = "svc"
FIVE_MINUTES_NS = 300 * 10**9
T0_NS = 1_700_006_400 * 10**9  # a UTC day's start
HANDLER = Frame("handler", "/srv/app/handler.py", 1)
PARSE = Frame("parse", "/srv/app/parse.py", 1)
RENDER = Frame("render", "/srv/app/render.py", 1)


def _profile(n: int) -> Profile:
    """Bucket ``n``: parse and render with a daily cycle; parse takes 8 more points from bucket 530."""
    made = Profile(group=GROUP, start_time_unix_ns=T0_NS + n * FIVE_MINUTES_NS, duration_ns=FIVE_MINUTES_NS)
    cycle = (n % 288) / 288
    parse = int(300 + 60 * abs(cycle - 0.5) + (n * 7919) % 23 + (160 if n >= 530 else 0))
    render = int(500 - 80 * abs(cycle - 0.5) + (n * 104729) % 29)
    made.add((HANDLER, PARSE), [parse, parse])
    made.add((HANDLER, RENDER), [render, render])
    made.add((HANDLER,), [2000 - parse - render, 2000 - parse - render])
    return made


@pytest.fixture(params=["sqlite", "postgresql"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tuple[str, str, List[Profile]]]:
    """A database (SQLite, or the test PostgreSQL) and folder holding two days of 5-minute reports
    of one group (and a few more)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_database")()
    else:
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    blobs = str(tmp_path / "blobs")
    storage = Storage.open(url, blobs)
    storage.create_group(GROUP)
    profiles = [_profile(n) for n in range(570)]
    for made in profiles:
        storage.add_profile(GROUP, made, None)
    storage.close()
    yield url, blobs, profiles


def _pipeline(storage: Storage):  # type: ignore[no-untyped-def]
    from greenflame.server.pipeline import Pipeline, PipelineConfig
    from greenflame.server.pipeline_store import PipelineStore
    from greenflame.server.tickets.store import TicketStore

    store = PipelineStore(storage.engine)
    return Pipeline(storage, store, TicketStore(storage.engine), PipelineConfig(), {})


def _window(rows: List[StoredProfile], profiles: List[Profile]) -> Callable[[], List[Profile]]:
    """The run's recent profiles (the structure's source) as ``Pipeline._detect`` asks for them."""
    return lambda: profiles[-12:]


def test_a_new_process_reads_the_fits_and_scores_only_recent_points(
    history: Tuple[str, str, List[Profile]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenflame.server import series as series_module

    url, blobs, profiles = history
    first = Storage.open(url, blobs)
    rows = first.find_profiles(GROUP)
    whole = _pipeline(first)._detect(GROUP, rows, _window(rows, profiles), {})  # writes the fits it made
    assert any(a.frame == "parse" for a in whole)
    with first.engine.connect() as conn:
        days = [row.day_unix_s for row in conn.execute(select(anomaly_fits.c.day_unix_s, anomaly_fits.c.fit_count))]
    assert len(days) == 2  # one row per day of the history
    first.close()

    score_from = (T0_NS + 570 * FIVE_MINUTES_NS) // 10**9 - 3 * 3600
    # The same scoring on the whole history, with no kept fit (a process of its own):
    reference_storage = Storage.open(url, blobs)
    reference_rows = reference_storage.find_profiles(GROUP)
    with reference_storage.engine.begin() as conn:
        saved = list(conn.execute(select(anomaly_fits)).mappings())
        conn.execute(anomaly_fits.delete())
    reference = _pipeline(reference_storage)._detect(
        GROUP, reference_rows, _window(reference_rows, profiles), {}, score_from
    )
    with reference_storage.engine.begin() as conn:
        conn.execute(anomaly_fits.delete())
        conn.execute(anomaly_fits.insert(), [dict(row) for row in saved])
    reference_storage.close()

    # A new process (a new storage object: nothing kept in memory) with the fits in the database:
    second = Storage.open(url, blobs)
    read: List[int] = []
    original = series_module.SeriesStore.group_series

    def counting(self, group, rows, resolution_s, structure_from=(), open_end=False):  # type: ignore[no-untyped-def]
        read.append(len(rows))
        return original(self, group, rows, resolution_s, structure_from, open_end)

    monkeypatch.setattr(series_module.SeriesStore, "group_series", counting)
    rows = second.find_profiles(GROUP)
    found = _pipeline(second)._detect(GROUP, rows, _window(rows, profiles), {}, score_from)
    second.close()
    assert read and read[0] <= (3 * 3600 + 27 * 3600) // 300 + 1  # the last 30 hours, not two days
    assert [a.to_dict() for a in found] == [a.to_dict() for a in reference]
    assert any(a.frame == "parse" for a in found)


def test_fits_made_under_another_configuration_or_form_are_not_read(history: Tuple[str, str, List[Profile]]) -> None:
    from greenflame.analyzer.anomaly_model import DetectorConfig
    from greenflame.server.anomaly_fits import FitStore, PipelineModels

    url, blobs, profiles = history
    storage = Storage.open(url, blobs)
    rows = storage.find_profiles(GROUP)
    _pipeline(storage)._detect(GROUP, rows, _window(rows, profiles), {})
    day = T0_NS // 10**9 + 86400
    assert FitStore(storage.engine).load(PipelineModels(), GROUP, day)
    other = FitStore(storage.engine, DetectorConfig(z_point=7.0))
    models = PipelineModels()
    assert not other.load(models, GROUP, day) and not models.models()
    with storage.engine.begin() as conn:  # a row this code did not write (an older form): fitted again
        conn.execute(anomaly_fits.update().values(fits=b"not zlib"))
    assert not FitStore(storage.engine).load(models, GROUP, day) and not models.models()
    storage.close()


def test_a_seasonal_model_survives_its_stored_form() -> None:
    from greenflame.analyzer.anomaly_model import SeasonalModel

    model = SeasonalModel(0.2, 0.01, (0.1, -0.2, 0.3), 0.05, 3, True, 1e-4, 1.15, 0.001)
    assert SeasonalModel.from_list(model.to_list()) == model
    with pytest.raises(ValueError, match="not a seasonal model"):
        SeasonalModel.from_list([1, 2])


def test_a_vote_rescores_from_the_anomaly_voted_on(
    history: Tuple[str, str, List[Profile]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from greenflame.server.pipeline import RESCORE_S, Pipeline

    url, blobs, _ = history
    storage = Storage.open(url, blobs)
    pipeline = _pipeline(storage)
    scored_from: List[object] = []
    original = Pipeline._detect

    def recording(self, group, rows, cache, feedback, score_from=None):  # type: ignore[no-untyped-def]
        scored_from.append(score_from)
        return original(self, group, rows, cache, feedback, score_from)

    monkeypatch.setattr(Pipeline, "_detect", recording)
    assert pipeline.run_group(GROUP) is not None
    (anomaly,) = [a for a in pipeline.store.anomalies(GROUP) if a.anomaly.frame == "parse"]
    pipeline.store.add_vote(anomaly, useful=False)
    pipeline.store.invalidate(GROUP)  # what the feedback route does
    summary = pipeline.run_group(GROUP)
    assert summary is not None and summary["error"] is None
    data_end_s = (T0_NS + 570 * FIVE_MINUTES_NS) // 10**9
    assert scored_from == [None, anomaly.anomaly.start_unix_s]  # not the whole history again
    assert anomaly.anomaly.start_unix_s < data_end_s - RESCORE_S
    # Without a new vote, a forced run (new channels) scores the last hour as usual.
    pipeline.store.invalidate(GROUP)
    pipeline.run_group(GROUP)
    assert scored_from[-1] == data_end_s - RESCORE_S
    storage.close()


def test_a_process_forgets_the_marks_of_days_past_the_history() -> None:
    from greenflame.server.anomaly_fits import PipelineModels

    models = PipelineModels()
    for day in (0, 86400, 2 * 86400):
        models.ready.add((GROUP, day))
        models.saved[(GROUP, day)] = 1
    models.ready.add(("other", 0))
    models.forget_before(GROUP, 2 * 86400)
    assert models.ready == {(GROUP, 2 * 86400), ("other", 0)} and list(models.saved) == [(GROUP, 2 * 86400)]
