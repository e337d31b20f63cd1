"""GitHub Issues over the REST API (``/repos/{owner}/{repo}/issues``, API version 2022-11-28).

The fingerprint travels as a hidden HTML comment in the body; issues are found again by
listing the ``greenflame`` label (all states, 100 per page, following ``Link: rel="next"``).
GitHub offers no API to attach files to an issue, so the evidence is the flame graph link.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional
from urllib.parse import quote

from . import render_markdown
from .channel import IndexedChannel
from .config import ChannelConfig
from .document import TicketContent
from .models import CLOSED, OPEN, REJECTED, DeliveryError, RemoteTicket

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
PER_PAGE = 100
MAX_PAGES = 50
NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class GitHubChannel(IndexedChannel):
    """Issues in one GitHub repository."""

    tracker_name = "GitHub"

    @staticmethod
    def auth_headers(config: ChannelConfig) -> Dict[str, str]:
        """Bearer token, the GitHub media type and the pinned API version."""
        assert config.token is not None
        return {
            "Authorization": f"Bearer {config.token.reveal()}",
            "Accept": MEDIA_TYPE,
            "X-GitHub-Api-Version": API_VERSION,
        }

    @property
    def _issues(self) -> str:
        owner, repo = self.config.target.split("/")
        return f"repos/{quote(owner, safe='')}/{quote(repo, safe='')}/issues"

    def create(self, content: TicketContent) -> RemoteTicket:
        body = {"title": content.title, "body": render_markdown.render(content), "labels": list(content.labels)}
        return _ticket(self.transport.call("POST", self._issues, json=body).json())

    def update(self, ticket_id: str, content: TicketContent) -> RemoteTicket:
        body = {"title": content.title, "body": render_markdown.render(content)}
        return _ticket(self.transport.call("PATCH", f"{self._issues}/{ticket_id}", json=body).json())

    def comment(self, ticket_id: str, text: str) -> None:
        self.transport.call("POST", f"{self._issues}/{ticket_id}/comments", json={"body": render_markdown.plain(text)})

    def close(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        if comment:
            self.comment(ticket_id, comment)
        body = {"state": "closed", "state_reason": "completed"}
        return _ticket(self.transport.call("PATCH", f"{self._issues}/{ticket_id}", json=body).json())

    def reopen(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        body = {"state": "open", "state_reason": "reopened"}
        ticket = _ticket(self.transport.call("PATCH", f"{self._issues}/{ticket_id}", json=body).json())
        if comment:
            self.comment(ticket_id, comment)
        return ticket

    def _load_index(self) -> Dict[str, RemoteTicket]:
        """Every greenflame issue by fingerprint key; an open one wins over a closed duplicate."""
        index: Dict[str, RemoteTicket] = {}
        url: Optional[str] = self._issues
        params: Optional[Dict[str, Any]] = {"state": "all", "labels": "greenflame", "per_page": PER_PAGE}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self.transport.call("GET", url, params=params)
            for item in _json_list(response.json()):
                key = render_markdown.find_marker(item.get("body"))
                if key and "pull_request" not in item and (key not in index or index[key].state != OPEN):
                    index[key] = _ticket(item)
            url, params = next_link(response.headers.get("Link")), None
        return index


def next_link(header: Optional[str]) -> Optional[str]:
    """The ``rel="next"`` URL of a Link header."""
    for part in (header or "").split(","):
        match = NEXT_LINK.search(part)
        if match:
            return match.group(1)
    return None


def _json_list(body: Any) -> list:
    if not isinstance(body, list):
        raise DeliveryError("GitHub returned an unexpected issue list", kind=REJECTED)
    return [item for item in body if isinstance(item, Mapping)]


def _ticket(item: Any) -> RemoteTicket:
    if not isinstance(item, Mapping) or "number" not in item:
        raise DeliveryError("GitHub returned an unexpected issue", kind=REJECTED)
    state = CLOSED if item.get("state") == "closed" else OPEN
    return RemoteTicket(id=str(item["number"]), url=item.get("html_url"), state=state)
