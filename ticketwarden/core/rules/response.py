"""Severity levels and response — "Dringlichkeitsstufen": SEV-1, SEV-2, SEV-3, SEV-4, RESP-1,
RESP-2, RESP-3 and HOURS-1.

Each severity maps to a queue priority and a clock (severity 1 around the clock, the others on
the support calendar). A ticket's targets and clocks are the base policy's, overridden by its
support plan and its organization (``RuleContext.level``); after a plan change the clocks keep
the time already elapsed (``RuleContext.due``). First responses and regular updates have
targets per severity, measured on that clock without the time spent waiting on the customer
(HOURS-1, kept by the engine as pauses); a warning is raised before a first-response breach
and the breach itself is marked. Escalating breaches is ESC-1's job
(:mod:`ticketwarden.core.rules.escalation`), which reads the same due times from here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ticketwarden.core.actions import (
    AddComment,
    AddTags,
    BaseAction,
    Remember,
    RemoveTags,
    SetPriority,
    SetSeverity,
)
from ticketwarden.core.context import Due, RuleContext
from ticketwarden.core.model import Change, ChangeKind, Severity, Ticket
from ticketwarden.core.policy import SeverityLevel
from ticketwarden.core.rules import fraction, human_span, human_time, render
from ticketwarden.hooks import hookimpl

RULE_IDS = (
    "SEV-1",
    "SEV-2",
    "SEV-3",
    "SEV-4",
    "RESP-1",
    "RESP-2",
    "RESP-3",
    "HOURS-1",
)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""

WARNED = "RESP-1:warned"
BREACHED = "RESP-1:breached"
UPDATE_OVERDUE = "RESP-2:overdue_since"
SLOW = "RESP-3:slow"


def level_of(ticket: Ticket, ctx: RuleContext) -> SeverityLevel:
    """SEV-1..SEV-4: the targets of the ticket's severity (severity 4's while none is known),
    as the ticket's support plan and organization override them (RESP-1, RESP-2, HOURS-1)."""
    return ctx.level(ticket.severity)


def first_response_timers(ticket: Ticket, ctx: RuleContext) -> tuple[datetime, datetime] | None:
    """RESP-1: see :func:`_first_response_timers`; computed once per evaluation and ticket."""
    return ctx.memo(("RESP-1", id(ticket)), lambda: _first_response_timers(ticket, ctx))


def _first_response_timers(ticket: Ticket, ctx: RuleContext) -> tuple[datetime, datetime] | None:
    """RESP-1: ``(warn_at, due_at)`` of the pending first response, or ``None`` when it is done,
    the ticket is finished, or the clock stands still while waiting on the customer (HOURS-1).

    The target is the severity's, on the severity's clock, shortened for certified requesters
    by ``contacts.certified_response_factor`` (AUTH-3 prioritizes them)."""
    if ctx.state.first_response_at is not None or ticket.status.is_done:
        return None
    severity = ticket.severity
    target = ctx.span(level_of(ticket, ctx).first_response, severity)
    if ctx.policy.contacts.certified_tag in ticket.tags:
        target = fraction(target, ctx.policy.contacts.certified_response_factor)
    due = ctx.due(ticket.created_at, target, severity)
    warn = ctx.due(ticket.created_at, fraction(target, ctx.policy.response.warn_at), severity)
    if due is None or warn is None:
        return None
    return warn, due


def update_interval(ticket: Ticket, ctx: RuleContext) -> timedelta:
    """RESP-2 (and RESP-3): the update interval on the severity's clock, stretched while the
    customer's contact is unavailable and the policy slows updates."""
    interval = ctx.span(level_of(ticket, ctx).update_interval, ticket.severity)
    if ctx.state.recall(SLOW):
        interval = fraction(interval, ctx.policy.response.slow_update_factor)
    return interval


def update_due(ticket: Ticket, ctx: RuleContext) -> tuple[datetime, datetime] | None:
    """RESP-2: see :func:`_update_due`; computed once per evaluation and ticket."""
    return ctx.memo(("RESP-2", id(ticket)), lambda: _update_due(ticket, ctx))


def _update_due(ticket: Ticket, ctx: RuleContext) -> tuple[datetime, datetime] | None:
    """RESP-2: ``(last_update, next_update_due)`` once the first response is given, until a root
    cause or workaround is found or another arrangement is agreed (the stop tags), or ``None``."""
    last = ctx.state.last_agent_reply_at
    if (
        last is None
        or ticket.status.is_done
        or ticket.tags & set(ctx.policy.response.updates_stop_tags)
    ):
        return None
    due = ctx.due(last, update_interval(ticket, ctx), ticket.severity)
    return None if due is None else (last, due)


def change_severity(
    ctx: RuleContext, severity: Severity, *, rule_id: str, reason: str, occasion: str = ""
) -> list[BaseAction]:
    """A severity change asked by a rule, with the queue priority of the new severity (SEV-n):
    actions ticketwarden takes do not come back as events, so the priority must travel along."""
    level = ctx.policy.response.severities[severity]
    return [
        SetSeverity(rule_id=rule_id, reason=reason, severity=severity, occasion=occasion),
        SetPriority(
            rule_id=f"SEV-{int(severity)}",
            reason=f"severity {int(severity)} ({level.name}): {level.priority} priority",
            priority=level.priority,
            occasion=occasion,
        ),
    ]


def set_priority_from_severity(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SEV-1, SEV-2, SEV-3, SEV-4: the severity's definition decides the queue priority
    (urgent, high, normal, low by default); severity 1 is worked around the clock, the others
    in business hours."""
    if ticket.severity is None:
        return []
    level = level_of(ticket, ctx)
    return [
        SetPriority(
            rule_id=f"SEV-{int(ticket.severity)}",
            reason=f"severity {int(ticket.severity)} ({level.name}): {level.priority} priority, "
            f"targets on the {level.clock} clock",
            priority=level.priority,
        )
    ]


def warn_or_breach_first_response(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """RESP-1: a warning at 80 % of the first-response target, the breach at 100 % (marked with
    a tag and an internal note; ESC-1 escalates it). Each fires once per ticket."""
    timers = first_response_timers(ticket, ctx)
    if timers is None:
        return []
    warn, due = timers
    response = ctx.policy.response
    level = level_of(ticket, ctx)
    if ctx.now >= due and not ctx.state.recall(BREACHED):
        reason = f"first-response target of {human_span(level.first_response)} breached"
        return [
            AddTags(
                rule_id="RESP-1",
                reason=reason,
                tags=frozenset({response.breach_tag}),
                occasion="first-response",
                remember={BREACHED: due.isoformat(), WARNED: warn.isoformat()},
            ),
            AddComment(
                rule_id="RESP-1",
                reason=reason,
                public=False,
                body=f"First-response target breached: {human_span(level.first_response)} for "
                f"severity {int(ticket.severity or Severity.LOW)} was due at "
                f"{human_time(due, ctx.policy.timezone)}. "
                "The ticket has been escalated.",
                occasion="first-response-breach",
            ),
        ]
    if ctx.now >= warn and not ctx.state.recall(WARNED) and not ctx.state.recall(BREACHED):
        reason = f"{int(response.warn_at * 100)} % of the first-response target has elapsed"
        return [
            AddTags(
                rule_id="RESP-1",
                reason=reason,
                tags=frozenset({response.warning_tag}),
                occasion="first-response",
                remember={WARNED: warn.isoformat()},
            ),
            AddComment(
                rule_id="RESP-1",
                reason=reason,
                public=False,
                body=f"First response due at {human_time(due, ctx.policy.timezone)} "
                f"({human_span(level.first_response)} target for severity "
                f"{int(ticket.severity or Severity.LOW)}).",
                occasion="first-response-warning",
            ),
        ]
    return []


def flag_overdue_update(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """RESP-2: the agents are told when a regular update to the customer is overdue."""
    timers = update_due(ticket, ctx)
    if timers is None:
        return []
    last, due = timers
    if ctx.now < due or ctx.state.recall(UPDATE_OVERDUE) == last.isoformat():
        return []
    level = level_of(ticket, ctx)
    reason = f"no update to the customer within {human_span(level.update_interval)}"
    return [
        AddTags(
            rule_id="RESP-2",
            reason=reason,
            tags=frozenset({ctx.policy.response.update_overdue_tag}),
            occasion=f"update:{last.isoformat()}",
            remember={UPDATE_OVERDUE: last.isoformat()},
        ),
        AddComment(
            rule_id="RESP-2",
            reason=reason,
            public=False,
            body="An update to the customer was due at "
            f"{human_time(due, ctx.policy.timezone)} (every "
            f"{human_span(level.update_interval)} for severity "
            f"{int(ticket.severity or Severity.LOW)}).",
            occasion=f"update:{last.isoformat()}",
        ),
    ]


def clear_response_flags(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """RESP-1, RESP-2: an agent's public reply answers the warning and the overdue update."""
    if change.kind != ChangeKind.AGENT_REPLY or change.comment is None or not change.comment.public:
        return []
    response = ctx.policy.response
    return [
        RemoveTags(
            rule_id="RESP-2",
            reason="an agent updated the customer",
            tags=frozenset({response.warning_tag, response.update_overdue_tag}),
        )
    ]


def adapt_to_unavailable_contact(
    ticket: Ticket, change: Change, ctx: RuleContext
) -> list[BaseAction]:
    """RESP-3: when an agent marks the customer's authorized contact as unavailable to carry out
    requested actions (a tag), the severity is lowered and/or updates become less frequent, as
    configured; removing the tag restores the normal update interval."""
    response = ctx.policy.response
    tag = response.contact_unavailable_tag
    if tag in change.tags_removed and ctx.state.recall(SLOW):
        return [Remember(rule_id="RESP-3", reason="contact available again", remember={SLOW: None})]
    if tag not in change.tags_added or ticket.status.is_done:
        return []
    mode = response.contact_unavailable_action
    reason = "the customer's authorized contact is unavailable to carry out requested actions"
    actions: list[BaseAction] = []
    told = []
    if mode in ("lower_severity", "both") and ticket.severity is not None:
        lower = Severity(min(int(ticket.severity) + 1, int(Severity.LOW)))
        if lower != ticket.severity:
            actions += change_severity(ctx, lower, rule_id="RESP-3", reason=reason)
            told.append(f"its severity was lowered to {int(lower)}")
    if mode in ("slow_updates", "both"):
        actions.append(Remember(rule_id="RESP-3", reason=reason, remember={SLOW: True}))
        told.append(f"updates now come every {response.slow_update_factor:g}× the usual interval")
    if told:
        actions.append(
            AddComment(
                rule_id="RESP-3",
                reason=reason,
                body=render(
                    "Your authorized contact is unavailable to carry out the requested actions, "
                    "so {changes}. Let us know when the contact is available again.",
                    changes=" and ".join(told),
                ),
                occasion=f"unavailable:{change.at.isoformat()}",
            )
        )
    return actions


@hookimpl
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SEV-1..SEV-4 on a new ticket."""
    return set_priority_from_severity(ticket, ctx)


@hookimpl
def on_ticket_updated(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """SEV-1..SEV-4 when the severity changes; RESP-1/RESP-2 flags cleared; RESP-3."""
    actions: list[BaseAction] = []
    if "severity" in change.fields_changed:
        actions += set_priority_from_severity(ticket, ctx)
    actions += clear_response_flags(ticket, change, ctx)
    actions += adapt_to_unavailable_contact(ticket, change, ctx)
    return actions


@hookimpl
def on_stale(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """RESP-1 warnings and breaches; RESP-2 overdue updates."""
    return warn_or_breach_first_response(ticket, ctx) + flag_overdue_update(ticket, ctx)


@hookimpl
def next_due(ticket: Ticket, ctx: RuleContext) -> list[Due]:
    """RESP-1 and RESP-2 timers (HOURS-1: none while waiting on the customer)."""
    dues: list[Due] = []
    timers = first_response_timers(ticket, ctx)
    if timers is not None:
        warn, due = timers
        if not ctx.state.recall(WARNED) and not ctx.state.recall(BREACHED):
            dues.append(Due(at=warn, rule_id="RESP-1", what="warn: first response due soon"))
        if not ctx.state.recall(BREACHED):
            dues.append(Due(at=due, rule_id="RESP-1", what="first-response target breached"))
    update = update_due(ticket, ctx)
    if update is not None and ctx.state.recall(UPDATE_OVERDUE) != update[0].isoformat():
        dues.append(Due(at=update[1], rule_id="RESP-2", what="update to the customer overdue"))
    return dues
