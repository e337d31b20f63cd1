"""The analysis report: every rule's findings on a profile, with totals.

``analyze_profile`` is what the server, the pipeline and ``greenflame analyze`` call. It
returns a typed :class:`Report`; :meth:`Report.to_dict` is its one JSON document (the
``--format json`` output and the API's body).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Type, TypeVar, Union

from .model import CPU, WALL, Profile, is_number, late_reports, limited_reports
from .rules import AnalysisContext, all_rules, run_rules
from .rules.finding import Co2Range, Finding, JsonDict
from .rules.lambda_facts import invocation_count, local_runner
from .tree import hotspots

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

REPORT_VERSION = 1
HOTSPOTS = 10
#: A value copied from the profile's metadata: a JSON string or number.
Scalar = Union[str, int, float]
T = TypeVar("T", bound="DataclassInstance")


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _present(pairs: Mapping[str, Any]) -> JsonDict:
    return {key: value for key, value in pairs.items() if value is not None}


def _scalars(cls: Type[T], raw: Any) -> Optional[T]:
    """A dataclass of optional scalars from an untrusted object: its string and number fields."""
    if not isinstance(raw, Mapping):
        return None
    return cls(**{f.name: raw[f.name] for f in fields(cls) if _plain(raw.get(f.name))})


@dataclass(frozen=True)
class Window:
    """The profile's time window; ``start`` and ``end`` are ISO 8601 when the start is known."""

    start_time_unix_ns: int
    duration_ns: int
    start: Optional[str] = None
    end: Optional[str] = None

    @classmethod
    def of(cls, profile: Profile) -> Window:
        """The window of ``profile``."""
        start_ns, duration_ns = profile.start_time_unix_ns, profile.duration_ns
        if start_ns <= 0:
            return cls(start_ns, duration_ns)
        return cls(start_ns, duration_ns, _iso(start_ns), _iso(start_ns + max(duration_ns, 0)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        """Read the JSON form."""
        return cls(data["start_time_unix_ns"], data["duration_ns"], data.get("start"), data.get("end"))

    def to_dict(self) -> JsonDict:
        """``{start_time_unix_ns, duration_ns, start, end}``."""
        return asdict(self)


@dataclass(frozen=True)
class LambdaFunction:
    """What the profile's metadata says about its Lambda function (each value a string or number)."""

    function_name: Optional[Scalar] = None
    function_arn: Optional[Scalar] = None
    memory_size_mb: Optional[Scalar] = None
    architecture: Optional[Scalar] = None
    region: Optional[Scalar] = None
    runtime: Optional[Scalar] = None
    handler: Optional[Scalar] = None

    @classmethod
    def of(cls, metadata: Mapping[str, Any]) -> Optional[LambdaFunction]:
        """Read ``metadata["lambda"]`` (untrusted: only strings and numbers are kept); also the JSON form."""
        return _scalars(cls, metadata.get("lambda"))

    def to_dict(self) -> JsonDict:
        """The known values, in field order."""
        return _present(asdict(self))


@dataclass(frozen=True)
class Invocations:
    """The profile's invocation statistics and their mean duration."""

    count: Optional[Scalar] = None
    cold_starts: Optional[Scalar] = None
    duration_ms_sum: Optional[Scalar] = None

    @classmethod
    def of(cls, metadata: Mapping[str, Any]) -> Optional[Invocations]:
        """Read ``metadata["invocations"]`` (untrusted: only strings and numbers are kept); also the JSON form."""
        return _scalars(cls, metadata.get("invocations"))

    @property
    def mean_duration_ms(self) -> Optional[float]:
        """Mean invocation duration, when the count is positive and the sum is a number."""
        count, total = self.count, self.duration_ms_sum
        if isinstance(count, (int, float)) and count > 0 and isinstance(total, (int, float)):
            return total / count
        return None

    def to_dict(self) -> JsonDict:
        """The known values and ``mean_duration_ms``."""
        return _present({**asdict(self), "mean_duration_ms": self.mean_duration_ms})


@dataclass(frozen=True)
class Sampling:
    """How densely the profile was sampled: the mean rate its figures are scaled with, in how many
    of its reports the agent's CPU budget lowered the rate (each such sample stands for more time; a
    function seen less often than once a period may then be missed), and in how many the sampler
    came late for part of its schedule (waiting for the GIL: the rate there is the one achieved)."""

    rate_hz: Optional[float] = None
    rate_limited_reports: int = 0
    lowest_rate_hz: Optional[float] = None
    late_reports: int = 0

    @classmethod
    def of(cls, profile: Profile) -> Sampling:
        """From the profile's period, its ``metadata["rate_limited"]`` and its late reports (untrusted)."""
        rate = round(1e9 / profile.sample_period_ns, 3) if profile.sample_period_ns > 0 else None
        late = late_reports(profile.metadata)
        limited = profile.metadata.get("rate_limited")
        if not isinstance(limited, Mapping):
            return cls(rate, late_reports=late)
        lowest: Any = limited.get("lowest_rate_hz")
        return cls(rate, limited_reports(limited), float(lowest) if is_number(lowest) else None, late)

    @classmethod
    def from_dict(cls, data: Any) -> Sampling:
        """Read :meth:`to_dict`'s form (absent from older reports: nothing known)."""
        return _scalars(cls, data) or cls()

    def to_dict(self) -> JsonDict:
        """The known values (``late_reports`` only when some were late)."""
        values = _present(asdict(self))
        if not self.late_reports:
            del values["late_reports"]
        return values


@dataclass(frozen=True)
class RuleRef:
    """A rule the analysis ran: its id and title."""

    id: str
    title: str


@dataclass(frozen=True)
class Totals:
    """Sums over the findings that have estimates (ranges add up bound by bound)."""

    recommendations: int
    cost_usd_per_month: Optional[float]
    co2e_kg_per_month_range: Optional[Co2Range]

    @classmethod
    def of(cls, findings: List[Finding]) -> Totals:
        """The totals of ``findings``."""
        costs = [f.cost_usd_per_month for f in findings if f.cost_usd_per_month is not None]
        carbon = [f.co2e_kg_per_month_range for f in findings if f.co2e_kg_per_month_range is not None]
        return cls(len(findings), sum(costs) if costs else None, Co2Range.total(carbon))

    @property
    def co2e_kg_per_month(self) -> Optional[float]:
        """The central CO2e total."""
        return self.co2e_kg_per_month_range.central if self.co2e_kg_per_month_range else None

    def to_dict(self) -> JsonDict:
        """``{recommendations, cost_usd_per_month, co2e_kg_per_month, co2e_kg_per_month_range}``."""
        ranged = self.co2e_kg_per_month_range
        return {
            "recommendations": self.recommendations,
            "cost_usd_per_month": self.cost_usd_per_month,
            "co2e_kg_per_month": self.co2e_kg_per_month,
            "co2e_kg_per_month_range": ranged.to_dict() if ranged else None,
        }


@dataclass(frozen=True)
class Hotspot:
    """A frame by self value (bottom-up), with its total."""

    name: str
    file: str
    line: int
    self_value: int
    total: int
    sample_type: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hotspot:
        """Read one entry of :func:`greenflame.analyzer.tree.hotspots`."""
        return cls(data["name"], data["file"], data["line"], data["self"], data["total"], data["sample_type"])

    def to_dict(self) -> JsonDict:
        """``{name, file, line, self, total, sample_type}``."""
        return {
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "self": self.self_value,
            "total": self.total,
            "sample_type": self.sample_type,
        }


@dataclass(frozen=True)
class Report:
    """Every rule's findings on one profile, what was profiled, the totals and the hotspots."""

    version: int
    group: str
    window: Window
    samples: Dict[str, int]
    lambda_function: Optional[LambdaFunction]
    invocations: Optional[Invocations]
    overrides: AnalysisContext
    rules: List[RuleRef]
    recommendations: List[Finding]
    hotspots: List[Hotspot]
    sampling: Sampling = Sampling()

    @property
    def totals(self) -> Totals:
        """Sums over the recommendations."""
        return Totals.of(self.recommendations)

    def to_dict(self) -> JsonDict:
        """The report's JSON document (keys in the published order)."""
        return {
            "version": self.version,
            "group": self.group,
            "window": self.window.to_dict(),
            "samples": dict(self.samples),
            "sampling": self.sampling.to_dict(),
            "lambda": self.lambda_function.to_dict() if self.lambda_function else None,
            "invocations": self.invocations.to_dict() if self.invocations else None,
            "overrides": _present(asdict(self.overrides)),
            "rules": [asdict(rule) for rule in self.rules],
            "recommendations": [finding.to_dict() for finding in self.recommendations],
            "totals": self.totals.to_dict(),
            "hotspots": [spot.to_dict() for spot in self.hotspots],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Read the JSON form of :meth:`to_dict` (an API response); other keys are ignored."""
        return cls(
            version=data["version"],
            group=data["group"],
            window=Window.from_dict(data["window"]),
            samples=dict(data["samples"]),
            lambda_function=LambdaFunction.of(data),
            invocations=Invocations.of(data),
            overrides=AnalysisContext(**data.get("overrides") or {}),
            rules=[RuleRef(rule["id"], rule["title"]) for rule in data["rules"]],
            recommendations=[Finding.from_dict(item) for item in data["recommendations"]],
            hotspots=[Hotspot.from_dict(spot) for spot in data["hotspots"]],
            sampling=Sampling.from_dict(data.get("sampling")),
        )


def analyze_profile(profile: Profile, **overrides: Any) -> Report:
    """Run every rule on ``profile``; return the report.

    ``overrides`` are the fields of :class:`~greenflame.analyzer.rules.AnalysisContext`
    (``region``, ``invocations_per_month``, ``requests_per_month``, ``platform``,
    ``usd_per_vcpu_hour``); each overrides what the profile says. Raises ValueError for an
    invalid override and ProfileError for an inconsistent profile.
    """
    profile.validate()
    context = AnalysisContext(**overrides)
    return Report(
        version=REPORT_VERSION,
        group=profile.group,
        window=Window.of(profile),
        samples={t.name: profile.total(t.name) for t in profile.sample_types},
        lambda_function=LambdaFunction.of(profile.metadata),
        invocations=Invocations.of(profile.metadata),
        overrides=context,
        rules=[RuleRef(rule.id, rule.title) for rule in all_rules()],
        recommendations=run_rules(profile, context),
        hotspots=[Hotspot.from_dict(spot) for spot in hotspots(profile, _hotspot_type(profile), HOTSPOTS)],
        sampling=Sampling.of(profile),
    )


def observed_traffic(profiles: Sequence[Profile]) -> Dict[str, Any]:
    """The Lambda traffic a set of one group's reports saw: ``observed_invocations`` over
    ``observed_window_s`` (first start to last end), as :func:`analyze_profile` overrides.

    Empty when no report counts invocations, or when any comes from a local runner (its
    back-to-back loop is no traffic).
    """
    counts = [invocation_count(profile) for profile in profiles]
    if not any(counts) or any(local_runner(profile) for profile in profiles):
        return {}
    start = min(profile.start_time_unix_ns for profile in profiles)
    end = max(profile.start_time_unix_ns + profile.duration_ns for profile in profiles)
    if end <= start:
        return {}
    return {"observed_invocations": sum(count or 0 for count in counts), "observed_window_s": (end - start) / 1e9}


def _hotspot_type(profile: Profile) -> str:
    return CPU if profile.has_type(CPU) else WALL


def _iso(unix_ns: int) -> str:
    return datetime.fromtimestamp(unix_ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")
