"""Time per report of the server's readers of a wire-format document, alternating them (A B A B).

The reports are issue 18's (``reports.py``: about 900 stacks 15-45 deep over about 2,800 frames),
gunzipped beforehand. Each reader reads every report once per round; a round's figure is its
mean time per report, and the rounds alternate the readers. The collector is set as ``greenflame
serve`` sets it (server/collector.py), since the readers make objects the collector tracks.

- ``summarize``: what ingest checks (``wire_summary.summarize``);
- ``loads``: a stored body read back into a Profile (``Storage.load_profile``);
- ``full``: the reference reader (``greenflame_json.loads``).

With ``--fold`` it also times the rollups' fold of each checked report into its group's call-path
index (``server/callpaths.fold_document``, on the request thread), the index warmed by one pass,
and where the tree has ``server/labelled.py``, alternating with it, the fold that ingest does
since: the same and the report's labelled rows (``labelled.of_document``).
With ``--merge-onto N`` it also times what the analysis does with a new report once read
(``server/window_merge.py``): :func:`analyzer.model.merge` of the merge of N reports (a kept
5-minute slot) and one more, against the merge of the kept slot alone; and where the tree has
``server/labelled.py``, the same with the reports' labelled rows (``labelled.combine``), and the
slot's rows made into a Profile (``labelled.to_profile``, once per analysis run).

    python benchmarks/server/decode.py [--reports 40] [--rounds 7] [--readers summarize loads full] [--keep]
        [--fold] [--merge-onto 10]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reports import ReportGenerator

from greenflame.analyzer.formats import greenflame_json, wire_summary
from greenflame.analyzer.model import merge
from greenflame.server import collector
from greenflame.server.settings import Settings

T = TypeVar("T")

READERS: Dict[str, Callable[[bytes], object]] = {
    "summarize": wire_summary.summarize,
    "loads": wire_summary.loads,
    "full": greenflame_json.loads,
}


def mean_ms(reader: Callable[[T], object], items: Sequence[T], keep: bool) -> float:
    """Mean milliseconds per item of one pass (``keep``: every result held until the pass ends, as
    the analysis's cache of decoded profiles holds them)."""
    kept = []
    started = time.perf_counter()
    for item in items:
        result = reader(item)
        if keep:
            kept.append(result)
    elapsed = time.perf_counter() - started
    kept.clear()
    return elapsed * 1000 / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="hold a pass's results until it ends")
    parser.add_argument("--fold", action="store_true", help="also time the fold of each report")
    parser.add_argument("--merge-onto", type=int, default=0, help="also time a merge onto N reports' merge")
    parser.add_argument("--readers", nargs="+", default=["summarize", "loads"], choices=sorted(READERS))
    parser.add_argument(
        "--wire-version", type=int, choices=(1, 2), default=2, help="2: samples in columns, as the agent sends"
    )
    args = parser.parse_args()
    generator = ReportGenerator()
    documents = [
        gzip.decompress(generator.body("decode", 10**18 + n * 60 * 10**9, args.wire_version))
        for n in range(args.reports)
    ]
    collector.tune(Settings.from_env().gc_young_threshold)
    results: Dict[str, List[float]] = {name: [] for name in args.readers}
    for _ in range(args.rounds):
        for name in args.readers:
            results[name].append(mean_ms(READERS[name], documents, args.keep))
    size = sum(map(len, documents)) / len(documents) / 1024
    held = ", results held" if args.keep else ""
    print(
        f"{args.reports} reports of {size:.0f} KiB JSON (wire format version {args.wire_version}), "
        f"{args.rounds} rounds alternating{held}"
    )
    for name, times in results.items():
        print(f"  {name:12s} median {statistics.median(times):6.2f} ms a report ({min(times):.2f}-{max(times):.2f})")
    if args.fold:
        time_folds(documents, args.rounds)
    if args.merge_onto:
        time_merges(documents, args.merge_onto, args.rounds)


def time_folds(documents: List[bytes], rounds: int) -> None:
    """The fold of each checked report into one warm index."""
    from greenflame.server.callpaths import PathIndex, fold_document

    summaries = [wire_summary.summarize(document) for document in documents]
    index = PathIndex()
    folds: Dict[str, Callable[[wire_summary.DocumentSummary], object]] = {
        "fold": lambda summary: fold_document(index, summary)
    }
    try:
        from greenflame.server.labelled import of_document

        folds["fold+labels"] = lambda summary: of_document(index, summary)
    except ImportError:  # a tree before server/labelled.py
        pass
    for fold in folds.values():
        mean_ms(fold, summaries, False)
    times: Dict[str, List[float]] = {name: [] for name in folds}
    for _ in range(rounds):
        for name, fold in folds.items():
            times[name].append(mean_ms(fold, summaries, False))
    for name, found in times.items():
        print(f"  {name:12s} median {statistics.median(found):6.2f} ms a report ({min(found):.2f}-{max(found):.2f})")
    time_ingest_folds(documents, rounds)


def time_ingest_folds(documents: List[bytes], rounds: int) -> None:
    """What an ingest request does with the bytes: check them, then fold them into an index warmed
    by the other half of the reports (so each report's frame names are new strings, as they are in a
    request, and hash and compare as such)."""
    from greenflame.server.callpaths import PathIndex, fold_document

    try:
        from greenflame.server.labelled import of_document as fold
    except ImportError:  # a tree before server/labelled.py
        fold = fold_document
    half = len(documents) // 2
    index = PathIndex()
    for document in documents[half:]:
        fold(index, wire_summary.summarize(document))
    times = [
        mean_ms(lambda data: fold(index, wire_summary.summarize(data)), documents[:half], False) for _ in range(rounds)
    ]
    print(
        f"  {'check+fold':12s} median {statistics.median(times):6.2f} ms a report ({min(times):.2f}-{max(times):.2f})"
    )


def time_merges(documents: List[bytes], onto: int, rounds: int) -> None:
    """The merge of a kept slot of ``onto`` reports with one more report, and of the slot alone."""
    profiles = [wire_summary.loads(document) for document in documents]
    slot = merge(profiles[:onto])
    more = profiles[onto:]
    with_one: List[float] = []
    alone: List[float] = []
    for _ in range(rounds):
        with_one.append(mean_ms(lambda profile: merge([slot, profile]), more, False))
        alone.append(mean_ms(lambda _profile: merge([slot]), more, False))
    added = [a - b for a, b in zip(with_one, alone)]
    print(f"merge onto a slot of {onto} reports ({len(slot.samples)} samples), {rounds} rounds alternating")
    for name, times in (("slot + one", with_one), ("slot alone", alone), ("one report", added)):
        print(f"  {name:12s} median {statistics.median(times):6.2f} ms ({min(times):.2f}-{max(times):.2f})")
    try:
        time_labelled_merges(documents, onto, rounds)
    except ImportError:  # a tree before server/labelled.py
        pass


def time_labelled_merges(documents: List[bytes], onto: int, rounds: int) -> None:
    """As :func:`time_merges` with the reports' labelled rows; and the slot's rows made a Profile."""
    from greenflame.server.callpaths import PathIndex
    from greenflame.server.labelled import combine, labelled_rows, to_profile

    index = PathIndex()
    rows = [labelled_rows(index, wire_summary.summarize(document)) for document in documents]
    slot = combine(index.epoch, "", rows[:onto])
    more = rows[onto:]
    with_one: List[float] = []
    alone: List[float] = []
    made: List[float] = []
    for _ in range(rounds):
        with_one.append(mean_ms(lambda one: combine(index.epoch, "", [slot, one]), more, False))
        alone.append(mean_ms(lambda _one: combine(index.epoch, "", [slot]), more, False))
        made.append(mean_ms(lambda _one: to_profile(index, slot), more[:5], False))
    added = [a - b for a, b in zip(with_one, alone)]
    print(f"labelled rows: merge onto a slot of {onto} reports ({len(slot.paths)} rows), {rounds} rounds alternating")
    for name, times in (("slot + one", with_one), ("slot alone", alone), ("one report", added), ("to_profile", made)):
        print(f"  {name:12s} median {statistics.median(times):6.2f} ms ({min(times):.2f}-{max(times):.2f})")


if __name__ == "__main__":
    main()
