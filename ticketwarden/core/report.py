"""The policy report: response-target attainment and policy activity over a period.

Pure: :func:`build_report` turns stored rows — the audit trail and the ticket policy states —
plus the policy and an injected ``now`` into a :class:`Report`. The store queries and the
renderings (terminal table, CSV, JSON, HTML) live at the edges, in :mod:`ticketwarden.reporting`.

Where each number comes from:

- **Response targets (RESP-1, RESP-2)** are measured, not counted from flags: a flag is raised
  only when a sync runs while a target is overdue, so an answer that came late between two runs
  would never show up as a breach. The first-response target is recomputed from the ticket's
  creation time (kept by the sync job in the state memory), its severity's target and clock,
  the certified-requester factor (AUTH-3) and the pauses spent waiting on the customer
  (HOURS-1), exactly as the RESP-1 rule computes it, and compared with the first public agent
  reply. Each update interval runs from one public agent reply to the next.
- **Warnings, breaches, overdue updates, reminders, auto-resolves, final closes, reopens,
  escalations, unauthorized requesters and unsupported versions** are counted from the audit
  rows the rules left in the period (a failed action counts for nothing), plus the reopen the
  state remembers when the helpdesk itself had already reopened the ticket (then CLOSE-4 had
  nothing to send and left no audit row).

Known limits, said in :attr:`Report.notes` when they matter: severities, tags and the policy
are today's, not those in force when a target ran; a state stored by a ticketwarden older
than this report has no creation time or reply history and is left out of the attainment
until its ticket is synced again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from ticketwarden.core.context import RuleContext, TicketState
from ticketwarden.core.model import AwareDatetime, Severity, Status
from ticketwarden.core.policy import Policy, SeverityLevel

__all__ = [
    "ALL",
    "ActivityRow",
    "Attainment",
    "AuditRecord",
    "DayCount",
    "Report",
    "TargetRow",
    "TicketRow",
    "build_report",
    "classify",
    "default_period",
]

ALL = "all"
"""The desk (or severity) name of a row that sums the others."""

CREATED_AT = "_sync:created_at"
AGENT_UPDATES = "_sync:agent_updates"
SEEN_FIELDS = "_sync:fields"
REOPENED = "CLOSE-4:reopened"
SLOW = "RESP-3:slow"
# (the memory keys written by core.sync and the rules; repeated here so that this module
# imports nothing that does I/O)

DEFAULT_PERIOD = timedelta(days=30)


class AuditRecord(Protocol):
    """What the report reads of an audit row (:class:`ticketwarden.core.store.AuditRow`)."""

    @property
    def at(self) -> datetime: ...
    @property
    def desk(self) -> str: ...
    @property
    def ticket_id(self) -> str: ...
    @property
    def rule_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def detail(self) -> str: ...


class TicketRow(BaseModel):
    """One ticket's stored policy state, as the store lists it."""

    model_config = ConfigDict(frozen=True)

    desk: str
    ticket_id: str
    state: TicketState


class Attainment(BaseModel):
    """How many targets were met, missed, or are still running; ``rate`` is met / decided."""

    model_config = ConfigDict(frozen=True)

    met: int = 0
    missed: int = 0
    pending: int = 0
    rate: float | None = Field(None, description="met / (met + missed); None when none decided")

    @classmethod
    def of(cls, met: int, missed: int, pending: int) -> Attainment:
        """An attainment with its rate computed."""
        decided = met + missed
        return cls(met=met, missed=missed, pending=pending, rate=met / decided if decided else None)

    def __add__(self, other: Attainment) -> Attainment:
        return Attainment.of(
            self.met + other.met, self.missed + other.missed, self.pending + other.pending
        )


class TargetRow(BaseModel):
    """Response targets of one desk and severity (``all`` for sums over desks or severities)."""

    model_config = ConfigDict(frozen=True)

    desk: str
    severity: str = Field(description="'1'..'4', 'unset', or 'all'")
    tickets: int = Field(description="tickets created in the period")
    first_response: Attainment
    update_interval: Attainment
    warnings: int = Field(description="RESP-1 first-response warnings raised in the period")
    breaches: int = Field(description="RESP-1 first-response breaches flagged in the period")
    updates_overdue: int = Field(description="RESP-2 overdue updates flagged in the period")


class ActivityRow(BaseModel):
    """What the policy did on one desk (``all``: every desk) in the period."""

    model_config = ConfigDict(frozen=True)

    desk: str
    tickets_created: int
    resolved: int = Field(description="tickets whose last resolution falls in the period")
    reopened: int = Field(description="tickets reopened by a customer's clarification (CLOSE-4)")
    reopen_rate: float | None = Field(description="reopened / (resolved or reopened)")
    reminders: int = Field(description="CLOSE-3 reminders sent")
    auto_resolves: int = Field(description="CLOSE-3 resolutions for silence")
    final_closes: int = Field(description="CLOSE-5 closures for good")
    escalations_automatic: int = Field(description="ESC-1 escalations")
    escalations_requested: int = Field(description="ESC-2 escalations at the customer's request")
    unauthorized: int = Field(description="tickets flagged: requester not authorized (AUTH-1)")
    unauthorized_rate: float | None = Field(
        description="share of the tickets created in the period flagged by AUTH-1"
    )
    unsupported_version: int = Field(description="tickets flagged on an unsupported version")


class DayCount(BaseModel):
    """Policy events of one day (in the policy's time zone), for the charts."""

    model_config = ConfigDict(frozen=True)

    day: date
    warnings: int = 0
    breaches: int = 0
    updates_overdue: int = 0
    reminders: int = 0
    auto_resolves: int = 0
    escalations: int = 0


class Report(BaseModel):
    """The whole report: what ``ticketwarden report`` prints, writes as JSON, CSV or HTML."""

    model_config = ConfigDict(frozen=True)

    since: AwareDatetime = Field(description="start of the period, inclusive")
    until: AwareDatetime = Field(description="end of the period, exclusive")
    now: AwareDatetime = Field(description="the moment the report was computed as of")
    policy: str
    timezone: str
    targets: tuple[TargetRow, ...]
    activity: tuple[ActivityRow, ...]
    unsupported_versions: dict[str, int] = Field(
        description="tickets flagged on an unsupported version (VER-1), by reported version"
    )
    daily: tuple[DayCount, ...]
    notes: tuple[str, ...] = ()


def default_period(now: datetime, days: int = 30) -> tuple[datetime, datetime]:
    """The period a report covers when none is given: the ``days`` before ``now``."""
    return now - timedelta(days=days), now


# --- Audit events ---------------------------------------------------------------------------------

EVENTS = (
    "warning",
    "breach",
    "update_overdue",
    "reminder",
    "auto_resolve",
    "final_close",
    "reopen",
    "escalation_automatic",
    "escalation_requested",
    "unauthorized",
    "unsupported_version",
)
"""The kinds of policy event the report counts from the audit trail."""


def _detail_values(detail: str, name: str) -> set[str]:
    """The whitespace-separated values after ``name=`` in an action's one-line description
    (``add_tags tags=a b`` → {a, b} for ``tags``)."""
    _, found, rest = detail.partition(f"{name}=")
    if not found:
        return set()
    return {word for word in rest.split() if "=" not in word}


def classify(row: AuditRecord, policy: Policy) -> str | None:
    """Which policy event an audit row records (one of :data:`EVENTS`), or ``None``.

    Tags name warnings and breaches (the policy's tag names); a CLOSE-3 comment is a reminder
    unless it announces the auto-resolve, which :func:`build_report` settles with the CLOSE-3
    resolve of the same batch. Failed actions record nothing that happened."""
    if row.outcome == "failed":
        return None
    rule, action = row.rule_id, row.action
    if action == "add_tags":
        tags = _detail_values(row.detail, "tags")
        if rule == "RESP-1":
            if policy.response.breach_tag in tags:
                return "breach"
            if policy.response.warning_tag in tags:
                return "warning"
            return None
        return {
            "RESP-2": "update_overdue",
            "AUTH-1": "unauthorized",
            "VER-1": "unsupported_version",
        }.get(rule)
    if rule == "CLOSE-3":
        return {"comment": "reminder", "resolve": "auto_resolve"}.get(action)
    if rule == "CLOSE-5" and action == "close":
        return "final_close"
    if rule == "CLOSE-4" and action == "set_status":
        return "reopen" if Status.OPEN.value in _detail_values(row.detail, "status") else None
    if action == "escalate":
        return {"ESC-1": "escalation_automatic", "ESC-2": "escalation_requested"}.get(rule)
    return None


@dataclass(frozen=True)
class _Event:
    kind: str
    at: datetime
    desk: str
    ticket_id: str


def _events(rows: Iterable[AuditRecord], policy: Policy) -> list[_Event]:
    events: list[_Event] = []
    resolved_batches: set[tuple[str, str, datetime]] = set()
    for row in rows:
        kind = classify(row, policy)
        if kind is None:
            continue
        if kind == "auto_resolve":
            resolved_batches.add((row.desk, row.ticket_id, row.at))
        events.append(_Event(kind, row.at, row.desk, row.ticket_id))
    # the comment that announces an auto-resolve is written in the resolve's batch
    return [
        e
        for e in events
        if not (e.kind == "reminder" and (e.desk, e.ticket_id, e.at) in resolved_batches)
    ]


# --- Targets --------------------------------------------------------------------------------------


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def severity_label(severity: Severity | None) -> str:
    """``'1'``..``'4'``, or ``'unset'`` for a ticket without a severity."""
    return "unset" if severity is None else str(int(severity))


def _tags(state: TicketState) -> set[str]:
    snapshot = state.recall(SEEN_FIELDS)
    tags = snapshot.get("tags") if isinstance(snapshot, dict) else None
    return {str(t) for t in tags} if isinstance(tags, list) else set()


def _version(state: TicketState) -> str:
    snapshot = state.recall(SEEN_FIELDS)
    fields = snapshot.get("fields") if isinstance(snapshot, dict) else None
    value = fields.get("version") if isinstance(fields, dict) else None
    return str(value) if value else "unknown"


def _level(ctx: RuleContext, severity: Severity | None) -> SeverityLevel:
    """The targets of a severity (severity 4's while none is known), as RESP-1 reads them."""
    return ctx.policy.response.severities[severity or Severity.LOW]


def _ended_at(state: TicketState) -> datetime | None:
    """When a finished ticket stopped needing answers (its last resolution, else closing)."""
    if state.status is None or not state.status.is_done:
        return None
    return state.resolved_at or state.closed_at


@dataclass(frozen=True)
class _Window:
    since: datetime
    until: datetime
    now: datetime

    def decided_by(self) -> datetime:
        """Targets that fall due after this are still running."""
        return min(self.now, self.until)

    def __contains__(self, at: datetime) -> bool:
        return self.since <= at < self.until


def _first_response(
    state: TicketState, created: datetime, ctx: RuleContext, window: _Window
) -> str | None:
    """RESP-1 for one ticket: ``met``, ``missed``, ``pending``, or ``None`` when no response
    was owed (finished before its target fell due)."""
    policy = ctx.policy
    severity = state.severity
    level = _level(ctx, severity)
    target = ctx.span(level.first_response, severity)
    if policy.contacts.certified_tag in _tags(state):
        target = timedelta(
            seconds=round(target.total_seconds() * policy.contacts.certified_response_factor)
        )
    due = ctx.due(created, target, severity)
    answered = state.first_response_at
    if answered is not None:
        return "met" if due is None or answered <= due else "missed"
    ended = _ended_at(state)
    if ended is not None:
        return "missed" if due is not None and ended > due else None
    if due is not None and due <= window.decided_by():
        return "missed"
    return "pending"


def _update_intervals(
    state: TicketState, updates: Sequence[datetime], ctx: RuleContext, window: _Window
) -> Counter[str]:
    """RESP-2 for one ticket: each interval from a public agent reply to the next, counted in
    the period its outcome is known in (the next reply, or the moment the target was missed)."""
    policy = ctx.policy
    severity = state.severity
    level = _level(ctx, severity)
    interval = ctx.span(level.update_interval, severity)
    if state.recall(SLOW):
        interval = timedelta(
            seconds=round(interval.total_seconds() * policy.response.slow_update_factor)
        )
    stopped = bool(_tags(state) & set(policy.response.updates_stop_tags))
    ended = _ended_at(state)
    outcome: Counter[str] = Counter()
    for i, start in enumerate(updates):
        due = ctx.due(start, interval, severity)
        following = updates[i + 1] if i + 1 < len(updates) else None
        if following is not None:
            if due is None or following <= due:
                if following in window:
                    outcome["met"] += 1
            elif due in window:
                outcome["missed"] += 1
            continue
        if ended is not None and (due is None or ended <= due):
            continue  # finished before another update was owed
        if stopped and ended is None:
            continue  # root cause or workaround found: no more regular updates (RESP-2)
        if due is None:
            outcome["pending"] += 1  # waiting on the customer: the clock stands still
        elif due <= window.decided_by():
            if due in window:
                outcome["missed"] += 1
        elif start < window.until:
            outcome["pending"] += 1
    return outcome


# --- The report -----------------------------------------------------------------------------------


def build_report(
    states: Iterable[TicketRow],
    audit: Iterable[AuditRecord],
    policy: Policy,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
) -> Report:
    """The report over ``[since, until)`` as of ``now``, from every stored ticket state and
    the audit rows (rows outside the period are ignored, so the caller may pass more)."""
    for name, moment in (("since", since), ("until", until), ("now", now)):
        if moment.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    if since >= until:
        raise ValueError(f"the period is empty: since {since.isoformat()} is not before until")
    window = _Window(since.astimezone(UTC), until.astimezone(UTC), now.astimezone(UTC))
    zone = ZoneInfo(policy.timezone)

    by_ticket: dict[tuple[str, str], TicketState] = {}
    created_in: Counter[tuple[str, str]] = Counter()
    first: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    updates: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    resolved: defaultdict[str, set[str]] = defaultdict(set)
    reopened: defaultdict[str, set[str]] = defaultdict(set)
    created_tickets: defaultdict[str, set[str]] = defaultdict(set)
    desks: set[str] = set()
    unmeasured = 0
    for row in states:
        state = row.state
        desks.add(row.desk)
        by_ticket[(row.desk, row.ticket_id)] = state
        key = (row.desk, severity_label(state.severity))
        if state.resolved_at is not None and state.resolved_at in window:
            resolved[row.desk].add(row.ticket_id)
        reopen = _parse(state.recall(REOPENED))
        if reopen is not None and reopen in window:
            reopened[row.desk].add(row.ticket_id)
        created = _parse(state.recall(CREATED_AT))
        if created is None:
            unmeasured += 1
            continue
        ctx = RuleContext(policy=policy, now=window.now, state=state, desk=row.desk)
        if created in window:
            created_in[key] += 1
            created_tickets[row.desk].add(row.ticket_id)
            verdict = _first_response(state, created, ctx, window)
            if verdict is not None:
                first[key][verdict] += 1
        raw = state.recall(AGENT_UPDATES)
        replies = sorted(
            {t for t in (_parse(v) for v in (raw if isinstance(raw, list) else [])) if t}
        )
        updates[key] += _update_intervals(state, replies, ctx, window)

    events = [e for e in _events(audit, policy) if e.at in window]
    counted: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    flagged: defaultdict[str, defaultdict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    days: defaultdict[date, Counter[str]] = defaultdict(Counter)
    for event in events:
        desks.add(event.desk)
        state_of = by_ticket.get((event.desk, event.ticket_id))
        severity = severity_label(state_of.severity if state_of else None)
        counted[(event.desk, severity)][event.kind] += 1
        flagged[event.desk][event.kind].add(event.ticket_id)
        days[event.at.astimezone(zone).date()][event.kind] += 1
        if event.kind == "reopen":
            reopened[event.desk].add(event.ticket_id)

    targets = _target_rows(desks, created_in, first, updates, counted)
    activity = _activity_rows(desks, created_tickets, resolved, reopened, flagged, counted)
    versions: Counter[str] = Counter()
    for desk, kinds in flagged.items():
        for ticket_id in kinds["unsupported_version"]:
            state_of = by_ticket.get((desk, ticket_id))
            versions[_version(state_of) if state_of else "unknown"] += 1
    first_day = window.since.astimezone(zone).date()
    last_day = (window.until - timedelta(microseconds=1)).astimezone(zone).date()
    daily = tuple(
        DayCount(
            day=first_day + timedelta(days=n),
            warnings=days[first_day + timedelta(days=n)]["warning"],
            breaches=days[first_day + timedelta(days=n)]["breach"],
            updates_overdue=days[first_day + timedelta(days=n)]["update_overdue"],
            reminders=days[first_day + timedelta(days=n)]["reminder"],
            auto_resolves=days[first_day + timedelta(days=n)]["auto_resolve"],
            escalations=days[first_day + timedelta(days=n)]["escalation_automatic"]
            + days[first_day + timedelta(days=n)]["escalation_requested"],
        )
        for n in range((last_day - first_day).days + 1)
    )
    notes: list[str] = []
    if unmeasured:
        notes.append(
            f"{unmeasured} ticket(s) were stored by an older ticketwarden without a creation "
            "time and reply history; their response targets are measured after their next sync"
        )
    return Report(
        since=since,
        until=until,
        now=now,
        policy=policy.name,
        timezone=policy.timezone,
        targets=targets,
        activity=activity,
        unsupported_versions=dict(sorted(versions.items())),
        daily=daily,
        notes=tuple(notes),
    )


def _severity_order(label: str) -> tuple[int, str]:
    return (0, label) if label.isdigit() else (1 if label == "unset" else 2, label)


def _target_rows(
    desks: set[str],
    created_in: Counter[tuple[str, str]],
    first: dict[tuple[str, str], Counter[str]],
    updates: dict[tuple[str, str], Counter[str]],
    counted: dict[tuple[str, str], Counter[str]],
) -> tuple[TargetRow, ...]:
    """One row per desk and severity seen, then per desk over all severities, then per
    severity over all desks, then the grand total."""
    keys = {*created_in, *first, *updates, *counted}
    base: dict[tuple[str, str], TargetRow] = {}
    for desk, severity in keys:
        f = first.get((desk, severity), Counter())
        u = updates.get((desk, severity), Counter())
        c = counted.get((desk, severity), Counter())
        base[(desk, severity)] = TargetRow(
            desk=desk,
            severity=severity,
            tickets=created_in[(desk, severity)],
            first_response=Attainment.of(f["met"], f["missed"], f["pending"]),
            update_interval=Attainment.of(u["met"], u["missed"], u["pending"]),
            warnings=c["warning"],
            breaches=c["breach"],
            updates_overdue=c["update_overdue"],
        )

    def total(desk: str, severity: str, rows: list[TargetRow]) -> TargetRow:
        return TargetRow(
            desk=desk,
            severity=severity,
            tickets=sum(r.tickets for r in rows),
            first_response=sum((r.first_response for r in rows), Attainment.of(0, 0, 0)),
            update_interval=sum((r.update_interval for r in rows), Attainment.of(0, 0, 0)),
            warnings=sum(r.warnings for r in rows),
            breaches=sum(r.breaches for r in rows),
            updates_overdue=sum(r.updates_overdue for r in rows),
        )

    rows: list[TargetRow] = []
    severities = sorted({s for _, s in base}, key=_severity_order)
    for desk in sorted(desks):
        mine = [base[(desk, s)] for s in severities if (desk, s) in base]
        rows += mine
        rows.append(total(desk, ALL, mine))
    for severity in severities:
        rows.append(total(ALL, severity, [r for (_, s), r in base.items() if s == severity]))
    rows.append(total(ALL, ALL, list(base.values())))
    return tuple(rows)


def _activity_rows(
    desks: set[str],
    created: dict[str, set[str]],
    resolved: dict[str, set[str]],
    reopened: dict[str, set[str]],
    flagged: dict[str, defaultdict[str, set[str]]],
    counted: dict[tuple[str, str], Counter[str]],
) -> tuple[ActivityRow, ...]:
    """One row per desk, then the sum over every desk."""
    per_desk: dict[str, Counter[str]] = defaultdict(Counter)
    for (desk, _), kinds in counted.items():
        per_desk[desk].update(kinds)

    def rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    def row(desk: str, names: Sequence[str]) -> ActivityRow:
        def tickets(source: dict[str, set[str]]) -> set[tuple[str, str]]:
            return {(d, t) for d in names for t in source.get(d, set())}

        def flagged_tickets(kind: str) -> set[tuple[str, str]]:
            return {(d, t) for d in names if d in flagged for t in flagged[d][kind]}

        made = tickets(created)
        reopens = tickets(reopened)
        unauthorized = flagged_tickets("unauthorized")
        events: Counter[str] = Counter()
        for name in names:
            events.update(per_desk.get(name, Counter()))
        return ActivityRow(
            desk=desk,
            tickets_created=len(made),
            resolved=len(tickets(resolved)),
            reopened=len(reopens),
            reopen_rate=rate(len(reopens), len(tickets(resolved) | reopens)),
            reminders=events["reminder"],
            auto_resolves=events["auto_resolve"],
            final_closes=events["final_close"],
            escalations_automatic=events["escalation_automatic"],
            escalations_requested=events["escalation_requested"],
            unauthorized=len(unauthorized),
            unauthorized_rate=rate(len(unauthorized & made), len(made)),
            unsupported_version=len(flagged_tickets("unsupported_version")),
        )

    ordered = sorted(desks)
    return (*(row(d, [d]) for d in ordered), row(ALL, ordered))
