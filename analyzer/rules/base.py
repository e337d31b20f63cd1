"""The rule contract: what a rule declares, what it returns, and the registry of rules.

A rule is a pure function ``(profile, context) -> list[Finding]`` plus the facts the
catalogue (``docs/rules.md``) publishes about it: the frames it targets, the context in
which they are wasteful, the share above which it fires, the share expected of a
healthy program, the fix, and a bad and a good code example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import impact
from ..model import Profile


@dataclass(frozen=True)
class AnalysisContext:
    """What the user told the analysis, overriding what the profile says."""

    region: Optional[str] = None
    invocations_per_month: Optional[float] = None
    #: Services: requests per month (for SCI per request), the platform whose vCPU price and
    #: power figures apply (see ``impact.SERVICE_PLATFORMS``), and a vCPU-hour price override.
    requests_per_month: Optional[float] = None
    platform: Optional[str] = None
    usd_per_vcpu_hour: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("invocations_per_month", "requests_per_month"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name.replace('_', ' ')} must be above zero, got {value}")
        if self.usd_per_vcpu_hour is not None and not self.usd_per_vcpu_hour >= 0:
            raise ValueError(f"price per vCPU-hour must not be negative, got {self.usd_per_vcpu_hour}")
        if self.platform is not None:
            impact.platform(self.platform)  # ValueError naming the known platforms
        if self.region is not None and not self.region.strip():
            raise ValueError("region must not be empty")


@dataclass
class Finding:
    """One recommendation: the evidence, how far off expectations it is, and what it costs.

    ``co2e_kg_per_month`` is the central estimate; ``co2e_kg_per_month_range`` holds
    ``low``, ``central`` and ``high``. Money and carbon are ``None`` when the profile
    lacks what is needed to estimate them (``inputs`` says what was missing).
    """

    rule: str
    title: str
    summary: str
    fix: str
    frames: List[Dict[str, Any]]
    share: float
    expected_share: float
    threshold_share: float
    sample_type: str
    samples: int
    scope_samples: int
    cost_usd_per_month: Optional[float] = None
    co2e_kg_per_month_range: Optional[Dict[str, float]] = None
    sci_g_per_invocation: Optional[Dict[str, Optional[float]]] = None
    wasted_ms_per_invocation: Optional[float] = None
    inputs: Dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    #: The application frame that called into the wasteful code (``function``, ``file``, ``line``).
    call_site: Optional[Dict[str, Any]] = None
    #: The matching samples' share of the context's wall time (what Lambda bills), when known.
    wall_share: Optional[float] = None
    #: SCI per request ``{before, after}`` for services, when the request rate is known.
    sci_g_per_request: Optional[Dict[str, Optional[float]]] = None

    @property
    def times_expected(self) -> Optional[float]:
        """Observed share / expected share ("N times more than expected")."""
        return self.share / self.expected_share if self.expected_share > 0 else None

    @property
    def co2e_kg_per_month(self) -> Optional[float]:
        """The central CO2e estimate, kg per month."""
        return None if self.co2e_kg_per_month_range is None else self.co2e_kg_per_month_range["central"]

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict with every field, ``times_expected`` and the flat CO2e."""
        return {
            "rule": self.rule,
            "title": self.title,
            "summary": self.summary,
            "fix": self.fix,
            "frames": self.frames,
            "share": self.share,
            "expected_share": self.expected_share,
            "times_expected": self.times_expected,
            "threshold_share": self.threshold_share,
            "sample_type": self.sample_type,
            "samples": self.samples,
            "scope_samples": self.scope_samples,
            "wasted_ms_per_invocation": self.wasted_ms_per_invocation,
            "cost_usd_per_month": self.cost_usd_per_month,
            "co2e_kg_per_month": self.co2e_kg_per_month,
            "co2e_kg_per_month_range": self.co2e_kg_per_month_range,
            "sci_g_per_invocation": self.sci_g_per_invocation,
            "inputs": self.inputs,
            "fingerprint": self.fingerprint,
            "call_site": self.call_site,
            "wall_share": self.wall_share,
            "sci_g_per_request": self.sci_g_per_request,
        }


Check = Callable[[Profile, AnalysisContext], List[Finding]]


@dataclass(frozen=True)
class Rule:
    """A published rule: its catalogue entry and the pure function that applies it."""

    id: str
    title: str
    description: str
    target_frames: Tuple[str, ...]
    context: str
    threshold_share: float
    expected_share: float
    fix: str
    bad_example: str
    good_example: str
    check: Check

    def __call__(self, profile: Profile, context: AnalysisContext) -> List[Finding]:
        return self.check(profile, context)


_REGISTRY: Dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    """Add ``rule`` to the registry; its id must be new."""
    if rule.id in _REGISTRY:
        raise ValueError(f"rule {rule.id!r} is registered twice")
    if not 0 <= rule.expected_share <= rule.threshold_share <= 1:
        raise ValueError(f"rule {rule.id!r}: need 0 <= expected_share <= threshold_share <= 1")
    _REGISTRY[rule.id] = rule
    return rule


def all_rules() -> List[Rule]:
    """Every registered rule, by id."""
    return [_REGISTRY[key] for key in sorted(_REGISTRY)]


def get_rule(rule_id: str) -> Rule:
    """The rule called ``rule_id``; KeyError if there is none."""
    return _REGISTRY[rule_id]
