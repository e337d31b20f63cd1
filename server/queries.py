"""Read-side queries shared by the API: one group's profiles in a time range, merged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask import request
from greenflame.analyzer.model import Profile, merge

from .context import get_settings
from .errors import ApiError
from .storage import GroupSummary, get_storage
from .timerange import parse_range


@dataclass(frozen=True)
class RangeProfile:
    """The merge of a group's profiles over ``[start_ns, end_ns)`` (None: unbounded)."""

    group: str
    start_ns: Optional[int]
    end_ns: Optional[int]
    profile_count: int
    profile: Profile


def require_group(name: str) -> GroupSummary:
    """The group called ``name``; a 404 ApiError if there is none."""
    group = get_storage().get_group(name)
    if group is None:
        raise ApiError(404, "not_found", f"there is no group {name!r}")
    return group


def merged_range(name: str) -> RangeProfile:
    """The group's profiles within the request's ``from``/``to`` range, merged into one."""
    require_group(name)
    start_ns, end_ns = parse_range(request.args.get("from"), request.args.get("to"))
    limit = get_settings().max_query_profiles
    storage = get_storage()
    rows = storage.find_profiles(name, start_ns, end_ns, limit=limit + 1)
    if len(rows) > limit:
        raise ApiError(400, "range_too_large", f"the range holds more than {limit} profiles; choose a shorter range")
    merged = merge([storage.load_profile(row) for row in rows], name)
    return RangeProfile(name, start_ns, end_ns, len(rows), merged)
