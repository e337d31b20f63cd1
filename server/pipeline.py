"""The analysis run: what the server does for a group after profiles arrive.

:meth:`Pipeline.run_group` takes the group's lease (one process at a time, across every server
process sharing the database), and when the group has new data (or a re-analysis was asked
for) it:

1. merges the group's profiles of the last ``window_s`` (ending at its latest profile; from the
   process's kept merges of 5-minute slots, :mod:`.window_merge`, so only what changed since the
   previous run is merged again) and runs :func:`greenflame.analyzer.report.analyze_profile`;
2. updates the finding states at the data's time (new, ongoing, resolved, reopened;
   :mod:`.pipeline_findings`);
3. runs anomaly detection over the last ``history_s`` of profiles with the group's feedback, when
   numpy and scikit-learn are installed;
4. syncs tickets on each of the group's channels (:mod:`.tickets.sync`) for the findings and the
   ongoing anomalies, each as a :class:`.tickets.subject.TicketSubject`; the sync records tracker
   failures instead of raising, so a tracker that is down delays nothing else and is retried
   on the next run.

Nothing here runs on a request thread: :mod:`.pipeline_worker` calls it from its own thread.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from greenflame.analyzer import anomaly_feedback
from greenflame.analyzer.anomalies import Anomaly, choose_resolution, detect, reason
from greenflame.analyzer.anomaly_model import DAY_S
from greenflame.analyzer.model import Profile
from greenflame.analyzer.report import analyze_profile
from greenflame.analyzer.rules.finding import Finding, FrameRef
from greenflame.analyzer.svg import evidence_svg

from .anomaly_fits import FitStore, PipelineModels
from .fine_series import fine_series_for
from .pipeline_channels import channel_config
from .pipeline_findings import NEW, REOPENED, RESOLVED, changed_to, next_states
from .pipeline_store import Generation, Lease, PipelineStore, StoredAnomaly, analysis_state
from .series import RESOLUTION_S as SERIES_RESOLUTION_S
from .series import per_storage, series_for
from .storage import Storage, StoredProfile
from .tickets.config import ChannelConfigError
from .tickets.models import FAILED, TicketStatus
from .tickets.store import TicketStore
from .tickets.subject import TicketEvidence, TicketSubject
from .tickets.sync import sync_subjects
from .window_merge import merges_for

log = logging.getLogger(__name__)

#: Re-runs in one call when profiles keep arriving during a run; later ones wait for the next call.
MAX_ROUNDS = 3
#: A run after a previous one scores from this long before the previous run's data ended (late
#: reports land in recent buckets; an anomaly's windows need a few points before).
RESCORE_S = 3600
#: Series read before the first scored point when the day's fits are kept: the short-history
#: baseline's spread looks back a day, its window 3 hours.
CONTEXT_S = 86400 + 3 * 3600
ANOMALY_RULE = "anomaly"
ANOMALY_FIX = "Compare the two time ranges in the flame graph to see what changed at the start of the anomaly."


@dataclass(frozen=True)
class PipelineConfig:
    """How much data a run looks at, and where tickets link to."""

    window_s: int = 3600
    history_s: int = 7 * 86400
    max_profiles: int = 5000
    public_url: Optional[str] = None
    lease_s: float = 600.0


def process_owner() -> str:
    """``host:pid:thread``, recorded with each lease and run."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Pipeline:
    """Analysis runs over one storage; stateless between runs (everything is in the database: the
    process's decoded profiles and slot merges only save work, and are rebuilt when evicted)."""

    def __init__(
        self,
        storage: Storage,
        store: PipelineStore,
        tickets: TicketStore,
        config: PipelineConfig,
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.storage = storage
        self.store = store
        self.tickets = tickets
        self.config = config
        self.environ = environ

    def run_group(self, group: str, rounds: int = MAX_ROUNDS) -> Optional[Dict[str, Any]]:
        """Analyse ``group`` if it has data not yet analysed; the last run's summary, or None if none ran.

        Returns None at once when another process holds the group's lease: that process checks
        for newer data before it lets go (up to ``rounds`` runs in all; with 1, data newer than
        the run waits for the next call).
        """
        summary: Optional[Dict[str, Any]] = None
        for _ in range(rounds):
            lease = self.store.acquire(group, process_owner(), self.config.lease_s)
            if lease is None:
                return summary
            generation = self.store.generation(group)
            if lease.is_current(generation):
                self.store.release(lease)
                return summary
            summary = self._run_leased(lease, generation)
        return summary

    def _run_leased(self, lease: Lease, generation: Generation) -> Dict[str, Any]:
        run_id = self.store.start_run(lease.group, lease.owner, generation)
        started = time.time_ns()
        error: Optional[str] = None
        summary: Dict[str, Any] = {}
        try:
            summary = self._analyse(lease)
        except Exception as exc:  # a bad profile or a bug must not stop the worker; shown on the group
            log.exception("analysis of group %r failed", lease.group)
            error = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        finally:
            self.store.finish_run(run_id, error)
            self.store.release(
                lease,
                analysed_count=generation.count,
                analysed_received_ns=generation.received_ns,
                analysed_force_serial=lease.force_serial,
                last_started_unix_ns=started,
                last_finished_unix_ns=time.time_ns(),
                last_error=error,
                last_summary_json=json.dumps(summary, sort_keys=True),
                runs=analysis_state.c.runs + 1,
            )
        return {**summary, "error": error}

    def _analyse(self, lease: Lease) -> Dict[str, Any]:
        group = lease.group
        rows = self._recent_rows(group, max(self.config.history_s, self.config.window_s))
        if not rows:
            return {"profiles": 0}
        latest_ns = max(row.start_time_unix_ns + row.duration_ns for row in rows)
        window = [row for row in rows if row.start_time_unix_ns + row.duration_ns >= latest_ns - self._ns("window_s")]
        merges = merges_for(self.storage)
        merged = merges.window(group, window)
        report = analyze_profile(merged.profile, **merged.observed_traffic())
        findings = report.recommendations
        previous = self.store.finding_states(group)
        rules = [rule.id for rule in report.rules]
        states = next_states(group, previous, findings, latest_ns / 1e9, rules_evaluated=rules)
        self.store.save_finding_states(states)
        self.store.extend(lease, self.config.lease_s)
        anomalies, anomaly_note = self._anomalies(lease, rows, lambda: merges.structure_profiles(merged, window))
        self.store.extend(lease, self.config.lease_s)
        statuses, channel_errors = self._notify(group, findings, anomalies, merged.profile)
        return {
            "profiles": len(window),
            "data_until_unix_ns": latest_ns,
            "findings": len(findings),
            "new": changed_to(previous, states, (NEW, REOPENED)),
            "resolved": changed_to(previous, states, (RESOLVED,)),
            "anomalies": len(anomalies) if anomaly_note is None else None,
            "anomaly_detection": anomaly_note or "ok",
            "tickets": {"synced": sum(1 for s in statuses if s.ok), "failed": sum(1 for s in statuses if not s.ok)},
            "channel_errors": channel_errors,
        }

    def _ns(self, name: str) -> int:
        return int(getattr(self.config, name)) * 1_000_000_000

    def _recent_rows(self, group: str, span_s: int) -> List[StoredProfile]:
        """The group's profiles of the last ``span_s`` before its latest one, at most ``max_profiles`` (newest)."""
        summary = self.storage.get_group(group)
        if summary is None or summary.last_seen_unix_ns is None:
            return []
        rows = self.storage.find_profiles(group, summary.last_seen_unix_ns - span_s * 1_000_000_000)
        return rows[-self.config.max_profiles :]

    # -- anomalies ----------------------------------------------------------------
    def _anomalies(
        self, lease: Lease, rows: Sequence[StoredProfile], recent: Callable[[], Sequence[Profile]]
    ) -> Tuple[List[StoredAnomaly], Optional[str]]:
        """Detect over the history, store, and return the current anomalies (or a note why not).

        After a previous run, only the points from an hour before its data's end are scored
        (:data:`RESCORE_S`), and the anomalies it stored before that stay; a run a vote asked for
        scores from the start of the earliest anomaly voted on since the previous run began (the
        vote changes what is reported from there on). The group's first run scores the whole history.
        """
        group = lease.group
        feedback = self.feedback(group)
        state = self.store.state(group) or {}
        summary = state.get("summary") or {}
        since_ns = summary.get("data_until_unix_ns")
        score_from = None if since_ns is None else int(since_ns // 1_000_000_000) - RESCORE_S
        if score_from is not None and lease.force_serial != lease.analysed_force_serial:
            voted_after = int(state.get("last_started_unix_ns") or 0)
            starts = [vote.start_unix_s for vote in self.store.votes(group) if vote.created_unix_ns >= voted_after]
            score_from = min([score_from, *starts])
        try:
            found = self._detect(group, rows, recent, feedback, score_from)
        except ImportError as error:  # numpy or scikit-learn missing
            return [], f"unavailable: {error}"
        found = [a for a in found if a.group == group]
        if score_from is not None:
            found = _carried(self.store.anomalies(group), found, score_from)
        return self.store.replace_anomalies(group, found), None

    def _detect(
        self,
        group: str,
        rows: Sequence[StoredProfile],
        recent: Callable[[], Sequence[Profile]],
        feedback: Mapping[str, Any],
        score_from: Optional[int] = None,
    ) -> List[Anomaly]:
        """Over the stored 5-minute series (no profile decoded) when the resolution is a multiple of
        them; otherwise (short runs of short profiles) over finer buckets that count each profile
        once per process, from its ingest fold (:mod:`.fine_series`).

        Scoring from ``score_from``, the series are read from :data:`CONTEXT_S` before it when the
        seasonal fits of every day scored are known: kept by this process, or read back from the
        database (:mod:`.anomaly_fits`), where each run writes the fits it made. A run's cost
        then follows its new data, not the history's length; the first run of a day (its fits are
        made on the days before) and a group's first run read the whole history.

        ``recent`` gives profiles showing the window's structure (which frames are seen above
        which); a profile without an ingest fold here is counted from its labelled rows (:mod:`.labelled`).
        """
        if not rows:
            return []
        resolution = choose_resolution(rows)
        if resolution % SERIES_RESOLUTION_S:
            series = fine_series_for(self.storage).group_series(group, rows, resolution, recent())
            return detect(series, feedback=feedback)
        models = models_for(self.storage)
        fits = FitStore(self.storage.engine)
        latest_day = max(row.start_time_unix_ns + row.duration_ns for row in rows) // 10**9 // DAY_S * DAY_S
        first_day = min(row.start_time_unix_ns for row in rows) // 10**9 // DAY_S * DAY_S
        read = rows
        if score_from is not None:
            days = range(max(first_day, score_from // DAY_S * DAY_S), latest_day + 1, DAY_S)
            if all((group, day) in models.ready or fits.load(models, group, day) for day in days):
                first_ns = (score_from - CONTEXT_S) * 1_000_000_000
                read = [row for row in rows if row.start_time_unix_ns + row.duration_ns >= first_ns]
        series = series_for(self.storage).group_series(group, read, resolution, recent(), open_end=True)
        found = detect(series, config=fits.config, feedback=feedback, score_from_unix_s=score_from, models=models)
        if read is rows:
            models.ready.update((group, day) for day in range(first_day, latest_day + 1, DAY_S))
        scored_from = first_day if score_from is None else max(first_day, score_from // DAY_S * DAY_S)
        for day in range(scored_from, latest_day + 1, DAY_S):
            if (group, day) in models.ready:
                fits.save(models, group, day, self.config.history_s + DAY_S)
        return found

    def feedback(self, group: str) -> Dict[str, Any]:
        """The detector's feedback store for ``group``, replayed from the votes in order."""
        store: Dict[str, Any] = anomaly_feedback.empty()
        for vote in self.store.votes(group):
            for frame in (vote.frame, *vote.related_frames):
                store = anomaly_feedback.record(store, group, frame, vote.useful, vote.start_unix_s)
        return store

    # -- notifications --------------------------------------------------------------
    def _notify(
        self,
        group: str,
        findings: Sequence[Finding],
        anomalies: Sequence[StoredAnomaly],
        profile: Profile,
    ) -> Tuple[List[TicketStatus], List[str]]:
        channels = self.store.channels(group)
        if not channels:
            return [], []
        svgs = evidence_svgs(findings, profile)
        dismissed = self._dismissed(group)
        subjects = [
            *(TicketSubject.from_finding(finding) for finding in findings),
            *(anomaly_subject(a) for a in anomalies if a.anomaly.end_unix_s is None and a.id not in dismissed),
        ]
        statuses: List[TicketStatus] = []
        errors: List[str] = []
        for item in channels:
            try:
                config = channel_config(item, self.config.public_url, self.environ)
            except ChannelConfigError as error:
                errors.append(f"{item.get('to')}: {error}")
                continue
            try:
                statuses.extend(sync_subjects(group, subjects, config, self.tickets, svgs=svgs))
            except Exception:  # sync_subjects records tracker failures itself; this is a bug: log, go on
                log.exception("ticket sync of group %r on %s failed", group, config.channel_key)
                errors.append(f"{config.channel_key}: internal error; see the server log")
        failed = [s for s in statuses if s.action == FAILED]
        if failed:
            log.warning("group %r: %d ticket(s) not delivered; retried on the next run", group, len(failed))
        return statuses, errors

    def _dismissed(self, group: str) -> Set[str]:
        """Ids of anomalies whose latest vote says not useful: they are not posted."""
        latest: Dict[str, bool] = {}
        for vote in self.store.votes(group):
            latest[vote.anomaly_id] = vote.useful
        return {anomaly_id for anomaly_id, useful in latest.items() if not useful}


def models_for(storage: Storage) -> PipelineModels:
    """The kept detector fits of ``storage`` in this process (shared by its pipelines)."""
    return per_storage(storage, PipelineModels, PipelineModels)


def _carried(stored: Sequence[StoredAnomaly], found: Sequence[Anomaly], score_from: int) -> List[Anomaly]:
    """The anomalies of a run that scored from ``score_from``: those stored that began before it,
    each continued by a new one of its frame and metric that starts at the rescored range's edge
    (its start, detection and peak kept when they were the larger), and the other new ones."""
    edge = score_from + 2 * SERIES_RESOLUTION_S
    out: List[Anomaly] = []
    continued: Set[int] = set()
    for item in stored:
        old = item.anomaly
        if old.start_unix_s >= score_from:
            continue  # rescored: found again or gone
        for index, new in enumerate(found):
            open_at_edge = old.end_unix_s is None or old.end_unix_s >= score_from - 2 * SERIES_RESOLUTION_S
            if index in continued or (new.frame, new.metric) != (old.frame, old.metric):
                continue
            if open_at_edge and new.start_unix_s <= edge:
                continued.add(index)
                peak = old if old.score >= new.score else new
                old = replace(
                    new,
                    start_unix_s=old.start_unix_s,
                    detected_unix_s=old.detected_unix_s,
                    score=peak.score,
                    baseline=peak.baseline,
                    observed=peak.observed,
                    related_frames=sorted({*old.related_frames, *new.related_frames}),
                )
                old.reason = reason(old)
                break
        out.append(old)
    out.extend(new for index, new in enumerate(found) if index not in continued)
    return sorted(out, key=lambda a: (a.start_unix_s, -a.score, a.frame))


def evidence_svgs(findings: Sequence[Finding], profile: Profile) -> Dict[str, str]:
    """Fingerprint -> the SVG flame graph of the finding's evidence, for trackers that take one."""
    out: Dict[str, str] = {}
    for finding in findings:
        try:
            out[finding.fingerprint] = evidence_svg(finding, profile)
        except ValueError as error:  # no usable evidence: the ticket goes without a picture
            log.info("no evidence SVG for %s: %s", finding.fingerprint, error)
    return out


def anomaly_subject(stored: StoredAnomaly) -> TicketSubject:
    """The ticket of an ongoing anomaly: its frame, its reason and where to compare, under a stable fingerprint.

    An anomaly has no cost; its share and baseline are given for a frame's share only.
    """
    anomaly = stored.anomaly
    share = anomaly.observed if anomaly.metric == "inclusive_share" else None
    subject = TicketSubject(
        fingerprint=f"anomaly/{anomaly.metric}/{anomaly.frame}/{stored.id}",
        rule=ANOMALY_RULE,
        title=f"{anomaly.frame} regressed ({anomaly.metric.replace('_', ' ')})",
        summary=anomaly.reason,
        fix=ANOMALY_FIX,
        evidence=(TicketEvidence(entry=FrameRef(anomaly.frame)),),
        share=share,
        expected_share=anomaly.baseline if share is not None else None,
    )
    return replace(subject, data=_webhook_json(subject, anomaly))


def _webhook_json(subject: TicketSubject, anomaly: Anomaly) -> Dict[str, Any]:
    """What the generic webhook sends as an anomaly's ``finding``: a finding's JSON, the anomaly's under ``anomaly``."""
    return {
        "rule": subject.rule,
        "title": subject.title,
        "summary": subject.summary,
        "fix": subject.fix,
        "frames": [{"function": anomaly.frame}],
        "share": subject.share,
        "expected_share": subject.expected_share,
        "cost_usd_per_month": None,
        "co2e_kg_per_month": None,
        "anomaly": anomaly.to_dict(),
        "fingerprint": subject.fingerprint,
    }
