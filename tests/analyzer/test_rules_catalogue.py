"""The rule catalogue: real library frames, attribution, call sites, fingerprints, services, docs."""

from __future__ import annotations

import copy
import datetime
import importlib
import io
import json
import logging
import re
import ssl
import sys
from types import FrameType
from typing import Any, Callable, Dict, List, Tuple

import pytest
from support.builders import CLIENT_CREATION, HANDLER
from support.paths import ROOT

from greenflame.analyzer import impact
from greenflame.analyzer.model import Frame, Profile, SampleType
from greenflame.analyzer.rules import AnalysisContext, all_rules, get_rule, run_rules
from greenflame.analyzer.rules import pattern as pattern_module
from greenflame.analyzer.rules.finding import Finding, Sci
from greenflame.analyzer.rules.frames import call_site, normalised
from greenflame.analyzer.rules.pattern import attribution_index, owner, patterns

DOCS = ROOT / "docs" / "rules.md"
SITE = "/srv/venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"


def _record(call: Callable[[], Any]) -> List[Tuple[Frame, ...]]:
    """Root-first stacks seen inside ``call`` by a profile hook (the root is ``call`` itself)."""
    stacks: List[Tuple[Frame, ...]] = []
    target = call.__code__

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or len(stacks) > 5000:
            return
        chain = []
        current: Any = frame
        while current is not None:
            code = current.f_code
            chain.append(Frame(getattr(code, "co_qualname", code.co_name), code.co_filename, code.co_firstlineno))
            if code is target:
                break
            current = current.f_back
        stacks.append(tuple(reversed(chain)))

    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
    return stacks


def _owners(call: Callable[[], Any]) -> set:
    index = attribution_index()
    found = {owner(stack, index) for stack in _record(call)}
    return {item[0] for item in found if item is not None}


def _reload_json_module() -> None:
    importlib.reload(importlib.import_module("json.tool"))


REAL_CALLS: List[Tuple[str, Callable[[], Any]]] = [
    ("regex-compile-hot", lambda: re.compile(r"never-cached-(\d+)-" + str(id(object())))),
    ("deepcopy-hot", lambda: copy.deepcopy({"a": [1, {"b": 2}]})),
    ("strptime-hot", lambda: datetime.datetime.strptime("2026-11-27T10:00:00", "%Y-%m-%dT%H:%M:%S")),
    ("json-serialization-hot", lambda: json.dumps({"a": [1, 2, {"b": "c"}]}, indent=2)),
    ("ssl-context-per-call", lambda: ssl.create_default_context()),
    ("import-in-handler", _reload_json_module),
]


@pytest.mark.parametrize("rule, call", REAL_CALLS, ids=[rule for rule, _ in REAL_CALLS])
def test_real_library_frames_are_attributed_to_their_rule(rule: str, call: Callable[[], Any]) -> None:
    assert rule in _owners(call)


def test_real_logging_and_yaml_frames() -> None:
    logger = logging.getLogger("greenflame-test-rules")
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    assert "logging-overhead" in _owners(lambda: logger.debug("x=%s", 1))
    yaml = pytest.importorskip("yaml")
    assert "yaml-pure-python" in _owners(lambda: yaml.safe_load("a: [1, 2]"))
    if getattr(yaml, "CSafeLoader", None) is not None:
        assert "yaml-pure-python" not in _owners(lambda: yaml.load("a: [1, 2]", Loader=yaml.CSafeLoader))


def test_the_fast_paths_belong_to_no_rule() -> None:
    pattern = re.compile("cached")
    assert _owners(lambda: json.dumps({"a": [1, 2]})) == set()
    assert _owners(lambda: re.match("cached", "cached")) == set()
    assert _owners(lambda: pattern.match("cached")) == set()
    assert _owners(lambda: datetime.datetime.fromisoformat("2026-11-27T10:00:00")) == set()


def test_no_two_patterns_target_the_same_function() -> None:
    seen: Dict[Tuple[str, str], str] = {}
    for pattern in patterns():
        for target in pattern.targets:
            for name in target.names:
                key = (target.path, name)
                assert key not in seen, f"{key} in {pattern.rule_id} and {seen[key]}"
                seen[key] = pattern.rule_id


def test_the_outermost_target_owns_the_sample() -> None:
    deepcopy = Frame("deepcopy", f"{STDLIB}/copy.py", 128)
    stack = (HANDLER, *CLIENT_CREATION, deepcopy)
    assert owner(stack, attribution_index()) == ("aws-sdk-client-per-invocation", 1)
    assert owner((HANDLER, deepcopy), attribution_index()) == ("deepcopy-hot", 1)


def test_call_site_is_the_application_frame_not_a_comprehension() -> None:
    listcomp = Frame("handler.<locals>.<listcomp>", "/var/task/app.py", 20)
    strptime = Frame("_strptime_datetime", f"{STDLIB}/_strptime.py", 565)
    lib = Frame("parse", f"{SITE}/dateutil/parser.py", 10)
    assert call_site((HANDLER, listcomp, lib, strptime), 3) == HANDLER
    assert call_site((lib, strptime), 1) == lib  # no application frame: the caller


def test_normalised_frames_drop_prefixes_lines_and_classes() -> None:
    assert normalised(Frame("Session.client", f"{SITE}/boto3/session.py", 264)) == "boto3/session.py:client"
    assert normalised(Frame("client", "/other/env/lib/python3.9/site-packages/boto3/session.py", 1)) == (
        "boto3/session.py:client"
    )
    assert normalised(Frame("lambda_handler", "/var/task/app.py", 12)) == "app.py:lambda_handler"
    assert normalised(Frame("lambda_handler", "/home/me/src/app.py", 99)) == "app.py:lambda_handler"


def _deepcopy_profile(handler: Frame, prefix: str, duration_s: float = 60.0) -> Profile:
    profile = Profile(group="orders", duration_ns=int(duration_s * 1e9))
    deepcopy = Frame("deepcopy", f"{prefix}/copy.py", 128)
    for _ in range(50):
        profile.add([handler, deepcopy], [1, 1], {"lambda_phase": "invoke"})
        profile.add([handler], [3, 3], {"lambda_phase": "invoke"})
    profile.metadata = {"invocations": {"count": 50, "duration_ms_sum": 50 * 40.0}}
    return profile


def test_fingerprints_are_stable_across_paths_lines_and_windows() -> None:
    rule = get_rule("deepcopy-hot")
    here = rule(_deepcopy_profile(Frame("handler", "/var/task/app.py", 10), STDLIB), AnalysisContext())
    there = rule(
        _deepcopy_profile(Frame("handler", "/tmp/build/app.py", 55), "/opt/py/lib/python3.12", 7.0), AnalysisContext()
    )
    assert [f.fingerprint for f in here] == [f.fingerprint for f in there] and len(here) == 1
    other = rule(_deepcopy_profile(Frame("render", "/var/task/app.py", 10), STDLIB), AnalysisContext())
    assert other[0].fingerprint != here[0].fingerprint


def test_one_finding_per_call_site() -> None:
    profile = _deepcopy_profile(Frame("handler", "/var/task/app.py", 10), STDLIB)
    deepcopy = Frame("deepcopy", f"{STDLIB}/copy.py", 128)
    helper = Frame("build_invoice", "/var/task/invoices.py", 3)
    profile.add([Frame("handler", "/var/task/app.py", 10), helper, deepcopy], [60, 60], {"lambda_phase": "invoke"})
    sites = {f.call_site.function for f in get_rule("deepcopy-hot")(profile, AnalysisContext()) if f.call_site}
    assert sites == {"handler", "build_invoice"}


def _service_profile(labelled: bool) -> Profile:
    profile = Profile(group="orders-api", duration_ns=60 * 10**9)
    wsgi = Frame("Flask.wsgi_app", f"{SITE}/flask/app.py", 1479)
    view = Frame("customer_orders", "/srv/app/api.py", 20)
    encode = Frame("_make_iterencode.<locals>._iterencode", f"{STDLIB}/json/encoder.py", 414)
    labels = {"endpoint": "/orders"} if labelled else {}
    profile.add([wsgi, view, encode], [400, 400], labels)
    profile.add([wsgi, view], [600, 600], labels)
    profile.add([Frame("serve_forever", f"{STDLIB}/socketserver.py", 1)], [3000, 1000], {})
    return profile


@pytest.mark.parametrize("labelled", [True, False])
def test_services_use_the_request_context_and_the_vcpu_price(labelled: bool) -> None:
    profile = _service_profile(labelled)
    (finding,) = run_rules(profile, AnalysisContext(region="eu-west-1", requests_per_month=1e7))
    assert finding.rule == "json-serialization-hot" and finding.share == pytest.approx(0.4)
    assert (finding.inputs.scope or "").startswith(
        "samples labelled" if labelled else "samples under a request-dispatch"
    )
    # 400 of the process's 2,000 CPU samples; 2,000 x 10 ms over 60 s = 0.333 busy vCPUs.
    waste = impact.service_waste(0.2, 2000 * 0.01 / 60, 1e7, region="eu-west-1")
    assert finding.cost_usd_per_month == pytest.approx(waste.cost_usd_per_month)
    assert finding.co2e_kg_per_month == pytest.approx(waste.co2e_kg_per_month.central)
    assert finding.sci_g_per_request == Sci(
        pytest.approx(waste.sci_g_per_request_before), pytest.approx(waste.sci_g_per_request_after)
    )
    assert finding.wasted_ms_per_invocation is None and finding.sci_g_per_invocation is None


def test_service_findings_read_back_from_their_json() -> None:
    for context in (AnalysisContext(), AnalysisContext(region="eu-west-1", requests_per_month=1e7, platform="ec2-m7g")):
        (finding,) = run_rules(_service_profile(labelled=True), context)
        document = json.loads(json.dumps(finding.to_dict()))
        assert document["inputs"]["platform"]["value"] and "process_cpu_share" in document["inputs"]
        assert Finding.from_dict(document) == finding and Finding.from_dict(document).to_dict() == document


def test_lambda_only_rules_ignore_services() -> None:
    profile = _service_profile(labelled=True)
    profile.add([Frame("Flask.wsgi_app", f"{SITE}/flask/app.py", 1), *CLIENT_CREATION], [900, 900], {"endpoint": "/x"})
    assert "aws-sdk-client-per-invocation" not in {f.rule for f in run_rules(profile)}


def test_a_profile_without_context_gets_no_findings() -> None:
    profile = Profile()
    profile.add([Frame("main", "/srv/job.py", 1), Frame("deepcopy", f"{STDLIB}/copy.py", 128)], [100, 100])
    assert run_rules(profile) == []


def _sleep_profile(idle_column: bool, cpu: int) -> Profile:
    types = [SampleType("wall"), SampleType("cpu")] + ([SampleType("idle")] if idle_column else [])
    profile = Profile(sample_types=types, duration_ns=60 * 10**9)
    extra = [100 - cpu] if idle_column else []
    profile.add([HANDLER], [100, cpu, *extra], {"lambda_phase": "invoke"})
    profile.add(
        [HANDLER, Frame("work", "/var/task/app.py", 30)],
        [100, 100, *([0] if idle_column else [])],
        {"lambda_phase": "invoke"},
    )
    return profile


def test_idle_wait_uses_the_agents_idle_count_or_a_mostly_off_cpu_site() -> None:
    rule = get_rule("idle-wait-billed")
    (finding,) = rule(_sleep_profile(idle_column=True, cpu=30), AnalysisContext())
    assert finding.share == pytest.approx(70 / 200)
    assert rule(_sleep_profile(idle_column=False, cpu=20), AnalysisContext())
    # Without the idle count, a site often on the CPU is CPU-bound code waiting for a core.
    assert rule(_sleep_profile(idle_column=False, cpu=60), AnalysisContext()) == []


def test_the_catalogue_documents_every_rule() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for rule in all_rules():
        assert f"## `{rule.id}`" in text, rule.id
        for code in (rule.bad_example, rule.good_example):
            compile(code, rule.id, "exec")
        assert rule.target_frames and 0 < rule.expected_share < rule.threshold_share < 1


@pytest.mark.parametrize("labelled", [True, False])
def test_the_rules_run_together_find_what_each_finds_alone(labelled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    walks: List[int] = []
    walk = pattern_module._walk
    monkeypatch.setattr(pattern_module, "_walk", lambda profile, scope: walks.append(1) or walk(profile, scope))
    profile = _service_profile(labelled)
    wsgi, view = Frame("Flask.wsgi_app", f"{SITE}/flask/app.py", 1479), Frame("list_orders", "/srv/app/api.py", 40)
    labels = {"endpoint": "/orders"} if labelled else {}
    for _, call in REAL_CALLS:  # real library stacks under a request's view, as a service shows them
        for n, stack in enumerate(_record(call)[:40]):
            profile.add([wsgi, view, *stack], [50 + n, 60 + n], labels)
    context = AnalysisContext(region="eu-west-1", requests_per_month=1e7)
    together = run_rules(profile, context)
    assert len(walks) == 1  # one scope and one walk of the samples for every pattern rule
    alone = [finding for rule in all_rules() for finding in rule(profile, context)]
    assert len(walks) > 2  # each rule alone walks for itself
    alone.sort(key=lambda f: (-(f.cost_usd_per_month or 0.0), -f.share, f.rule))
    assert len({finding.rule for finding in together}) >= 3
    assert together == alone
