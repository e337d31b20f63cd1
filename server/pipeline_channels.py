"""A group's ticket destinations as the API accepts, stores and shows them.

A destination is a JSON object::

    {"to": "github:acme/shop", "api_url": "https://github.example/api/v3", "token": "...",
     "email": "...", "labels": ["perf"], "components": [], "issue_type": "Task",
     "min_usd_per_month": 5, "max_attempts": 5}

Only ``to`` is required. ``token`` (and ``email`` for Jira Cloud) may instead come from the
server's environment (``GREENFLAME_GITHUB_TOKEN`` and the others in docs/tickets.md). A stored
token is never shown back: the public form says ``"token": "stored"``, ``"environment"`` or
``"missing"``, and credentials inside ``to`` or ``api_url`` (a webhook's ``?token=``) show as ``***``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .crypto import SecretBox
from .tickets.config import ChannelConfig, ChannelConfigError, credential_env, parse_destination
from .tickets.credentials import redact
from .tickets.transport import RetryPolicy

MAX_CHANNELS = 10
MAX_ATTEMPTS = 10
_TEXT_FIELDS = ("to", "api_url", "token", "email", "issue_type")
_LIST_FIELDS = ("labels", "components")
_KNOWN = set(_TEXT_FIELDS) | set(_LIST_FIELDS) | {"min_usd_per_month", "max_attempts"}


def validate_channels(document: Any, environ: Optional[Mapping[str, str]] = None) -> List[Dict[str, Any]]:
    """The destinations of a PUT body ``{"channels": [...]}``, checked; ChannelConfigError if wrong."""
    if not isinstance(document, dict) or not isinstance(document.get("channels"), list):
        raise ChannelConfigError('send a JSON object such as {"channels": [{"to": "github:OWNER/REPO"}]}')
    items = document["channels"]
    if len(items) > MAX_CHANNELS:
        raise ChannelConfigError(f"at most {MAX_CHANNELS} channels per group")
    out = [_validate_one(index, item, environ) for index, item in enumerate(items)]
    keys = [channel_config(item, None, environ).channel_key for item in out]
    if len(set(keys)) != len(keys):
        raise ChannelConfigError("the same destination is listed twice")
    return out


def _validate_one(index: int, item: Any, environ: Optional[Mapping[str, str]]) -> Dict[str, Any]:
    where = f"channels[{index}]"
    if not isinstance(item, dict):
        raise ChannelConfigError(f"{where} must be an object")
    unknown = set(item) - _KNOWN
    if unknown:
        raise ChannelConfigError(f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
    clean: Dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = item.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ChannelConfigError(f"{where}.{name} must be a non-empty string")
        if value is not None:
            clean[name] = value.strip()
    if "to" not in clean:
        raise ChannelConfigError(f"{where}.to is required, e.g. github:OWNER/REPO")
    for name in _LIST_FIELDS:
        value = item.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ChannelConfigError(f"{where}.{name} must be a list of non-empty strings")
        clean[name] = [v.strip() for v in value]
    clean["min_usd_per_month"] = _number(item.get("min_usd_per_month", 0), f"{where}.min_usd_per_month")
    clean["max_attempts"] = _attempts(item.get("max_attempts", RetryPolicy().max_attempts), where)
    channel_config(clean, None, environ).check()  # unusable destinations are refused now, not at post time
    return clean


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ChannelConfigError(f"{name} must be a number of zero or more")
    return float(value)


def _attempts(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        raise ChannelConfigError(f"{where}.max_attempts must be a whole number from 1 to {MAX_ATTEMPTS}")
    return value


def channel_config(
    item: Mapping[str, Any], public_url: Optional[str], environ: Optional[Mapping[str, str]] = None
) -> ChannelConfig:
    """The tickets ChannelConfig of a stored destination; ChannelConfigError if ``to`` is malformed."""
    settings = {
        "token": item.get("token"),
        "email": item.get("email"),
        "labels": item.get("labels") or (),
        "components": item.get("components") or (),
        "issue_type": item.get("issue_type"),
        "min_usd_per_month": item.get("min_usd_per_month") or 0.0,
        "link_base": public_url,
    }
    config = parse_destination(str(item.get("to", "")), item.get("api_url"), settings=settings, environ=environ)
    attempts = int(item.get("max_attempts") or RetryPolicy().max_attempts)
    return replace(config, policy=replace(config.policy, max_attempts=attempts))


def public_channels(items: Sequence[Mapping[str, Any]], environ: Optional[Mapping[str, str]] = None) -> List[Any]:
    """The destinations as the API shows them: everything but the credential, plus the channel key."""
    env = os.environ if environ is None else environ
    out = []
    for item in items:
        shown: Dict[str, Any] = {k: v for k, v in item.items() if k != "token"}
        for name in ("to", "api_url"):  # a webhook URL may carry its own secret (?token=, user:password@)
            if isinstance(shown.get(name), str):
                shown[name] = redact(shown[name])
        try:
            config = channel_config(item, None, environ)
            shown["channel"] = config.channel_key
            from_env = bool(env.get(credential_env(config.kind), "").strip())
        except (ChannelConfigError, KeyError):
            shown["channel"] = None
            from_env = False
        shown["token"] = "stored" if item.get("token") else "environment" if from_env else "missing"
        out.append(shown)
    return out


def seal_tokens(items: Sequence[Mapping[str, Any]], box: SecretBox) -> List[Dict[str, Any]]:
    """The destinations with each ``token`` sealed (or re-sealed with the first key), for storing."""
    return [{**item, "token": box.reseal(item["token"])} if item.get("token") else dict(item) for item in items]


def open_tokens(items: Sequence[Mapping[str, Any]], box: SecretBox) -> List[Dict[str, Any]]:
    """The stored destinations with each sealed ``token`` opened, for use (never for a client)."""
    return [{**item, "token": box.open(item["token"])} if item.get("token") else dict(item) for item in items]
