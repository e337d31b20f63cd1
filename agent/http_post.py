"""One POST of an encoded report to a greenflame server, judged by the delivery policy.

``urllib`` loads on the first POST, not when the agent starts. ``urllib`` (rather than bare
``http.client``) so that ``HTTPS_PROXY``/``NO_PROXY`` are honoured; redirects are not followed.
"""

from __future__ import annotations

import time

from .delivery_policy import Verdict, classify, unreachable

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import urllib.request
    from typing import Any, Dict, Optional

INGEST_PATH = "/api/v1/ingest"


class HttpPost:
    """POSTs gzip-compressed JSON reports to ``url`` with an ``Idempotency-Key`` each."""

    def __init__(self, url: str, ingest_key: Optional[str], user_agent: str) -> None:
        self.url = url
        self._ingest_key = ingest_key
        self._user_agent = user_agent
        self._opener: Optional[urllib.request.OpenerDirector] = None

    def __call__(self, body: bytes, key: str, timeout_s: float) -> Verdict:
        """POST ``body`` with idempotency ``key``, waiting at most ``timeout_s`` per socket operation."""
        import http.client
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url, data=body, headers=self.headers(key), method="POST")
        try:
            with self._get_opener().open(request, timeout=timeout_s) as response:
                response.read(65536)
                return classify(response.status, None, time.time())
        except urllib.error.HTTPError as error:
            retry_after = error.headers.get("Retry-After") if error.headers is not None else None
            return classify(error.code, retry_after, time.time())
        except (OSError, http.client.HTTPException) as error:
            # URLError, refused or reset connections, timeouts, answers that are not HTTP.
            return unreachable(getattr(error, "reason", None) or error)

    def headers(self, key: str) -> Dict[str, str]:
        """The request headers for a report with idempotency ``key``."""
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Idempotency-Key": key,
            "User-Agent": self._user_agent,
        }
        if self._ingest_key:
            headers["Authorization"] = f"Bearer {self._ingest_key}"
        return headers

    def reset_after_fork(self) -> None:
        """Forget the parent's opener (its connections belong to the parent)."""
        self._opener = None

    def _get_opener(self) -> urllib.request.OpenerDirector:
        if self._opener is None:
            import urllib.request

            class NoRedirect(urllib.request.HTTPRedirectHandler):
                # urllib would turn a redirected POST into a GET without the report.
                def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                    return None

            self._opener = urllib.request.build_opener(NoRedirect)
        return self._opener
