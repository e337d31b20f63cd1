"""Whose code a frame is: one table, checked through codekind and through every caller's entry point.

The trees ("color my code"), the rules (call sites) and the anomalies (folding library frames into
their callers) used to decide this three ways and disagreed; each row here runs through all of them.
"""

from __future__ import annotations

import sysconfig
from typing import Any, Dict, List, Tuple

import pytest

from greenflame.analyzer.codekind import LIBRARY, STDLIB, USER, VENDORED_TOP_LEVELS, Kind, code_kind, is_library
from greenflame.analyzer.model import Frame, Profile
from greenflame.analyzer.rules.frames import call_site, is_application
from greenflame.analyzer.timeseries import frame_key, group_series, is_library_file
from greenflame.analyzer.tree import annotate_kinds

SITE = "/usr/local/lib/python3.11/site-packages"

#: (file, kind, why)
TABLE: List[Tuple[str, Kind, str]] = [
    # The standard library, wherever Python is installed.
    ("/usr/lib/python3.11/json/decoder.py", STDLIB, "CPython's lib/pythonX.Y"),
    ("/usr/local/lib/python3.13t/json/decoder.py", STDLIB, "free-threaded 3.13t build"),
    ("/usr/lib64/python3.11/json/decoder.py", STDLIB, "Fedora/RHEL lib64"),
    ("/usr/lib/python311.zip/json/decoder.py", STDLIB, "a zipped standard library"),
    ("/home/u/.pyenv/versions/3.12.1/lib/python3.12/json/decoder.py", STDLIB, "any prefix: pyenv"),
    ("/Library/Frameworks/Python.framework/Versions/3.12/lib/python3.12/ssl.py", STDLIB, "macOS framework build"),
    ("/usr/lib/pypy3.10/json/decoder.py", STDLIB, "PyPy"),
    ("lib/python3.11/json/decoder.py", STDLIB, "a relative path still names its installation folder"),
    ("C:\\Python311\\Lib\\json\\decoder.py", STDLIB, "Windows <prefix>\\Lib"),
    ("C:\\Users\\u\\AppData\\Local\\Programs\\Python\\Python312\\Lib\\ssl.py", STDLIB, "Windows per-user install"),
    ("<frozen importlib._bootstrap>", STDLIB, "frozen module"),
    ("<built-in>", STDLIB, "built-in function"),
    ("", STDLIB, "no file: native code, or a format that dropped the file"),
    ("[native]", STDLIB, "a bracketed pseudo-file is no source file"),
    # Lambda: the Python installation is the standard library; the runtime and layers are libraries.
    ("/var/lang/lib/python3.12/http/client.py", STDLIB, "the Lambda Python installation"),
    ("/var/lang/bin/python3.12", STDLIB, "the Lambda interpreter (a native frame's binary)"),
    ("/var/lang/lib/python3.12/site-packages/boto3/session.py", LIBRARY, "packages inside the installation"),
    ("/var/runtime/bootstrap.py", LIBRARY, "the AWS Lambda runtime"),
    ("/var/runtime/awslambdaric/bootstrap.py", LIBRARY, "the runtime interface client"),
    ("/opt/python/boto3/session.py", LIBRARY, "a Lambda layer"),
    ("/opt/python/lib/python3.12/site-packages/requests/api.py", LIBRARY, "a layer's site-packages"),
    ("/var/task/app.py", USER, "the function's own code"),
    ("/var/task/app/handler.py", USER, "the function's own package"),
    ("/var/task/boto3/session.py", LIBRARY, "vendored by pip install -t ."),
    ("/var/task/six.py", LIBRARY, "a vendored single-module distribution"),
    ("/var/task/_cffi_backend.cpython-311-x86_64-linux-gnu.so", LIBRARY, "a vendored extension module"),
    ("/var/task/boto3_helpers/clients.py", USER, "only a known top-level name is vendored"),
    ("/var/task/.venv/lib/python3.11/site-packages/boto3/session.py", LIBRARY, "a virtualenv inside the package"),
    # Installed packages, any prefix.
    (f"{SITE}/requests/api.py", LIBRARY, "site-packages"),
    ("/usr/lib/python3/dist-packages/yaml/__init__.py", LIBRARY, "Debian's dist-packages"),
    ("/home/u/.local/lib/python3.11/site-packages/attr/_make.py", LIBRARY, "user site-packages"),
    ("/home/u/proj/.venv/lib/python3.11/site-packages/flask/app.py", LIBRARY, "a .venv"),
    ("/home/u/proj/venv/bin/flask", LIBRARY, "a venv's console script"),
    ("/home/u/proj/.venv/src/dep/dep/core.py", LIBRARY, "pip install -e git+...: a dependency's checkout"),
    ("/home/u/proj/__pypackages__/3.11/lib/click/core.py", LIBRARY, "PEP 582 packages"),
    ("C:\\proj\\.venv\\Lib\\site-packages\\flask\\app.py", LIBRARY, "Windows virtualenv"),
    # Editable installs: the finder is installed, the code is the user's checkout.
    (f"{SITE}/__editable___mypkg_0_1_finder.py", LIBRARY, "the editable finder in site-packages"),
    ("/home/u/proj/src/mypkg/core.py", USER, "an editable install's source is the user's checkout"),
    # The profiler's own frames.
    ("/opt/python/greenflame/agent/sampler.py", LIBRARY, "the agent from the greenflame layer"),
    (f"{SITE}/greenflame/agent/sampler.py", LIBRARY, "the agent installed with pip"),
    ("/home/u/src/greenflame/agent/sampler.py", LIBRARY, "the agent from a checkout"),
    # Generated and interactive code.
    ("<string>", LIBRARY, "exec-generated: a namedtuple's __new__, a dataclass's __init__"),
    ("<stdin>", USER, "typed by the user"),
    ("<ipython-input-3-5f2c9e>", USER, "an IPython cell"),
    # The user's own code, including look-alikes of the markers.
    ("/srv/app/handler.py", USER, "a service's code"),
    ("/opt/myapp/app.py", USER, "a service deployed under /opt, not a layer"),
    ("/srv/lib/pythonic/x.py", USER, "lib/pythonic is not lib/pythonX.Y"),
    ("/srv/app/venv_tools.py", USER, "venv in a file name is not a virtualenv"),
    ("C:\\Users\\u\\python-tools\\lib\\util.py", USER, "a Windows lib folder outside a PythonXY install"),
    ("C:\\Users\\u\\proj\\app.py", USER, "Windows checkout"),
    ("app/handler.py", USER, "relative path"),
    ("app\\handler.py", USER, "relative Windows path"),
    ("./app.py", USER, "relative path with a dot"),
    ("lib/python_utils.py", USER, "a relative lib folder"),
]

IDS = [f"{kind}:{file or '(none)'}" for file, kind, _ in TABLE]


@pytest.mark.parametrize(("file", "kind", "why"), TABLE, ids=IDS)
def test_code_kind(file: str, kind: Kind, why: str) -> None:
    assert code_kind(file) == kind, why
    assert is_library(file) == (kind != USER), why


@pytest.mark.parametrize(("file", "kind", "why"), TABLE, ids=IDS)
def test_rules_find_call_sites_in_user_code_only(file: str, kind: Kind, why: str) -> None:
    handler = Frame("handler", "/var/task/app.py", 5)
    frame = Frame("middle", file, 7)
    target = Frame("Session.client", f"{SITE}/boto3/session.py", 264)
    assert is_application(frame) == (kind == USER), why
    assert call_site([handler, frame, target], 2) == (frame if kind == USER else handler), why


@pytest.mark.parametrize(("file", "kind", "why"), TABLE, ids=IDS)
def test_time_series_library_test(file: str, kind: Kind, why: str) -> None:
    assert is_library_file(file) == (kind != USER), why


def test_tree_annotation_matches_the_table() -> None:
    tree: Dict[str, Any] = {"name": "all", "file": "", "children": []}
    for index, (file, _kind, _why) in enumerate(TABLE):
        tree["children"].append({"name": f"f{index}", "file": file, "children": []})
    annotate_kinds(tree)
    assert [node["kind"] for node in tree["children"]] == [kind for _, kind, _ in TABLE]


def test_anomaly_series_mark_exactly_the_library_frames() -> None:
    profile = Profile(start_time_unix_ns=1_767_571_200 * 10**9, duration_ns=60 * 10**9)
    main = Frame("main", "/srv/main.py", 1)
    frames = [Frame(f"f{index}", file, 1) for index, (file, _kind, _why) in enumerate(TABLE)]
    for frame in frames:
        profile.add([main, frame], [10, 10])
    library = group_series([profile], (300,))[300].library
    expected = {frame_key(frame) for frame, (_file, kind, _why) in zip(frames, TABLE) if kind != USER}
    assert len({frame_key(frame) for frame in frames}) == len(frames)  # one key per row
    assert library == expected


def test_the_analysing_interpreters_standard_library_is_stdlib() -> None:
    stdlib = sysconfig.get_paths()["stdlib"]
    assert code_kind(f"{stdlib}/json/decoder.py") == STDLIB
    assert code_kind(f"{stdlib}/site-packages/requests/api.py") == LIBRARY


def test_vendored_names_can_match_a_lowercased_path() -> None:
    assert all(name == name.lower() and name.isidentifier() for name in VENDORED_TOP_LEVELS)


def test_the_cache_is_bounded() -> None:
    """File names are attacker text on the server: the memo must not grow without limit."""
    assert code_kind.cache_info().maxsize is not None
