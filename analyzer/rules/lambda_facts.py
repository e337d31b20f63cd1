"""What a Lambda profile says about its function: the invoke phase, its settings and its rate.

Shared by every rule whose context is "under the Lambda handler, per invocation". The
metadata is untrusted input (it arrives over the network), so every value is checked
and a bad or missing one is replaced by a documented default, recorded as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Tuple

from .. import impact
from ..model import Frame, Profile
from .base import AnalysisContext
from .finding import LAMBDA_INPUTS, Inputs, Setting

PHASE_LABEL = "lambda_phase"
INVOKE = "invoke"
#: ``true`` on the samples of the sandbox's first (cold) invocation.
COLD_START = "lambda_cold_start"
#: The request id, on the samples of the first 8 invocations of each report.
REQUEST_ID = "lambda_request_id"

_ARCH_ALIASES = {"x86_64": impact.X86_64, "x86-64": impact.X86_64, "amd64": impact.X86_64}
_ARCH_ALIASES.update({"arm64": impact.ARM64, "aarch64": impact.ARM64})


def _number(value: Any) -> Optional[float]:
    """``value`` as a float when it is a finite JSON number, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if number - number == 0 else None  # rejects NaN and infinities


@dataclass(frozen=True)
class HandlerMatcher:
    """Recognises the frame of a handler named ``module.function`` (or ``module:function``)."""

    module: str
    function: str

    @classmethod
    def parse(cls, handler: str) -> Optional[HandlerMatcher]:
        """The matcher for a Lambda handler string; None when it has no module part."""
        module, sep, function = handler.rpartition(":") if ":" in handler else handler.rpartition(".")
        if not sep or not module or not function:
            return None
        return cls(module.replace("/", "."), function)

    def matches(self, frame: Frame) -> bool:
        """Whether ``frame`` is this handler's function in this handler's module."""
        if not frame.file:
            return frame.function in (self.function, f"{self.module}.{self.function}")
        if frame.function != self.function:
            return False
        path = frame.file.replace("\\", "/")
        stem = path[:-3] if path.endswith(".py") else path
        module_path = self.module.replace(".", "/")
        if stem == module_path or stem.endswith("/" + module_path):
            return True
        # Packages may be installed from a differently named folder (package_dir mappings,
        # zip layouts): the module's own file name still has to match.
        return stem.rpartition("/")[2] == self.module.rpartition(".")[2]


@dataclass(frozen=True)
class InvokeScope:
    """Which samples belong to the handler running an invocation, and how that was decided."""

    how: str  # "labels" (lambda_phase=invoke) or "handler" (stack holds the handler frame)
    handler: Optional[HandlerMatcher] = None

    def includes(self, frames: Tuple[Frame, ...], labels: Mapping[str, str]) -> bool:
        """Whether one sample was taken while the handler was running an invocation."""
        if self.how == "labels":
            return labels.get(PHASE_LABEL) == INVOKE
        assert self.handler is not None
        return any(self.handler.matches(frame) for frame in frames)

    def describe(self) -> str:
        """One line for the report."""
        if self.how == "labels":
            return "samples labelled lambda_phase=invoke"
        assert self.handler is not None
        return f"samples under the handler {self.handler.module}.{self.handler.function} (no phase labels)"


def lambda_metadata(profile: Profile) -> Mapping[str, Any]:
    """``metadata["lambda"]`` when it is an object, else an empty mapping."""
    value = profile.metadata.get("lambda")
    return value if isinstance(value, Mapping) else {}


def invoke_scope(profile: Profile) -> Optional[InvokeScope]:
    """How to find invoke-phase samples, or None when the profile cannot tell (not Lambda).

    Phase labels win when any sample has one: init-phase samples are then never in scope.
    """
    if any(PHASE_LABEL in sample.labels for sample in profile.samples):
        return InvokeScope("labels")
    handler = lambda_metadata(profile).get("handler")
    matcher = HandlerMatcher.parse(handler) if isinstance(handler, str) else None
    return InvokeScope("handler", matcher) if matcher else None


def marks_first_invocation(profile: Profile) -> bool:
    """Whether every invoke-phase sample of the sandbox's first invocation carries the cold-start label.

    Agents that write ``metadata.invocations.first_sequence`` (0.4 on) label that invocation's
    samples ``lambda_cold_start=true``, so an unlabelled invoke-phase sample is a later invocation.
    """
    sequence = _number(_invocations(profile).get("first_sequence"))
    return sequence is not None and sequence >= 1


@dataclass
class LambdaFacts:
    """Settings and invocation statistics of the profiled function."""

    memory_mb: Setting
    architecture: Setting
    region: Setting
    invocations: Optional[int]
    mean_duration_ms: Optional[Setting]
    invocations_per_month: Optional[Setting]
    notes: List[str] = field(default_factory=list)

    def to_inputs(self, scope: str) -> Inputs:
        """The inputs of a finding in ``scope``, each with its source (notes copied)."""
        return Inputs(
            kind=LAMBDA_INPUTS,
            scope=scope,
            notes=list(self.notes),
            memory_mb=self.memory_mb,
            architecture=self.architecture,
            region=self.region,
            invocations_in_window=self.invocations,
            mean_duration_ms=self.mean_duration_ms,
            invocations_per_month=self.invocations_per_month,
            grid_g_co2e_per_kwh=impact.grid_factor(self.region.value)[0],
        )


def lambda_facts(profile: Profile, context: AnalysisContext) -> LambdaFacts:
    """Memory, architecture, region, invocation count, mean duration and monthly rate."""
    meta = lambda_metadata(profile)
    notes: List[str] = []
    facts = LambdaFacts(
        memory_mb=_memory(meta, notes),
        architecture=_architecture(meta, notes),
        region=_region(meta, context, notes),
        invocations=invocation_count(profile),
        mean_duration_ms=_mean_duration(profile),
        invocations_per_month=None,
        notes=notes,
    )
    facts.invocations_per_month = _monthly_rate(profile, context, facts.invocations, notes)
    return facts


def _memory(meta: Mapping[str, Any], notes: List[str]) -> Setting:
    value = meta.get("memory_size_mb")
    number = _number(value)
    if number is not None and impact.LAMBDA_MIN_MEMORY_MB <= number <= impact.LAMBDA_MAX_MEMORY_MB:
        return Setting(value, "profile")
    if value is not None:
        notes.append(f"memory_size_mb {value!r} is not a Lambda memory size; assumed the default")
    return Setting(impact.DEFAULT_LAMBDA_MEMORY_MB, "default")


def _architecture(meta: Mapping[str, Any], notes: List[str]) -> Setting:
    value = meta.get("architecture")
    arch = _ARCH_ALIASES.get(value.lower()) if isinstance(value, str) else None
    if arch:
        return Setting(arch, "profile")
    if value is not None:
        notes.append(f"architecture {value!r} is unknown; assumed {impact.DEFAULT_ARCHITECTURE}")
    return Setting(impact.DEFAULT_ARCHITECTURE, "default")


def _region(meta: Mapping[str, Any], context: AnalysisContext, notes: List[str]) -> Setting:
    if context.region:
        setting = Setting(context.region.strip(), "override")
    elif isinstance(meta.get("region"), str) and meta["region"].strip():
        setting = Setting(meta["region"].strip(), "profile")
    else:
        setting = Setting(impact.DEFAULT_REGION, "default")
    if not impact.grid_factor(setting.value)[1]:
        notes.append(
            f"no grid factor for region {setting.value!r}: used the default {impact.DEFAULT_GRID_G_PER_KWH} g/kWh"
        )
    return setting


def _invocations(profile: Profile) -> Mapping[str, Any]:
    value = profile.metadata.get("invocations")
    return value if isinstance(value, Mapping) else {}


def invocation_count(profile: Profile) -> Optional[int]:
    """``metadata.invocations.count`` when it is a number of at least 1."""
    count = _number(_invocations(profile).get("count"))
    return int(count) if count is not None and count >= 1 else None


def _mean_duration(profile: Profile) -> Optional[Setting]:
    data = _invocations(profile)
    count, total = _number(data.get("count")), _number(data.get("duration_ms_sum"))
    if count is not None and count >= 1 and total is not None and total >= 0:
        return Setting(total / count, "profile")
    raw = data.get("durations_ms")
    numbers = [_number(d) for d in raw] if isinstance(raw, list) else []
    durations = [d for d in numbers if d is not None and d >= 0]
    if durations:
        return Setting(sum(durations) / len(durations), "profile")
    return None


def local_runner(profile: Profile) -> Optional[str]:
    """The local runner that made the profile (``metadata.lambda.local_runner``), if any."""
    runner = lambda_metadata(profile).get("local_runner")
    return runner if isinstance(runner, str) and runner else None


def _monthly_rate(
    profile: Profile, context: AnalysisContext, count: Optional[int], notes: List[str]
) -> Optional[Setting]:
    """The first of: the user's rate, the server's observed traffic, the profile's own window
    (never a local runner's back-to-back loop: the documented assumption instead)."""
    if context.invocations_per_month is not None:
        return Setting(float(context.invocations_per_month), "override")
    observed, window_s = context.observed_invocations, context.observed_window_s
    if observed and window_s:
        notes.append(f"invocations per month observed: {observed:,} in the group's reports over {window_s:,.0f} s")
        return Setting(observed / window_s * impact.SECONDS_PER_MONTH, "observed")
    runner = local_runner(profile)
    if runner is not None:
        notes.append(
            f"profile made by {runner}: its back-to-back invocation rate is not extrapolated; assumed "
            f"{impact.ASSUMED_INVOCATIONS_PER_MONTH:,.0f} invocations per month (pass --invocations-per-month)"
        )
        return Setting(impact.ASSUMED_INVOCATIONS_PER_MONTH, "assumed")
    if count and profile.duration_ns > 0:
        window_s = profile.duration_ns / 1e9
        notes.append(f"invocations per month measured: {count:,} invocations in the profile's {window_s:,.1f} s window")
        return Setting(count / window_s * impact.SECONDS_PER_MONTH, "measured")
    return None
