"""Added latency per warm Lambda invocation: plain handler, greenflame's decorator, CodeGuru's decorator.

The three variants run in one process, alternating in blocks (A B C A B C ...), so that the
machine's drift hits them alike. Each invocation is timed from the caller's side with
``perf_counter_ns``. greenflame runs as in Lambda: started by its decorator, reporting at
invocation ends every 10 s to a local HTTP ingest server in this process; CodeGuru's
``with_lambda_profiler`` runs with its defaults (its reports go nowhere: there is no network).

    python benchmarks/lambda/warm_latency.py --invocations 3000 --work-ms 2

For bisecting, ``--variants`` picks the handlers (besides the three above: ``gf-nolabels``, the
decorator's begin and end without the labels; ``gf-labels``, only the label push and pop around
the plain handler), and ``--agent`` sets the process-wide state of greenflame: ``on`` (started,
as by the decorator), ``paused`` (started, then paused: no sampler thread), ``off`` (never
started). ``--no-budget`` removes the sampler's once-a-second CPU budget check; ``--split`` also reports
the time from the call to the handler's entry and from its exit to the return (``<variant>
before``/``after``). The sampling rate
is ``GREENFLAME_RATE_HZ``.

    python benchmarks/lambda/warm_latency.py --agent paused --variants plain,greenflame
"""

from __future__ import annotations

import argparse
import ctypes  # noqa: F401  (in a Lambda runtime the agent's sampler thread imports it: the wall-clock timer)
import json
import os
import statistics
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List

ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"
BLOCK = 50


class Context:
    """The attributes of Lambda's context object that the decorators read."""

    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = ARN
    memory_limit_in_mb = "512"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "stream"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


#: With ``--split``, the handler's entry and exit times (perf_counter_ns) of the last invocation.
MARKS: List[int] = [0, 0]
SPLIT = False


def make_handler(work_ms: float) -> Callable[[Any, Any], Any]:
    def handler(event: Any, context: Any) -> Dict[str, int]:
        if SPLIT:
            MARKS[0] = time.perf_counter_ns()
        end = time.perf_counter() + work_ms / 1000.0
        total = 0
        while time.perf_counter() < end:
            total += sum(range(50))
        if SPLIT:
            MARKS[1] = time.perf_counter_ns()
        return {"statusCode": 200, "n": total}

    return handler


def ingest_server() -> str:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(202)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


DEFAULT_VARIANTS = "plain,greenflame,codeguru"
VARIANTS = ("plain", "greenflame", "codeguru", "gf-nolabels", "gf-labels")


class _NoLabels:
    """A label store that records nothing: the decorator's work without the labels."""

    @staticmethod
    def push(key: Any) -> None:
        return None

    @staticmethod
    def pop(token: Any) -> None:
        pass


def without_labels(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """The decorator's begin and end around ``handler`` (a session of its own), without the labels."""
    from greenflame.agent import aws_lambda

    session = aws_lambda._Session()
    session._label_store = _NoLabels()

    def wrapped(event: Any, context: Any) -> Any:
        if not session._owned and aws_lambda._SESSION._owned:  # share the decorator's reporting cadence
            session._owned, session._outboxes = True, aws_lambda._SESSION._outboxes
            session._interval_s = aws_lambda._SESSION._interval_s
        begun = session.begin(context, {})
        began = time.perf_counter()
        try:
            return handler(event, context)
        finally:
            if begun is not None:
                session.end((time.perf_counter() - began) * 1000.0, begun[0], begun[1], context)

    return wrapped


def labels_only(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Only the decorator's label push and pop around ``handler``."""
    from greenflame.agent import threadlabels

    def wrapped(event: Any, context: Any) -> Any:
        token = threadlabels.push({"lambda_phase": "invoke"})
        try:
            return handler(event, context)
        finally:
            threadlabels.pop(token)

    return wrapped


def build(name: str, work_ms: float) -> Callable[[Any, Any], Any]:
    handler = make_handler(work_ms)
    if name == "greenflame":
        from greenflame.agent.aws_lambda import profile_handler

        return profile_handler(handler)
    if name == "codeguru":
        from codeguru_profiler_agent import with_lambda_profiler

        return with_lambda_profiler(profiling_group_name="bench", region_name="us-east-1")(handler)
    if name == "gf-nolabels":
        return without_labels(handler)
    if name == "gf-labels":
        return labels_only(handler)
    return handler


def variants(work_ms: float, names: List[str] = DEFAULT_VARIANTS.split(",")) -> Dict[str, Callable[[Any, Any], Any]]:
    os.environ.update(
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="secret",
        AWS_EC2_METADATA_DISABLED="true",
        GREENFLAME_SERVER=ingest_server(),
    )
    return {name: build(name, work_ms) for name in names}


def set_agent(state: str, budget: bool) -> None:
    """Put greenflame in ``state`` (on, paused, off) for the whole run; drop the budget check if not ``budget``."""
    if state == "off":
        return
    from greenflame.agent import pause
    from greenflame.agent.aws_lambda import start_lambda_agent
    from greenflame.agent.profiler import current

    start_lambda_agent()
    profiler = current()
    if profiler is None:
        raise SystemExit("greenflame did not start")
    sampler = getattr(profiler._engine, "sampler", None)  # the thread engine's
    if not budget and sampler is not None:
        sampler.budget = None
    if state == "paused":
        pause()


def run(
    invocations: int,
    work_ms: float,
    names: List[str] = DEFAULT_VARIANTS.split(","),
    agent: str = "on",
    budget: bool = True,
) -> Dict[str, List[int]]:
    handlers = variants(work_ms, names)
    for handler in handlers.values():  # cold starts, not measured here
        handler({}, Context())
    set_agent(agent, budget)
    timings: Dict[str, List[int]] = {name: [] for name in handlers}
    if SPLIT:  # the time from the call to the handler's entry, and from its exit to the return
        timings.update({f"{name} before": [] for name in handlers})
        timings.update({f"{name} after": [] for name in handlers})
    while min(len(t) for t in timings.values()) < invocations:
        for name, handler in handlers.items():
            for _ in range(BLOCK):
                context = Context()
                began = time.perf_counter_ns()
                handler({}, context)
                ended = time.perf_counter_ns()
                timings[name].append(ended - began)
                if SPLIT:
                    timings[f"{name} before"].append(MARKS[0] - began)
                    timings[f"{name} after"].append(ended - MARKS[1])
    return timings


def quantile(values: List[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def summary(timings: Dict[str, List[int]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for name, values in timings.items():
        part = name.partition(" ")[2]  # "before" or "after" with --split: compared with plain's part
        base = timings[f"plain {part}" if part else "plain"]
        base_median = statistics.median(base) / 1000.0
        base_p99 = quantile(base, 0.99)
        median = statistics.median(values) / 1000.0
        p99 = quantile(values, 0.99)
        result[name] = {
            "invocations": len(values),
            "median_us": round(median, 1),
            "p99_us": round(p99, 1),
            "added_median_us": round(median - base_median, 1),
            "added_p99_us": round(p99 - base_p99, 1),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=3000)
    parser.add_argument("--work-ms", type=float, default=2.0)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--agent", choices=("on", "paused", "off"), default="on")
    parser.add_argument("--no-budget", action="store_true", help="no CPU budget check in the sampler")
    parser.add_argument("--split", action="store_true", help="also time each wrapper before and after the handler")
    args = parser.parse_args()
    global SPLIT
    SPLIT = args.split
    names = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown or "plain" not in names:
        parser.error(f"--variants must include plain and name only {', '.join(VARIANTS)}")
    if args.agent == "off" and {"greenflame", "gf-nolabels"} & set(names):
        parser.error("--agent off: the greenflame and gf-nolabels variants would start the agent")
    timings = run(args.invocations, args.work_ms, names, args.agent, not args.no_budget)
    report = summary(timings)
    if "codeguru" in names:
        from codeguru_profiler_agent.aws_lambda import profiler_decorator

        report["codeguru_profiler_active"] = type(profiler_decorator._profiler).__name__
    report["work_ms"] = args.work_ms
    report["agent"] = args.agent
    report["rate_hz"] = os.environ.get("GREENFLAME_RATE_HZ", "default")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
