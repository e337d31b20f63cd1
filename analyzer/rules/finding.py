"""A finding and its parts: typed objects from the rules to the renderers, tickets and the API.

Dictionaries appear only at the edges: :meth:`Finding.to_dict` is the finding's JSON (the
report's ``recommendations``, the database, HTTP bodies) and :meth:`Finding.from_dict`
reads it back. Every ``to_dict`` keeps the key order of the published JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

from ..model import Frame

#: The JSON form of a finding (and of its parts): what ``to_dict`` returns.
JsonDict = Dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class FrameRef:
    """A frame as a finding names it: function, file and line (0 when unknown)."""

    function: str
    file: str = ""
    line: int = 0

    @classmethod
    def of(cls, frame: Frame) -> FrameRef:
        """The reference to a profile frame."""
        return cls(frame.function, frame.file, frame.line)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrameRef:
        """Read ``{function, file, line}``."""
        line = data.get("line")
        return cls(str(data.get("function", "?")), str(data.get("file") or ""), line if isinstance(line, int) else 0)

    def to_frame(self) -> Frame:
        """The profile frame this names."""
        return Frame(self.function, self.file, self.line)

    def to_dict(self) -> JsonDict:
        """``{function, file, line}``."""
        return {"function": self.function, "file": self.file, "line": self.line}


@dataclass(frozen=True)
class CallPath:
    """One call path into an evidence frame, root first, ending at that frame."""

    frames: Tuple[FrameRef, ...]
    samples: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallPath:
        """Read ``{frames, samples}``."""
        frames = tuple(FrameRef.from_dict(item) for item in data.get("frames") or () if isinstance(item, Mapping))
        return cls(frames, data["samples"])

    def to_dict(self) -> JsonDict:
        """``{frames, samples}``."""
        return {"frames": [frame.to_dict() for frame in self.frames], "samples": self.samples}


@dataclass(frozen=True)
class EvidenceFrame:
    """An entry frame of a finding: its samples, share of the scope and heaviest call paths."""

    frame: FrameRef
    samples: int
    share: float
    stacks: Tuple[CallPath, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvidenceFrame:
        """Read the JSON form (see :meth:`to_dict`)."""
        stacks = tuple(CallPath.from_dict(item) for item in data.get("stacks") or () if isinstance(item, Mapping))
        return cls(FrameRef.from_dict(data), data["samples"], data["share"], stacks)

    def to_dict(self) -> JsonDict:
        """``{function, file, line, samples, share, stacks}``."""
        return {
            **self.frame.to_dict(),
            "samples": self.samples,
            "share": self.share,
            "stacks": [stack.to_dict() for stack in self.stacks],
        }


@dataclass(frozen=True)
class Co2Range:
    """A CO2e estimate in kg per month: low, central and high."""

    low: float
    central: float
    high: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Co2Range:
        """Read ``{low, central, high}``."""
        return cls(data["low"], data["central"], data["high"])

    @classmethod
    def total(cls, ranges: Sequence[Co2Range]) -> Optional[Co2Range]:
        """The bound-by-bound sum of ``ranges``; None when there are none."""
        if not ranges:
            return None
        return cls(sum(r.low for r in ranges), sum(r.central for r in ranges), sum(r.high for r in ranges))

    def to_dict(self) -> JsonDict:
        """``{low, central, high}``."""
        return {"low": self.low, "central": self.central, "high": self.high}


@dataclass(frozen=True)
class Sci:
    """Software Carbon Intensity in g CO2e per unit (invocation or request), now and after the fix."""

    before: Optional[float]
    after: Optional[float]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sci:
        """Read ``{before, after}``."""
        return cls(data.get("before"), data.get("after"))

    def to_dict(self) -> JsonDict:
        """``{before, after}``."""
        return {"before": self.before, "after": self.after}


@dataclass
class Setting:
    """One input of the impact estimate and where it came from."""

    value: Any
    source: str  # "profile", "override", "observed", "measured", "estimated", "assumed" or "default"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Setting:
        """Read ``{value, source}``."""
        return cls(data.get("value"), str(data.get("source", "")))

    def to_dict(self) -> JsonDict:
        """``{value, source}``."""
        return {"value": self.value, "source": self.source}


@dataclass(frozen=True)
class TimeShare:
    """The share of the billed time a finding wastes, and which samples measured it."""

    value: float
    sample_type: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimeShare:
        """Read ``{value, sample_type}``."""
        return cls(data["value"], str(data["sample_type"]))

    def to_dict(self) -> JsonDict:
        """``{value, sample_type}``."""
        return {"value": self.value, "sample_type": self.sample_type}


@dataclass(frozen=True)
class Recurrence:
    """Whether a Lambda finding's pattern recurs: in which sampled invocations it was seen.

    ``evidence`` says how that was decided: ``cold-start label`` (the agent labels the samples of
    the sandbox's first invocation ``lambda_cold_start=true``; any other invoke-phase sample is a
    later invocation) or ``none`` (an older agent or an imported file: not decided, the finding
    fires as before). ``invocations_seen`` of ``invocations_sampled`` count distinct invocations
    among those whose samples carry a ``lambda_request_id`` label (the first 8 of each report).
    """

    evidence: str
    first_invocation: bool = False
    later_invocations: bool = False
    invocations_seen: int = 0
    invocations_sampled: int = 0

    @property
    def recurs(self) -> bool:
        """Seen beyond the sandbox's first invocation (always true without evidence)."""
        return self.evidence == NO_EVIDENCE or self.later_invocations

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recurrence:
        """Read the JSON form (see :meth:`to_dict`)."""
        return cls(
            str(data.get("evidence") or NO_EVIDENCE),
            bool(data.get("first_invocation")),
            bool(data.get("later_invocations")),
            int(data.get("invocations_seen") or 0),
            int(data.get("invocations_sampled") or 0),
        )

    def to_dict(self) -> JsonDict:
        """``{evidence, first_invocation, later_invocations, invocations_seen, invocations_sampled, recurs}``."""
        return {
            "evidence": self.evidence,
            "first_invocation": self.first_invocation,
            "later_invocations": self.later_invocations,
            "invocations_seen": self.invocations_seen,
            "invocations_sampled": self.invocations_sampled,
            "recurs": self.recurs,
        }

    def describe(self) -> str:
        """One line for the reports."""
        if self.evidence == NO_EVIDENCE:
            return "not checked (the profile does not mark the sandbox's first invocation)"
        when = "in later invocations" if self.later_invocations else "in the first invocation only"
        if self.first_invocation and self.later_invocations:
            when = "in the first and later invocations"
        counted = ""
        if self.invocations_sampled:
            seen, sampled = self.invocations_seen, self.invocations_sampled
            counted = f"; in {seen} of {sampled} sampled invocations with a request id"
        return f"seen {when}{counted}"


#: :attr:`Recurrence.evidence` values.
COLD_START_LABEL = "cold-start label"
NO_EVIDENCE = "none"

LAMBDA_INPUTS = "lambda"
SERVICE_INPUTS = "service"
#: The JSON keys of each kind of inputs, in order: those always present, then those of an estimate.
_KEYS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    LAMBDA_INPUTS: (
        (
            "memory_mb",
            "architecture",
            "region",
            "invocations_in_window",
            "mean_duration_ms",
            "invocations_per_month",
            "grid_g_co2e_per_kwh",
            "scope",
            "time_share",
            "notes",
        ),
        ("co2e_kg_per_month_operational", "co2e_kg_per_month_embodied", "vcpu_hours_per_month", "energy_kwh_per_month"),
    ),
    SERVICE_INPUTS: (
        ("scope", "region", "platform", "grid_g_co2e_per_kwh", "notes"),
        (
            "process_cpu_share",
            "cpu_rate_vcpus",
            "usd_per_vcpu_hour",
            "vcpu_hours_per_month",
            "energy_kwh_per_month",
            "requests_per_month",
            "co2e_kg_per_month_operational",
            "co2e_kg_per_month_embodied",
        ),
    ),
}
_SETTINGS = (
    "memory_mb",
    "architecture",
    "region",
    "platform",
    "mean_duration_ms",
    "invocations_per_month",
    "requests_per_month",
    "usd_per_vcpu_hour",
)


@dataclass
class Inputs:
    """What a finding's cost and CO2e were computed from, each setting with its source.

    ``kind`` is ``lambda`` (priced per GB-second of the handler's billed time) or ``service``
    (priced per vCPU-hour of the process's CPU); empty for a finding with no estimate.
    ``estimated`` says whether the money and carbon figures were computed.
    """

    kind: str = ""
    scope: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    memory_mb: Optional[Setting] = None
    architecture: Optional[Setting] = None
    region: Optional[Setting] = None
    platform: Optional[Setting] = None
    invocations_in_window: Optional[int] = None
    mean_duration_ms: Optional[Setting] = None
    invocations_per_month: Optional[Setting] = None
    requests_per_month: Optional[Setting] = None
    usd_per_vcpu_hour: Optional[Setting] = None
    grid_g_co2e_per_kwh: Optional[float] = None
    time_share: Optional[TimeShare] = None
    process_cpu_share: Optional[float] = None
    cpu_rate_vcpus: Optional[float] = None
    vcpu_hours_per_month: Optional[float] = None
    energy_kwh_per_month: Optional[float] = None
    co2e_kg_per_month_operational: Optional[float] = None
    co2e_kg_per_month_embodied: Optional[float] = None
    estimated: bool = False

    def to_dict(self) -> JsonDict:
        """The JSON form: the kind's keys in the published order (empty for no kind)."""
        if self.kind not in _KEYS:
            return {}
        always, estimate = _KEYS[self.kind]
        keys = always + estimate if self.estimated else always
        return {key: _json(getattr(self, key)) for key in keys}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inputs:
        """Read the JSON form back (the kind and ``estimated`` from which keys are there)."""
        kind = LAMBDA_INPUTS if "memory_mb" in data else SERVICE_INPUTS if "platform" in data else ""
        if not kind:
            return cls()
        values: Dict[str, Any] = {key: data.get(key) for key in _KEYS[kind][0] + _KEYS[kind][1]}
        for key in _SETTINGS:
            if isinstance(values.get(key), Mapping):
                values[key] = Setting.from_dict(values[key])
        if isinstance(values.get("time_share"), Mapping):
            values["time_share"] = TimeShare.from_dict(values["time_share"])
        values["notes"] = [str(note) for note in values.get("notes") or []]
        estimated = _KEYS[kind][1][0] in data
        return cls(kind=kind, estimated=estimated, **values)


def _json(value: Any) -> Any:
    if isinstance(value, (Setting, TimeShare)):
        return value.to_dict()
    if isinstance(value, list):
        return list(value)
    return value


def _optional(data: Mapping[str, Any], key: str, read: Callable[[Mapping[str, Any]], T]) -> Optional[T]:
    value = data.get(key)
    return read(value) if isinstance(value, Mapping) else None


@dataclass
class Finding:
    """One recommendation: the evidence, how far off expectations it is, and what it costs.

    ``co2e_kg_per_month`` is the central estimate of ``co2e_kg_per_month_range``. Money and
    carbon are ``None`` when the profile lacks what is needed to estimate them (``inputs``
    says what was missing).
    """

    rule: str
    title: str
    summary: str
    fix: str
    frames: List[EvidenceFrame]
    share: float
    expected_share: float
    threshold_share: float
    sample_type: str
    samples: int
    scope_samples: int
    cost_usd_per_month: Optional[float] = None
    co2e_kg_per_month_range: Optional[Co2Range] = None
    sci_g_per_invocation: Optional[Sci] = None
    wasted_ms_per_invocation: Optional[float] = None
    inputs: Inputs = field(default_factory=Inputs)
    fingerprint: str = ""
    #: The application frame that called into the wasteful code.
    call_site: Optional[FrameRef] = None
    #: The matching samples' share of the context's wall time (what Lambda bills), when known.
    wall_share: Optional[float] = None
    #: SCI per request for services, when the request rate is known.
    sci_g_per_request: Optional[Sci] = None
    #: Lambda: in which sampled invocations the pattern was seen (see :class:`Recurrence`).
    recurrence: Optional[Recurrence] = None

    @property
    def times_expected(self) -> Optional[float]:
        """Observed share / expected share ("N times more than expected")."""
        return self.share / self.expected_share if self.expected_share > 0 else None

    @property
    def co2e_kg_per_month(self) -> Optional[float]:
        """The central CO2e estimate, kg per month."""
        return None if self.co2e_kg_per_month_range is None else self.co2e_kg_per_month_range.central

    def to_dict(self) -> JsonDict:
        """A JSON-serialisable dict with every field, ``times_expected`` and the flat CO2e."""
        return {
            "rule": self.rule,
            "title": self.title,
            "summary": self.summary,
            "fix": self.fix,
            "frames": [item.to_dict() for item in self.frames],
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
            "co2e_kg_per_month_range": _to_json(self.co2e_kg_per_month_range),
            "sci_g_per_invocation": _to_json(self.sci_g_per_invocation),
            "inputs": self.inputs.to_dict(),
            "fingerprint": self.fingerprint,
            "call_site": _to_json(self.call_site),
            "wall_share": self.wall_share,
            "sci_g_per_request": _to_json(self.sci_g_per_request),
            "recurrence": _to_json(self.recurrence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Read the JSON form of :meth:`to_dict` (a stored or posted finding); KeyError if incomplete."""
        return cls(
            rule=str(data["rule"]),
            title=str(data["title"]),
            summary=str(data.get("summary") or ""),
            fix=str(data.get("fix") or ""),
            frames=[EvidenceFrame.from_dict(item) for item in data.get("frames") or () if isinstance(item, Mapping)],
            share=data["share"],
            expected_share=data["expected_share"],
            threshold_share=data["threshold_share"],
            sample_type=str(data["sample_type"]),
            samples=data["samples"],
            scope_samples=data["scope_samples"],
            cost_usd_per_month=data.get("cost_usd_per_month"),
            co2e_kg_per_month_range=_optional(data, "co2e_kg_per_month_range", Co2Range.from_dict),
            sci_g_per_invocation=_optional(data, "sci_g_per_invocation", Sci.from_dict),
            wasted_ms_per_invocation=data.get("wasted_ms_per_invocation"),
            inputs=Inputs.from_dict(data.get("inputs") or {}),
            fingerprint=str(data.get("fingerprint") or ""),
            call_site=_optional(data, "call_site", FrameRef.from_dict),
            wall_share=data.get("wall_share"),
            sci_g_per_request=_optional(data, "sci_g_per_request", Sci.from_dict),
            recurrence=_optional(data, "recurrence", Recurrence.from_dict),
        )


def _to_json(value: Any) -> Optional[JsonDict]:
    return None if value is None else value.to_dict()
