"""What the Lambda shutdown watcher's wake-up fd costs a busy process sampled at 100 Hz.

Every signal with a Python handler writes a byte to the wake-up fd, so a thread reading it wakes
(and takes the GIL) once per SIGPROF. Prints the process CPU time of a 3 s busy loop with no
watcher, a watcher that reads at once, and one that pauses ``WAKE_PAUSE_S`` after each wake.

    python benchmarks/lambda/wakeup_cost.py
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time


def child(pause_s: float, watch: bool) -> None:
    signal.signal(signal.SIGPROF, lambda signum, frame: None)
    if watch:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

        def watcher() -> None:
            while os.read(read_end, 64):
                time.sleep(pause_s)

        threading.Thread(target=watcher, daemon=True).start()
    signal.setitimer(signal.ITIMER_PROF, 0.01, 0.01)
    began, wall = time.process_time(), time.perf_counter()
    while time.perf_counter() - wall < 3.0:
        pass
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    print(time.process_time() - began)


def main() -> None:
    from greenflame.agent.lambda_shutdown import WAKE_PAUSE_S

    cases = {
        "no watcher": ("0", "0"),
        "watcher, no pause": ("0", "1"),
        "watcher, 50 ms pause (before 2026-12-05)": ("0.05", "1"),
        f"watcher, paused {WAKE_PAUSE_S * 1000:.0f} ms": (str(WAKE_PAUSE_S), "1"),
    }
    results = {name: [] for name in cases}
    for _ in range(3):  # alternate the cases: A B C A B C ...
        for name, (pause, watch) in cases.items():
            out = subprocess.run([sys.executable, __file__, "--child", pause, watch], capture_output=True, text=True)
            results[name].append(float(out.stdout))
    base = statistics.median(results["no watcher"])
    for name, values in results.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.3f}" for v in values)
        print(f"{name:20s} cpu {median:.3f} s (runs {runs}), +{(median - base) / base * 100:.2f}%")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(float(sys.argv[2]), sys.argv[3] == "1")
    else:
        main()
