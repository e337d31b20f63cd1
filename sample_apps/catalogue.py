"""Every sample app, its fixed twin, the rules it must trigger, and how to run it.

The table in ``README.md`` and ``tests/test_sample_apps.py`` both read from here. Invocation
and request counts are sized so that each run takes one to three seconds on a small machine and
still gives the sampler (100 Hz) enough in-context samples to measure the shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

LAMBDA = "lambda"
SERVICE = "service"
#: What a sample needs besides itself: the plain-HTTP or the HTTPS stand-in API (stub_api).
API = "api"
TLS_API = "tls-api"


@dataclass(frozen=True)
class Sample:
    """One program with a known inefficiency and its fixed twin."""

    app: str  # module in greenflame.sample_apps
    twin: str
    rules: Tuple[str, ...]  # what the app must trigger; the twin must trigger none of them
    kind: str = LAMBDA
    runs: int = 100  # invocations (Lambda) or requests (service) of the app
    twin_runs: int = 100
    needs: str = ""
    path: str = ""  # services: the URL path the load requests
    #: Lambda: the twin's event. A twin whose invocations are shorter than CPython's 5 ms switch
    #: interval is barely sampled by the agent's thread (see docs/rules.md), so a few twins get a
    #: bigger batch of the same work: their silence then rests on enough samples.
    twin_event: str = "{}"

    def handler(self, module: str) -> str:
        """The handler spec of ``module`` for ``greenflame lambda invoke``."""
        return f"greenflame.sample_apps.{module}.lambda_handler"


SAMPLES: Tuple[Sample, ...] = (
    Sample("seed_brown", "seed_green", ("aws-sdk-client-per-invocation",), runs=150, twin_runs=800),
    Sample("http_brown", "http_green", ("http-connection-per-request",), runs=300, twin_runs=300, needs=API),
    Sample(
        "tls_brown",
        "tls_green",
        ("ssl-context-per-call", "http-connection-per-request"),
        runs=1000,
        twin_runs=1000,
        needs=TLS_API,
    ),
    Sample("db_brown", "db_green", ("db-connection-per-invocation",), runs=1500, twin_runs=6000),
    Sample(
        "import_brown", "import_green", ("import-in-handler",), runs=1000, twin_runs=150, twin_event='{"orders": 3}'
    ),
    Sample("regex_brown", "regex_green", ("regex-compile-hot",), runs=8, twin_runs=150, twin_event='{"days": 20}'),
    Sample("deepcopy_brown", "deepcopy_green", ("deepcopy-hot",), runs=20, twin_runs=1000),
    Sample("strptime_brown", "strptime_green", ("strptime-hot",), runs=6, twin_runs=100),
    Sample("logging_brown", "logging_green", ("logging-overhead",), runs=5, twin_runs=100),
    Sample("yaml_brown", "yaml_green", ("yaml-pure-python",), runs=20, twin_runs=2000),
    Sample("idle_brown", "idle_green", ("idle-wait-billed",), runs=30, twin_runs=300, needs=API),
    Sample(
        "flask_brown",
        "flask_green",
        ("json-serialization-hot",),
        kind=SERVICE,
        runs=150,
        twin_runs=150,
        path="/customers/c-7/orders?limit=500",
    ),
)
