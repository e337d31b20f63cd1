"""SVG flame graphs: valid standalone XML, hostile names kept as text, bounded size, evidence, export."""

from __future__ import annotations

import gzip
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Dict, List

import pytest
from support.builders import CLIENT_CREATION, HANDLER, lambda_profile, simple_profile

from greenflame.analyzer import svg
from greenflame.analyzer.formats import dump_profile
from greenflame.analyzer.model import Frame, Profile
from greenflame.analyzer.report import analyze_profile
from greenflame.analyzer.rules.finding import CallPath, EvidenceFrame, Finding, FrameRef
from greenflame.analyzer.tree import build_tree

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "a]]>b&c<![CDATA[d",
    "\"quoted\" & 'single' <script>alert(1)</script>",
    "nul\x00esc\x1b[2J bell\x07 surrogate\ud800 ffff\uffff",
]


def parse(document: str) -> ET.Element:
    """The SVG parsed strictly as XML (raises on anything malformed)."""
    return ET.fromstring(document.encode("utf-8"))


def frames(root: ET.Element) -> List[Dict[str, str]]:
    """Every drawn frame: its tooltip, rectangle attributes and label."""
    out = []
    for group in root.iter(f"{NS}g"):
        title, rect = group.find(f"{NS}title"), group.find(f"{NS}rect")
        assert title is not None and rect is not None
        label = group.find(f"{NS}text")
        out.append({"title": title.text or "", "label": "" if label is None else (label.text or ""), **rect.attrib})
    return out


def name_of(item: Dict[str, str]) -> str:
    """The function name a drawn frame's tooltip starts with."""
    return item["title"].split("\n")[0].split(" (")[0]


def test_standalone_valid_svg_with_one_rect_per_call_path() -> None:
    profile = simple_profile([["main", "a", "b"], ["main", "a", "c"], ["main", "d"]], [3, 1, 4])
    document = svg.render_svg(profile, title="demo", width=800)
    root = parse(document)
    assert root.tag == f"{NS}svg" and root.get("width") == "800"
    assert root.find(f"{NS}title") is not None and root.find(f"{NS}title").text == "demo"  # type: ignore[union-attr]
    assert "<script" not in document and "href" not in document  # nothing runs, nothing is fetched
    drawn = frames(root)
    # all, main, a, b, c, d: one rectangle per node of the call tree.
    assert sorted(name_of(f) for f in drawn) == ["a", "all", "b", "c", "d", "main"]
    by_name = {name_of(f): f for f in drawn}
    assert float(by_name["all"]["width"]) == pytest.approx(800 - 2 * svg.PAD - 0.5)
    # Widths are proportional to values: a is 4 of 8, d 4 of 8, b 3 of 8.
    assert float(by_name["a"]["width"]) == pytest.approx(float(by_name["d"]["width"]))
    assert float(by_name["b"]["width"]) + 0.5 == pytest.approx(3 / 8 * (800 - 2 * svg.PAD))
    assert "4 (50.00%)" in by_name["a"]["title"]
    # Root at the bottom: deeper frames are drawn higher up.
    assert (
        float(by_name["b"]["y"]) < float(by_name["a"]["y"]) < float(by_name["main"]["y"]) < float(by_name["all"]["y"])
    )
    assert svg.render_svg(profile, title="demo", width=800) == document  # deterministic


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_frame_names_stay_text(name: str) -> None:
    profile = Profile()
    profile.add([Frame("main", "m.py", 1), Frame(name, f"/{name}.py", 7)], [5, 5])
    document = svg.render_svg(profile, title=name, highlight=[name])
    root = parse(document)
    tags = {element.tag for element in root.iter()}
    assert tags <= {f"{NS}{tag}" for tag in ("svg", "title", "rect", "text", "g")}
    assert all(not key.startswith("on") for element in root.iter() for key in element.attrib)
    safe = svg._NOT_XML.sub("\ufffd", name)
    tooltips = [f["title"] for f in frames(root)]
    assert any(tip.startswith(f"{safe} (/{safe}.py:7)") for tip in tooltips)
    assert root.find(f"{NS}title").text == safe  # type: ignore[union-attr]
    assert "<![CDATA[" not in document and "<img" not in document


def test_labels_are_truncated_to_fit_and_tiny_frames_are_not_labelled() -> None:
    long_name = "very_long_function_name_" * 10
    profile = simple_profile([["main", long_name], ["main", "x" * 30]], [30, 1])
    drawn = {name_of(f): f for f in frames(parse(svg.render_svg(profile, width=400)))}
    label, width = drawn[long_name]["label"], float(drawn[long_name]["width"])
    assert label.endswith("..") and long_name.startswith(label[:-2])
    assert len(label) * svg.CHAR_WIDTH <= width
    assert drawn["x" * 30]["label"] == ""  # about 12 px wide: fewer than 3 characters fit


def test_evidence_frames_and_the_calls_under_them_are_highlighted() -> None:
    profile = lambda_profile(invocations=20)
    entry = CLIENT_CREATION[0]
    spec = FrameRef.of(entry)
    drawn = frames(parse(svg.render_svg(profile, highlight=[spec])))
    fills: Dict[str, set] = {}
    for item in drawn:
        fills.setdefault(name_of(item), set()).add(item["fill"])
    assert fills["client"] == {svg.HIGHLIGHT_FILL}
    assert fills["Loader.load_service_model"] == {svg.HIGHLIGHT_INNER_FILL}
    assert not fills["lambda_handler"] & {svg.HIGHLIGHT_FILL, svg.HIGHLIGHT_INNER_FILL}
    root = parse(svg.render_svg(profile, highlight=[spec]))
    assert "highlighted (blue)" in "".join(t.text or "" for t in root.iter(f"{NS}text"))


def test_highlighter_matches_frames_references_and_names() -> None:
    a = Frame("handler", "/task/app.py", 12)
    assert svg.highlighter([a])(a) and not svg.highlighter([a])(Frame("handler", "/other.py", 12))
    assert svg.highlighter(["handler"])(Frame("handler", "/other.py", 3))
    assert svg.highlighter([FrameRef("handler", "/task/app.py")])(a)  # line 0: any line
    assert not svg.highlighter([FrameRef("handler", "/task/app.py", 9)])(a)
    assert svg.highlighter([FrameRef("handler")])(Frame("handler", "/other.py", 3))  # no file: the name anywhere
    assert not svg.highlighter([FrameRef("other", "/task/app.py")])(a)


def test_huge_profiles_are_pruned_to_a_bounded_document() -> None:
    profile = Profile()
    for i in range(5000):
        profile.add([Frame("main", "m.py", 1), Frame(f"f{i % 97}", "x.py", i % 97), Frame(f"g{i}", "y.py", i)], [1, 1])
    document = svg.render_svg(profile, max_nodes=300)
    drawn = frames(parse(document))
    assert len(drawn) <= 300
    assert any(item["title"].startswith("other: ") for item in drawn)
    assert len(document) < 300 * 400
    assert "merged into 'other'" in document


def test_deep_stacks_and_empty_profiles() -> None:
    deep = simple_profile([[f"level{i}" for i in range(3000)]])
    assert len(frames(parse(svg.render_svg(deep, max_nodes=500)))) <= 500
    empty = Profile()
    root = parse(svg.render_svg(empty))
    assert "nothing to draw" in "".join(t.text or "" for t in root.iter(f"{NS}text"))
    with pytest.raises(ValueError):
        svg.render_svg(empty, width=50)
    with pytest.raises(ValueError):
        svg.render_svg(empty, max_nodes=1)


def test_wall_is_used_when_there_is_no_cpu() -> None:
    profile = Profile()
    profile.add([Frame("sleep", "s.py", 1)], [7, 0])
    root = parse(svg.render_svg(profile))
    assert root.find(f"{NS}title").text == "profile: wall"  # type: ignore[union-attr]
    tree = build_tree(profile, "wall")
    assert "7 samples" in svg.render_svg(tree, sample_type="wall")


def _finding(profile: Profile) -> Finding:
    (finding,) = analyze_profile(profile).recommendations
    return finding


def test_evidence_tree_and_svg_from_a_finding() -> None:
    profile = lambda_profile(invocations=30)
    finding = _finding(profile)
    tree = svg.evidence_tree(finding)
    assert tree.total == sum(s.samples for item in finding.frames for s in item.stacks) > 0
    document = svg.evidence_svg(finding)
    drawn = frames(parse(document))
    assert {name_of(item) for item in drawn} >= {"all", HANDLER.function, "client"}
    assert any(item["fill"] == svg.HIGHLIGHT_FILL for item in drawn)
    # With the profile: every stack through the entry frame, with the calls under it, and nothing else.
    full = frames(parse(svg.evidence_svg(finding, profile)))
    names = {name_of(item) for item in full}
    assert "Loader.load_service_model" in names and "render_rows" not in names
    empty = (CallPath((FrameRef("f"),), 0), CallPath((FrameRef("f"),), -1))
    assert svg.evidence_tree(replace(finding, frames=[EvidenceFrame(FrameRef("f"), 0, 0.0, empty)])).total == 0


def test_export_svg_as_a_real_process(tmp_path: Path) -> None:
    profile = lambda_profile(invocations=10)
    profile.add([HANDLER, Frame("<img src=x onerror=alert(1)>", "]]>&.py", 1)], [3, 3])
    source = tmp_path / "brown.json"
    source.write_bytes(dump_profile(profile, "json"))
    command = [sys.executable, "-c", "import sys; from greenflame.cli.main import main; sys.exit(main())"]
    result = subprocess.run(
        [*command, "export", str(source), "--format", "svg"], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    root = parse(result.stdout.decode("utf-8"))
    assert any(item["title"].startswith("<img src=x onerror=alert(1)> (]]>&.py:1)") for item in frames(root))
    out = tmp_path / "flame.svg.gz"
    result = subprocess.run(
        [*command, "export", str(source), "--format", "svg", "-o", str(out)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == b"", result.stderr
    assert parse(gzip.decompress(out.read_bytes()).decode("utf-8")).tag == f"{NS}svg"
