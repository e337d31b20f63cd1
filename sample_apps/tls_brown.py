"""Lambda handler that builds a TLS context (and a connection) for every call to a partner API.

``ssl.create_default_context(cafile=...)`` allocates an OpenSSL context and parses the CA file
each time, and the fresh ``HTTPSConnection`` that uses it pays a TCP and a TLS handshake.
Triggers ``ssl-context-per-call`` and ``http-connection-per-request``; ``tls_green`` is the
fixed twin.

Needs the local HTTPS stand-in (no network)::

    python -m greenflame.sample_apps.stub_api --tls --port 8766 &   # prints the URL, then the CA file
    SAMPLE_API_URL=https://127.0.0.1:8766 SAMPLE_API_CA=/tmp/stub-api-.../cert.pem \\
        greenflame lambda invoke greenflame.sample_apps.tls_brown.lambda_handler --invocations 150
"""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any, Dict

from ._api import ca_file, host_port


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Fetch the price of ``event['sku']`` from the partner over HTTPS."""
    tls = ssl.create_default_context(cafile=ca_file())
    host, port = host_port()
    connection = http.client.HTTPSConnection(host, port, context=tls, timeout=5)
    try:
        connection.request("GET", f"/prices/{event.get('sku', 'sku-1001')}")
        response = connection.getresponse()
        quote = json.loads(response.read())
    finally:
        connection.close()
    return {"statusCode": response.status, "cents": quote["cents"]}
