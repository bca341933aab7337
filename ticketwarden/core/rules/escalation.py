"""Escalation — "Eskalation": ESC-1 and ESC-2.

Business-critical issues (severity 1, or a breached response target) are escalated without
anyone asking; a customer can ask for escalation to support management at any time, in the
ticket, with one of the configured phrases or through an escalation-request change.
"""

from __future__ import annotations

from ticketwarden.core.actions import AddComment, AddTags, BaseAction, Escalate
from ticketwarden.core.context import Due, RuleContext
from ticketwarden.core.model import Change, ChangeKind, Severity, Ticket
from ticketwarden.core.rules import has_phrase, render
from ticketwarden.core.rules.response import first_response_timers, update_due
from ticketwarden.hooks import hookimpl

RULE_IDS = (
    "ESC-1",
    "ESC-2",
)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""

SEV1 = "ESC-1:severity1"
FIRST_BREACH = "ESC-1:first_response"
UPDATE_BREACH = "ESC-1:update"


def escalate_severity1(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """ESC-1: a severity-1 ticket is escalated automatically, once, to the on-call target."""
    if ticket.severity != Severity.CRITICAL or ticket.status.is_done or ctx.state.recall(SEV1):
        return []
    esc = ctx.policy.escalation
    reason = "severity 1 is business-critical and escalated automatically"
    return [
        Escalate(
            rule_id="ESC-1",
            reason=reason,
            target=esc.severity1_target,
            occasion="severity1",
            remember={SEV1: True},
        ),
        AddTags(rule_id="ESC-1", reason=reason, tags=frozenset({esc.escalated_tag})),
    ]


def escalate_breaches(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """ESC-1: a breached first-response or update target is escalated automatically."""
    esc = ctx.policy.escalation
    actions: list[BaseAction] = []
    first = first_response_timers(ticket, ctx)
    if first is not None and ctx.now >= first[1] and not ctx.state.recall(FIRST_BREACH):
        actions.append(
            Escalate(
                rule_id="ESC-1",
                reason="first-response target breached",
                target=esc.breach_target,
                occasion="first-response-breach",
                remember={FIRST_BREACH: first[1].isoformat()},
            )
        )
    update = update_due(ticket, ctx)
    if (
        update is not None
        and ctx.now >= update[1]
        and ctx.state.recall(UPDATE_BREACH) != update[0].isoformat()
    ):
        actions.append(
            Escalate(
                rule_id="ESC-1",
                reason="update target breached",
                target=esc.breach_target,
                occasion=f"update-breach:{update[0].isoformat()}",
                remember={UPDATE_BREACH: update[0].isoformat()},
            )
        )
    if actions:
        actions.append(
            AddTags(rule_id="ESC-1", reason="target breached", tags=frozenset({esc.escalated_tag}))
        )
    return actions


def escalate_on_request(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """ESC-2: the customer asks for escalation in the ticket (a phrase in a reply, or an
    escalation-request field/form change) — escalated to support management, acknowledged."""
    esc = ctx.policy.escalation
    if change.kind == ChangeKind.ESCALATION_REQUEST:
        how = "escalation requested through the ticket's escalation field"
    elif change.kind == ChangeKind.CUSTOMER_REPLY and change.comment is not None:
        phrase = has_phrase(change.comment.body, esc.request_phrases)
        if phrase is None:
            return []
        how = f"the customer asked for escalation ({phrase!r})"
    else:
        return []
    occasion = f"request:{change.comment.id if change.comment else change.at.isoformat()}"
    return [
        Escalate(
            rule_id="ESC-2",
            reason=how,
            target=esc.customer_request_target,
            occasion=occasion,
        ),
        AddTags(rule_id="ESC-2", reason=how, tags=frozenset({esc.escalated_tag})),
        AddComment(
            rule_id="ESC-2",
            reason=how,
            body=render(esc.request_acknowledgement, number=ticket.number),
            occasion=occasion,
        ),
    ]


@hookimpl
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """ESC-1 for severity-1 tickets."""
    return escalate_severity1(ticket, ctx)


@hookimpl
def on_ticket_updated(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """ESC-1 when a ticket is raised to severity 1; ESC-2 on the customer's request."""
    actions: list[BaseAction] = []
    if "severity" in change.fields_changed:
        actions += escalate_severity1(ticket, ctx)
    return actions + escalate_on_request(ticket, change, ctx)


@hookimpl
def on_stale(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """ESC-1 for breached targets."""
    return escalate_breaches(ticket, ctx)


@hookimpl
def next_due(ticket: Ticket, ctx: RuleContext) -> list[Due]:
    """ESC-1: when a target will be breached if nobody answers."""
    dues = []
    first = first_response_timers(ticket, ctx)
    if first is not None and not ctx.state.recall(FIRST_BREACH):
        dues.append(Due(at=first[1], rule_id="ESC-1", what="escalate: first response breached"))
    update = update_due(ticket, ctx)
    if update is not None and ctx.state.recall(UPDATE_BREACH) != update[0].isoformat():
        dues.append(Due(at=update[1], rule_id="ESC-1", what="escalate: update target breached"))
    return dues
