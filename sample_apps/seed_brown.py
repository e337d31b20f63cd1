"""The seed post's "brown" Lambda function: it creates its AWS SDK client on every invocation.

Lambda keeps a function's module state between warm invocations, so a ``boto3`` client built in
the initialization code is reused for free; built inside ``lambda_handler`` (as here) it is built
again on every call, which costs milliseconds of CPU each time. greenflame's
``aws-sdk-client-per-invocation`` rule flags it; ``seed_green`` is the fixed twin.

Run it locally with the profiler::

    greenflame lambda invoke greenflame.sample_apps.seed_brown.lambda_handler --invocations 200 --out brown.json

Nothing here talks to the network: creating a client needs a region but no credentials.
Self-contained on purpose, like the post's function: it deploys as one file (the runtime tests
copy it alone into a task root), so it repeats its twin's work rather than importing it.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict

import boto3

TABLE = "greetings"
ROWS = 600  # about 1 ms of CPU; creating the client in seed_brown costs several times more


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Say 'Hello World' as a Function URL response, creating the DynamoDB client first."""
    client = boto3.client("dynamodb", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    output = "Hello World"
    print(output)
    return _response(output, event, getattr(context, "aws_request_id", ""), client.meta.region_name)


def _response(message: str, event: Dict[str, Any], request_id: str, region: str) -> Dict[str, Any]:
    """A small JSON response with the rows the page would show and an ETag over the body."""
    ranked = sorted(range(ROWS), key=lambda i: (-((i * 7919) % 1009), i))
    rows = [
        {"rank": rank, "id": i, "table": TABLE, "greeting": f"{message} #{i}", "score": (i * 7919) % 1009}
        for rank, i in enumerate(ranked, start=1)
    ]
    body = json.dumps(
        {
            "message": message,
            "requestId": request_id,
            "path": event.get("rawPath", "/"),
            "region": region,
            "rows": rows,
        },
        sort_keys=True,
    )
    etag = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "ETag": etag}, "body": body}
