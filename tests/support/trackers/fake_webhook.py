"""A webhook receiver that checks greenflame's signature the way its documentation tells users to.

The check is written here from the documented rule (HMAC-SHA256 over ``<timestamp>.<body>``,
hex, ``sha256=`` prefix, five minutes of clock tolerance), independently of the sender code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Dict, List

from fake_base import FakeTracker, Reject, Request, Response, json_response


class FakeWebhookReceiver(FakeTracker):
    def __init__(self, secret: str, path: str = "/hooks/greenflame") -> None:
        super().__init__()
        self.secret = secret.encode()
        self.path = path
        self.events: List[Dict[str, Any]] = []

    def rate_limited(self, spec: Dict[str, Any]) -> Response:
        return json_response(503, {"error": "busy"}, {"Retry-After": str(spec.get("wait_s", 0))})

    def route(self, request: Request) -> Response:
        if request.raw_path != self.path:
            raise Reject(404, {"error": "not found"})
        if request.method != "POST":
            raise Reject(405, {"error": "method not allowed"})
        if request.content_type() != "application/json":
            raise Reject(415, {"error": "expected application/json"})
        stamp = request.header("X-Greenflame-Timestamp")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            raise Reject(401, {"error": "stale or missing timestamp"})
        expected = "sha256=" + hmac.new(self.secret, stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.header("X-Greenflame-Signature-256")):
            raise Reject(401, {"error": "bad signature"})
        event = json.loads(request.body)
        if event.get("event") != request.header("X-Greenflame-Event"):
            raise Reject(400, {"error": "event header and body disagree"})
        with self.lock:
            self.events.append(event)
        return 204, {}, b""
