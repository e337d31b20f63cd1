"""An analysis run's cost against the length of the group's history (goal: 1 day vs 7 days within 20%).

For each history length (``--days``, default 1 and 7) a fresh storage (SQLite and a folder)
gets one group with a 5-minute report every 5 minutes over that span (``reports.py``, with
``--stacks`` stacks each, over a call graph where each function calls 4 others), each added to
its stored series bucket as the rollup worker does.
Then, alternating between the histories round by round, it times:

- ``today``: anomaly detection as before issue 18: every profile of the history decoded, its
  series built, the detector run (``detect_profiles``);
- ``stored-cold``: the series read from ``series_buckets`` by a new process (nothing in memory), then
  the detector;
- ``stored-new``: the steady state: one new profile arrives (added as the worker does), the same
  process reads the series again (only the changed bucket is read) and runs the detector;
- ``detector``: the detector alone on the series (its own cost grows with the history);
- ``run``: a whole pipeline run (``Pipeline.run_group``: the last hour's profiles merged and
  analysed, findings, anomalies over the stored series) after one new profile was stored, in
  the steady state: after an earlier run of the same process (not timed, ``first-run``: it scores
  the whole history and fits the day's models on it), so only the new points are scored;
- ``restart``: a whole pipeline run after one new profile, by a new process (a new storage object
  on the same database and folder: no series, bucket or fit kept in memory), which reads the day's
  fits the earlier runs stored (``anomaly_fits``) instead of scoring the whole history;
- ``restart-nofits``: the same with the stored fits deleted first: a new process's run as before
  they were stored (its series and fits from the whole history);
- ``vote``: a run forced by a "not useful" vote on the group's latest anomaly (it scores from
  that anomaly's start).

``first-run`` (the group's first run, whole history) is timed once per history, before the rounds.

    python benchmarks/server/analysis_history.py [--days 1 7] [--rounds 3] [--stacks 300]
        [--cases stored-cold stored-new run restart restart-nofits vote detector today]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reports import ReportGenerator

from greenflame.analyzer.anomalies import choose_resolution, detect, detect_profiles
from greenflame.server.pipeline import Pipeline, PipelineConfig
from greenflame.server.pipeline_store import PipelineStore
from greenflame.server.schema import anomaly_fits
from greenflame.server.series import SeriesStore, series_for
from greenflame.server.storage import Storage
from greenflame.server.tickets.store import TicketStore

GROUP = "history-service"
STEP_NS = 300 * 10**9
#: Functions each function calls: a call graph (with any function calling any other, every
#: function has hundreds of callers, which no service has, and the frames' structure dominates).
CALLEES = 4


class History:
    """One storage holding ``days`` of a group's 5-minute reports, stored series included."""

    def __init__(self, root: Path, days: int, stacks: int) -> None:
        self.days = days
        self.stacks = stacks
        self.root = root
        self.storage = Storage.open(f"sqlite:///{root / 'db.sqlite'}", str(root / "blobs"))
        self.storage.create_group(GROUP)
        self.generator = ReportGenerator(seed=days, callees=CALLEES)
        self.series = series_for(self.storage)  # the store the pipeline uses, as the rollup worker does
        self.next_ns = time.time_ns() - days * 86400 * 10**9
        self.pipeline = self.new_pipeline(self.storage)
        for _ in range(days * 288):
            self.add_report(to_series=True)

    def new_pipeline(self, storage: Storage) -> Pipeline:
        config = PipelineConfig(history_s=self.days * 86400 + 3600)
        return Pipeline(storage, PipelineStore(storage.engine), TicketStore(storage.engine), config, environ={})

    def add_report(self, to_series: bool, storage: Optional[Storage] = None) -> None:
        profile = self.generator.report(GROUP, self.next_ns, STEP_NS, self.stacks)
        self.next_ns += STEP_NS
        profile_id, _ = (storage or self.storage).add_profile(GROUP, profile, None)
        if to_series:
            (row,) = [r for r in self.storage.find_profiles(GROUP, profile.start_time_unix_ns) if r.id == profile_id]
            self.series.add(row, profile)

    def today(self) -> None:
        rows = self.storage.find_profiles(GROUP)
        detect_profiles([self.storage.load_profile(row) for row in rows])

    def stored(self, store: SeriesStore) -> None:
        rows = self.storage.find_profiles(GROUP)
        detect(store.group_series(GROUP, rows, choose_resolution(rows)))

    def stored_cold(self) -> None:
        self.stored(SeriesStore(self.storage))

    def stored_new(self) -> None:
        self.add_report(to_series=True)
        self.stored(self.series)

    def detector(self) -> None:
        rows = self.storage.find_profiles(GROUP)
        series = self.series.group_series(GROUP, rows, choose_resolution(rows))
        started = time.perf_counter()
        detect(series)
        self.detector_ms = (time.perf_counter() - started) * 1000

    def run(self) -> None:
        self.add_report(to_series=False)  # the worker has not reached it: the run adds it itself
        self.check(self.pipeline.run_group(GROUP))

    @staticmethod
    def check(summary: Optional[Dict[str, object]]) -> None:
        if not summary or summary.get("error"):
            raise SystemExit(f"the pipeline run failed: {summary}")

    def restart(self) -> None:
        """A new process's first run: nothing in memory, the database and folder as they are."""
        storage = Storage.open(f"sqlite:///{self.root / 'db.sqlite'}", str(self.root / "blobs"))
        try:
            self.add_report(to_series=False, storage=storage)
            self.check(self.new_pipeline(storage).run_group(GROUP))
        finally:
            storage.close()

    def restart_without_fits(self) -> None:
        """The same, as before the fits were stored: the new process fits the day's models itself
        on the whole history (the run writes them again)."""
        with self.storage.engine.begin() as conn:
            conn.execute(anomaly_fits.delete().where(anomaly_fits.c.group_name == GROUP))
        self.restart()

    def vote(self) -> None:
        """A "not useful" vote on the latest anomaly, and the run it forces."""
        store = self.pipeline.store
        latest = max(store.anomalies(GROUP), key=lambda a: a.anomaly.start_unix_s, default=None)
        if latest is None:
            raise SystemExit("no anomaly to vote on")
        store.add_vote(latest, useful=False)
        store.invalidate(GROUP)
        self.check(self.pipeline.run_group(GROUP))


CASES = ("stored-cold", "stored-new", "run", "restart", "restart-nofits", "vote", "detector", "today")


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[1, 7])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stacks", type=int, default=300, help="distinct stacks per report")
    parser.add_argument("--skip-today", action="store_true", help="do not time the path before issue 18")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="the cases timed each round")
    args = parser.parse_args(argv)
    if args.skip_today and "today" in args.cases:
        args.cases.remove("today")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gf-analysis-history-") as tmp:
        histories = []
        times: Dict[str, Dict[int, List[float]]] = {}
        for days in args.days:
            started = time.perf_counter()
            histories.append(History(Path(tmp) / f"d{days}", days, args.stacks))
            print(f"{days} day(s): {days * 288} reports stored in {time.perf_counter() - started:.0f} s", flush=True)
            times.setdefault("first-run", {})[days] = [timed(histories[-1].run)]
            print(f"  {days} d first-run: {times['first-run'][days][0]:.0f} ms", flush=True)
        for _ in range(args.rounds):
            for history in histories:
                cases = {
                    "stored-cold": history.stored_cold,
                    "stored-new": history.stored_new,
                    "run": history.run,
                    "restart": history.restart,
                    "restart-nofits": history.restart_without_fits,
                    "vote": history.vote,
                    "today": history.today,
                }
                for name in [case for case in CASES if case in args.cases and case != "detector"]:
                    times.setdefault(name, {}).setdefault(history.days, []).append(timed(cases[name]))
                    print(f"  {history.days} d {name}: {times[name][history.days][-1]:.0f} ms", flush=True)
                if "detector" in args.cases:
                    history.detector()
                    times.setdefault("detector", {}).setdefault(history.days, []).append(history.detector_ms)
                    print(f"  {history.days} d detector: {history.detector_ms:.0f} ms", flush=True)
        for name, per_days in times.items():
            medians = {days: statistics.median(values) for days, values in per_days.items()}
            shown = "  ".join(f"{days} d: {ms:8.0f} ms" for days, ms in medians.items())
            ratio = medians[max(medians)] / medians[min(medians)] if len(medians) > 1 else 1.0
            spread = "  ".join(f"{days} d: {min(v):.0f}-{max(v):.0f}" for days, v in per_days.items())
            print(f"{name:12s} {shown}  ratio {ratio:.2f}  (medians of {len(next(iter(per_days.values())))}; {spread})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
