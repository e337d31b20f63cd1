"""The Lambda layer's entry point: profile a function with no code change.

The layer's exec wrapper (``/opt/greenflame-wrapper``, enabled by ``AWS_LAMBDA_EXEC_WRAPPER``)
moves the function's handler from ``_HANDLER`` to ``GREENFLAME_ORIGINAL_HANDLER`` and points
``_HANDLER`` at ``greenflame.agent.lambda_entry.handler``. The runtime then imports this module
during its init phase. The import starts the agent, loads the function's module the way the
runtime would (``module.function``, a dotted module path, slashes for folders, the task root
``LAMBDA_TASK_ROOT`` first on ``sys.path``) under the ``lambda_phase=init`` label, and binds
:data:`handler` to the function's handler wrapped by
:func:`~greenflame.agent.aws_lambda.profile_handler`. Only the public ``importlib`` is used,
nothing of the runtime's private modules, so a runtime update cannot break it. It also registers
an internal Lambda extension so that the samples since the last report are delivered when the
sandbox shuts down (:mod:`greenflame.agent.lambda_shutdown`).

Init errors reach the runtime exactly as it would report them without greenflame: the function's
own exception propagates unchanged (same type, same message), and a handler that cannot be loaded
raises an exception whose type is named like the runtime's fault (``Runtime.ImportModuleError``,
``Runtime.HandlerNotFound``, ...) with the runtime's message. Those do not derive from
``ImportError``, so that the runtime does not re-word them after this module's name.
"""

from __future__ import annotations

import importlib
import os
import sys

from .aws_lambda import init_phase, install_shutdown_flush, is_profiled, profile_handler, start_lambda_agent

# No typing at run time (this module is imported on every cold start); mypy treats any name
# ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple, Type

__all__ = ["ENTRY_HANDLER", "ENV_ORIGINAL_HANDLER", "LambdaRuntimeFault", "handler", "load_handler"]

#: Where the wrapper keeps the function's own handler (``module.function``).
ENV_ORIGINAL_HANDLER = "GREENFLAME_ORIGINAL_HANDLER"
#: The ``_HANDLER`` value the wrapper sets.
ENTRY_HANDLER = "greenflame.agent.lambda_entry.handler"


class LambdaRuntimeFault(Exception):
    """Base of the runtime-named faults below; its subclasses are named ``Runtime.<Fault>``."""


_FAULTS: Dict[str, Type[LambdaRuntimeFault]] = {}


def runtime_fault(fault: str, message: str) -> LambdaRuntimeFault:
    """An exception whose type name is the runtime's error type ``fault``, e.g. ``Runtime.HandlerNotFound``."""
    cls = _FAULTS.get(fault)
    if cls is None:
        # The runtime reports ``type(error).__name__`` as errorType: give the class that name.
        cls = type(fault, (LambdaRuntimeFault,), {"__module__": __name__, "__qualname__": fault})
        _FAULTS[fault] = cls
    return cls(message)


def split_handler(spec: str) -> Tuple[str, str]:
    """``(module, function)`` of ``module.function``, as the runtime splits it."""
    try:
        module, function = spec.rsplit(".", 1)
    except ValueError as error:
        raise runtime_fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {error}") from None
    return module, function


def _import(module: str) -> Any:
    if module.split(".")[0] in sys.builtin_module_names:
        raise runtime_fault("Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module} as a handler module")
    try:
        with init_phase():
            return importlib.import_module(module.replace("/", "."))
    except ImportError as error:
        raise runtime_fault("Runtime.ImportModuleError", f"Unable to import module '{module}': {error}") from None
    except SyntaxError as error:
        raise runtime_fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module}': {error}") from None


def load_handler(spec: str, task_root: Optional[str] = None) -> Callable[..., Any]:
    """Import the handler ``spec`` (``module.function``) like the runtime; exceptions as it reports them."""
    module_name, function = split_handler(spec)
    root = task_root if task_root is not None else os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if root not in sys.path:
        sys.path.insert(0, root)
    module = _import(module_name)
    try:
        found: Callable[..., Any] = getattr(module, function)
    except AttributeError:
        raise runtime_fault(
            "Runtime.HandlerNotFound", f"Handler '{function}' missing on module '{module_name}'"
        ) from None
    return found


def _original_spec() -> str:
    spec = os.environ.get(ENV_ORIGINAL_HANDLER, "")
    if not spec or spec == ENTRY_HANDLER:
        raise runtime_fault(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{spec}': {ENV_ORIGINAL_HANDLER} must name the function's handler (module.function)",
        )
    return spec


def _profiled(found: Callable[..., Any]) -> Callable[..., Any]:
    # Not callable: left as is, so the runtime fails each invocation as it would without greenflame.
    if not callable(found) or is_profiled(found):
        return found
    wrapped: Callable[..., Any] = profile_handler(found)
    return wrapped


def _entry() -> Callable[..., Any]:
    spec = _original_spec()
    os.environ["_HANDLER"] = spec  # the function sees its own handler name, as without greenflame
    if start_lambda_agent():  # before the import, so that the init phase is sampled
        install_shutdown_flush()  # the last samples are delivered when the sandbox ends
    return _profiled(load_handler(spec))


#: The function's handler, wrapped by ``profile_handler``: what the runtime calls.
handler = _entry()
