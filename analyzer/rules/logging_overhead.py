"""Rule ``logging-overhead``: log records built, formatted and written on the hot path.

Target frames were read from CPython 3.11's ``logging/__init__.py``: ``Logger.debug``/``info``/...
check the level (cheap) and call ``Logger._log`` only for records that will be emitted; ``_log``
finds the caller (walking the stack), builds the ``LogRecord``, and calls every handler, which
formats the message and time and writes it. Level checks of disabled calls are not counted.
"""

from __future__ import annotations

from .frames import FrameMatcher
from .pattern import Pattern, define

LOGGING = Pattern(
    rule_id="logging-overhead",
    title="Logging overhead: records formatted and written on the hot path",
    targets=(FrameMatcher("logging/__init__.py", ("Logger._log",)),),
    expected_share=0.02,
    threshold_share=0.10,
    what="Log records are built, formatted and written on the hot path (debug logging left on?)",
    advice="Log once per request or invocation at INFO, not per item; set the level to INFO or above in "
    "production so that debug calls stop at the level check; pass arguments (logger.debug('%s', x)) "
    "instead of pre-formatted strings.",
)

RULE = define(
    LOGGING,
    description=(
        "Each emitted record costs a stack walk to find the caller, a LogRecord with a dozen "
        "attributes, the formatting of the message and the time, a lock and a write per handler: "
        "tens of microseconds each, and far more with several handlers. Logging every item of a "
        "loop at DEBUG with the level left at DEBUG makes logging the main cost of a request. "
        "Expected share 2%: one or two INFO lines per request."
    ),
    context=(
        "per invocation (samples of the Lambda handler's invoke phase) or per request (samples of a "
        "service's request context: a request label or a request-dispatch frame)"
    ),
    fix=LOGGING.advice,
    bad_example=(
        "import logging\n"
        "logging.basicConfig(level=logging.DEBUG)  # left on in production\n"
        "log = logging.getLogger(__name__)\n\n"
        "def handler(event, context):\n"
        "    for item in event['items']:\n"
        "        log.debug('pricing item %s', item)  # one record per item\n"
    ),
    good_example=(
        "import logging\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "log = logging.getLogger(__name__)\n\n"
        "def handler(event, context):\n"
        "    total = price(event['items'])\n"
        "    log.info('priced %d items', len(event['items']))  # one record per invocation\n"
    ),
)
