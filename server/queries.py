"""Read-side queries shared by the API: one group's profiles in a time range, merged, and filters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple
from urllib.parse import unquote

from flask import request

from greenflame.analyzer.model import CPU, WALL, Profile
from greenflame.analyzer.tree import SampleFilter, all_of, focus_filter, frame_match, label_filter

from .context import get_settings
from .errors import ApiError
from .rollups import get_rollups, range_key
from .storage import GroupSummary, get_storage
from .timerange import parse_range

MAX_LABEL_FILTERS = 16


@dataclass(frozen=True)
class RangeProfile:
    """The merge of a group's profiles over ``[start_ns, end_ns)`` (None: unbounded).

    ``key`` names exactly the profiles merged, for caching what is computed from them.
    """

    group: str
    start_ns: Optional[int]
    end_ns: Optional[int]
    profile_count: int
    profile: Profile
    key: str = ""


def require_group(name: str) -> GroupSummary:
    """The group called ``name``; a 404 ApiError if there is none."""
    group = get_storage().get_group(name)
    if group is None:
        raise ApiError(404, "not_found", f"there is no group {name!r}")
    return group


def merged_range(name: str, start_param: str = "from", end_param: str = "to", full: bool = True) -> RangeProfile:
    """The group's profiles within the request's ``from``/``to`` range (or the named parameters), merged.

    ``full`` keeps labels and metadata; without it the faster label-less merge of hourly
    rollups is returned (enough for unfiltered trees).
    """
    return range_question(name, start_param, end_param, full).merged()


@dataclass(frozen=True)
class RangeQuestion:
    """A request's range of one group as sent (``now``-relative bounds unresolved), checked; hashable.

    ``created_unix_ns`` tells a group from an earlier one of the same name.
    """

    group: str
    created_unix_ns: int
    start: Optional[str]
    end: Optional[str]
    full: bool

    def merged(self) -> RangeProfile:
        """The range's profiles merged, with relative bounds resolved now (needs an app context)."""
        start_ns, end_ns = parse_range(self.start, self.end)
        return _merged(self.group, start_ns, end_ns, self.full)


def range_question(name: str, start_param: str = "from", end_param: str = "to", full: bool = True) -> RangeQuestion:
    """The request's range of group ``name`` as a :class:`RangeQuestion`; a 404 or 400 ApiError now
    for an unknown group or a malformed range."""
    group = require_group(name)
    start, end = request.args.get(start_param), request.args.get(end_param)
    parse_range(start, end)
    return RangeQuestion(name, group.created_unix_ns, start, end, full)


def _merged(name: str, start_ns: Optional[int], end_ns: Optional[int], full: bool) -> RangeProfile:
    settings = get_settings()
    limit = settings.max_query_profiles if full else settings.max_summed_profiles
    storage = get_storage()
    rows = storage.find_profiles(name, start_ns, end_ns, limit=limit + 1)
    if len(rows) > limit:
        raise ApiError(400, "range_too_large", f"the range holds more than {limit} profiles; choose a shorter range")
    compacted = storage.find_buckets(name, start_ns=start_ns, end_ns=end_ns)  # profiles past raw retention
    key = range_key(rows, compacted)
    if not rows and not compacted:
        return RangeProfile(name, start_ns, end_ns, 0, Profile(group=name), key)
    rollups = get_rollups(storage)
    merged = rollups.merged(name, rows, compacted) if full else rollups.folded(name, rows, start_ns, end_ns, compacted)
    count = len(rows) + sum(bucket.profile_count for bucket in compacted)
    return RangeProfile(name, start_ns, end_ns, count, merged, key)


def sample_type_arg() -> str:
    """The ``type`` parameter: cpu (default) or wall."""
    sample_type = request.args.get("type", CPU)
    if sample_type not in (CPU, WALL):
        raise ApiError(400, "invalid_parameter", "type must be cpu or wall")
    return sample_type


def label_args() -> Dict[str, str]:
    """The ``label`` parameters (each ``key=value``; repeat for several) as a mapping.

    A key holding ``=`` is sent percent-encoded (``%3D``, and ``%`` as ``%25``): the key ends
    at the first ``=``, and is then decoded.
    """
    wanted: Dict[str, str] = {}
    raw = request.args.getlist("label")
    if len(raw) > MAX_LABEL_FILTERS:
        raise ApiError(400, "invalid_parameter", f"at most {MAX_LABEL_FILTERS} label filters")
    for item in raw:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise ApiError(400, "invalid_parameter", "label must be key=value")
        wanted[unquote(key)] = value
    return wanted


def focus_args() -> Optional[Tuple[str, Optional[str]]]:
    """The ``focus`` function name and optional ``focus_file``, or None."""
    function = request.args.get("focus")
    if not function:
        return None
    return function, request.args.get("focus_file") or None


def sample_filter(labels: Dict[str, str], focus: Optional[Tuple[str, Optional[str]]]) -> Optional[SampleFilter]:
    """The filter keeping samples with all ``labels`` that pass through the ``focus`` frame."""
    return all_of(
        [
            label_filter(labels) if labels else None,
            focus_filter(frame_match(focus[0], focus[1])) if focus else None,
        ]
    )
