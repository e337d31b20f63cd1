"""Pattern rules: target frames inside a context, measured per call site.

Every catalogue rule is written as a :class:`Pattern`: the target functions, the
contexts where they are wasteful, the expected and threshold shares, and the text of its
findings. :func:`check_pattern` applies one:

1. find the context (:func:`scope.find_scope`); no context, no finding;
2. attribute each in-context sample to at most one pattern: the one whose target frame is
   outermost on the stack (the operation the application asked for; a regex compiled while
   an SDK client is being built is the client's cost); no two patterns target the same
   function, so there are no ties;
3. group the pattern's samples by call site, the application frame that called into the
   target (:func:`frames.call_site`), and report each site whose share of the context's
   samples reaches the threshold (and at least :data:`MIN_SAMPLES` samples).

Patterns measure on-CPU samples (``cpu``, or ``wall`` for profiles without CPU samples), or,
with ``measure=OFF_CPU``, samples during which the thread waited: the agent's ``idle`` count
(off the CPU on a blocking call), or for profiles without it wall samples off the CPU.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Set, Tuple

from ..model import CPU, WALL, Frame, Profile
from .base import AnalysisContext, Finding, Rule, register
from .costing import add_impact
from .finding import COLD_START_LABEL, NO_EVIDENCE, CallPath, EvidenceFrame, FrameRef, Recurrence
from .frames import FrameMatcher, MatcherIndex, call_site, is_application, normalised
from .lambda_facts import COLD_START, REQUEST_ID, marks_first_invocation
from .scope import LAMBDA, SERVICE, Scope, find_scope

ON_CPU = "on-cpu"
OFF_CPU = "off-cpu"
#: The agent's count of samples off the CPU and stopped on a blocking call (sleep, wait, recv...).
IDLE = "idle"
#: Below this many matching samples one sampled tick could be a one-off (a lazily built
#: object, the first request): no finding. Applies when values count samples.
MIN_SAMPLES = 3
#: Evidence kept per finding: entry frames, and call paths per entry frame.
MAX_ENTRY_FRAMES = 10
MAX_PATHS_PER_FRAME = 5

#: Finds the entry position in a root-first stack, given the frame-to-pattern attribution.
Locate = Callable[[Tuple[Frame, ...], Optional[Tuple[str, int]]], Optional[int]]


@dataclass(frozen=True)
class Pattern:
    """What a pattern rule looks for and how its findings read."""

    rule_id: str
    title: str
    targets: Tuple[FrameMatcher, ...]
    expected_share: float
    threshold_share: float
    what: str  # "AWS SDK clients are created": the finding's first clause
    advice: str  # one sentence: what to do
    contexts: Tuple[str, ...] = (LAMBDA, SERVICE)
    measure: str = ON_CPU
    locate: Optional[Locate] = None  # custom entry finder (off-CPU patterns)
    accept: Optional[Callable[[Site], bool]] = None  # a site-level test after counting
    #: Whether a sample (root-first stack, entry position) reuses a client kept from before (a
    #: kept pool reconnecting): counted for its site only when the site also makes new clients
    #: in later invocations, else left out.
    kept: Optional[Callable[[Tuple[Frame, ...], int], bool]] = None


_PATTERNS: Dict[str, Pattern] = {}


def register_pattern(pattern: Pattern) -> Pattern:
    """Add ``pattern`` to the attribution order (registration order breaks ties)."""
    if pattern.rule_id in _PATTERNS:
        raise ValueError(f"pattern {pattern.rule_id!r} is registered twice")
    _PATTERNS[pattern.rule_id] = pattern
    return pattern


def patterns() -> List[Pattern]:
    """Every registered pattern, in registration order."""
    return list(_PATTERNS.values())


def attribution_index() -> MatcherIndex:
    """Every on-CPU pattern's targets, in registration order, keyed by rule id."""
    return MatcherIndex(
        (p.rule_id, matcher) for p in _PATTERNS.values() if p.measure == ON_CPU for matcher in p.targets
    )


def owner(stack: Tuple[Frame, ...], index: MatcherIndex) -> Optional[Tuple[str, int]]:
    """``(rule id, position)`` of the outermost frame any on-CPU pattern targets, or None."""
    for position, frame in enumerate(stack):
        key = index.key_for(frame)
        if key is not None:
            return key, position
    return None


@dataclass
class Site:
    """Samples of one call site: the measured value, CPU and wall, and the call paths."""

    frame: Frame
    value: int = 0
    cpu: int = 0
    wall: int = 0
    paths: Counter = field(default_factory=Counter)
    #: Lambda: seen in the sandbox's first invocation, in a later one, and the request ids seen.
    first: bool = False
    later: bool = False
    requests: Set[str] = field(default_factory=set)

    def add(self, measured: int, cpu: int, wall: int, path: Tuple[Frame, ...], labels: Mapping[str, str]) -> None:
        """Count one in-context sample of this site."""
        self.value += measured
        self.cpu += cpu
        self.wall += wall
        self.paths[path] += measured
        if labels.get(COLD_START) == "true":
            self.first = True
        else:
            self.later = True
        request = labels.get(REQUEST_ID)
        if request:
            self.requests.add(request)

    def merge(self, other: Site) -> None:
        """Add ``other``'s samples to this site's."""
        self.value, self.cpu, self.wall = self.value + other.value, self.cpu + other.cpu, self.wall + other.wall
        self.paths.update(other.paths)
        self.first, self.later = self.first or other.first, self.later or other.later
        self.requests |= other.requests


@dataclass
class Tally:
    """In-context totals and the pattern's samples by call site."""

    value_type: str
    value: int = 0
    cpu: int = 0
    wall: int = 0
    sites: Dict[str, Site] = field(default_factory=dict)
    #: Lambda: whether the profile marks the first invocation, and the request ids sampled in context.
    evidence: bool = False
    requests: Set[str] = field(default_factory=set)
    kept: Dict[str, Site] = field(default_factory=dict)

    def recurs(self, site: Site) -> bool:
        """Whether ``site`` was seen beyond the sandbox's first invocation (True without evidence)."""
        return not self.evidence or site.later

    def recurrence(self, site: Site) -> Recurrence:
        """What the finding says about the invocations ``site`` was seen in."""
        if not self.evidence:
            return Recurrence(NO_EVIDENCE)
        return Recurrence(COLD_START_LABEL, site.first, site.later, len(site.requests), len(self.requests))


def _columns(profile: Profile) -> Tuple[Optional[int], Optional[int]]:
    cpu = profile.value_index(CPU) if profile.has_type(CPU) else None
    wall = profile.value_index(WALL) if profile.has_type(WALL) else None
    return cpu, wall


def _value(pattern: Pattern, cpu: int, wall: int, idle: Optional[int], value_type: str) -> int:
    """The measured value of one sample: on-CPU samples, or waiting ones (the agent's ``idle``
    count when the profile has it, else wall samples off the CPU)."""
    if pattern.measure == OFF_CPU:
        return idle if idle is not None else max(wall - cpu, 0)
    return cpu if value_type == CPU else wall


def _value_type(pattern: Pattern, profile: Profile, walk: Callable[[], List[InScope]]) -> Optional[str]:
    """``cpu`` when the context has CPU samples, else ``wall``; off-CPU needs both columns."""
    cpu_col, wall_col = _columns(profile)
    if pattern.measure == OFF_CPU:
        return WALL if cpu_col is not None and wall_col is not None else None
    if cpu_col is not None and any(sampled.cpu for sampled in walk()):
        return CPU
    return WALL if wall_col is not None else None


@dataclass(frozen=True)
class InScope:
    """One sample inside the scope with CPU or wall time: its frames root first, its values and
    labels, and the pattern that owns it (:func:`owner`: the key and the frame's position)."""

    stack: Tuple[Frame, ...]
    cpu: int
    wall: int
    idle: Optional[int]
    labels: Mapping[str, str]
    owner: Optional[Tuple[str, int]]


@dataclass
class _Shared:
    """What the pattern rules share of one profile in one run: its scope, and the walk of it (the
    profile held, so that its id names it for the whole run)."""

    profile: Profile
    scope: Optional[Scope]
    walk: Optional[List[InScope]] = None


#: While :func:`shared_walks` is active: by profile (its id), what the rules share of it.
_SHARED: ContextVar[Optional[Dict[int, _Shared]]] = ContextVar("pattern_shared", default=None)


@contextmanager
def shared_walks() -> Iterator[None]:
    """Within, the pattern rules find a profile's scope and walk its samples once for all of them
    rather than once each (for one run of the rules over profiles nobody changes meanwhile)."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(profile: Profile) -> Optional[_Shared]:
    shared = _SHARED.get()
    if shared is None:
        return None
    found = shared.get(id(profile))
    if found is None or found.profile is not profile:
        found = shared[id(profile)] = _Shared(profile, find_scope(profile))
    return found


def scope_of(profile: Profile) -> Optional[Scope]:
    """:func:`~.scope.find_scope` of ``profile`` (found once while :func:`shared_walks` is active)."""
    shared = _shared(profile)
    return shared.scope if shared is not None else find_scope(profile)


def in_scope(profile: Profile, scope: Scope) -> List[InScope]:
    """The samples of ``profile`` inside ``scope`` with CPU or wall time, in order (walked once while
    :func:`shared_walks` is active, for the scope :func:`scope_of` gives)."""
    shared = _shared(profile)
    if shared is None or shared.scope is not scope:
        return _walk(profile, scope)
    if shared.walk is None:
        shared.walk = _walk(profile, scope)
    return shared.walk


def _walk(profile: Profile, scope: Scope) -> List[InScope]:
    cpu_col, wall_col = _columns(profile)
    idle_col = profile.value_index(IDLE) if profile.has_type(IDLE) else None
    index = attribution_index()
    keys = [index.key_for(frame) for frame in profile.frames]  # each distinct frame matched once
    frames_table = profile.frames
    walked = []
    for sample in profile.samples:
        cpu = sample.values[cpu_col] if cpu_col is not None else 0
        wall = sample.values[wall_col] if wall_col is not None else 0
        if not (cpu or wall):
            continue
        stack = tuple(frames_table[i] for i in sample.stack)
        if not scope.includes(stack, sample.labels):
            continue
        idle = sample.values[idle_col] if idle_col is not None else None
        walked.append(InScope(stack, cpu, wall, idle, sample.labels, _owner_by_ids(sample.stack, keys)))
    return walked


def tally(pattern: Pattern, profile: Profile, scope: Scope) -> Optional[Tally]:
    """Count the context and the pattern's samples by call site; None when nothing is measurable."""
    walk = functools.cache(lambda: in_scope(profile, scope))
    value_type = _value_type(pattern, profile, walk)
    if value_type is None:
        return None
    result = Tally(value_type, evidence=scope.kind == LAMBDA and marks_first_invocation(profile))
    for sampled in walk():
        cpu, wall, idle, stack = sampled.cpu, sampled.wall, sampled.idle, sampled.stack
        # The off-CPU share is of the context's wall time (what Lambda bills).
        result.value += wall if pattern.measure == OFF_CPU else _value(pattern, cpu, wall, idle, value_type)
        result.cpu += cpu
        result.wall += wall
        request = sampled.labels.get(REQUEST_ID)
        if request:
            result.requests.add(request)
        entry = pattern.locate(stack, sampled.owner) if pattern.locate else _own_entry(pattern, sampled.owner)
        if entry is None:
            continue
        measured = _value(pattern, cpu, wall, idle, value_type)
        site_frame = stack[entry] if is_application(stack[entry]) else call_site(stack, entry)
        sites = result.kept if pattern.kept and pattern.kept(stack, entry) else result.sites
        site = sites.setdefault(normalised(site_frame), Site(site_frame))
        site.add(measured, cpu, wall, stack[: entry + 1], sampled.labels)
    _merge_kept(result)
    return result


def _merge_kept(result: Tally) -> None:
    """Count a site's reuses of kept clients only when the site itself makes new ones that recur."""
    for key, kept in result.kept.items():
        site = result.sites.get(key)
        if site is not None and result.recurs(site):
            site.merge(kept)


def _owner_by_ids(stack: Tuple[int, ...], keys: List[Optional[str]]) -> Optional[Tuple[str, int]]:
    """:func:`owner` on a stack of frame indices, with each frame's key computed beforehand."""
    for position, frame_id in enumerate(stack):
        key = keys[frame_id]
        if key is not None:
            return key, position
    return None


def _own_entry(pattern: Pattern, found: Optional[Tuple[str, int]]) -> Optional[int]:
    if found is None or found[0] != pattern.rule_id:
        return None
    return found[1]


def evidence(paths: Counter, scope_total: int) -> List[EvidenceFrame]:
    """Entry frames by samples, each with its heaviest call paths (root first)."""
    by_entry: Dict[Frame, Counter] = {}
    for path, value in paths.items():
        if value:
            by_entry.setdefault(path[-1], Counter())[path] += value
    ranked = sorted(by_entry.items(), key=lambda item: (-sum(item[1].values()), item[0].function))
    items = []
    for entry, entry_paths in ranked[:MAX_ENTRY_FRAMES]:
        samples = sum(entry_paths.values())
        stacks = tuple(
            CallPath(tuple(FrameRef.of(f) for f in path), value)
            for path, value in sorted(entry_paths.items(), key=lambda kv: -kv[1])[:MAX_PATHS_PER_FRAME]
        )
        items.append(EvidenceFrame(FrameRef.of(entry), samples, samples / scope_total, stacks))
    return items


def fingerprint(rule_id: str, profile: Profile, site: Frame) -> str:
    """Stable across windows and deployments: rule, group (or function name), normalised call site."""
    lam = profile.metadata.get("lambda")
    name = profile.group or (str(lam.get("function_name", "")) if isinstance(lam, dict) else "")
    return hashlib.sha256(f"{rule_id}\0{name}\0{normalised(site)}".encode()).hexdigest()[:16]


def _counts_samples(profile: Profile, value_type: str) -> bool:
    return profile.sample_types[profile.value_index(value_type)].unit == "samples"


def check_pattern(pattern: Pattern, profile: Profile, context: AnalysisContext) -> List[Finding]:
    """Apply ``pattern`` to ``profile``: one finding per call site above the threshold."""
    scope = scope_of(profile)
    if scope is None or scope.kind not in pattern.contexts:
        return []
    counted = tally(pattern, profile, scope)
    if counted is None or counted.value <= 0:
        return []
    findings = []
    for site in sorted(counted.sites.values(), key=lambda s: (-s.value, normalised(s.frame))):
        finding = _finding(pattern, profile, context, scope, counted, site)
        if finding is not None:
            findings.append(finding)
    return findings


def _finding(
    pattern: Pattern, profile: Profile, context: AnalysisContext, scope: Scope, counted: Tally, site: Site
) -> Optional[Finding]:
    share = site.value / counted.value
    # ``accept`` guards the wall-minus-CPU fallback; the agent's idle count needs no guard.
    accepted = pattern.accept is None or profile.has_type(IDLE) or pattern.accept(site)
    if share < pattern.threshold_share or not accepted:
        return None
    if _counts_samples(profile, counted.value_type) and site.value < MIN_SAMPLES:
        return None
    if not counted.recurs(site):
        return None  # seen in the sandbox's first invocation only: one-time (cold-start) work
    finding = Finding(
        rule=pattern.rule_id,
        title=pattern.title,
        summary="",
        fix=pattern.advice,
        frames=evidence(site.paths, counted.value),
        share=share,
        expected_share=pattern.expected_share,
        threshold_share=pattern.threshold_share,
        sample_type=counted.value_type if pattern.measure == ON_CPU else "wall (off-CPU)",
        samples=site.value,
        scope_samples=counted.value,
        fingerprint=fingerprint(pattern.rule_id, profile, site.frame),
        call_site=FrameRef.of(site.frame),
        recurrence=counted.recurrence(site) if scope.kind == LAMBDA else None,
    )
    if counted.wall > 0:
        finding.wall_share = (site.value if pattern.measure == OFF_CPU else site.wall) / counted.wall
    add_impact(finding, profile, context, scope, counted.cpu, counted.wall, site.cpu)
    if scope.kind == LAMBDA and not counted.evidence:
        finding.inputs.notes.append(
            "recurrence not checked: the profile does not mark the sandbox's first invocation "
            "(no metadata.invocations.first_sequence: an older agent or an imported file); reported as before"
        )
    finding.summary = summary(pattern, finding, scope.kind)
    return finding


def summary(pattern: Pattern, finding: Finding, kind: str) -> str:
    """The finding in two sentences: what, how far off, what it costs, and the fix."""
    where = "invoke-phase" if kind == LAMBDA else "in-request"
    site = finding.call_site.function if finding.call_site else "?"
    times = finding.times_expected or 0.0
    text = (
        f"{pattern.what} in {site}: {finding.share:.1%} of {where} "
        f"{finding.sample_type} samples, {times:.1f}x the expected {finding.expected_share:.1%}"
    )
    if finding.wasted_ms_per_invocation is not None:
        text += f"; about {finding.wasted_ms_per_invocation:.2f} ms per invocation"
    if finding.cost_usd_per_month is not None:
        text += f", ${finding.cost_usd_per_month:,.2f}/month"
    co2 = finding.co2e_kg_per_month_range
    if co2 is not None:
        text += f", {co2.central:.3g} kg CO2e/month (range {co2.low:.2g}-{co2.high:.2g})"
    return f"{text}. {pattern.advice}"


def define(pattern: Pattern, *, description: str, context: str, fix: str, bad_example: str, good_example: str) -> Rule:
    """Register ``pattern`` for attribution and publish it as a catalogue rule."""
    register_pattern(pattern)

    def check(profile: Profile, analysis: AnalysisContext) -> List[Finding]:
        return check_pattern(pattern, profile, analysis)

    check.__doc__ = f"Findings of rule {pattern.rule_id} (see docs/rules.md)."
    return register(
        Rule(
            id=pattern.rule_id,
            title=pattern.title,
            description=description,
            target_frames=tuple(t.describe() for t in pattern.targets),
            context=context,
            threshold_share=pattern.threshold_share,
            expected_share=pattern.expected_share,
            fix=fix,
            bad_example=bad_example,
            good_example=good_example,
            check=check,
        )
    )
