"""The one interface every ticket destination implements, and the factory that opens one."""

from __future__ import annotations

import abc
import time
from typing import Callable, ClassVar, Dict, Optional, Type

import requests

from .config import GITHUB, GITLAB, JIRA_CLOUD, JIRA_DC, WEBHOOK, ChannelConfig
from .document import TicketContent
from .models import RemoteTicket
from .transport import Transport


class Channel(abc.ABC):
    """A tracker: create, update, comment, close, reopen, and find a ticket by fingerprint key.

    Every method raises :class:`~.models.DeliveryError` (and nothing else) when the tracker
    call fails.
    """

    tracker_name: ClassVar[str] = "tracker"

    @staticmethod
    def auth_headers(config: ChannelConfig) -> Dict[str, str]:
        """The request headers that authenticate to the tracker."""
        return {}

    def __init__(self, config: ChannelConfig, transport: Transport) -> None:
        self.config = config
        self.transport = transport

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.channel_key!r})"

    @abc.abstractmethod
    def create(self, content: TicketContent) -> RemoteTicket:
        """Open a new ticket for ``content``."""

    @abc.abstractmethod
    def update(self, ticket_id: str, content: TicketContent) -> RemoteTicket:
        """Replace the ticket's title and body with ``content``."""

    @abc.abstractmethod
    def comment(self, ticket_id: str, text: str) -> None:
        """Add a plain-text comment."""

    @abc.abstractmethod
    def close(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        """Comment (when given), then close the ticket as done."""

    @abc.abstractmethod
    def reopen(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        """Reopen the ticket, then comment (when given)."""

    @abc.abstractmethod
    def find(self, key: str) -> Optional[RemoteTicket]:
        """The ticket carrying fingerprint ``key`` (marker or label), or None."""


class IndexedChannel(Channel):
    """A tracker whose greenflame tickets are listed once per channel, then found by key."""

    def __init__(self, config: ChannelConfig, transport: Transport) -> None:
        super().__init__(config, transport)
        self._index: Optional[Dict[str, RemoteTicket]] = None

    def find(self, key: str) -> Optional[RemoteTicket]:
        if self._index is None:
            self._index = self._load_index()
        return self._index.get(key)

    @abc.abstractmethod
    def _load_index(self) -> Dict[str, RemoteTicket]:
        """Every greenflame ticket by fingerprint key; an open one wins over a closed duplicate."""


def open_channel(
    config: ChannelConfig,
    *,
    session: Optional[requests.Session] = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Channel:
    """The channel for ``config``; raises ChannelConfigError when it cannot work."""
    config.check()
    from . import github, gitlab, jira, webhook

    classes: Dict[str, Type[Channel]] = {
        GITHUB: github.GitHubChannel,
        GITLAB: gitlab.GitLabChannel,
        JIRA_CLOUD: jira.JiraCloudChannel,
        JIRA_DC: jira.JiraServerChannel,
        WEBHOOK: webhook.WebhookChannel,
    }
    cls = classes[config.kind]
    transport = Transport(
        cls.tracker_name,
        config.resolved_api_url,
        cls.auth_headers(config),
        secrets=[config.token],
        policy=config.policy,
        session=session,
        sleep=sleep,
        clock=clock,
    )
    return cls(config, transport)
