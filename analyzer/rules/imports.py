"""Rule ``import-in-handler``: modules searched for, loaded or reloaded while the handler runs.

An ``import`` statement of a module already in ``sys.modules`` is a dictionary look-up in C and
leaves no Python frame. The frames below (read from CPython 3.11's ``importlib/__init__.py`` and
its frozen ``importlib._bootstrap`` and ``importlib._bootstrap_external``) only run when a module
is really found and executed: a first (lazy) import, a failed optional import (failures are not
cached, so each one searches every ``sys.path`` entry again), ``importlib.reload``, or a module
executed from a file spec.
"""

from __future__ import annotations

from .frames import FrameMatcher
from .pattern import Pattern, define
from .scope import LAMBDA

IMPORTS = Pattern(
    rule_id="import-in-handler",
    title="Modules imported or reloaded on every invocation",
    targets=(
        FrameMatcher("importlib/__init__.py", ("reload",)),
        FrameMatcher("<frozen importlib._bootstrap>", ("_find_and_load", "_load", "module_from_spec", "_exec")),
        FrameMatcher(
            "<frozen importlib._bootstrap_external>", ("spec_from_file_location", "_LoaderBasics.exec_module")
        ),
    ),
    expected_share=0.01,
    threshold_share=0.03,
    what="Modules are imported, searched for or reloaded while the handler runs",
    advice="Import at module level (the init phase); do not reload modules per invocation; import "
    "optional dependencies once and remember whether they exist.",
    contexts=(LAMBDA,),
)

RULE = define(
    IMPORTS,
    description=(
        "Finding and executing a module (path search with stat calls, reading and unmarshalling its "
        "byte code, running its body) belongs in the init phase, which runs once per execution "
        "environment. In the invoke phase it is paid on every invocation when modules are reloaded, "
        "executed from a spec, or looked for and not found. Expected share 1%: a lazy import on the "
        "first invocation only, and cold starts are typically under 1% of invocations."
    ),
    context=(
        "invoke phase of an AWS Lambda function (samples labelled lambda_phase=invoke, or under the "
        "handler named in metadata.lambda.handler); init-phase imports never count"
    ),
    fix=IMPORTS.advice,
    bad_example=(
        "import importlib\n\n"
        "def handler(event, context):\n"
        "    rules = importlib.reload(importlib.import_module('pricing_rules'))  # executed every call\n"
        "    return rules.price(event)\n"
    ),
    good_example=(
        "import pricing_rules  # once, at init\n\ndef handler(event, context):\n    return pricing_rules.price(event)\n"
    ),
)
