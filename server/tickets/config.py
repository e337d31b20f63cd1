"""Where a group's tickets go: one :class:`ChannelConfig` per destination.

A destination is written ``github:OWNER/REPO``, ``gitlab:PROJECT`` (numeric id or
``group/project`` path), ``jira:KEY`` (Jira Cloud when a Jira e-mail is configured, else
Jira Server/Data Center), ``jira-cloud:KEY``, ``jira-dc:KEY`` or ``webhook:URL``.
Credentials come from the settings mapping or from ``GREENFLAME_*`` variables.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from . import credentials
from .credentials import Secret
from .transport import RetryPolicy

GITHUB, GITLAB, JIRA_CLOUD, JIRA_DC, WEBHOOK = "github", "gitlab", "jira-cloud", "jira-dc", "webhook"
KINDS = (GITHUB, GITLAB, JIRA_CLOUD, JIRA_DC, WEBHOOK)
DEFAULT_API_URLS = {GITHUB: "https://api.github.com", GITLAB: "https://gitlab.com/api/v4"}
FORMS = "github:OWNER/REPO, gitlab:PROJECT, jira:KEY, jira-cloud:KEY, jira-dc:KEY or webhook:URL"


class ChannelConfigError(ValueError):
    """A destination or its credentials cannot work; the message is one line."""


@dataclass(frozen=True)
class ChannelConfig:
    """One ticket destination with its credentials and posting options.

    ``min_usd_per_month``: findings cheaper than this never open a ticket (existing tickets
    are still kept up to date). ``link_base``: the server's public URL, for flame graph links.
    """

    kind: str
    target: str
    api_url: Optional[str] = None
    token: Optional[Secret] = None
    email: Optional[str] = None
    labels: Tuple[str, ...] = ()
    components: Tuple[str, ...] = ()
    issue_type: str = "Task"
    min_usd_per_month: float = 0.0
    link_base: Optional[str] = None
    link_template: Optional[str] = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def resolved_api_url(self) -> str:
        """The API base URL, defaulting for GitHub and GitLab; the URL itself for webhooks."""
        if self.kind == WEBHOOK:
            return self.target
        url = (self.api_url or DEFAULT_API_URLS.get(self.kind, "")).rstrip("/")
        if self.kind == GITLAB and not url.endswith("/api/v4"):
            url += "/api/v4"
        return url

    @property
    def channel_key(self) -> str:
        """A stable, credential-free name for this destination (the store's channel column)."""
        if self.kind == WEBHOOK:
            parts = urlsplit(self.target)
            digest = hashlib.sha256(self.target.encode()).hexdigest()[:8]
            return f"webhook:{parts.netloc.rpartition('@')[2]}#{digest}"  # no user:password@
        host = urlsplit(self.resolved_api_url).netloc
        default_host = urlsplit(DEFAULT_API_URLS.get(self.kind, "")).netloc
        suffix = "" if host == default_host else f"@{host}"
        return f"{self.kind}:{self.target}{suffix}"

    def check(self) -> None:
        """Raise ChannelConfigError when this destination cannot be used as configured."""
        if self.kind not in KINDS:
            raise ChannelConfigError(f"unknown ticket destination kind {self.kind!r}; use {FORMS}")
        if not self.target.strip():
            raise ChannelConfigError(f"{self.kind}: the destination is empty; use {FORMS}")
        if self.kind == GITHUB and (self.target.count("/") != 1 or "" in self.target.split("/")):
            raise ChannelConfigError(f"github destination must be OWNER/REPO, got {self.target!r}")
        url = urlsplit(self.resolved_api_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            what = "webhook URL" if self.kind == WEBHOOK else f"{self.kind} API URL (--api-url)"
            raise ChannelConfigError(f"a {what} starting with https:// is needed, got {self.resolved_api_url!r}")
        if self.token is None:
            raise ChannelConfigError(f"no credentials for {self.kind}: set {credential_env(self.kind)}")
        if self.kind == JIRA_CLOUD and not self.email:
            raise ChannelConfigError(f"jira-cloud needs an account e-mail: set {credentials.JIRA_EMAIL_ENV}")


def credential_env(kind: str) -> str:
    """The environment variable holding the credential for ``kind``."""
    return {
        GITHUB: credentials.GITHUB_TOKEN_ENV,
        GITLAB: credentials.GITLAB_TOKEN_ENV,
        JIRA_CLOUD: credentials.JIRA_TOKEN_ENV,
        JIRA_DC: credentials.JIRA_TOKEN_ENV,
        WEBHOOK: credentials.WEBHOOK_SECRET_ENV,
    }[kind]


def parse_destination(
    to: str,
    api_url: Optional[str] = None,
    *,
    settings: Optional[Mapping[str, Any]] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> ChannelConfig:
    """A ChannelConfig from ``--to`` text plus options; ChannelConfigError when malformed.

    ``settings`` may hold ``token``, ``email``, ``labels``, ``components``, ``issue_type``,
    ``min_usd_per_month``, ``link_base`` and ``link_template``.
    """
    kind, sep, target = to.partition(":")
    kind = kind.strip().lower()
    if not sep or not target.strip():
        raise ChannelConfigError(f"--to must be one of {FORMS}, got {to!r}")
    options = dict(settings or {})
    email = options.get("email") or (environ if environ is not None else _environ()).get(credentials.JIRA_EMAIL_ENV)
    if kind == "jira":
        kind = JIRA_CLOUD if email else JIRA_DC
    if kind not in KINDS:
        raise ChannelConfigError(f"--to must be one of {FORMS}, got {to!r}")
    token = credentials.secret_from(options.get("token"), credential_env(kind), environ)
    return ChannelConfig(
        kind=kind,
        target=target.strip(),
        api_url=api_url,
        token=token,
        email=email or None,
        labels=tuple(options.get("labels") or ()),
        components=tuple(options.get("components") or ()),
        issue_type=str(options.get("issue_type") or "Task"),
        min_usd_per_month=float(options.get("min_usd_per_month") or 0.0),
        link_base=options.get("link_base"),
        link_template=options.get("link_template"),
    )


def _environ() -> Mapping[str, str]:
    import os

    return os.environ
