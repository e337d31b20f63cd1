"""Rule ``aws-sdk-client-per-invocation``: a boto3 client, resource or session made per invocation.

Creating a boto3 client loads and parses the service model, builds the endpoint resolver
and registers event handlers: 2.5-3.3 ms for a repeated ``boto3.client('dynamodb')`` and
56-72 ms for a new ``boto3.Session`` each time, against 0.11 ms for a call on a reused
client (measured, see the design notes' anchors). In Lambda the execution environment is
reused across invocations, so a client created once at module level serves every warm
invocation; one created in the handler is rebuilt each time and billed each time.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .. import impact
from ..model import CPU, WALL, Frame, Profile
from .base import AnalysisContext, Finding, Rule, register
from .lambda_facts import InvokeScope, LambdaFacts, Setting, invoke_scope, lambda_facts

RULE_ID = "aws-sdk-client-per-invocation"
TITLE = "AWS SDK client created on every invocation"

#: Share of invoke-phase samples expected in SDK client/session construction when clients
#: are made once per execution environment. It is not zero: a client created lazily on the
#: first invocation is legitimate, and cold starts are typically under 1% of invocations,
#: so even a construction as long as a whole invocation stays under 1% of invoke time.
EXPECTED_SHARE = 0.01
#: Fire at 3x the expected share. Sampling noise on a share of a few percent is about
#: 1/sqrt(matching samples), so 3x keeps the lazy-client case (at most 1x) from firing,
#: while the seed post's function (CodeGuru: "5x more than expected") and a 3 ms client
#: build in a handler of up to 100 ms both fire.
THRESHOLD_SHARE = 0.03
#: Below this many matching samples one sampled tick could be a one-off lazy creation:
#: no finding (applies when values are counts of samples).
MIN_SAMPLES = 3
#: Evidence kept per finding: entry frames, and call paths per entry frame.
MAX_ENTRY_FRAMES = 10
MAX_PATHS_PER_FRAME = 5


@dataclass(frozen=True)
class FrameMatcher:
    """A function in an SDK source file, matched by file suffix and (qualified) name."""

    path: str
    names: Tuple[str, ...]

    def matches(self, frame: Frame) -> bool:
        """Whether ``frame`` is one of these functions (with or without its class prefix)."""
        function = frame.function
        if not frame.file:
            module = self.path[: -len(".py")].replace("/", ".").replace(".__init__", "")
            return any(function == f"{module}.{name}" for name in self.names)
        file = frame.file.replace("\\", "/")
        if file != self.path and not file.endswith("/" + self.path):
            return False
        return any(function in (name, name.rpartition(".")[2]) or function.endswith("." + name) for name in self.names)


#: Where client, resource and session construction happens in boto3 and botocore (1.x).
TARGETS: Tuple[FrameMatcher, ...] = (
    FrameMatcher("boto3/__init__.py", ("client", "resource", "setup_default_session", "_get_default_session")),
    FrameMatcher("boto3/session.py", ("Session.__init__", "Session.client", "Session.resource")),
    FrameMatcher("botocore/session.py", ("get_session", "Session.__init__", "Session.create_client")),
    FrameMatcher("botocore/client.py", ("ClientCreator.create_client",)),
)


def entry_index(frames: Tuple[Frame, ...]) -> Optional[int]:
    """Position of the outermost SDK construction frame in a root-first stack, if any."""
    for position, frame in enumerate(frames):
        if any(target.matches(frame) for target in TARGETS):
            return position
    return None


def _frame_dict(frame: Frame) -> Dict[str, Any]:
    return {"function": frame.function, "file": frame.file, "line": frame.line}


@dataclass
class _Tally:
    """Samples of one type in the invoke scope, and those in SDK construction."""

    scope: int = 0
    matching: int = 0


def _tally(profile: Profile, scope: InvokeScope, sample_type: str) -> Tuple[_Tally, Counter]:
    """Scope and matching totals, and matching values by call path (root..entry frame)."""
    tally = _Tally()
    paths: Counter = Counter()
    for frames, value, labels in profile.stacks(sample_type):
        if not scope.includes(frames, labels):
            continue
        tally.scope += value
        position = entry_index(frames)
        if position is not None:
            tally.matching += value
            paths[frames[: position + 1]] += value
    return tally, paths


def _evidence(paths: Counter, scope_total: int) -> List[Dict[str, Any]]:
    """Entry frames by samples, each with its heaviest call paths (root first)."""
    by_entry: Dict[Frame, Counter] = {}
    for path, value in paths.items():
        by_entry.setdefault(path[-1], Counter())[path] += value
    ranked = sorted(by_entry.items(), key=lambda item: (-sum(item[1].values()), item[0].function))
    evidence = []
    for entry, entry_paths in ranked[:MAX_ENTRY_FRAMES]:
        samples = sum(entry_paths.values())
        item = _frame_dict(entry)
        item["samples"] = samples
        item["share"] = samples / scope_total
        item["stacks"] = [
            {"frames": [_frame_dict(f) for f in path], "samples": value}
            for path, value in sorted(entry_paths.items(), key=lambda kv: -kv[1])[:MAX_PATHS_PER_FRAME]
        ]
        evidence.append(item)
    return evidence


def check(profile: Profile, context: AnalysisContext) -> List[Finding]:
    """Find SDK client/resource/session construction in the invoke phase of a Lambda profile."""
    scope = invoke_scope(profile)
    if scope is None or not (profile.has_type(CPU) or profile.has_type(WALL)):
        return []
    share_type, tally, paths = _share_tally(profile, scope)
    if tally.scope == 0 or tally.matching == 0:
        return []
    share = tally.matching / tally.scope
    counts_samples = profile.sample_types[profile.value_index(share_type)].unit == "samples"
    if share < THRESHOLD_SHARE or (counts_samples and tally.matching < MIN_SAMPLES):
        return []
    facts = lambda_facts(profile, context)
    finding = Finding(
        rule=RULE_ID,
        title=TITLE,
        summary="",
        fix=RULE.fix,
        frames=_evidence(paths, tally.scope),
        share=share,
        expected_share=EXPECTED_SHARE,
        threshold_share=THRESHOLD_SHARE,
        sample_type=share_type,
        samples=tally.matching,
        scope_samples=tally.scope,
        fingerprint=_fingerprint(profile),
    )
    _add_impact(finding, profile, scope, facts, share)
    finding.summary = _summary(finding, facts)
    return [finding]


def _share_tally(profile: Profile, scope: InvokeScope) -> Tuple[str, _Tally, Counter]:
    """The CPU tally when the invoke phase has CPU samples, else the wall tally."""
    if profile.has_type(CPU):
        tally, paths = _tally(profile, scope, CPU)
        if tally.scope > 0:
            return CPU, tally, paths
    if profile.has_type(WALL):
        tally, paths = _tally(profile, scope, WALL)
        return WALL, tally, paths
    return CPU, _Tally(), Counter()


def _time_share(profile: Profile, scope: InvokeScope, fallback: float) -> Tuple[float, str]:
    """Share of the handler's elapsed (billed) time: the wall share when there are wall samples."""
    if profile.has_type(WALL):
        tally, _ = _tally(profile, scope, WALL)
        if tally.scope > 0:
            return tally.matching / tally.scope, WALL
    return fallback, CPU


def _add_impact(finding: Finding, profile: Profile, scope: InvokeScope, facts: LambdaFacts, share: float) -> None:
    time_share, time_type = _time_share(profile, scope, share)
    inputs = facts.to_inputs()
    inputs["scope"] = scope.describe()
    inputs["time_share"] = {"value": time_share, "sample_type": time_type}
    inputs["notes"] = list(facts.notes)
    finding.inputs = inputs
    mean = facts.mean_duration_ms
    if mean is None and facts.invocations and time_type == WALL:
        handler_ms = _scope_wall_ms(profile, scope)
        if handler_ms is not None:
            mean = Setting(handler_ms / facts.invocations, "estimated")
            inputs["mean_duration_ms"] = mean.to_dict()
    if mean is None:
        inputs["notes"].append("no invocation durations in the profile: cost and CO2e not estimated")
        return
    finding.wasted_ms_per_invocation = time_share * mean.value
    rate = facts.invocations_per_month
    if rate is None:
        inputs["notes"].append("no invocation rate: pass --invocations-per-month to estimate cost and CO2e")
        return
    waste = impact.lambda_waste(
        finding.wasted_ms_per_invocation,
        rate.value,
        facts.memory_mb.value,
        facts.architecture.value,
        facts.region.value,
        mean_duration_ms=mean.value,
    )
    finding.cost_usd_per_month = waste.cost_usd_per_month
    carbon = waste.co2e_kg_per_month
    finding.co2e_kg_per_month_range = {"low": carbon.low, "central": carbon.central, "high": carbon.high}
    finding.sci_g_per_invocation = {"before": waste.sci_g_before, "after": waste.sci_g_after}
    inputs["vcpu_hours_per_month"] = waste.vcpu_hours_per_month
    inputs["energy_kwh_per_month"] = waste.energy_kwh_per_month
    inputs["co2e_kg_per_month_operational"] = carbon.operational
    inputs["co2e_kg_per_month_embodied"] = carbon.embodied


def _scope_wall_ms(profile: Profile, scope: InvokeScope) -> Optional[float]:
    """Handler wall time in the window, from sample counts times the sampling period."""
    if profile.sample_types[profile.value_index(WALL)].unit != "samples" or profile.sample_period_ns <= 0:
        return None
    tally, _ = _tally(profile, scope, WALL)
    return tally.scope * profile.sample_period_ns / 1e6


def _fingerprint(profile: Profile) -> str:
    """Stable across windows of one function: the rule and the group (or function name)."""
    name = profile.group or str(profile.metadata.get("lambda", {}).get("function_name", ""))
    return hashlib.sha256(f"{RULE_ID}\0{name}".encode()).hexdigest()[:16]


def _summary(finding: Finding, facts: LambdaFacts) -> str:
    times = finding.times_expected or 0.0
    text = (
        f"AWS SDK clients, resources or sessions are created while the handler runs: "
        f"{finding.share:.1%} of invoke-phase {finding.sample_type} samples, "
        f"{times:.1f}x the expected {finding.expected_share:.0%}"
    )
    if finding.wasted_ms_per_invocation is not None:
        text += f"; about {finding.wasted_ms_per_invocation:.1f} ms per invocation"
    if finding.cost_usd_per_month is not None and finding.co2e_kg_per_month_range is not None:
        rate = facts.invocations_per_month.value if facts.invocations_per_month else 0
        co2 = finding.co2e_kg_per_month_range
        text += (
            f", ${finding.cost_usd_per_month:,.2f}/month and {co2['central']:.3g} kg CO2e/month "
            f"(range {co2['low']:.2g}-{co2['high']:.2g}) at {rate:,.0f} invocations/month"
        )
    return text + ". Create them once, outside the handler."


RULE = register(
    Rule(
        id=RULE_ID,
        title=TITLE,
        description=(
            "boto3/botocore client, resource or session construction found under the Lambda handler "
            "during invocations. The execution environment is reused, so these objects can be built "
            "once at module level (the init phase) and reused by every warm invocation."
        ),
        target_frames=tuple(f"{t.path}: {', '.join(t.names)}" for t in TARGETS),
        context=(
            "invoke phase of an AWS Lambda function: samples labelled lambda_phase=invoke, or, when the "
            "profile has no phase labels, stacks containing the handler named in metadata.lambda.handler; "
            "init-phase samples never count"
        ),
        threshold_share=THRESHOLD_SHARE,
        expected_share=EXPECTED_SHARE,
        fix=(
            "Create the client (or resource, or session) once at module level, outside the handler, "
            "and reuse it in every invocation."
        ),
        bad_example=(
            "import boto3\n\n"
            "def handler(event, context):\n"
            "    table = boto3.resource('dynamodb').Table('orders')  # rebuilt every invocation\n"
            "    return table.get_item(Key={'id': event['id']})\n"
        ),
        good_example=(
            "import boto3\n\n"
            "TABLE = boto3.resource('dynamodb').Table('orders')  # built once per environment\n\n"
            "def handler(event, context):\n"
            "    return TABLE.get_item(Key={'id': event['id']})\n"
        ),
        check=check,
    )
)
