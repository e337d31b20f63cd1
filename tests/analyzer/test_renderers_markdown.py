"""The Markdown report for tickets: every section issue 5 asks for, escaping, and the evidence SVG."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, List

import pytest
from support.builders import HANDLER, lambda_profile

from greenflame.analyzer import svg
from greenflame.analyzer.formats import dump_profile
from greenflame.analyzer.model import Frame
from greenflame.analyzer.renderers import markdown, markdown_text
from greenflame.analyzer.report import Report, analyze_profile
from greenflame.analyzer.rules import get_rule
from greenflame.analyzer.rules.finding import SERVICE_INPUTS, Inputs, Sci, Setting

DATA_URI = re.compile(r"!\[evidence flame graph\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)")


def report() -> Report:
    return analyze_profile(lambda_profile(invocations=50))


def section(text: str, heading: str) -> str:
    """The body of the ``### heading`` section of the first finding."""
    start = text.index(f"### {heading}\n")
    end = text.find("\n### ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_every_part_of_a_ticket_is_there() -> None:
    document = report()
    finding = document.recommendations[0]
    text = markdown.render(document)
    rule = get_rule(finding.rule)
    what = section(text, "What")
    assert f"{finding.share:.1%}" in what and f"{finding.expected_share:.1%}" in what
    assert f"**{finding.times_expected:.1f}x more than expected**" in what
    where = section(text, "Where")
    assert "`client (/var/lang/lib/python3.11/site-packages/boto3/__init__.py:86)`" in where
    assert "`main` → `handle_event_request` → `lambda_handler` → `client`" in where
    why = section(text, "Why it matters")
    assert markdown.escape(rule.description) in why
    assert f"${finding.cost_usd_per_month:,.2f}/month \\(Lambda duration\\)" in why
    co2 = finding.co2e_kg_per_month_range
    assert co2 is not None
    assert f"{co2.central:.3g} kg CO2e/month (range {co2.low:.2g}-{co2.high:.2g})" in why
    sci = finding.sci_g_per_invocation
    assert sci is not None and sci.before is not None and sci.after is not None
    assert f"{sci.before:.2g} g CO2e per invocation now, {sci.after:.2g} after the fix" in why
    assert "memory 512 MB \\(profile\\)" in why and "invocations/month" in why
    fix = section(text, "Fix")
    assert markdown.escape(rule.fix) in fix
    assert "Bad:\n\n```python\n" + rule.bad_example.rstrip("\n") + "\n```" in fix
    assert "Good:\n\n```python\n" + rule.good_example.rstrip("\n") + "\n```" in fix
    evidence = section(text, "Evidence")
    assert f"Fingerprint: `{finding.fingerprint}`" in evidence


def test_embedded_evidence_is_a_valid_svg_with_the_frames_highlighted() -> None:
    text = markdown.render(report())
    (encoded,) = DATA_URI.findall(text)
    root = ET.fromstring(base64.b64decode(encoded))
    rects = {
        (g.find("{http://www.w3.org/2000/svg}title").text or "").split(" (")[0]: g.find(  # type: ignore[union-attr]
            "{http://www.w3.org/2000/svg}rect"
        )
        for g in root.iter("{http://www.w3.org/2000/svg}g")
    }
    assert rects["client"].get("fill") == svg.HIGHLIGHT_FILL  # type: ignore[union-attr]
    assert len(encoded) < 40_000  # small enough for a ticket body


def test_evidence_can_be_referenced_or_left_out() -> None:
    document = report()
    fingerprint = document.recommendations[0].fingerprint
    url = "https://tracker.example/uploads/evidence (1).svg"
    text = markdown.render(document, evidence_urls={fingerprint: url})
    assert "![evidence flame graph](https://tracker.example/uploads/evidence%20%281%29.svg)" in text
    assert "data:image" not in text
    assert "data:image" not in markdown.render(document, evidence="none")
    with pytest.raises(ValueError):
        markdown.render(document, evidence="inline-html")


def test_hostile_text_stays_inert() -> None:
    profile = lambda_profile(invocations=50)
    evil = Frame("<img src=x onerror=alert(1)>]]>&@admin [x](http://e)", "/task/`evil`.py", 1)
    for _ in range(30):
        profile.add(
            [HANDLER, evil, *[profile.frames[i] for i in profile.samples[1].stack[-5:]]],
            [1, 1],
            {"lambda_phase": "invoke"},
        )
    document = analyze_profile(profile)
    finding = document.recommendations[0]
    finding.title = "<b>@everyone</b> [click](http://e)"
    finding.inputs.notes = ["<script>alert(1)</script>"]
    text = markdown.render(document)
    body = DATA_URI.sub("", text)
    for line in body.splitlines():
        outside = "".join(line.split("`")[0::2])  # only ever inside inline code spans
        assert "<img" not in outside and "<b>" not in outside and "<script" not in outside
        assert (
            re.search(r"(?<!\\)\]\(http", outside) is None and re.search(r"(?<!\\)@(everyone|admin)", outside) is None
        )
    assert "`<img src=x onerror=alert(1)>]]>&@admin [x](http://e)`" in body
    for encoded in DATA_URI.findall(text):
        root = ET.fromstring(base64.b64decode(encoded))
        assert all(el.tag.rsplit("}", 1)[-1] in {"svg", "title", "rect", "text", "g"} for el in root.iter())


def test_fences_outgrow_backticks_in_the_code() -> None:
    assert markdown.fence("a = '```'\n", "python") == ["````python", "a = '```'", "````"]
    assert markdown.fence("plain") == ["```", "plain", "```"]


def test_service_finding_and_unknown_rule() -> None:
    document = report()
    finding = replace(
        document.recommendations[0],
        rule="future-rule",
        sci_g_per_invocation=None,
        sci_g_per_request=Sci(2e-4, 1e-4),
        inputs=Inputs(
            kind=SERVICE_INPUTS,
            usd_per_vcpu_hour=Setting(0.04048, "default, secondary source"),
            requests_per_month=Setting(1e7, "measured"),
            region=Setting("eu-west-1", "override"),
        ),
    )
    text = markdown.render(replace(document, recommendations=[finding]))
    assert "0.0002 g CO2e per request now, 0.0001 after the fix" in text
    assert "\\(vCPU-hours at $0.04048 per vCPU-hour, default, secondary source\\)" in text
    assert "requests/month 10,000,000 \\(measured\\)" in text and "region eu-west-1 \\(override\\)" in text
    assert "Bad:" not in text  # no catalogue entry, no examples, no failure


def test_no_findings() -> None:
    empty = analyze_profile(lambda_profile(client_in_handler=False))
    assert "No recommendations" in markdown.render(empty)


def test_cli_markdown_embeds_the_evidence(tmp_path: Path) -> None:
    path = tmp_path / "brown.json"
    path.write_bytes(dump_profile(lambda_profile(invocations=50), "json"))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from greenflame.cli.main import main; sys.exit(main())",
            "analyze",
            str(path),
            "--format",
            "markdown",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "### Fix" in result.stdout
    (encoded,) = DATA_URI.findall(result.stdout)
    assert ET.fromstring(base64.b64decode(encoded)).tag == "{http://www.w3.org/2000/svg}svg"


# -- the one escaper, checked with GitHub's own Markdown parser (cmark-gfm) ------------------

#: The characters either of the two former escapers handled (report and tickets), and the
#: block markers that matter at the start of a line.
UNION = [*"\\`*_{}[]()#+!|~@&<>", "-", "1.", "2)", "=", "---", "> "]
HOSTILE_TEXTS = [
    "<img src=x onerror=alert(1)>",
    "[click](x) ![i](y) [ref]: z",
    "**b** __u__ *i* _j_ ~~s~~ `c` ``d``",
    "a | b | c",
    "&amp; &#64; &lt;b&gt; \\*not\\*",
    "<!-- comment --> <script>alert(1)</script>",
    "# h",
    "line one\nline two\r\n\u202eevil\u200d",
]


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: List[str] = []
        self.text: List[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _gfm(source: str) -> _Html:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    parsed = _Html()
    parsed.feed(cmarkgfm.github_flavored_markdown_to_html(source))
    return parsed


@pytest.mark.parametrize(
    "text", [*UNION, *(f"{c}x{c} y" for c in UNION), *(f"a {c}b{c}" for c in UNION), *HOSTILE_TEXTS]
)
def test_escaped_text_renders_as_typed_on_github(text: str) -> None:
    typed = markdown_text.one_line(text)
    escaped = markdown_text.escape(text)
    assert "@" not in escaped and "<" not in escaped
    for template, tags in (("{}", ["p"]), ("- {}", ["ul", "li"]), ("| h |\n|---|\n| {} |", None)):
        parsed = _gfm(template.format(escaped))
        shown = "".join(parsed.text).replace(markdown_text.WORD_JOINER, "")  # invisible on screen
        if tags is None:  # a table cell: the table's own tags, and the text intact
            assert set(parsed.tags) <= {"table", "thead", "tr", "th", "tbody", "td"}, (text, parsed.tags)
            assert typed in shown, text
        else:
            assert parsed.tags == tags, (text, parsed.tags)
            assert shown.strip() == typed, text


#: Text GitHub's autolink extension links (checked unescaped below) and what GitHub and GitLab
#: turn into mentions or references in the rendered text, each with the pattern they look for.
AUTOLINKED = [
    "https://evil.example/phish",
    "see www.evil.example/x now",
    "(www.evil.example)",
    "HTTP://EVIL.example/a",
    "user@evil.example",
    "mailto:x@evil.example",
    "xmpp:a@evil.example",
    "_www.evil.example_",
]
REFERENCES = [
    ("@someone", r"@\w"),
    ("cc @org/team", r"@\w"),
    ("fixes #123", r"#\d"),
    ("org/repo#9", r"#\d"),
    ("GH-1", r"GH-\d"),
    ("gh-12", r"(?i)GH-\d"),
    ("!1 ~label &3 %v1", r"[!~&%]\w"),
]


@pytest.mark.parametrize("text", AUTOLINKED)
def test_autolinks_are_broken_on_github(text: str) -> None:
    assert "a" in _gfm(text).tags  # the text alone is a link
    parsed = _gfm(markdown_text.escape(text))
    assert parsed.tags == ["p"], (text, parsed.tags)
    assert "".join(parsed.text).replace(markdown_text.WORD_JOINER, "").strip() == text


@pytest.mark.parametrize("text, pattern", REFERENCES)
def test_mentions_and_references_are_broken_in_the_rendered_text(text: str, pattern: str) -> None:
    assert re.search(pattern, text)
    shown = "".join(_gfm(markdown_text.escape(text)).text)
    assert re.search(pattern, shown) is None, (text, shown)
    assert shown.replace(markdown_text.WORD_JOINER, "").strip() == text


def test_defuse_leaves_ordinary_text_alone() -> None:
    text = "orders.handler (app/orders.py:42) 50% of a_b-c, $0.18, C# 3 @ 5 www"
    assert markdown_text.defuse(text) == text


def test_report_and_tickets_use_the_one_escaper() -> None:
    from greenflame.server.tickets import render_markdown

    assert render_markdown.escape is markdown_text.escape
    assert markdown.escape("x" * 400) == "x" * 299 + "…"
