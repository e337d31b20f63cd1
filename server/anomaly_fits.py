"""The anomaly detector's seasonal fits kept in the database, per group and UTC day.

A day's seasonal fit of a series uses only the points before the day (see
:class:`greenflame.analyzer.anomaly_model.ModelCache`), so once made it holds for the rest of the
day. A process keeps its fits in memory (:class:`PipelineModels`); this module also writes each
group's fits of a day to ``anomaly_fits`` (one row per group and day: zlib-compressed JSON of the
fits and of each series' segment start), so that a process that did not make them (after a
restart, or another worker) reads them back instead of refitting every series on the whole
history: its first run of the group scores only the new points, like later ones.

Rows are written under the detector's configuration (a digest of :class:`DetectorConfig`): fits
made with another configuration are not read. Rows older than the analysis history are deleted
when a group's newer fits are written.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from typing import Any, Dict, Hashable, List, Optional, Set, Tuple, cast

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from greenflame.analyzer.anomaly_model import DAY_S, DetectorConfig, ModelCache, SeasonalModel

from .schema import anomaly_fits

GroupDay = Tuple[str, int]


#: The stored form of a row's fits; a row of another form is not read (its day is fitted again).
FORMAT = 2


def config_digest(config: DetectorConfig) -> str:
    """A short digest of the detector's configuration and the stored form, stored with each row."""
    return hashlib.sha256(f"{FORMAT} {config!r}".encode()).hexdigest()[:32]


class PipelineModels(ModelCache):
    """A process's kept fits of one storage, indexed by group and day, with the days whose fits
    are complete (made on the whole history in this process, or read back from the database)."""

    def __init__(self) -> None:
        super().__init__()
        self.ready: Set[GroupDay] = set()
        self.saved: Dict[GroupDay, int] = {}
        self._by_day: Dict[GroupDay, Set[Hashable]] = {}

    def put(self, key: Hashable, model: SeasonalModel) -> None:
        super().put(key, model)
        series, segment_s, _ = cast(Tuple[Any, int, int], key)
        self._by_day.setdefault((series[0], segment_s // DAY_S * DAY_S), set()).add(key)

    def put_segment(self, key: Hashable, day_s: int, start_s: int) -> None:
        super().put_segment(key, day_s, start_s)
        group = cast(Tuple[Any, ...], key)[0]
        self._by_day.setdefault((group, day_s), set()).add((key, day_s))

    def forget_before(self, group: str, day_s: int) -> None:
        """Drop the group's index entries and marks of days before ``day_s`` (the fits themselves
        leave the cache as it fills, oldest first)."""
        for index in (self._by_day, self.saved):
            for old in [key for key in index if key[0] == group and key[1] < day_s]:
                del index[old]
        self.ready = {key for key in self.ready if key[0] != group or key[1] >= day_s}

    def day_entries(self, group: str, day_s: int) -> Tuple[List[List[Any]], List[List[Any]]]:
        """The group's kept fits and segment starts of one day, JSON-ready."""
        fits: List[List[Any]] = []
        segments: List[List[Any]] = []
        for key in sorted(self._by_day.get((group, day_s), ()), key=repr):
            parts = cast(Tuple[Any, ...], key)
            if len(parts) == 3 and key in self._models:
                fits.append([*_series_fields(parts[0]), parts[1], parts[2], self._models[key].to_list()])
            elif len(parts) == 2 and key in self._segments:
                segments.append([*_series_fields(parts[0]), self._segments[key]])
        return fits, segments


def _series_fields(series: Hashable) -> List[Any]:
    """(resolution, frame, metric) of a series key ``(group, resolution, frame, metric, config)``."""
    parts = cast(Tuple[Any, ...], series)
    return [parts[1], parts[2], parts[3]]


class FitStore:
    """The ``anomaly_fits`` rows of one database."""

    def __init__(self, engine: Engine, config: Optional[DetectorConfig] = None) -> None:
        self.engine = engine
        self.config = config or DetectorConfig()
        self.digest = config_digest(self.config)

    def load(self, models: PipelineModels, group: str, day_s: int) -> bool:
        """Put the group's stored fits of the day into ``models``; False if none are stored."""
        f = anomaly_fits.c
        query = select(f.config, f.fits).where(f.group_name == group, f.day_unix_s == day_s)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.config != self.digest:
            return False
        try:
            document = json.loads(zlib.decompress(bytes(row.fits)))
            fits = [
                ((group, int(res), str(frame), str(metric), self.config), int(segment_s), int(freeze_s), model)
                for res, frame, metric, segment_s, freeze_s, model in document["fits"]
            ]
            kept = [(key, SeasonalModel.from_list(model)) for *key, model in fits]
            segments = [
                ((group, int(res), str(frame), str(metric), self.config), int(start_s))
                for res, frame, metric, start_s in document["segments"]
            ]
        except (ValueError, TypeError, KeyError, zlib.error):  # not a row this code wrote: fit the day again
            return False
        for key, model in kept:
            models.put(tuple(key), model)
        for series, start_s in segments:
            models.put_segment(series, day_s, start_s)
        models.ready.add((group, day_s))
        models.saved[(group, day_s)] = len(document["fits"]) + len(document["segments"])
        return True

    def save(self, models: PipelineModels, group: str, day_s: int, keep_s: int) -> bool:
        """Write the group's kept fits of the day if they changed since read or written; rows of
        the group older than ``keep_s`` before the day are deleted. True if a row was written."""
        fits, segments = models.day_entries(group, day_s)
        count = len(fits) + len(segments)
        if models.saved.get((group, day_s)) == count:
            return False
        data = zlib.compress(json.dumps({"fits": fits, "segments": segments}, separators=(",", ":")).encode(), 1)
        f = anomaly_fits.c
        values = {"config": self.digest, "fit_count": count, "fits": data, "updated_unix_ns": time.time_ns()}
        where = and_(f.group_name == group, f.day_unix_s == day_s)
        with self.engine.begin() as conn:
            conn.execute(delete(anomaly_fits).where(f.group_name == group, f.day_unix_s < day_s - keep_s))
            if conn.execute(update(anomaly_fits).where(where).values(**values)).rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(anomaly_fits.insert().values(group_name=group, day_unix_s=day_s, **values))
                except IntegrityError:  # another process wrote the row first: its fits are as good
                    pass
        models.saved[(group, day_s)] = count
        models.forget_before(group, day_s - keep_s)
        return True
