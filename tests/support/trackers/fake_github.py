"""A stand-in for the GitHub Issues REST API (api.github.com, version 2022-11-28).

Implements what greenflame uses, the way GitHub documents it: bearer token auth, the
``application/vnd.github+json`` media type, create/get/list/update issues, comments,
``Link`` pagination and primary/secondary rate limits. Wrong requests get GitHub's errors.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Dict, List, Optional

from fake_base import FakeTracker, Reject, Request, Response, json_response

DOCS = "https://docs.github.com/rest"
ISSUES = re.compile(r"^/repos/([^/]+)/([^/]+)/issues$")
ISSUE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)$")
COMMENTS = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$")
#: GitHub's pagination links name the repository by id, not by owner/name.
REPO_ID_ISSUES = "/repositories/1/issues"
STATE_REASONS = {"completed", "not_planned", "reopened", None}


class FakeGitHub(FakeTracker):
    def __init__(self, token: str, repo: str = "acme/shop") -> None:
        super().__init__()
        self.token = token
        self.repo = repo
        self.issues: Dict[int, Dict[str, Any]] = {}
        self.comments: Dict[int, List[str]] = {}
        self._next_number = 1

    # -- helpers for tests --------------------------------------------------

    def add_issue(
        self, title: str, body: str, labels: List[str], state: str = "open", pull_request: bool = False
    ) -> int:
        with self.lock:
            number = self._next_number
            self._next_number += 1
            issue = self._issue(number, title, body, labels, state)
            if pull_request:
                issue["pull_request"] = {"url": f"{self.url}/repos/{self.repo}/pulls/{number}"}
            self.issues[number] = issue
            self.comments[number] = []
            return number

    def _issue(self, number: int, title: str, body: str, labels: List[str], state: str) -> Dict[str, Any]:
        return {
            "id": 1000 + number,
            "number": number,
            "title": title,
            "body": body,
            "state": state,
            "state_reason": None,
            "labels": [{"name": name} for name in labels],
            "url": f"{self.url}/repos/{self.repo}/issues/{number}",
            "html_url": f"https://github.example/{self.repo}/issues/{number}",
        }

    # -- protocol -----------------------------------------------------------

    def rate_limited(self, spec: Dict[str, Any]) -> Response:
        wait_s = float(spec.get("wait_s", 1))
        if spec.get("kind") == "secondary":
            body = {"message": "You have exceeded a secondary rate limit.", "documentation_url": DOCS}
            return json_response(429, body, {"Retry-After": str(round(wait_s))})
        reset = math.ceil(time.time() + wait_s)
        headers = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "5000",
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-resource": "core",
        }
        return json_response(
            403, {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS}, headers
        )

    def route(self, request: Request) -> Response:
        self._check_auth(request)
        if request.method in ("POST", "PATCH"):
            data = request.json({"message": "Unsupported Media Type", "documentation_url": DOCS})
            if not isinstance(data, dict):
                raise Reject(400, {"message": "Problems parsing JSON", "documentation_url": DOCS})
        else:
            data = None
        if request.raw_path == REPO_ID_ISSUES and request.method == "GET":
            with self.lock:
                return self._list(request, data)
        for pattern, handlers in (
            (ISSUES, {"POST": self._create, "GET": self._list}),
            (ISSUE, {"GET": self._get, "PATCH": self._update}),
            (COMMENTS, {"POST": self._comment}),
        ):
            match = pattern.match(request.raw_path)
            if match and f"{match.group(1)}/{match.group(2)}" == self.repo and request.method in handlers:
                with self.lock:
                    return handlers[request.method](request, data, *match.groups()[2:])
        raise Reject(404, {"message": "Not Found", "documentation_url": DOCS})

    def _check_auth(self, request: Request) -> None:
        if request.header("Authorization") not in (f"Bearer {self.token}", f"token {self.token}"):
            raise Reject(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})
        accept = request.header("Accept")
        if accept and "application/vnd.github" not in accept and "application/json" not in accept:
            raise Reject(415, {"message": "Unsupported 'Accept' header", "documentation_url": DOCS})
        version = request.header("X-GitHub-Api-Version")
        if version and version != "2022-11-28":
            raise Reject(400, {"message": f"API version {version} is not supported.", "documentation_url": DOCS})

    def _create(self, request: Request, data: Any) -> Response:
        title = data.get("title")
        if not isinstance(title, str) or not title:
            raise _invalid("title", "missing_field")
        labels = data.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise _invalid("labels", "invalid")
        number = self.add_issue(title, str(data.get("body") or ""), labels)
        return json_response(201, self.issues[number])

    def _get(self, request: Request, data: Any, number: str) -> Response:
        return json_response(200, self._find(number))

    def _update(self, request: Request, data: Any, number: str) -> Response:
        issue = self._find(number)
        if "state" in data and data["state"] not in ("open", "closed"):
            raise _invalid("state", "invalid")
        if data.get("state_reason", None) not in STATE_REASONS:
            raise _invalid("state_reason", "invalid")
        if "title" in data and not (isinstance(data["title"], str) and data["title"]):
            raise _invalid("title", "invalid")
        for name in ("title", "body", "state", "state_reason"):
            if name in data:
                issue[name] = data[name]
        return json_response(200, issue)

    def _comment(self, request: Request, data: Any, number: str) -> Response:
        self._find(number)
        body = data.get("body")
        if not isinstance(body, str) or not body:
            raise _invalid("body", "missing_field", "IssueComment")
        self.comments[int(number)].append(body)
        return json_response(201, {"id": len(self.comments[int(number)]), "body": body})

    def _list(self, request: Request, data: Any) -> Response:
        state = request.arg("state", "open")
        wanted = set(filter(None, (request.arg("labels") or "").split(",")))
        per_page = min(100, int(request.arg("per_page", "30") or 30))
        page = int(request.arg("page", "1") or 1)
        items = [
            issue
            for issue in sorted(self.issues.values(), key=lambda i: -i["number"])
            if (state == "all" or issue["state"] == state) and wanted <= {label["name"] for label in issue["labels"]}
        ]
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        last = max(1, -(-len(items) // per_page))
        if page < last:
            base = f"{self.url}{REPO_ID_ISSUES}?state={state}&labels={','.join(sorted(wanted))}&per_page={per_page}"
            headers["Link"] = f'<{base}&page={page + 1}>; rel="next", <{base}&page={last}>; rel="last"'
        return json_response(200, chunk, headers)

    def _find(self, number: str) -> Dict[str, Any]:
        issue = self.issues.get(int(number))
        if issue is None:
            raise Reject(404, {"message": "Not Found", "documentation_url": DOCS})
        return issue

    def issue_with_marker(self, key: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [i for i in self.issues.values() if f"greenflame:fingerprint={key}" in (i["body"] or "")]

    def by_number(self, number: Optional[str]) -> Dict[str, Any]:
        assert number is not None
        return self.issues[int(number)]


def _invalid(field_name: str, code: str, resource: str = "Issue") -> Reject:
    errors = [{"resource": resource, "code": code, "field": field_name}]
    return Reject(422, {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS})
