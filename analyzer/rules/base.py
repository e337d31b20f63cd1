"""The rule contract: what a rule declares, what it returns, and the registry of rules.

A rule is a pure function ``(profile, context) -> list[Finding]`` plus the facts the
catalogue (``docs/rules.md``) publishes about it: the frames it targets, the context in
which they are wasteful, the share above which it fires, the share expected of a
healthy program, the fix, and a bad and a good code example. The :class:`Finding` a rule
returns, and its parts, are in :mod:`.finding`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from .. import impact
from ..model import Profile
from .finding import Finding

__all__ = ["AnalysisContext", "Check", "Finding", "Rule", "all_rules", "get_rule", "register"]


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
    #: Lambda traffic the server observed: invocations counted by the group's reports over a
    #: window of this many seconds (see :func:`greenflame.analyzer.report.observed_traffic`).
    observed_invocations: Optional[int] = None
    observed_window_s: Optional[float] = None

    def __post_init__(self) -> None:
        if (self.observed_invocations is None) != (self.observed_window_s is None):
            raise ValueError("observed invocations need their window, and a window its invocations")
        if self.observed_window_s is not None and not self.observed_window_s > 0:
            raise ValueError(f"observed window must be above zero seconds, got {self.observed_window_s}")
        if self.observed_invocations is not None and not self.observed_invocations >= 0:
            raise ValueError(f"observed invocations must not be negative, got {self.observed_invocations}")
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
