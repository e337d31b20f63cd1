"""Programs whose truth is measured inside them, for the fidelity benchmark and the agent's tests.

    python fidelity_workloads.py WORKLOAD --seconds S --truth FILE [--pid-file FILE]

Each workload runs its functions in a loop for ``S`` seconds and times every call itself with
``time.thread_time()`` (CPU) and ``time.perf_counter()`` (wall). At the end it writes FILE as JSON:
``{"cpu": {function: seconds}, "wall": {function: seconds}, "elapsed_s": ..., "threads": N,
"thread_names": [...]}`` (the threads that ran the timed functions).
``--pid-file`` gets the process id once the loop starts, for an external profiler to attach.

Workloads (the issue's cases):

``sleep_mix``   crunch() 20 ms CPU, nap() ``time.sleep(0.03)``, parse() 10 ms CPU.
``socket_mix``  crunch() 10 ms CPU, then await_reply() waits on ``socket.recv`` for a child
                process that answers 10 ms after being asked.
``two_threads`` two threads that burn CPU: alpha() in one, beta() in the other (the GIL shares them).
``split_532``   one thread: heavy() 5 ms, medium() 3 ms, light() 2 ms of CPU per round.
``short_waits`` crunch() 4 ms CPU, then blink() ``time.sleep(0.006)``: off-CPU periods below one
                sampling interval of 10 ms... and a little above.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
from typing import Callable, Dict, List, Tuple

Timings = Dict[str, Dict[str, float]]


def burn(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class Clock:
    """Per-function CPU and wall seconds of the calls made through :meth:`call` (one thread each)."""

    def __init__(self) -> None:
        self.cpu: Dict[str, float] = {}
        self.wall: Dict[str, float] = {}
        self.thread = ""  # the name of the thread that made the calls

    def call(self, function: Callable[..., None], *args: object) -> None:
        self.thread = threading.current_thread().name
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        function(*args)
        name = function.__name__
        self.cpu[name] = self.cpu.get(name, 0.0) + time.thread_time() - cpu0
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall0


def crunch(seconds: float) -> None:
    burn(seconds)


def parse(seconds: float) -> None:
    burn(seconds)


def nap(seconds: float) -> None:
    time.sleep(seconds)


def blink(seconds: float) -> None:
    time.sleep(seconds)


def heavy(seconds: float) -> None:
    burn(seconds)


def medium(seconds: float) -> None:
    burn(seconds)


def light(seconds: float) -> None:
    burn(seconds)


def alpha(seconds: float) -> None:
    burn(seconds)


def beta(seconds: float) -> None:
    burn(seconds)


def await_reply(sock: socket.socket) -> None:
    sock.sendall(b"?")
    sock.recv(1)


def _loop(deadline: float, clock: Clock, steps: List[Tuple[Callable[..., None], object]]) -> None:
    while time.perf_counter() < deadline:
        for function, argument in steps:
            clock.call(function, argument)


def sleep_mix(deadline: float) -> List[Clock]:
    clock = Clock()
    _loop(deadline, clock, [(crunch, 0.020), (nap, 0.030), (parse, 0.010)])
    return [clock]


def short_waits(deadline: float) -> List[Clock]:
    clock = Clock()
    _loop(deadline, clock, [(crunch, 0.004), (blink, 0.006)])
    return [clock]


def split_532(deadline: float) -> List[Clock]:
    clock = Clock()
    _loop(deadline, clock, [(heavy, 0.005), (medium, 0.003), (light, 0.002)])
    return [clock]


def _answer(sock: socket.socket, delay_s: float) -> None:
    """The child: answer each request byte after ``delay_s``, until the parent closes."""
    while sock.recv(1):
        time.sleep(delay_s)
        sock.sendall(b"!")


def socket_mix(deadline: float) -> List[Clock]:
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the answering process: no agent work of interest here
        parent.close()
        try:
            _answer(child, 0.010)
        finally:
            os._exit(0)
    child.close()
    clock = Clock()
    _loop(deadline, clock, [(crunch, 0.010), (await_reply, parent)])
    parent.close()
    os.waitpid(pid, 0)
    return [clock]


def two_threads(deadline: float) -> List[Clock]:
    clocks = [Clock(), Clock()]

    def work(clock: Clock, function: Callable[[float], None]) -> None:
        _loop(deadline, clock, [(function, 0.002)])

    threads = [threading.Thread(target=work, args=(c, f), name=f.__name__) for c, f in zip(clocks, (alpha, beta))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clocks


WORKLOADS: Dict[str, Callable[[float], List[Clock]]] = {
    "sleep_mix": sleep_mix,
    "socket_mix": socket_mix,
    "two_threads": two_threads,
    "split_532": split_532,
    "short_waits": short_waits,
}


def merge(clocks: List[Clock]) -> Timings:
    """The clocks' timings added up per function."""
    out: Timings = {"cpu": {}, "wall": {}}
    for clock in clocks:
        for kind, values in (("cpu", clock.cpu), ("wall", clock.wall)):
            for name, seconds in values.items():
                out[kind][name] = out[kind].get(name, 0.0) + seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--truth", required=True)
    parser.add_argument("--pid-file")
    args = parser.parse_args()
    if args.pid_file:
        with open(args.pid_file, "w") as handle:
            handle.write(str(os.getpid()))
    started = time.perf_counter()
    clocks = WORKLOADS[args.workload](started + args.seconds)
    truth: Dict[str, object] = dict(merge(clocks))
    truth["elapsed_s"] = time.perf_counter() - started
    truth["threads"] = len(clocks)
    truth["thread_names"] = sorted({clock.thread for clock in clocks if clock.thread})
    with open(args.truth, "w") as handle:
        json.dump(truth, handle)


if __name__ == "__main__":
    main()
