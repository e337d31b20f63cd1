"""``greenflame tickets push`` and ``greenflame tickets status``.

Both return the process exit status and raise :class:`~greenflame.analyzer.errors.UserError`
(one line) for user mistakes.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, TextIO

from greenflame.analyzer.errors import UserError

from .options import add_verb_group

if TYPE_CHECKING:
    from greenflame.analyzer.rules.finding import Finding
    from greenflame.server.tickets.config import ChannelConfig
    from greenflame.server.tickets.models import TicketStatus
    from greenflame.server.tickets.store import TicketLink
    from greenflame.server.tickets.subject import TicketSubject

PUBLIC_URL_ENV = "GREENFLAME_PUBLIC_URL"
UNGROUPED = "ungrouped"


def register(verbs: Any) -> None:
    """Add ``tickets push`` and ``tickets status`` to the command line."""
    ticket_verbs = add_verb_group(verbs, "tickets", "turn findings into GitHub, GitLab or Jira tickets")
    push = ticket_verbs.add_parser("push", help="analyse profiles and create, update or close one ticket per finding")
    push.add_argument("files", nargs="+", metavar="FILE")
    push.add_argument("--to", required=True, metavar="github:OWNER/REPO|gitlab:PROJECT|jira:KEY|webhook:URL")
    push.add_argument("--api-url", metavar="URL", help="the tracker's API base URL (self-hosted GitLab, Jira)")
    push.add_argument("--min-usd", type=float, metavar="X", help="only findings costing at least X dollars a month")
    push.add_argument("--dry-run", action="store_true", help="show what would be posted, post nothing")
    push.set_defaults(run_verb=lambda args: push_command(args.files, args.to, args.api_url, args.min_usd, args.dry_run))
    status = ticket_verbs.add_parser("status", help="the tickets greenflame keeps, with their delivery status")
    status.add_argument("--db", metavar="URL", help="the server's database URL (default: as `greenflame serve`)")
    status.set_defaults(run_verb=lambda args: status_command(database=args.db))


def push_command(
    files: Sequence[str],
    to: str,
    api_url: Optional[str] = None,
    min_usd: Optional[float] = None,
    dry_run: bool = False,
    *,
    out: Optional[TextIO] = None,
) -> int:
    """Analyse profile ``files`` and post their findings to ``to``; 1 when a ticket failed."""
    out = out or sys.stdout
    config = _destination(to, api_url, min_usd, check=not dry_run)
    subjects_by_group = _subjects(analyse_files(files))
    if dry_run:
        return _dry_run(subjects_by_group, config, out)
    from greenflame.server.tickets.models import FAILED
    from greenflame.server.tickets.store import TicketStore
    from greenflame.server.tickets.sync import sync_subjects

    store = TicketStore.open(database_url())
    try:
        statuses = [
            status
            for group, subjects in subjects_by_group.items()
            for status in sync_subjects(group, subjects, config, store)
        ]
    finally:
        store.close()
    out.write(format_statuses(statuses))
    return 1 if any(status.action == FAILED for status in statuses) else 0


def status_command(*, database: Optional[str] = None, out: Optional[TextIO] = None) -> int:
    """Print every ticket greenflame tracks, from the server's database (``database``: its URL, as ``--db``)."""
    from greenflame.server.tickets.store import TicketStore

    out = out or sys.stdout
    store = TicketStore.open(database or database_url())
    try:
        links = store.links()
    finally:
        store.close()
    out.write(format_links(links) if links else "no tickets yet\n")
    return 0


def analyse_files(files: Sequence[str]) -> Dict[str, List[Finding]]:
    """Load the profiles, merge them per group and analyse each group: findings by group."""
    from greenflame.analyzer.formats import load_profile
    from greenflame.analyzer.model import Profile, merge
    from greenflame.analyzer.report import analyze_profile

    by_group: Dict[str, List[Profile]] = OrderedDict()
    for path in files:
        profile = load_profile(path)
        by_group.setdefault(profile.group or UNGROUPED, []).append(profile)
    return {group: analyze_profile(merge(profiles, group)).recommendations for group, profiles in by_group.items()}


def _subjects(findings_by_group: Mapping[str, Sequence[Finding]]) -> Dict[str, List[TicketSubject]]:
    from greenflame.server.tickets.subject import TicketSubject

    return {
        group: [TicketSubject.from_finding(finding) for finding in findings]
        for group, findings in findings_by_group.items()
    }


def database_url() -> str:
    """The server's database URL (``GREENFLAME_DATABASE_URL``, else SQLite in ``GREENFLAME_DATA_DIR``)."""
    from greenflame.server.settings import Settings

    return Settings.from_env().resolved_database_url()


def _destination(to: str, api_url: Optional[str], min_usd: Optional[float], check: bool) -> ChannelConfig:
    from greenflame.server.tickets.config import ChannelConfigError, parse_destination

    if min_usd is not None and min_usd < 0:
        raise UserError(f"--min-usd must not be negative, got {min_usd}")
    settings = {"min_usd_per_month": min_usd, "link_base": os.environ.get(PUBLIC_URL_ENV) or None}
    try:
        config = parse_destination(to, api_url, settings=settings)
        if check:
            config.check()
    except ChannelConfigError as error:
        raise UserError(str(error)) from None
    return config


def _dry_run(subjects_by_group: Mapping[str, Sequence[TicketSubject]], config: ChannelConfig, out: TextIO) -> int:
    from greenflame.server.tickets import render_markdown
    from greenflame.server.tickets.document import build_content
    from greenflame.server.tickets.sync import worth_a_ticket

    count = 0
    for group, subjects in subjects_by_group.items():
        for subject in subjects:
            content = build_content(group, subject, labels=config.labels, link_base=config.link_base)
            if not worth_a_ticket(subject, config.min_usd_per_month):
                out.write(f"skip (below --min-usd): {content.title}\n")
                continue
            count += 1
            out.write(f"--- would post to {config.channel_key}: {content.title}\n")
            out.write(render_markdown.render(content) + "\n")
    out.write(f"dry run: {count} ticket(s) would be posted; nothing was sent\n")
    return 0


def format_statuses(statuses: Sequence[TicketStatus]) -> str:
    """One line per sync outcome, failures with their reason, then a count."""
    from greenflame.server.tickets.models import FAILED

    if not statuses:
        return "no findings: nothing to post\n"
    rows = [(s.action, s.group, s.channel, s.ticket_id or "-", s.url or "", s.error or s.title) for s in statuses]
    failed = sum(1 for s in statuses if s.action == FAILED)
    summary = f"{len(statuses)} finding(s), {failed} failed" + (" (retried on the next push)" if failed else "")
    return _table(("ACTION", "GROUP", "CHANNEL", "TICKET", "URL", "DETAIL"), rows) + summary + "\n"


def format_links(links: Sequence[TicketLink]) -> str:
    """The ``tickets status`` table."""
    rows = [
        (
            link.group,
            link.channel,
            link.ticket_id or "-",
            link.state or "not posted",
            link.last_action or "-",
            str(link.attempts),
            f"FAILED: {link.last_error}" if link.last_error else (link.url or link.title),
        )
        for link in links
    ]
    return _table(("GROUP", "CHANNEL", "TICKET", "STATE", "LAST", "FAILURES", "DETAIL"), rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = [[" ".join(str(cell).split()) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    lines = ["  ".join([*(row[i].ljust(widths[i]) for i in range(len(widths))), row[-1]]).rstrip() for row in cells]
    return "\n".join(lines) + "\n"
