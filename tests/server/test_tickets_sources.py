"""A ticket body names the source of every input its figures rest on, and whether the pattern recurs."""

from __future__ import annotations

from typing import List

from support.builders import lambda_profile

from greenflame.analyzer.report import analyze_profile
from greenflame.server.tickets import render_markdown
from greenflame.server.tickets.document import Block, Bullets, Paragraph, Text, build_content
from greenflame.server.tickets.subject import TicketSubject


def test_the_body_shows_each_input_with_its_source_and_the_recurrence() -> None:
    profile = lambda_profile()
    profile.metadata["lambda"]["local_runner"] = "greenflame lambda invoke"
    profile.metadata["invocations"]["first_sequence"] = 1
    (finding,) = analyze_profile(profile).recommendations
    for subject in (TicketSubject.from_finding(finding), TicketSubject.from_mapping(finding.to_dict())):
        content = build_content("brown", subject)
        text = "".join(part.text for block in content.blocks for part in _parts(block))
        assert "invocations per month 1,000,000 (assumed)" in text
        assert "mean duration (ms) 40.0 (profile)" in text and "memory (MB) 512 (profile)" in text
        assert "Recurrence: seen in later invocations" in text
        assert "1,000,000 \\(assumed\\)" in render_markdown.render(content)


def _parts(block: Block) -> List[Text]:
    if isinstance(block, Paragraph):
        return list(block.parts)
    if isinstance(block, Bullets):
        return [part for item in block.items for part in item]
    return []
