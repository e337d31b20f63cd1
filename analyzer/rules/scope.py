"""The context in which a rule's frames are wasteful: one Lambda invocation, or one request.

A profile is read as a Lambda function when :func:`lambda_facts.invoke_scope` finds its
invoke phase (``lambda_phase`` labels, or the handler named in ``metadata.lambda``), and
otherwise as a long-running service whose request context is marked by

1. a label set by the application around each request with the agent's
   ``labels(endpoint=...)`` (or ``http_route`` / ``route``): only labelled samples count; or
2. without such labels, a request-dispatch frame of a web framework on the stack
   (:data:`REQUEST_FRAMES`, checked against the installed sources of Flask 3 and the
   standard library).

A profile with neither (a batch job, a script) has no context: rules report nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple, Union

from ..model import Frame, Profile
from .frames import FrameMatcher, MatcherIndex
from .lambda_facts import InvokeScope, invoke_scope

#: Label keys that mark a sample as taken while a request was being served.
REQUEST_LABELS: Tuple[str, ...] = ("endpoint", "http_route", "route")
#: Frames that run once per request: Flask's WSGI entry (every request goes through it,
#: hooks and error handlers included), the standard library's WSGI reference server and
#: its HTTP server, whose ``handle_one_request`` serves one request per call.
REQUEST_FRAMES: Tuple[FrameMatcher, ...] = (
    FrameMatcher("flask/app.py", ("Flask.wsgi_app",)),
    FrameMatcher("wsgiref/handlers.py", ("BaseHandler.run",)),
    FrameMatcher("http/server.py", ("BaseHTTPRequestHandler.handle_one_request",)),
)

LAMBDA = "lambda"
SERVICE = "service"


@dataclass
class RequestScope:
    """Samples taken while a service was serving a request."""

    how: str  # "labels" or "frames"
    _index: MatcherIndex = field(default_factory=lambda: MatcherIndex(("request", m) for m in REQUEST_FRAMES))

    kind = SERVICE

    def includes(self, frames: Tuple[Frame, ...], labels: Mapping[str, str]) -> bool:
        """Whether one sample was taken while a request was being served."""
        if self.how == "labels":
            return any(key in labels for key in REQUEST_LABELS)
        return any(self._index.key_for(frame) is not None for frame in frames)

    def describe(self) -> str:
        """One line for the report."""
        if self.how == "labels":
            return f"samples labelled with a request label ({', '.join(REQUEST_LABELS)})"
        return "samples under a request-dispatch frame (" + "; ".join(m.describe() for m in REQUEST_FRAMES) + ")"


@dataclass
class LambdaScope:
    """Samples taken while the handler ran an invocation (see :class:`InvokeScope`)."""

    invoke: InvokeScope

    kind = LAMBDA

    def includes(self, frames: Tuple[Frame, ...], labels: Mapping[str, str]) -> bool:
        """Whether one sample was taken while the handler was running an invocation."""
        return self.invoke.includes(frames, labels)

    def describe(self) -> str:
        """One line for the report."""
        return self.invoke.describe()


Scope = Union[LambdaScope, RequestScope]


def find_scope(profile: Profile) -> Optional[Scope]:
    """The profile's per-invocation or per-request context, or None when it has neither."""
    invoke = invoke_scope(profile)
    if invoke is not None:
        return LambdaScope(invoke)
    if any(key in sample.labels for sample in profile.samples for key in REQUEST_LABELS):
        return RequestScope("labels")
    index = MatcherIndex(("request", m) for m in REQUEST_FRAMES)
    if any(index.key_for(frame) is not None for frame in profile.frames):
        return RequestScope("frames", index)
    return None
