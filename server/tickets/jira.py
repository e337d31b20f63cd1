"""Jira issues: Cloud over REST v3 (ADF, e-mail + API token) and Server/Data Center over REST v2
(wiki markup, personal access token as a bearer token).

The fingerprint travels as a label ``greenflame-<key>``, found again with JQL. Close and
reopen pick a workflow transition by the target status category (``done`` to close,
``new``/``indeterminate`` to reopen). The evidence SVG is attached to the issue
(``X-Atlassian-Token: no-check``) when it is created.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import render_adf, render_wiki
from .channel import Channel
from .config import ChannelConfig
from .document import Paragraph, Text, TicketContent
from .models import CLOSED, OPEN, REJECTED, DeliveryError, RemoteTicket

PAGE_SIZE = 50
MAX_PAGES = 20
DONE = "done"
NOT_DONE = ("new", "indeterminate")
CLOSE_NAMES = ("done", "close", "closed", "resolve", "resolved")
REOPEN_NAMES = ("reopen", "reopened", "to do", "open", "backlog")
LABEL_UNSAFE = re.compile(r"\s+")
ATTACHMENT_NOTE = Paragraph((Text("The evidence flame graph is attached: "), Text("evidence.svg", code=True)))


def fingerprint_label(key: str) -> str:
    """The label that names a finding on a Jira issue."""
    return f"greenflame-{key}"


class JiraChannel(Channel):
    """What Jira Cloud and Jira Server share; subclasses fix the API version and body format."""

    api_version = "2"

    @property
    def _api(self) -> str:
        return f"rest/api/{self.api_version}"

    def _description(self, content: TicketContent) -> Any:
        raise NotImplementedError

    def _comment_body(self, text: str) -> Any:
        raise NotImplementedError

    def create(self, content: TicketContent) -> RemoteTicket:
        fields: Dict[str, Any] = {
            "project": {"key": self.config.target},
            "summary": content.title,
            "issuetype": {"name": self.config.issue_type},
            "description": self._description(content),
            "labels": self._labels(content),
        }
        if self.config.components:
            fields["components"] = [{"name": name} for name in self.config.components]
        body = self.transport.call("POST", f"{self._api}/issue", json={"fields": fields}).json()
        if not isinstance(body, Mapping) or not isinstance(body.get("key"), str):
            raise DeliveryError("Jira returned an unexpected create response", kind=REJECTED)
        if content.svg:
            self._attach(body["key"], content.svg)
        return RemoteTicket(id=body["key"], url=self._browse(body["key"]), state=OPEN)

    def update(self, ticket_id: str, content: TicketContent) -> RemoteTicket:
        fields = {"summary": content.title, "description": self._description(content)}
        self.transport.call("PUT", f"{self._api}/issue/{ticket_id}", json={"fields": fields})
        return RemoteTicket(id=ticket_id, url=self._browse(ticket_id), state=self._state(ticket_id))

    def comment(self, ticket_id: str, text: str) -> None:
        self.transport.call("POST", f"{self._api}/issue/{ticket_id}/comment", json={"body": self._comment_body(text)})

    def close(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        if comment:
            self.comment(ticket_id, comment)
        self._transition(ticket_id, (DONE,), CLOSE_NAMES)
        return RemoteTicket(id=ticket_id, url=self._browse(ticket_id), state=CLOSED)

    def reopen(self, ticket_id: str, comment: Optional[str] = None) -> RemoteTicket:
        self._transition(ticket_id, NOT_DONE, REOPEN_NAMES)
        if comment:
            self.comment(ticket_id, comment)
        return RemoteTicket(id=ticket_id, url=self._browse(ticket_id), state=OPEN)

    def find(self, key: str) -> Optional[RemoteTicket]:
        jql = f'project = "{_jql_string(self.config.target)}" AND labels = "{fingerprint_label(key)}"'
        found: Optional[RemoteTicket] = None
        for issue in self._search(jql):
            ticket = self._from_issue(issue)
            if found is None or ticket.state == OPEN:
                found = ticket
        return found

    def _search(self, jql: str) -> List[Mapping[str, Any]]:
        raise NotImplementedError

    def _labels(self, content: TicketContent) -> List[str]:
        labels = [*content.labels, *self.config.labels, fingerprint_label(content.key)]
        return list(dict.fromkeys(LABEL_UNSAFE.sub("-", label.strip()) for label in labels if label.strip()))

    def _browse(self, key: str) -> str:
        site = self.transport.base_url
        return f"{site.rstrip('/')}/browse/{key}"

    def _state(self, ticket_id: str) -> str:
        body = self.transport.call("GET", f"{self._api}/issue/{ticket_id}", params={"fields": "status"}).json()
        return self._from_issue(body).state

    def _from_issue(self, issue: Any) -> RemoteTicket:
        if not isinstance(issue, Mapping) or not isinstance(issue.get("key"), str):
            raise DeliveryError("Jira returned an unexpected issue", kind=REJECTED)
        status = (issue.get("fields") or {}).get("status") or {}
        category = (status.get("statusCategory") or {}).get("key")
        return RemoteTicket(id=issue["key"], url=self._browse(issue["key"]), state=CLOSED if category == DONE else OPEN)

    def _transition(self, ticket_id: str, categories: Sequence[str], names: Sequence[str]) -> None:
        path = f"{self._api}/issue/{ticket_id}/transitions"
        body = self.transport.call("GET", path).json()
        choice = pick_transition(body.get("transitions") if isinstance(body, Mapping) else None, categories, names)
        if choice is None:
            wanted = "close" if DONE in categories else "reopen"
            raise DeliveryError(f"Jira offers no transition to {wanted} {ticket_id}", kind=REJECTED)
        self.transport.call("POST", path, json={"transition": {"id": choice}})

    def _attach(self, ticket_id: str, svg: str) -> None:
        files = {"file": ("evidence.svg", svg.encode("utf-8"), "image/svg+xml")}
        headers = {"X-Atlassian-Token": "no-check"}
        self.transport.call("POST", f"{self._api}/issue/{ticket_id}/attachments", files=files, headers=headers)


class JiraCloudChannel(JiraChannel):
    """Jira Cloud: REST v3, descriptions and comments in ADF, basic auth with e-mail and API token."""

    tracker_name = "Jira Cloud"
    api_version = "3"

    @staticmethod
    def auth_headers(config: ChannelConfig) -> Dict[str, str]:
        """HTTP basic auth from the account e-mail and the API token."""
        assert config.token is not None
        pair = f"{config.email}:{config.token.reveal()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii"), "Accept": "application/json"}

    def _description(self, content: TicketContent) -> Any:
        return render_adf.render(content, [ATTACHMENT_NOTE] if content.svg else [])

    def _comment_body(self, text: str) -> Any:
        return render_adf.plain(text)

    def _search(self, jql: str) -> List[Mapping[str, Any]]:
        """``GET /rest/api/3/search/jql``, following ``nextPageToken``."""
        issues: List[Mapping[str, Any]] = []
        token: Optional[str] = None
        for _ in range(MAX_PAGES):
            params: Dict[str, Any] = {"jql": jql, "fields": "status,summary", "maxResults": PAGE_SIZE}
            if token:
                params["nextPageToken"] = token
            body = _mapping(self.transport.call("GET", f"{self._api}/search/jql", params=params).json())
            issues += [item for item in body.get("issues") or [] if isinstance(item, Mapping)]
            token = body.get("nextPageToken")
            if not token or body.get("isLast"):
                break
        return issues


class JiraServerChannel(JiraChannel):
    """Jira Server / Data Center: REST v2, wiki-markup text, personal access token as bearer."""

    tracker_name = "Jira"
    api_version = "2"

    @staticmethod
    def auth_headers(config: ChannelConfig) -> Dict[str, str]:
        """The personal access token as a bearer token."""
        assert config.token is not None
        return {"Authorization": f"Bearer {config.token.reveal()}", "Accept": "application/json"}

    def _description(self, content: TicketContent) -> Any:
        return render_wiki.render(content, [ATTACHMENT_NOTE] if content.svg else [])

    def _comment_body(self, text: str) -> Any:
        return render_wiki.plain(text)

    def _search(self, jql: str) -> List[Mapping[str, Any]]:
        """``GET /rest/api/2/search``, following ``startAt``/``total``."""
        issues: List[Mapping[str, Any]] = []
        start = 0
        for _ in range(MAX_PAGES):
            params = {"jql": jql, "fields": "status,summary", "maxResults": PAGE_SIZE, "startAt": start}
            body = _mapping(self.transport.call("GET", f"{self._api}/search", params=params).json())
            page = [item for item in body.get("issues") or [] if isinstance(item, Mapping)]
            issues += page
            start += len(page)
            if not page or start >= int(body.get("total") or 0):
                break
        return issues


def pick_transition(transitions: Any, categories: Sequence[str], names: Sequence[str]) -> Optional[str]:
    """The id of the transition into one of ``categories``, preferring the usual names."""
    candidates = []
    for item in transitions if isinstance(transitions, list) else []:
        if not isinstance(item, Mapping) or "id" not in item:
            continue
        target = item.get("to") or {}
        category = (target.get("statusCategory") or {}).get("key")
        if category in categories:
            name = str(item.get("name") or target.get("name") or "").lower()
            candidates.append((0 if name in names else 1, str(item["id"])))
    return min(candidates)[1] if candidates else None


def _mapping(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise DeliveryError("Jira returned an unexpected search response", kind=REJECTED)
    return body


def _jql_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
