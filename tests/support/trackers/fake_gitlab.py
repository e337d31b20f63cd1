"""A stand-in for GitLab's REST API v4 issues, notes and uploads.

As documented: ``PRIVATE-TOKEN`` (or OAuth bearer) auth, the project as a numeric id or a
URL-encoded path, ``state_event`` close/reopen, offset pagination with ``X-Page`` /
``X-Next-Page`` headers, uploads as multipart ``file``, and Rack::Attack style 429s with
``RateLimit-*`` and ``Retry-After``. Wrong requests get GitLab's error bodies.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Any, Dict, List

from fake_base import FakeTracker, Reject, Request, Response, json_response, multipart_file

UNSUPPORTED = {"error": "The provided content-type 'text/plain' is not supported."}
PROJECT = re.compile(r"^/api/v4/projects/([^/]+)(/.*)$")


class FakeGitLab(FakeTracker):
    def __init__(self, token: str, project_path: str = "acme/shop", project_id: int = 42) -> None:
        super().__init__()
        self.token = token
        self.project_path = project_path
        self.project_id = project_id
        self.issues: Dict[int, Dict[str, Any]] = {}
        self.notes: Dict[int, List[str]] = {}
        self.uploads: List[bytes] = []

    def add_issue(self, title: str, description: str, labels: List[str], state: str = "opened") -> int:
        with self.lock:
            iid = len(self.issues) + 1
            self.issues[iid] = {
                "id": 5000 + iid,
                "iid": iid,
                "project_id": self.project_id,
                "title": title,
                "description": description,
                "state": state,
                "labels": labels,
                "web_url": f"https://gitlab.example/{self.project_path}/-/issues/{iid}",
            }
            self.notes[iid] = []
            return iid

    def rate_limited(self, spec: Dict[str, Any]) -> Response:
        wait_s = float(spec.get("wait_s", 1))
        reset = math.ceil(time.time() + wait_s)
        headers = {
            "Content-Type": "text/plain",
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": "2000",
            "RateLimit-Observed": "2001",
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)),
        }
        if spec.get("retry_after", True):
            headers["Retry-After"] = str(math.ceil(wait_s))
        return 429, headers, b"Retry later\n"

    def route(self, request: Request) -> Response:
        if request.header("PRIVATE-TOKEN") != self.token and request.header("Authorization") != f"Bearer {self.token}":
            raise Reject(401, {"message": "401 Unauthorized"})
        match = PROJECT.match(request.raw_path)
        if not match or match.group(1) not in (str(self.project_id), self.project_path.replace("/", "%2F")):
            raise Reject(404, {"message": "404 Project Not Found"})
        rest = match.group(2)
        with self.lock:
            if rest == "/issues":
                return self._issues(request)
            if rest == "/uploads":
                return self._upload(request)
            found = re.match(r"^/issues/(\d+)(/notes)?$", rest)
            if found:
                return self._issue(request, int(found.group(1)), bool(found.group(2)))
        raise Reject(404, {"error": "404 Not Found"})

    def _issues(self, request: Request) -> Response:
        if request.method == "GET":
            return self._list(request)
        if request.method != "POST":
            raise Reject(405, {"error": "405 Not Allowed"})
        data = _params(request)
        if not isinstance(data.get("title"), str) or not data["title"]:
            raise Reject(400, {"error": "title is missing"})
        labels = data.get("labels") or ""
        labels = labels.split(",") if isinstance(labels, str) else labels
        iid = self.add_issue(data["title"], str(data.get("description") or ""), [x for x in labels if x])
        return json_response(201, self.issues[iid])

    def _issue(self, request: Request, iid: int, notes: bool) -> Response:
        issue = self.issues.get(iid)
        if issue is None:
            raise Reject(404, {"message": "404 Not found"})
        if notes:
            if request.method != "POST":
                raise Reject(405, {"error": "405 Not Allowed"})
            body = _params(request).get("body")
            if not isinstance(body, str) or not body:
                raise Reject(400, {"error": "body is missing"})
            self.notes[iid].append(body)
            return json_response(201, {"id": len(self.notes[iid]), "body": body, "noteable_iid": iid})
        if request.method == "GET":
            return json_response(200, issue)
        if request.method != "PUT":
            raise Reject(405, {"error": "405 Not Allowed"})
        data = _params(request)
        event = data.get("state_event")
        if event is not None and event not in ("close", "reopen"):
            raise Reject(400, {"error": "state_event does not have a valid value"})
        if not set(data) & {"title", "description", "state_event", "labels"}:
            raise Reject(
                400,
                {
                    "error": "title, description, state_event, labels are missing, "
                    "at least one parameter must be provided"
                },
            )
        for name in ("title", "description"):
            if name in data:
                issue[name] = data[name]
        if event:
            issue["state"] = "closed" if event == "close" else "opened"
        return json_response(200, issue)

    def _list(self, request: Request) -> Response:
        wanted = set(filter(None, (request.arg("labels") or "").split(",")))
        state = request.arg("state")
        per_page = min(100, int(request.arg("per_page", "20") or 20))
        page = int(request.arg("page", "1") or 1)
        items = [
            issue
            for issue in sorted(self.issues.values(), key=lambda i: -i["iid"])
            if wanted <= set(issue["labels"]) and (state in (None, "all") or issue["state"] == state)
        ]
        pages = max(1, -(-len(items) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
        }
        return json_response(200, items[(page - 1) * per_page : page * per_page], headers)

    def _upload(self, request: Request) -> Response:
        if request.method != "POST":
            raise Reject(405, {"error": "405 Not Allowed"})
        upload = multipart_file(request)
        if upload is None:
            raise Reject(400, {"error": "file is missing"})
        name, content = upload
        self.uploads.append(content)
        url = f"/uploads/{uuid.uuid4().hex}/{name}"
        alt = name.rsplit(".", 1)[0]
        return json_response(
            201, {"alt": alt, "url": url, "full_path": f"/{self.project_path}{url}", "markdown": f"![{alt}]({url})"}
        )


def _params(request: Request) -> Dict[str, Any]:
    """GitLab takes parameters as JSON or as a form; anything else is unsupported."""
    if request.content_type() == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qs

        return {k: v[0] for k, v in parse_qs(request.body.decode("utf-8")).items()}
    data = request.json(UNSUPPORTED)
    if not isinstance(data, dict):
        raise Reject(400, {"error": "400 Bad request"})
    return data
