"""GitLab issues over REST API v4 (``/projects/:id/issues``, ``PRIVATE-TOKEN`` header).

Close and reopen go through ``state_event``; comments are notes. The fingerprint travels as
a hidden HTML comment in the description; issues are found again by listing the
``greenflame`` label page by page (``X-Next-Page``). The evidence SVG is uploaded to the
project (``/projects/:id/uploads``) and shown inline in the description.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import quote

from . import render_markdown
from .channel import IndexedChannel
from .config import ChannelConfig
from .document import TicketContent
from .models import CLOSED, OPEN, REJECTED, DeliveryError, RemoteTicket

PER_PAGE = 100
MAX_PAGES = 50


class GitLabChannel(IndexedChannel):
    """Issues in one GitLab project."""

    tracker_name = "GitLab"

    @staticmethod
    def auth_headers(config: ChannelConfig) -> Dict[str, str]:
        """The personal, project or group access token."""
        assert config.token is not None
        return {"PRIVATE-TOKEN": config.token.reveal()}

    @property
    def _project(self) -> str:
        return f"projects/{quote(self.config.target, safe='')}"

    def create(self, content: TicketContent) -> RemoteTicket:
        body = {
            "title": content.title,
            "description": self._description(content),
            "labels": ",".join(label.replace(",", " ") for label in content.labels),
        }
        return _ticket(self.transport.call("POST", f"{self._project}/issues", json=body).json())

    def update(self, ticket_id: str, content: TicketContent) -> RemoteTicket:
        body = {"title": content.title, "description": self._description(content)}
        return _ticket(self.transport.call("PUT", f"{self._project}/issues/{ticket_id}", json=body).json())

    def comment(self, ticket_id: str, text: str) -> None:
        body = {"body": render_markdown.plain(text)}
        self.transport.call("POST", f"{self._project}/issues/{ticket_id}/notes", json=body)

    def close(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        if comment:
            self.comment(ticket_id, comment)
        return self._state_event(ticket_id, "close")

    def reopen(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        ticket = self._state_event(ticket_id, "reopen")
        if comment:
            self.comment(ticket_id, comment)
        return ticket

    def _state_event(self, ticket_id: str, event: str) -> RemoteTicket:
        response = self.transport.call("PUT", f"{self._project}/issues/{ticket_id}", json={"state_event": event})
        return _ticket(response.json())

    def _description(self, content: TicketContent) -> str:
        tail: List[str] = []
        if content.svg:
            tail.append(self._upload_svg(content.svg))
        body = render_markdown.render(content)
        if not tail:
            return body
        marker = render_markdown.marker(content.key)
        return body.replace(marker, "### Evidence flame graph\n\n" + "\n\n".join(tail) + "\n\n" + marker)

    def _upload_svg(self, svg: str) -> str:
        files = {"file": ("evidence.svg", svg.encode("utf-8"), "image/svg+xml")}
        body = self.transport.call("POST", f"{self._project}/uploads", files=files).json()
        markdown = body.get("markdown") if isinstance(body, Mapping) else None
        if not isinstance(markdown, str) or not markdown.startswith("!["):
            raise DeliveryError("GitLab returned an unexpected upload response", kind=REJECTED)
        return markdown

    def _load_index(self) -> Dict[str, RemoteTicket]:
        index: Dict[str, RemoteTicket] = {}
        page: Optional[str] = "1"
        for _ in range(MAX_PAGES):
            if not page:
                break
            params = {"labels": "greenflame", "scope": "all", "per_page": PER_PAGE, "page": page}
            response = self.transport.call("GET", f"{self._project}/issues", params=params)
            items = response.json()
            if not isinstance(items, list):
                raise DeliveryError("GitLab returned an unexpected issue list", kind=REJECTED)
            for item in items:
                key = render_markdown.find_marker(item.get("description") if isinstance(item, Mapping) else None)
                if key and (key not in index or index[key].state != OPEN):
                    index[key] = _ticket(item)
            page = (response.headers.get("X-Next-Page") or "").strip() or None
        return index


def _ticket(item: Any) -> RemoteTicket:
    if not isinstance(item, Mapping) or "iid" not in item:
        raise DeliveryError("GitLab returned an unexpected issue", kind=REJECTED)
    state = CLOSED if item.get("state") == "closed" else OPEN
    return RemoteTicket(id=str(item["iid"]), url=item.get("web_url"), state=state)
