"""What a ticket is made from: a :class:`TicketSubject`, built from a finding or an anomaly.

The ticket document, the three body renderers and the sync read only this typed object.
:meth:`TicketSubject.from_finding` takes the analyzer's :class:`Finding`;
:meth:`TicketSubject.from_mapping` is the edge for findings that arrive as JSON (stored rows,
the pipeline's dicts, anomalies shaped as findings) and reads them loosely: a missing number is
left out, never guessed, and evidence may be entry frames, bare call paths or bare names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from greenflame.analyzer.rules.finding import EvidenceFrame, Finding, FrameRef

MAX_EVIDENCE_ITEMS = 5
MAX_STACKS_PER_ITEM = 2


@dataclass(frozen=True)
class EvidenceStack:
    """One call path shown in a ticket, root first, with its samples when known."""

    frames: Tuple[FrameRef, ...]
    samples: Optional[float] = None


@dataclass(frozen=True)
class TicketEvidence:
    """One evidence item: an entry frame (when known) with its samples and share, and call paths."""

    entry: Optional[FrameRef] = None
    samples: Optional[float] = None
    share: Optional[float] = None
    stacks: Tuple[EvidenceStack, ...] = ()

    @property
    def focus(self) -> Optional[FrameRef]:
        """The frame to focus a flame graph on: the entry, else the first call path's leaf."""
        if self.entry is not None:
            return self.entry
        return self.stacks[0].frames[-1] if self.stacks and self.stacks[0].frames else None

    @classmethod
    def of(cls, item: EvidenceFrame) -> TicketEvidence:
        """A finding's entry frame and its first call paths."""
        stacks = tuple(EvidenceStack(path.frames, float(path.samples)) for path in item.stacks[:MAX_STACKS_PER_ITEM])
        return cls(item.frame, float(item.samples), item.share, stacks)


@dataclass(frozen=True)
class TicketSubject:
    """One finding or anomaly as a ticket states it: what, where, why it matters, and the fix.

    ``fix`` is plain text that may hold fenced code blocks; ``fix_code`` is a separate example.
    ``co2e_kg_per_month`` is the flat figure the sync compares; ``co2e_central``, ``co2e_low``
    and ``co2e_high`` are what the ticket shows. ``data`` is the subject's JSON form, sent as
    is to the generic webhook.
    """

    fingerprint: str
    rule: str = "finding"
    title: str = ""
    summary: str = ""
    fix: str = ""
    fix_code: str = ""
    evidence: Tuple[TicketEvidence, ...] = ()
    share: Optional[float] = None
    expected_share: Optional[float] = None
    times_expected: Optional[float] = None
    cost_usd_per_month: Optional[float] = None
    co2e_kg_per_month: Optional[float] = None
    co2e_central: Optional[float] = None
    co2e_low: Optional[float] = None
    co2e_high: Optional[float] = None
    sci_before: Optional[float] = None
    sci_after: Optional[float] = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_finding(cls, finding: Finding) -> TicketSubject:
        """The ticket subject of an analyzer finding."""
        sci = finding.sci_g_per_invocation
        ranged = finding.co2e_kg_per_month_range
        return cls(
            fingerprint=finding.fingerprint,
            rule=finding.rule,
            title=finding.title,
            summary=finding.summary,
            fix=finding.fix,
            evidence=tuple(TicketEvidence.of(item) for item in finding.frames[:MAX_EVIDENCE_ITEMS]),
            share=finding.share,
            expected_share=finding.expected_share,
            times_expected=finding.times_expected,
            cost_usd_per_month=finding.cost_usd_per_month,
            co2e_kg_per_month=finding.co2e_kg_per_month,
            co2e_central=finding.co2e_kg_per_month,
            co2e_low=ranged.low if ranged else None,
            co2e_high=ranged.high if ranged else None,
            sci_before=sci.before if sci else None,
            sci_after=sci.after if sci else None,
            data=finding.to_dict(),
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TicketSubject:
        """The ticket subject of a finding given as JSON, read loosely (see the module docstring)."""
        fix, fix_code = _fix(data.get("fix"))
        ranged = _mapping(data.get("co2e_kg_per_month_range"))
        sci = _mapping(data.get("sci_g_per_invocation"))
        flat = _number(data.get("co2e_kg_per_month"))
        fingerprint = data.get("fingerprint")
        return cls(
            fingerprint=fingerprint if isinstance(fingerprint, str) else "",
            rule=str(data.get("rule") or "finding"),
            title=str(data.get("title") or ""),
            summary=str(data.get("summary") or ""),
            fix=fix,
            fix_code=fix_code,
            evidence=_evidence(data.get("frames")),
            share=_number(data.get("share")),
            expected_share=_number(data.get("expected_share")),
            times_expected=_number(data.get("times_expected")),
            cost_usd_per_month=_number(data.get("cost_usd_per_month")),
            co2e_kg_per_month=flat,
            co2e_central=flat if flat is not None else _number(ranged.get("central")),
            co2e_low=_number(ranged.get("low")),
            co2e_high=_number(ranged.get("high")),
            sci_before=_number(sci.get("before")),
            sci_after=_number(sci.get("after")),
            data=dict(data),
        )

    def numbers(self) -> Dict[str, Optional[float]]:
        """The numbers whose change may warrant an update (stored with the ticket)."""
        return {
            "cost_usd_per_month": self.cost_usd_per_month,
            "co2e_kg_per_month": self.co2e_kg_per_month,
            "share": self.share,
            "times_expected": self.times_expected,
        }


# -- reading JSON loosely -------------------------------------------------------------


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _fix(value: Any) -> Tuple[str, str]:
    if isinstance(value, Mapping):
        text = str(value.get("text") or value.get("description") or "")
        return text, str(value.get("code") or value.get("example") or "")
    return str(value or ""), ""


def _frame(value: Any) -> FrameRef:
    """A frame given as a dict (``function`` or ``name``, ``file``, ``line``) or as anything else."""
    if not isinstance(value, Mapping):
        return FrameRef(str(value))
    line = value.get("line")
    name = value.get("function") or value.get("name") or "?"
    return FrameRef(str(name), str(value.get("file") or ""), line if isinstance(line, int) else 0)


def _is_entry(item: Any) -> bool:
    return isinstance(item, Mapping) and ("function" in item or "name" in item)


def _evidence(items: Any) -> Tuple[TicketEvidence, ...]:
    if not isinstance(items, (list, tuple)):
        return ()
    return tuple(_item(item) for item in list(items)[:MAX_EVIDENCE_ITEMS])


def _item(item: Any) -> TicketEvidence:
    if not _is_entry(item):
        return TicketEvidence(stacks=tuple(_stacks(item)))
    bare = "stacks" not in item and "frames" not in item and "stack" not in item
    stacks = () if bare else tuple(_stacks(item))
    return TicketEvidence(_frame(item), _count(item), _number(item.get("share")), stacks)


def _stacks(item: Any) -> List[EvidenceStack]:
    """The call paths an evidence item carries (root first), each with its count when given."""
    if not isinstance(item, Mapping):
        return [EvidenceStack((_frame(item),))]
    stacks = item.get("stacks")
    if isinstance(stacks, (list, tuple)):
        return [stack for entry in stacks[:MAX_STACKS_PER_ITEM] for stack in _stacks(entry)]
    frames = item.get("frames") or item.get("stack")
    if isinstance(frames, (list, tuple)):
        return [EvidenceStack(tuple(_frame(frame) for frame in frames), _count(item))]
    return []


def _count(item: Mapping[str, Any]) -> Optional[float]:
    for key in ("count", "samples", "value"):
        value = _number(item.get(key))
        if value is not None:
            return value
    return None
