"""Profiles built in code the way the agent records them, shared by the analyzer tests."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from greenflame.analyzer.model import Frame, Profile
from greenflame.analyzer.rules.finding import Finding

SITE = "/var/lang/lib/python3.11/site-packages"
BOOTSTRAP = Frame("main", "/var/runtime/bootstrap.py", 480)
HANDLE = Frame("handle_event_request", "/var/runtime/bootstrap.py", 130)
HANDLER = Frame("lambda_handler", "/var/task/app.py", 12)
MODULE = Frame("<module>", "/var/task/app.py", 1)
WORK = Frame("render_rows", "/var/task/app.py", 30)
#: The real call path of ``boto3.client('dynamodb')`` in boto3 1.x, outermost first.
CLIENT_CREATION: List[Frame] = [
    Frame("client", f"{SITE}/boto3/__init__.py", 86),
    Frame("Session.client", f"{SITE}/boto3/session.py", 264),
    Frame("Session.create_client", f"{SITE}/botocore/session.py", 847),
    Frame("ClientCreator.create_client", f"{SITE}/botocore/client.py", 107),
    Frame("Loader.load_service_model", f"{SITE}/botocore/loaders.py", 380),
]
#: A call on a reused client: must never count as construction.
API_CALL: List[Frame] = [
    Frame("ClientCreator._create_api_method.<locals>._api_call", f"{SITE}/botocore/client.py", 560),
    Frame("BaseClient._make_api_call", f"{SITE}/botocore/client.py", 980),
]


def lambda_metadata(invocations: int, mean_ms: float, memory_mb: int = 512, **extra: Any) -> Dict[str, Any]:
    """Metadata as the Lambda agent writes it."""
    lam = {
        "function_name": "brown",
        "memory_size_mb": memory_mb,
        "architecture": "x86_64",
        "region": "us-east-1",
        "handler": "app.lambda_handler",
    }
    lam.update(extra)
    return {
        "lambda": lam,
        "invocations": {"count": invocations, "cold_starts": 1, "duration_ms_sum": invocations * mean_ms},
    }


def lambda_profile(
    *,
    invocations: int = 100,
    client_in_handler: bool = True,
    client_samples: int = 1,
    work_samples: int = 3,
    labels: bool = True,
    prefix: Sequence[Frame] = (BOOTSTRAP, HANDLE),
    duration_s: float = 60.0,
) -> Profile:
    """A Lambda function's profile: an init phase, then ``invocations`` invocations.

    With ``client_in_handler`` every invocation builds a DynamoDB client
    (``client_samples`` ticks each); otherwise the client is built once at init and the
    handler only calls it. ``labels=False`` leaves out the ``lambda_phase`` labels.
    """
    profile = Profile(group="brown", start_time_unix_ns=1_700_000_000 * 10**9, duration_ns=int(duration_s * 1e9))
    init = {"lambda_phase": "init"} if labels else {}
    invoke = {"lambda_phase": "invoke"} if labels else {}
    profile.add([MODULE, *CLIENT_CREATION], [8, 8], init)
    stack = [*prefix, HANDLER]
    for _ in range(invocations):
        if client_in_handler:
            profile.add([*stack, *CLIENT_CREATION], [client_samples, client_samples], invoke)
        else:
            profile.add([*stack, *API_CALL], [1, 0], invoke)
        profile.add([*stack, WORK], [work_samples, work_samples], invoke)
    mean_ms = (client_samples * client_in_handler + work_samples + (not client_in_handler)) * 10.0
    profile.metadata = lambda_metadata(invocations, mean_ms)
    return profile


def simple_profile(stacks: Sequence[Sequence[str]], values: Optional[Sequence[int]] = None) -> Profile:
    """A profile whose frames are named by strings (file ``name.py``), one cpu/wall value each."""
    profile = Profile()
    for i, names in enumerate(stacks):
        value = 1 if values is None else values[i]
        profile.add([Frame(name, f"{name}.py", 1) for name in names], [value, value])
    return profile


def finding(
    fingerprint: str = "fp-a", rule: str = "rule-a", share: float = 0.2, cost: float = 4.0, title: Optional[str] = None
) -> Finding:
    """A finding with no evidence: its identity, share and cost (for finding states and their storage)."""
    return Finding(
        rule=rule,
        title=f"{rule} title" if title is None else title,
        summary="",
        fix="",
        frames=[],
        share=share,
        expected_share=0.05,
        threshold_share=0.1,
        sample_type="cpu",
        samples=20,
        scope_samples=100,
        cost_usd_per_month=cost,
        fingerprint=fingerprint,
    )
