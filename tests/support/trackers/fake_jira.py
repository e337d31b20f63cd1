"""A stand-in for Jira Cloud REST v3 and Jira Server / Data Center REST v2.

Cloud: basic auth with e-mail and API token, ADF descriptions and comments, search at
``/rest/api/3/search/jql`` with ``nextPageToken`` (the old ``/search`` answers 410).
Server/DC: personal access token as bearer, plain/wiki text, ``/rest/api/2/search`` with
``startAt``/``total``. Both: create/edit issues, comments, workflow transitions,
attachments behind ``X-Atlassian-Token: no-check``, 429s with ``Retry-After`` (and, on
Cloud, ``X-RateLimit-Reset`` in ISO 8601). Wrong requests get Jira's ``errorMessages`` /
``errors`` bodies.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any, Dict, List, Optional, Tuple

from fake_base import FakeTracker, Reject, Request, Response, json_response, multipart_file

STATUSES = {"11": ("To Do", "new"), "21": ("In Progress", "indeterminate"), "31": ("Done", "done")}
ISSUE_TYPES = ("Task", "Bug", "Story")
CLAUSE = re.compile(r'^\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$')
ADF_BLOCKS = {"paragraph", "heading", "bulletList", "orderedList", "listItem", "codeBlock", "rule"}
ADF_MARKS = {"strong", "em", "code", "link", "strike", "underline"}
UNSUPPORTED = {"errorMessages": ["Unsupported Media Type"], "errors": {}}


def errors(**fields: str) -> Dict[str, Any]:
    return {"errorMessages": [], "errors": fields}


def messages(*texts: str) -> Dict[str, Any]:
    return {"errorMessages": list(texts), "errors": {}}


class FakeJira(FakeTracker):
    def __init__(self, *, cloud: bool, token: str, email: str = "", project: str = "OPS", page_cap: int = 50) -> None:
        super().__init__()
        self.cloud = cloud
        self.token = token
        self.email = email
        self.project = project
        self.page_cap = page_cap
        self.components = {"Backend"}
        self.issues: Dict[str, Dict[str, Any]] = {}
        self.comments: Dict[str, List[Any]] = {}
        self.attachments: Dict[str, List[Tuple[str, bytes]]] = {}

    @property
    def version(self) -> str:
        return "3" if self.cloud else "2"

    def add_issue(self, summary: str, labels: List[str], status: str = "11", description: Any = None) -> str:
        with self.lock:
            number = len(self.issues) + 1
            key = f"{self.project}-{number}"
            self.issues[key] = {
                "id": str(10000 + number),
                "key": key,
                "fields": {"summary": summary, "labels": labels, "description": description, "status": _status(status)},
            }
            self.comments[key] = []
            self.attachments[key] = []
            return key

    def status_of(self, key: Optional[str]) -> str:
        assert key is not None
        return str(self.issues[key]["fields"]["status"]["name"])

    def rate_limited(self, spec: Dict[str, Any]) -> Response:
        wait_s = float(spec.get("wait_s", 1))
        headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"}
        if spec.get("retry_after", True):
            headers["Retry-After"] = str(round(wait_s))
        if self.cloud:
            reset = time.gmtime(time.time() + wait_s + 60)  # minute precision, rounded up
            headers["X-RateLimit-Reset"] = time.strftime("%Y-%m-%dT%H:%MZ", reset)
        return json_response(429, messages("Rate limit exceeded."), headers)

    # -- routing ------------------------------------------------------------

    def route(self, request: Request) -> Response:
        self._check_auth(request)
        prefix = f"/rest/api/{self.version}"
        if not request.raw_path.startswith(prefix + "/"):
            raise Reject(404, messages("Not found"))
        path = request.raw_path[len(prefix) :]
        with self.lock:
            return self._dispatch(request, path)

    def _dispatch(self, request: Request, path: str) -> Response:
        method = request.method
        if path == "/issue":
            return self._only(method, "POST") or self._create(request)
        if path == "/search/jql" and self.cloud:
            return self._only(method, "GET", "POST") or self._search_cloud(request)
        if path == "/search":
            if self.cloud:
                raise Reject(
                    410, messages("The requested API has been removed. Please migrate to /rest/api/3/search/jql.")
                )
            return self._only(method, "GET", "POST") or self._search_dc(request)
        match = re.match(r"^/issue/([A-Z]+-\d+)(/comment|/transitions|/attachments)?$", path)
        if not match:
            raise Reject(404, messages("Not found"))
        key, sub = match.group(1), match.group(2)
        if key not in self.issues:
            raise Reject(404, messages("Issue does not exist or you do not have permission to see it."))
        if sub is None:
            if method == "GET":
                return json_response(200, self.issues[key])
            return self._only(method, "PUT") or self._edit(request, key)
        if sub == "/comment":
            return self._only(method, "POST") or self._comment(request, key)
        if sub == "/transitions":
            return self._transitions(request, key)
        return self._only(method, "POST") or self._attach(request, key)

    @staticmethod
    def _only(method: str, *allowed: str) -> Optional[Response]:
        if method in allowed:
            return None
        raise Reject(405, messages(f"Method {method} is not allowed here."))

    def _check_auth(self, request: Request) -> None:
        header = request.header("Authorization")
        if self.cloud:
            expected = "Basic " + base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        else:
            expected = f"Bearer {self.token}"
        if header != expected:
            raise Reject(401, messages("Client must be authenticated to access this resource."))

    # -- endpoints ----------------------------------------------------------

    def _create(self, request: Request) -> Response:
        fields = self._valid_fields(request, "Issue must be created with fields.", creating=True)
        key = self.add_issue(fields["summary"], list(fields.get("labels") or []), description=fields.get("description"))
        issue = self.issues[key]
        return json_response(
            201, {"id": issue["id"], "key": key, "self": f"{self.url}/rest/api/{self.version}/issue/{issue['id']}"}
        )

    def _edit(self, request: Request, key: str) -> Response:
        fields = self._valid_fields(request, "No fields to update.", creating=False)
        self.issues[key]["fields"].update(fields)
        return 204, {}, b""

    def _valid_fields(self, request: Request, missing: str, creating: bool) -> Dict[str, Any]:
        """The request's ``fields`` object, or the 400 Jira answers when it is missing or invalid."""
        data = request.json(UNSUPPORTED)
        fields = data.get("fields") if isinstance(data, dict) else None
        if not isinstance(fields, dict):
            raise Reject(400, messages(missing))
        problems = self._field_problems(fields, creating=creating)
        if problems:
            raise Reject(400, errors(**problems))
        return fields

    def _field_problems(self, fields: Dict[str, Any], creating: bool) -> Dict[str, str]:
        problems: Dict[str, str] = {}
        known = {"project", "summary", "issuetype", "description", "labels", "components"}
        for name in set(fields) - known:
            problems[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        if creating and (fields.get("project") or {}).get("key") != self.project:
            problems["project"] = "valid project is required"
        if creating and (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES:
            problems["issuetype"] = "valid issue type is required"
        summary = fields.get("summary")
        if (creating or "summary" in fields) and (not isinstance(summary, str) or not summary.strip()):
            problems["summary"] = "You must specify a summary of the issue."
        elif isinstance(summary, str) and (len(summary) > 255 or "\n" in summary):
            problems["summary"] = "The summary is invalid because it contains newline characters or is too long."
        if "description" in fields and not self._valid_text(fields["description"]):
            problems["description"] = (
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
                if self.cloud
                else "Operation value must be a string"
            )
        for label in fields.get("labels") or []:
            if not isinstance(label, str) or re.search(r"\s", label) or len(label) > 255:
                problems["labels"] = f"The label '{label}' contains spaces which is invalid."
        for component in fields.get("components") or []:
            if (component or {}).get("name") not in self.components:
                problems["components"] = f"Component name '{(component or {}).get('name')}' is not valid"
        return problems

    def _valid_text(self, value: Any) -> bool:
        return valid_adf(value) if self.cloud else isinstance(value, str)

    def _comment(self, request: Request, key: str) -> Response:
        data = request.json(UNSUPPORTED)
        body = data.get("body") if isinstance(data, dict) else None
        if body is None or not self._valid_text(body) or body == "":
            raise Reject(
                400, errors(comment="Comment body can not be empty!" if not body else "Comment body must be a document")
            )
        self.comments[key].append(body)
        return json_response(201, {"id": str(len(self.comments[key])), "body": body})

    def _transitions(self, request: Request, key: str) -> Response:
        current = self.issues[key]["fields"]["status"]["id"]
        available = [
            {"id": tid, "name": name, "to": {"id": tid, "name": name, "statusCategory": {"key": category}}}
            for tid, (name, category) in STATUSES.items()
            if tid != current
        ]
        if request.method == "GET":
            return json_response(200, {"expand": "transitions", "transitions": available})
        self._only(request.method, "POST")
        data = request.json(UNSUPPORTED)
        chosen = ((data or {}).get("transition") or {}).get("id") if isinstance(data, dict) else None
        if chosen not in {item["id"] for item in available}:
            raise Reject(400, messages(f"Transition id '{chosen}' is not valid for this issue."))
        self.issues[key]["fields"]["status"] = _status(chosen)
        return 204, {}, b""

    def _attach(self, request: Request, key: str) -> Response:
        if request.header("X-Atlassian-Token") != "no-check":
            raise Reject(403, messages("XSRF check failed"))
        upload = multipart_file(request)
        if upload is None:
            raise Reject(415, UNSUPPORTED)
        self.attachments[key].append(upload)
        name, content = upload
        return json_response(200, [{"id": "1", "filename": name, "size": len(content), "mimeType": "image/svg+xml"}])

    def _matching(self, request: Request) -> List[Dict[str, Any]]:
        jql = request.arg("jql") or ""
        wanted: Dict[str, str] = {}
        for clause in re.split(r"\s+AND\s+", jql):
            match = CLAUSE.match(clause)
            if not match or match.group(1) not in ("project", "labels"):
                raise Reject(400, messages(f"Error in the JQL Query: unsupported clause '{clause}'."))
            wanted[match.group(1)] = match.group(2)
        return [
            {
                "id": issue["id"],
                "key": issue["key"],
                "fields": {"status": issue["fields"]["status"], "summary": issue["fields"]["summary"]},
            }
            for issue in self.issues.values()
            if wanted.get("project", self.project) == self.project
            and ("labels" not in wanted or wanted["labels"] in issue["fields"]["labels"])
        ]

    def _search_cloud(self, request: Request) -> Response:
        if not request.arg("jql"):
            raise Reject(400, messages("The JQL query is required and must be bounded."))
        items = self._matching(request)
        size = min(self.page_cap, int(request.arg("maxResults", "50") or 50))
        start = int(request.arg("nextPageToken", "0") or 0)
        page = items[start : start + size]
        body: Dict[str, Any] = {"issues": page, "isLast": start + size >= len(items)}
        if not body["isLast"]:
            body["nextPageToken"] = str(start + size)
        return json_response(200, body)

    def _search_dc(self, request: Request) -> Response:
        items = self._matching(request)
        size = min(self.page_cap, int(request.arg("maxResults", "50") or 50))
        start = int(request.arg("startAt", "0") or 0)
        return json_response(
            200, {"startAt": start, "maxResults": size, "total": len(items), "issues": items[start : start + size]}
        )


def _status(status_id: str) -> Dict[str, Any]:
    name, category = STATUSES[status_id]
    return {"id": status_id, "name": name, "statusCategory": {"key": category}}


def valid_adf(node: Any) -> bool:
    """A document node with version 1 whose every descendant is a known, non-empty ADF node."""
    if not isinstance(node, dict) or node.get("type") != "doc" or node.get("version") != 1:
        return False
    return isinstance(node.get("content"), list) and all(_valid_node(child) for child in node["content"])


def _valid_node(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    if kind == "text":
        marks = node.get("marks") or []
        names = [mark.get("type") for mark in marks if isinstance(mark, dict)]
        if len(names) != len(marks) or not set(names) <= ADF_MARKS:
            return False
        if "code" in names and set(names) - {"code", "link"}:
            return False
        return isinstance(node.get("text"), str) and node["text"] != ""
    if kind not in ADF_BLOCKS:
        return False
    if kind == "heading" and (node.get("attrs") or {}).get("level") not in range(1, 7):
        return False
    children = node.get("content", [])
    return isinstance(children, list) and all(_valid_node(child) for child in children)
