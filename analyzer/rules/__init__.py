"""The rule catalogue: every rule registers itself on import; ``run_rules`` applies them all.

Published in ``docs/rules.md``. Each rule is a pure function ``(profile, context) ->
list[Finding]`` (see :mod:`.base` for the contract).
"""

from __future__ import annotations

from typing import List, Optional

from ..model import Profile

# Importing a rule module registers its rules.
from . import (
    aws_sdk_client,  # noqa: F401
    connections,  # noqa: F401
    hot_paths,  # noqa: F401
    idle_wait,  # noqa: F401
    imports,  # noqa: F401
    logging_overhead,  # noqa: F401
    serialization,  # noqa: F401
)
from .base import AnalysisContext, Finding, Rule, all_rules, get_rule, register
from .pattern import shared_walks

__all__ = ["AnalysisContext", "Finding", "Rule", "all_rules", "get_rule", "register", "run_rules"]


def run_rules(profile: Profile, context: Optional[AnalysisContext] = None) -> List[Finding]:
    """Every registered rule's findings on ``profile``, largest monthly cost first."""
    context = context or AnalysisContext()
    findings: List[Finding] = []
    with shared_walks():  # the pattern rules walk the profile's samples once between them
        for rule in all_rules():
            findings.extend(rule(profile, context))
    findings.sort(key=lambda f: (-(f.cost_usd_per_month or 0.0), -f.share, f.rule))
    return findings
