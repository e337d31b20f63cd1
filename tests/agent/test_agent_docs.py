"""docs/agent.md's configuration table is the one generated from the code."""

from __future__ import annotations

from support.paths import ROOT

from greenflame.agent.config import options_markdown

DOC = ROOT / "docs" / "agent.md"


def test_the_documented_options_are_the_declared_ones() -> None:
    text = DOC.read_text("utf-8")
    begin, end = "<!-- options:begin -->\n", "<!-- options:end -->"
    assert begin in text and end in text
    documented = text.split(begin, 1)[1].split(end, 1)[0]
    assert documented == options_markdown(), "regenerate the table with greenflame.agent.config.options_markdown()"


def test_the_wire_format_documents_what_the_agent_writes() -> None:
    wire = (DOC.parent / "wire-format.md").read_text("utf-8")
    for name in ("`idle`", "`report_id`", "`agent_cpu_ns`", "`rate_limited`", "`kill_switch`", "`asyncio_task`"):
        assert name in wire, name
