"""Every sample app and its fixed twin under the real agent: precision and recall of the rules.

Lambda samples run through real ``greenflame lambda invoke`` subprocesses, the Flask service
through ``greenflame run`` while a bounded load runs against it on a free port; the stand-in
APIs (``stub_api``) run as subprocesses on free ports. Each profile is analysed and the test
asserts that every rule fires on its app (recall) and that no rule fires where it should not:
on a twin, or on an app it is not listed for (precision). The table is printed (``-s``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest
from support.scoring import precision_recall

from greenflame.analyzer.formats import load_profile
from greenflame.analyzer.model import WALL, Profile
from greenflame.analyzer.report import analyze_profile
from greenflame.analyzer.rules.scope import find_scope
from greenflame.sample_apps.catalogue import API, SAMPLES, SERVICE, TLS_API, Sample
from greenflame.sample_apps.load import run as load

pytest.importorskip("boto3")
pytest.importorskip("yaml")
pytest.importorskip("sqlalchemy")

RUN_TIMEOUT_S = 120
#: A twin's silence means something only if its context was sampled.
MIN_CONTEXT_SAMPLES = 10

pytestmark = pytest.mark.timeout(600)


def _cli(*args: str) -> List[str]:
    return [sys.executable, "-m", "greenflame.cli", *args]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_stub(tls: bool) -> Tuple[subprocess.Popen, List[str]]:
    """A stand-in API subprocess and the lines it announced (URL, then the CA file over TLS)."""
    args = [sys.executable, "-m", "greenflame.sample_apps.stub_api", *(["--tls"] if tls else [])]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = [process.stdout.readline().strip() for _ in range(2 if tls else 1)]
    if not all(lines):
        process.kill()
        pytest.fail(f"stub_api did not start: {lines}")
    return process, lines


@pytest.fixture(scope="module")
def api_env() -> Iterator[Dict[str, Dict[str, str]]]:
    """Environment variables that point the samples at the HTTP and HTTPS stand-ins."""
    plain, (url,) = _start_stub(tls=False)
    secure, (tls_url, ca) = _start_stub(tls=True)
    try:
        yield {API: {"SAMPLE_API_URL": url}, TLS_API: {"SAMPLE_API_URL": tls_url, "SAMPLE_API_CA": ca}}
    finally:
        for process in (plain, secure):
            process.terminate()
            process.wait(timeout=10)


@dataclass
class Run:
    """One program's profile and what the rules said about it."""

    module: str
    sample: Sample
    is_twin: bool
    fired: Set[str] = field(default_factory=set)
    context_samples: int = 0
    report: Dict = field(default_factory=dict)


def _lambda(sample: Sample, module: str, runs: int, out: Path, env: Dict[str, str]) -> None:
    event = sample.twin_event if module == sample.twin else "{}"
    command = _cli("lambda", "invoke", sample.handler(module), "--invocations", str(runs), "--out", str(out))
    command += ["--event", event]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, f"{module}: {result.stderr[-2000:]}"


def _service(sample: Sample, module: str, runs: int, out: Path, env: Dict[str, str]) -> None:
    port = _free_port()
    command = _cli("run", "--out", str(out), "--", sys.executable, "-m", f"greenflame.sample_apps.{module}")
    runner = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        load(f"http://127.0.0.1:{port}{sample.path}", runs, wait_s=30)
    finally:
        runner.send_signal(signal.SIGTERM)
        _, stderr = runner.communicate(timeout=RUN_TIMEOUT_S)
    assert out.exists(), f"{module}: no profile written: {stderr[-2000:]}"


def _context_samples(profile: Profile) -> int:
    scope = find_scope(profile)
    if scope is None:
        return 0
    return sum(value for frames, value, labels in profile.stacks(WALL) if scope.includes(frames, labels))


def _profile_and_analyse(job: Tuple[Sample, bool], tmp: Path, apis: Dict[str, Dict[str, str]]) -> Run:
    sample, is_twin = job
    module = sample.twin if is_twin else sample.app
    env = dict(os.environ)
    env.update(apis.get(sample.needs, {}))
    env["SAMPLE_DB_PATH"] = str(tmp / "orders.db")
    # Two runs share two cores with the rest of the machine: at its default budget (1% of a core)
    # the agent would lower its sampling rate, and short twins would hold too few samples.
    env["GREENFLAME_CPU_BUDGET"] = "0.25"
    out = tmp / f"{module}.json"
    runs = sample.twin_runs if is_twin else sample.runs
    (_service if sample.kind == SERVICE else _lambda)(sample, module, runs, out, env)
    profile = load_profile(str(out))
    report = analyze_profile(profile).to_dict()
    fired = {finding["rule"] for finding in report["recommendations"]}
    return Run(module, sample, is_twin, fired, _context_samples(profile), report)


@pytest.fixture(scope="module")
def runs(api_env: Dict[str, Dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> List[Run]:
    """Every app and twin profiled, two at a time (the machine has two cores)."""
    tmp = tmp_path_factory.mktemp("sample-apps")
    jobs = [(sample, is_twin) for sample in SAMPLES for is_twin in (False, True)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda job: _profile_and_analyse(job, tmp, api_env), jobs))


def _table(results: List[Run]) -> str:
    lines = ["| program | role | must trigger | fired | context samples |", "|---|---|---|---|---|"]
    for run in results:
        role = "twin" if run.is_twin else "app"
        must = "none of " + ", ".join(run.sample.rules) if run.is_twin else ", ".join(run.sample.rules)
        fired = ", ".join(sorted(run.fired)) or "-"
        lines.append(f"| {run.module} | {role} | {must} | {fired} | {run.context_samples} |")
    return "\n".join(lines)


def test_every_rule_fires_on_its_app_and_nowhere_else(runs: List[Run]) -> None:
    precision, recall = precision_recall((run.fired, set() if run.is_twin else set(run.sample.rules)) for run in runs)
    print(f"\n{_table(runs)}\n\nprecision {precision:.0%}, recall {recall:.0%} over {len(runs)} programs")
    assert (precision, recall) == (1.0, 1.0), _table(runs)


def test_every_registered_rule_has_a_sample() -> None:
    from greenflame.analyzer.rules import all_rules

    covered = {rule for sample in SAMPLES for rule in sample.rules}
    assert covered == {rule.id for rule in all_rules()}


def test_twins_were_sampled_in_context(runs: List[Run]) -> None:
    thin = {run.module: run.context_samples for run in runs if run.context_samples < MIN_CONTEXT_SAMPLES}
    assert not thin, f"too few in-context samples to judge: {thin}"


def _finding(run: Run, rule: str) -> Optional[Dict]:
    return next((f for f in run.report["recommendations"] if f["rule"] == rule), None)


def _mean_ms(run: Run) -> float:
    return float(run.report["invocations"]["mean_duration_ms"])


def test_seed_brown_factor(runs: List[Run]) -> None:
    """The figure to set beside the seed post's "5x more computing time than expected"."""
    brown = next(r for r in runs if r.module == "seed_brown")
    green = next(r for r in runs if r.module == "seed_green")
    finding = _finding(brown, "aws-sdk-client-per-invocation")
    assert finding is not None
    print(
        f"\nseed_brown: {finding['share']:.1%} of invoke-phase {finding['sample_type']} in client creation, "
        f"{finding['times_expected']:.1f}x the expected {finding['expected_share']:.0%}; "
        f"wall share {finding['wall_share']:.1%}; {finding['wasted_ms_per_invocation']:.2f} ms wasted per invocation; "
        f"mean invocation {_mean_ms(brown):.2f} ms against {_mean_ms(green):.2f} ms for seed_green "
        f"({_mean_ms(brown) / _mean_ms(green):.1f}x)"
    )
    assert finding["times_expected"] >= finding["threshold_share"] / finding["expected_share"]
    assert _mean_ms(brown) > _mean_ms(green)
