"""What the agent spends encoding one report for the server: wire format version 1 against 2.

The agent drains a report with one object per sample and encodes it once per report interval
(``agent.exporters.encode``: JSON, streamed into gzip). Version 2 packs the samples into base64
columns first (``agent/columns.py``). The reports: issue 18's service report (900 stacks 15-45 deep
over about 2,800 frames, ``benchmarks/server/reports.py``) and a small one as a Lambda function's
interval gives (40 frames, 20 samples). Each round times both versions on the same reports, the
order alternating (A B, then B A); a round's figure is the mean time per report.

    python benchmarks/agent/encode.py [--rounds 7] [--reports 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from reports import ReportGenerator

from greenflame.agent.exporters import encode
from greenflame.analyzer.formats import greenflame_json


def small_report(service: Dict[str, Any]) -> Dict[str, Any]:
    """A Lambda function's interval: a few frames, a few samples with the phase label."""
    samples = [
        {"stack": [n % 40, (n + 1) % 40, (n + 7) % 40], "values": [3, 2, 1], "labels": {"lambda_phase": "invoke"}}
        for n in range(20)
    ]
    return {**service, "frames": service["frames"][:40], "samples": samples}


def mean_ms(reports: List[Dict[str, Any]], columns: bool) -> float:
    started = time.perf_counter()
    for report in reports:
        encode(report, compress=True, columns=columns)
    return (time.perf_counter() - started) * 1000 / len(reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reports", type=int, default=5)
    args = parser.parse_args()
    services = [
        greenflame_json.profile_to_dict(ReportGenerator(seed=n).report("svc", 10**18)) for n in range(args.reports)
    ]
    for name, reports in (("service, 900 stacks", services), ("Lambda-like, 20 samples", [small_report(services[0])])):
        times: Dict[bool, List[float]] = {False: [], True: []}
        for round_number in range(args.rounds):
            for columns in (False, True) if round_number % 2 == 0 else (True, False):
                times[columns].append(mean_ms(reports, columns))
        print(name)
        for columns, found in times.items():
            size = len(encode(reports[0], compress=True, columns=columns))
            print(
                f"  version {2 if columns else 1}: median {statistics.median(found):7.2f} ms a report "
                f"({min(found):.2f}-{max(found):.2f}), {size:,} bytes gzipped"
            )


if __name__ == "__main__":
    main()
