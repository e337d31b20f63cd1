"""The Lambda layer and the local runtime: the real ``awslambdaric`` client, the layer's exec wrapper,
freezes, timeouts, kills, and reports that survive them; the seed's functions end to end."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from support.agent import IngestServer, sample_rows
from support.paths import ROOT
from support.server import LiveServer, unique_name

from greenflame.agent.aws_lambda import FLUSH_KEY, RESEND_EVERY_S
from greenflame.devtools.lambda_config import ENV_WRAPPER, AgentSettings, plan_enable
from greenflame.devtools.lambda_layer import WRAPPER_PATH, build_layer, write_layer
from greenflame.devtools.lambda_runtime import FunctionConfig, InvokeResult, LocalLambda

pytest.importorskip("awslambdaric")
pytestmark = pytest.mark.timeout(240)

RULE = "aws-sdk-client-per-invocation"
SAMPLE_APPS = ROOT / "sample_apps"
FLUSH = {"custom": {FLUSH_KEY: "1"}}

HANDLERS = """
import os
import sys
import time

import greenflame.agent

def describe(event, context):
    return {
        "agent_file": greenflame.agent.__file__,
        "handler_env": os.environ["_HANDLER"],
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "other_wrapper_saw": os.environ.get("OTHER_WRAPPER_SAW"),
    }

def work(event, context):
    if event.get("raise"):
        raise ValueError("card declined")
    time.sleep(event.get("sleep", 0))
    return "ok"
"""


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    """The function's code: test handlers, the seed's two functions, and failing inits."""
    root = tmp_path / "task"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    for name in ("seed_brown.py", "seed_green.py"):
        shutil.copy(SAMPLE_APPS / name, root / name)
    (root / "broken_init.py").write_text("raise RuntimeError('no table name configured')\n")
    (root / "needs_dep.py").write_text("import greenflame_no_such_dependency\n")
    (root / "bad_syntax.py").write_text("def handler(event, context) return 1\n")
    return root


class Functions:
    """Builds local functions in one test's folder; closes them all at teardown."""

    def __init__(self, tmp_path: Path, opt: Path, task_root: Path) -> None:
        self.tmp_path, self.opt, self.task_root = tmp_path, opt, task_root
        self.started: List[LocalLambda] = []
        self.log = open(tmp_path / "function.log", "wb")  # noqa: SIM115 - closed by close()

    def make(
        self, handler: str, env: Optional[Dict[str, str]] = None, wrapper: bool = True, timeout_s: float = 3.0
    ) -> LocalLambda:
        environment = {"AWS_EC2_METADATA_DISABLED": "true", **(env or {})}
        if wrapper:
            environment["AWS_LAMBDA_EXEC_WRAPPER"] = WRAPPER_PATH
        name = handler.split(".")[0].replace("/", "_")
        config = FunctionConfig(
            handler=handler,
            task_root=self.task_root,
            environment=environment,
            opt_dir=self.opt,
            memory_mb=512,
            timeout_s=timeout_s,
            function_arn=f"arn:aws:lambda:eu-west-1:123456789012:function:{name}",
        )
        function = LocalLambda(config, self.tmp_path / f"env{len(self.started)}", self.log, self.log)
        self.started.append(function)
        return function

    def close(self) -> None:
        for function in self.started:
            function.close()
        self.log.close()


@pytest.fixture
def functions(tmp_path: Path, layer_opt: Path, task_root: Path) -> Iterator[Functions]:
    made = Functions(tmp_path, layer_opt, task_root)
    yield made
    made.close()


def local_reports(function: LocalLambda) -> List[Dict[str, Any]]:
    """The reports the function shipped to the local runtime's own ingest endpoint."""
    return [sample_rows(json.loads(data)) for data in function.api.reports.values()]


def shipping_locally(function: LocalLambda) -> LocalLambda:
    function.config.environment["GREENFLAME_SERVER"] = f"http://{function.api.address}"
    return function


def process_state(pid: int) -> str:
    """The one-letter state of a process (``T`` when stopped)."""
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0]


def invocation_count(reports: List[Dict[str, Any]]) -> int:
    return sum(r["metadata"].get("invocations", {}).get("count", 0) for r in reports)


# -- the layer -------------------------------------------------------------------


def test_layer_holds_the_agent_and_an_executable_wrapper(tmp_path: Path) -> None:
    assert build_layer(str(tmp_path / "layer.zip")) == 0
    with zipfile.ZipFile(tmp_path / "layer.zip") as layer:
        infos = {info.filename: info for info in layer.infolist()}
        wrapper = layer.read("greenflame-wrapper").decode()
    assert (infos["greenflame-wrapper"].external_attr >> 16) & 0o777 == 0o755
    assert "python/greenflame/agent/__init__.py" in infos and "python/greenflame/agent/lambda_entry.py" in infos
    assert all(name == "greenflame-wrapper" or name.startswith("python/greenflame/agent/") for name in infos)
    assert not any(name.endswith(".so") for name in infos)  # pure Python: any arch
    tag = sys.implementation.cache_tag
    sources = [n for n in infos if n.endswith(".py")]
    assert {n for n in infos if "__pycache__" in n} == {
        n.replace("agent/", "agent/__pycache__/")[:-3] + f".{tag}.pyc" for n in sources
    }
    assert wrapper.startswith("#!/bin/sh\n") and 'exec "$@"' in wrapper
    write_layer(tmp_path / "again.zip")
    assert (tmp_path / "again.zip").read_bytes() == (tmp_path / "layer.zip").read_bytes()  # reproducible


def test_the_unpacked_layer_imports_the_agent_from_its_bytecode(layer_opt: Path) -> None:
    code = "import sys; sys.path.insert(0, sys.argv[1]); import greenflame.agent.lambda_entry"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-S", "-v", "-c", code, str(layer_opt / "python")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    agent_dir = layer_opt / "python" / "greenflame" / "agent"
    loaded = [line for line in done.stderr.splitlines() if str(agent_dir) in line and "code object from" in line]
    tag = sys.implementation.cache_tag
    assert loaded and all(line.endswith(f".{tag}.pyc'") for line in loaded), done.stderr[-2000:]
    assert any("lambda_entry" in line for line in loaded)  # it ran, and failed only for want of a handler


def test_layer_for_an_interpreter_that_cannot_compile_is_one_line_error(tmp_path: Path) -> None:
    from greenflame.analyzer.errors import UserError

    with pytest.raises(UserError, match=r"cannot run .*no-such-python"):
        build_layer(str(tmp_path / "layer.zip"), pythons=[str(tmp_path / "no-such-python")])
    assert not (tmp_path / "layer.zip").exists()


def test_layer_refuses_a_directory_as_output(tmp_path: Path) -> None:
    from greenflame.analyzer.errors import UserError

    with pytest.raises(UserError, match="is a directory"):
        build_layer(str(tmp_path))


def test_enable_chains_the_functions_own_wrapper(functions: Functions, tmp_path: Path) -> None:
    other = tmp_path / "other-wrapper"
    other.write_text('#!/bin/sh\nOTHER_WRAPPER_SAW="$_HANDLER"\nexport OTHER_WRAPPER_SAW\nexec "$@"\n')
    other.chmod(0o755)
    before = {"FunctionName": "f", "Runtime": "python3.12", "Environment": {"Variables": {ENV_WRAPPER: str(other)}}}
    plan = plan_enable(before, "arn:aws:lambda:eu-west-1:1:layer:greenflame:1", AgentSettings(server="http://x"))
    function = shipping_locally(functions.make("pkg/handlers.describe", env=plan.variables, wrapper=False))

    result = function.invoke({}, client_context=FLUSH)

    assert result.error is None, result.error
    seen = json.loads(result.payload or b"{}")
    # It ran, after greenflame's wrapper had pointed the handler at the agent's entry.
    assert seen["other_wrapper_saw"] == "greenflame.agent.lambda_entry.handler"
    assert seen["agent_file"].startswith(str(functions.opt / "python" / "greenflame" / "agent"))
    (report,) = local_reports(function)
    assert report["metadata"]["invocations"]["count"] == 1


def test_unpacked_wrapper_keeps_its_mode(layer_opt: Path) -> None:
    mode = (layer_opt / "greenflame-wrapper").stat().st_mode
    assert mode & stat.S_IXUSR and mode & 0o777 == 0o755


# -- the exec wrapper and the runtime ------------------------------------------------


def test_wrapper_loads_the_handler_like_the_runtime_from_the_layer(functions: Functions) -> None:
    function = shipping_locally(functions.make("pkg/handlers.describe"))

    first = function.invoke({})
    assert function.frozen and process_state(function.pid or 0) == "T"  # frozen between invocations
    second = function.invoke({}, client_context=FLUSH)

    assert first.error is None and second.error is None, (first.error, second.error)
    seen = json.loads(second.payload or b"{}")
    assert seen["agent_file"].startswith(str(functions.opt / "python" / "greenflame" / "agent"))
    assert seen["handler_env"] == "pkg/handlers.describe"  # the function sees its own handler name
    assert seen["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:pkg_handlers"
    assert first.init_duration_ms is not None and second.init_duration_ms is None
    (report,) = local_reports(function)
    assert report["group"] == "aws-lambda-pkg_handlers"
    assert report["metadata"]["invocations"]["count"] == 2 and report["metadata"]["invocations"]["cold_starts"] == 1
    facts = report["metadata"]["lambda"]
    assert (facts["region"], facts["memory_size_mb"], facts["handler"]) == ("eu-west-1", 512, "pkg/handlers.describe")
    assert facts["function_arn"].endswith(":function:pkg_handlers") and facts["runtime"].startswith("AWS_Lambda_python")
    request_ids = {s["labels"].get("lambda_request_id") for s in report["samples"]} - {None}
    assert request_ids <= {first.request_id, second.request_id}


@pytest.mark.parametrize("module", ["broken_init", "needs_dep", "bad_syntax", "pkg/handlers"])
def test_init_errors_are_the_runtimes_own(functions: Functions, module: str) -> None:
    handler = f"{module}.missing" if module == "pkg/handlers" else f"{module}.handler"
    plain = functions.make(handler, wrapper=False).invoke({})
    wrapped = shipping_locally(functions.make(handler)).invoke({})

    assert plain.init_failed and wrapped.init_failed
    assert (wrapped.error_type, wrapped.error_message) == (plain.error_type, plain.error_message)
    assert plain.error_type in (
        "RuntimeError",
        "Runtime.ImportModuleError",
        "Runtime.UserCodeSyntaxError",
        "Runtime.HandlerNotFound",
    )


def test_a_raising_handler_keeps_its_error_and_its_invocations(functions: Functions) -> None:
    plain = functions.make("pkg/handlers.work", wrapper=False).invoke({"raise": True})
    function = shipping_locally(functions.make("pkg/handlers.work"))

    results = [function.invoke({"raise": True}), function.invoke({}, client_context=FLUSH)]

    assert results[0].error is not None and plain.error is not None
    assert results[0].error["errorType"] == plain.error["errorType"] == "ValueError"
    assert results[0].error["errorMessage"] == "card declined"
    assert results[0].error["stackTrace"][-1] == plain.error["stackTrace"][-1]  # the raise in the function
    assert results[1].error is None
    assert invocation_count(local_reports(function)) == 2


def test_timeout_kills_the_process_and_loses_no_earlier_report(functions: Functions) -> None:
    function = shipping_locally(functions.make("pkg/handlers.work", timeout_s=1.0))
    for _ in range(3):
        assert function.invoke({}).error is None
    assert function.invoke({}, client_context=FLUSH).error is None
    first_pid = function.pid

    timed_out = function.invoke({"sleep": 30})
    after = function.invoke({}, client_context=FLUSH)

    assert timed_out.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in timed_out.error_message
    assert after.error is None and after.init_duration_ms is not None  # a new process: a cold start
    assert function.inits == 2 and function.pid != first_pid
    reports = local_reports(function)
    assert invocation_count(reports) == 5  # the four before the timeout, the one after
    assert sum(r["metadata"]["invocations"]["cold_starts"] for r in reports) == 2


# -- reports cut off: resent with the same Idempotency-Key ---------------------------


def outbox_files(function: LocalLambda) -> List[Path]:
    return sorted(function.tmp_dir.glob("greenflame-outbox/*/*.json.gz"))


def wait_for(condition: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_report_cut_off_is_resent_after_the_freeze_with_the_same_key(
    functions: Functions, ingest_server: IngestServer
) -> None:
    ingest_server.script((202, {}, 60.0))  # the first POST is received, then left hanging
    function = functions.make("pkg/handlers.work", env={"GREENFLAME_SERVER": ingest_server.url})

    cut = function.invoke({}, client_context=FLUSH)
    assert cut.error is None and function.frozen  # the budget ended the attempt, not the invocation
    assert len(ingest_server.received) == 1 and len(outbox_files(function)) == 1
    time.sleep(RESEND_EVERY_S + 0.1)
    function.invoke({})

    first, again = ingest_server.received
    assert again.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]
    assert again.body == first.body and again.report()["metadata"]["invocations"]["count"] == 1
    assert outbox_files(function) == []


def test_report_of_a_killed_process_is_resent_by_the_next_one(
    functions: Functions, ingest_server: IngestServer
) -> None:
    ingest_server.script((202, {}, 60.0))
    function = functions.make("pkg/handlers.work", env={"GREENFLAME_SERVER": ingest_server.url})
    assert function.invoke({}).error is None  # the cold start: the process is up
    pid = function.pid or 0
    outcome: List[InvokeResult] = []
    sender = threading.Thread(target=lambda: outcome.append(function.invoke({}, client_context=FLUSH)))
    sender.start()

    wait_for(lambda: len(ingest_server.received) == 1)
    os.kill(pid, signal.SIGKILL)  # mid-report (or just after the budget gave up on it)
    sender.join(30)
    restarted = function.invoke({})

    assert restarted.init_duration_ms is not None and function.inits == 2
    first, again = ingest_server.received
    assert again.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]
    assert gzip.decompress(again.body) == gzip.decompress(first.body)
    assert first.report()["metadata"]["invocations"]["count"] == 2
    assert outbox_files(function) == []


# -- the seed's functions, end to end --------------------------------------------------


def recommendations(server: LiveServer, group: str) -> List[str]:
    response = server.session.get(server.api(f"/api/v1/groups/{group}/recommendations"), timeout=60)
    assert response.status_code == 200, response.text
    return [finding["rule"] for finding in response.json()["recommendations"]]


@pytest.mark.parametrize(("app", "flagged"), [("seed_brown", True), ("seed_green", False)])
def test_seed_functions_through_the_layer_ship_to_serve(
    functions: Functions, live_server: LiveServer, app: str, flagged: bool
) -> None:
    group = unique_name(app.replace("_", "-"))
    key = live_server.create_group(group)
    env = {"GREENFLAME_SERVER": live_server.url, "GREENFLAME_INGEST_KEY": key, "GREENFLAME_GROUP": group}
    function = functions.make(f"{app}.lambda_handler", env=env)

    results = [function.invoke({"rawPath": "/"}) for _ in range(399)]
    results.append(function.invoke({"rawPath": "/"}, client_context=FLUSH))

    assert all(result.error is None for result in results), [r.error for r in results if r.error][:1]
    assert json.loads(results[-1].payload or b"{}")["statusCode"] == 200
    assert outbox_files(function) == []  # every report delivered
    assert (RULE in recommendations(live_server, group)) is flagged
