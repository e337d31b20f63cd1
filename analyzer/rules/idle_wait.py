"""Rule ``idle-wait-billed``: a Lambda function paying for wall time spent sleeping or polling.

Lambda bills the handler's elapsed time, whether the CPU works or not. This rule measures the
invoke phase's **idle** samples (the agent's ``idle`` count: off the CPU and stopped on a
blocking call such as ``sleep``, ``wait`` or ``recv``; for profiles without that count, wall
samples off the CPU) that are

- under a waiting or polling frame (read from CPython 3.11's ``threading.py``, ``queue.py``,
  ``concurrent/futures/_base.py`` and ``subprocess.py``, botocore's ``waiter.py`` and
  urllib3's ``util/retry.py``), or
- in application code itself: the innermost Python frame is the application's, so it called a
  blocking builtin directly, which in a handler is ``time.sleep`` in a polling loop (C functions
  leave no frame of their own).

Off-CPU time in library I/O frames (a socket read waiting for a response) is not idle waiting
and is not counted, nor is any sample that another rule's target frame owns (a connection being
opened, for example).
"""

from __future__ import annotations

from typing import Optional, Tuple

from ..model import Frame
from .frames import FrameMatcher, MatcherIndex, is_application
from .pattern import OFF_CPU, Pattern, Site, define
from .scope import LAMBDA

WAIT_FRAMES: Tuple[FrameMatcher, ...] = (
    FrameMatcher("threading.py", ("Event.wait", "Condition.wait", "Condition.wait_for", "Thread.join")),
    FrameMatcher("queue.py", ("Queue.get", "Queue.join")),
    FrameMatcher("concurrent/futures/_base.py", ("Future.result", "wait", "as_completed")),
    FrameMatcher("subprocess.py", ("Popen.wait", "Popen.communicate")),
    FrameMatcher("botocore/waiter.py", ("Waiter.wait",)),
    FrameMatcher("urllib3/util/retry.py", ("Retry.sleep",)),
)
_WAITS = MatcherIndex(("wait", matcher) for matcher in WAIT_FRAMES)


def locate(stack: Tuple[Frame, ...], owner: Optional[Tuple[str, int]]) -> Optional[int]:
    """The outermost wait frame, else the innermost frame when it is application code; None otherwise."""
    if owner is not None or not stack:
        return None
    for position, frame in enumerate(stack):
        if _WAITS.key_for(frame) is not None:
            return position
    return len(stack) - 1 if is_application(stack[-1]) else None


#: Without the agent's ``idle`` count, a site counts as idle only when its samples were mostly
#: off the CPU: the per-sample CPU flag is a credit spread over ticks, and a CPU-bound thread
#: waiting for a core is off the CPU too, so CPU-bound code shows off-CPU wall samples (up to
#: about 40% measured on a loaded 2-core machine) and a sleep loop some CPU samples (about 20%).
#: The idle count (a blocking call read from the byte code) tells them apart without this guess.
MAX_CPU_RATIO = 0.35


def mostly_off_cpu(site: Site) -> bool:
    """Whether the site's samples were on a CPU at most :data:`MAX_CPU_RATIO` of the time."""
    return site.wall > 0 and site.cpu <= MAX_CPU_RATIO * site.wall


IDLE = Pattern(
    rule_id="idle-wait-billed",
    title="Lambda billed for time spent sleeping or polling",
    targets=WAIT_FRAMES,
    expected_share=0.02,
    threshold_share=0.10,
    what="The handler sleeps or polls while Lambda bills the time",
    advice="Do not wait inside the function: hand the wait to the platform (a Step Functions Wait state or "
    "a .waitForTaskToken task, an SQS/EventBridge event when the job finishes, a Lambda destination) "
    "and return; where a wait is unavoidable, shorten it with a callback instead of a sleep loop.",
    contexts=(LAMBDA,),
    measure=OFF_CPU,
    locate=locate,
    accept=mostly_off_cpu,
)

RULE = define(
    IDLE,
    description=(
        "Lambda bills the duration of each invocation at the memory size configured, so a handler "
        "that polls a job with time.sleep, waits on a botocore waiter, a future or a subprocess pays "
        "for every idle millisecond. The share is of the invoke phase's wall time (not CPU time): "
        "off-CPU wall samples under a wait frame, or whose innermost frame is application code "
        "calling a blocking builtin (time.sleep). Network waits inside library I/O frames are not "
        "counted. Expected share 2%: an occasional retry back-off."
    ),
    context=(
        "invoke phase of an AWS Lambda function (samples labelled lambda_phase=invoke, or under the "
        "handler named in metadata.lambda.handler); needs both wall and cpu sample types"
    ),
    fix=IDLE.advice,
    bad_example=(
        "import time\n\n"
        "def handler(event, context):\n"
        "    job = start_export(event)\n"
        "    while job_status(job) != 'DONE':  # billed while sleeping\n"
        "        time.sleep(0.5)\n"
        "    return fetch_result(job)\n"
    ),
    good_example=(
        "def start(event, context):  # step 1 of a Step Functions state machine\n"
        "    return {'job': start_export(event)}  # a Wait/poll state waits, unbilled\n\n"
        "def finish(event, context):  # step 2, invoked when the job is done\n"
        "    return fetch_result(event['job'])\n"
    ),
)
