"""Finding JSON shaped like ``analyze_profile(...).to_dict()["recommendations"]``, and its ticket subjects."""

from __future__ import annotations

import copy
from typing import Any, Dict

import requests

from greenflame.server.tickets.subject import TicketSubject
from greenflame.server.tickets.transport import RetryPolicy

FIX = """Create the client once, at module level, so every warm invocation reuses it.

```python
import boto3

s3 = boto3.client("s3")


def handler(event, context):
    return s3.get_object(Bucket=event["bucket"], Key=event["key"])
```
"""

BASE: Dict[str, Any] = {
    "rule": "aws-sdk-client-per-invocation",
    "title": "AWS SDK client created on every invocation",
    "summary": "boto3.client runs inside the handler: 38.0% of invoke-phase CPU samples, 19.0x the expected 2%.",
    "fix": FIX,
    "frames": [
        {
            "function": "handler",
            "file": "app.py",
            "line": 10,
            "samples": 380,
            "share": 0.38,
            "stacks": [
                {
                    "frames": [
                        {"function": "<module>", "file": "bootstrap.py", "line": 1},
                        {"function": "handler", "file": "app.py", "line": 10},
                        {"function": "client", "file": "boto3/__init__.py", "line": 86},
                    ],
                    "samples": 380,
                }
            ],
        }
    ],
    "share": 0.38,
    "expected_share": 0.02,
    "times_expected": 19.0,
    "cost_usd_per_month": 41.0,
    "co2e_kg_per_month": 0.6,
    "co2e_kg_per_month_range": {"low": 0.3, "central": 0.6, "high": 1.1},
    "sci_g_per_invocation": {"before": 0.012, "after": 0.0007},
    "fingerprint": "aws-sdk-client-per-invocation/orders/handler",
}

#: Fast retries so that failing trackers keep the tests short.
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, deadline_s=5.0, timeout_s=3.0)


def finding(**changes: Any) -> Dict[str, Any]:
    """A finding, with ``changes`` applied."""
    item = copy.deepcopy(BASE)
    item.update(changes)
    return item


def second_finding(**changes: Any) -> Dict[str, Any]:
    """Another rule's finding in the same group."""
    return finding(
        rule="json-dumps-in-loop",
        title="json.dumps called per item",
        fingerprint="json-dumps-in-loop/orders/serialise",
        cost_usd_per_month=12.5,
        **changes,
    )


def subject(**changes: Any) -> TicketSubject:
    """The ticket subject of :func:`finding`, read at the JSON edge."""
    return TicketSubject.from_mapping(finding(**changes))


def second_subject(**changes: Any) -> TicketSubject:
    """The ticket subject of :func:`second_finding`."""
    return TicketSubject.from_mapping(second_finding(**changes))


def closed_port() -> str:
    """A URL on which nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class RecordingSleep:
    """A sleep that records the waits asked for (and does not wait)."""

    def __init__(self) -> None:
        self.waits: list = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def session() -> requests.Session:
    return requests.Session()
