"""What a sleeping thread pays in CPU to take the GIL back from threads that burn CPU.

A sampler thread in the process wakes for every sample and needs the GIL to read the other threads'
frames. This script measures that cost alone: a thread sleeps ``--sleep-ms`` and wakes, ``--cycles``
times, its own CPU time (``thread_time``) per cycle, while 0, 1, 2... other threads run a pure-Python
loop. The rounds alternate the thread counts; the script prints the median and range per count.
With ``--jitter`` each sleep is drawn from 0.5 to 1.5 times ``--sleep-ms``, as the sampler's are.

    python benchmarks/agent/gil_handover.py [--burners 0,1,2] [--cycles 200] [--sleep-ms 10] [--rounds 3] [--jitter]
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from typing import Dict, List


def burn(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(100))


def sleeper(cycles: int, sleep_s: float, jitter: bool, out: List[float]) -> None:
    started = time.thread_time_ns()
    for _ in range(cycles):
        time.sleep((0.5 + random.random()) * sleep_s if jitter else sleep_s)
    out.append((time.thread_time_ns() - started) / cycles / 1000)


def one_round(burners: int, cycles: int, sleep_s: float, jitter: bool) -> float:
    """Microseconds of the sleeping thread's CPU per sleep-and-wake cycle beside ``burners`` busy threads."""
    stop = threading.Event()
    busy = [threading.Thread(target=burn, args=(stop,)) for _ in range(burners)]
    for thread in busy:
        thread.start()
    out: List[float] = []
    measured = threading.Thread(target=sleeper, args=(cycles, sleep_s, jitter, out))
    measured.start()
    measured.join()
    stop.set()
    for thread in busy:
        thread.join()
    return out[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burners", default="0,1,2")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--sleep-ms", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jitter", action="store_true", help="sleeps of 0.5 to 1.5 times --sleep-ms")
    args = parser.parse_args()
    counts = [int(value) for value in args.burners.split(",")]
    results: Dict[int, List[float]] = {count: [] for count in counts}
    for _ in range(args.rounds):
        for count in counts:
            results[count].append(one_round(count, args.cycles, args.sleep_ms / 1000, args.jitter))
    for count, values in results.items():
        print(
            f"{count} busy threads: {statistics.median(values):.1f} us of CPU per wake-up "
            f"(range {min(values):.1f}-{max(values):.1f}, {len(values)} rounds)"
        )


if __name__ == "__main__":
    main()
