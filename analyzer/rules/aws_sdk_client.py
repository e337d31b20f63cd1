"""Rule ``aws-sdk-client-per-invocation``: a boto3 client, resource or session made per invocation.

Creating a boto3 client loads and parses the service model, builds the endpoint resolver,
registers event handlers and creates an SSL context: 2.5-3.3 ms for a repeated
``boto3.client('dynamodb')`` and 56-72 ms for a new ``boto3.Session`` each time, against
0.11 ms for a call on a reused client (measured, see the design notes' anchors). In Lambda
the execution environment is reused across invocations, so a client created once at module
level serves every warm invocation; one created in the handler is rebuilt and billed each time.
"""

from __future__ import annotations

from typing import Optional, Tuple

from ..model import Frame
from .frames import FrameMatcher
from .pattern import Pattern, define
from .scope import LAMBDA

RULE_ID = "aws-sdk-client-per-invocation"
TITLE = "AWS SDK client created on every invocation"

#: Share of invoke-phase CPU expected in SDK client/session construction when clients are
#: made once per execution environment. Not zero: a client created lazily on the first
#: invocation is legitimate, and cold starts are typically under 1% of invocations, so even
#: a construction as long as a whole invocation stays under 1% of invoke time.
EXPECTED_SHARE = 0.01
#: Fire at 3x the expected share: sampling noise on a share of a few percent is about
#: 1/sqrt(matching samples), so 3x keeps the lazy-client case (at most 1x) quiet, while a
#: 3 ms client build in any handler of up to 100 ms fires.
THRESHOLD_SHARE = 0.03

#: Where client, resource and session construction happens in boto3 and botocore (1.x).
TARGETS: Tuple[FrameMatcher, ...] = (
    FrameMatcher("boto3/__init__.py", ("client", "resource", "setup_default_session", "_get_default_session")),
    FrameMatcher("boto3/session.py", ("Session.__init__", "Session.client", "Session.resource")),
    FrameMatcher("botocore/session.py", ("get_session", "Session.__init__", "Session.create_client")),
    FrameMatcher("botocore/client.py", ("ClientCreator.create_client",)),
)


def entry_index(frames: Tuple[Frame, ...]) -> Optional[int]:
    """Position of the outermost SDK construction frame in a root-first stack, if any."""
    for position, frame in enumerate(frames):
        if any(target.matches(frame) for target in TARGETS):
            return position
    return None


PATTERN = Pattern(
    rule_id=RULE_ID,
    title=TITLE,
    targets=TARGETS,
    expected_share=EXPECTED_SHARE,
    threshold_share=THRESHOLD_SHARE,
    what="AWS SDK clients, resources or sessions are created while the handler runs",
    advice="Create the client (or resource, or session) once at module level, outside the handler, "
    "and reuse it in every invocation.",
    contexts=(LAMBDA,),
)

RULE = define(
    PATTERN,
    description=(
        "boto3/botocore client, resource or session construction found under the Lambda handler "
        "during invocations. The execution environment is reused, so these objects can be built "
        "once at module level (the init phase) and reused by every warm invocation."
    ),
    context=(
        "invoke phase of an AWS Lambda function: samples labelled lambda_phase=invoke, or, when the "
        "profile has no phase labels, stacks containing the handler named in metadata.lambda.handler; "
        "init-phase samples never count"
    ),
    fix=PATTERN.advice,
    bad_example=(
        "import boto3\n\n"
        "def handler(event, context):\n"
        "    table = boto3.resource('dynamodb').Table('orders')  # rebuilt every invocation\n"
        "    return table.get_item(Key={'id': event['id']})\n"
    ),
    good_example=(
        "import boto3\n\n"
        "TABLE = boto3.resource('dynamodb').Table('orders')  # built once per environment\n\n"
        "def handler(event, context):\n"
        "    return TABLE.get_item(Key={'id': event['id']})\n"
    ),
)
