"""Severity 1 continuous effort — "Fortlaufende Maßnahmen": SEV1-1.

Severity-1 tickets are worked around the clock, which only works when the customer has a named
authorized contact reachable around the clock. If none is named, ticketwarden asks for one; if
a request to the customer goes unanswered for 2 hours (on the 24×7 clock), work is suspended
and the severity lowered, with a comment saying why.
"""

from __future__ import annotations

from datetime import datetime

from ticketwarden.core.actions import AddComment, BaseAction, Remember, SetStatus
from ticketwarden.core.context import Due, RuleContext
from ticketwarden.core.model import Change, Severity, Status, Ticket
from ticketwarden.core.rules import human_span, render
from ticketwarden.core.rules.response import change_severity
from ticketwarden.hooks import hookimpl

RULE_IDS = ("SEV1-1",)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""

REQUESTED = "SEV1-1:contact_requested_at"
LOWERED = "SEV1-1:lowered"


def _at(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def contact_named(ticket: Ticket, ctx: RuleContext) -> bool:
    """Whether the ticket names a 24×7 contact, or the roster marks one as available 24×7."""
    if ticket.field(ctx.policy.continuity.contact_field):
        return True
    org = ticket.organization.id if ticket.organization else None
    return any(c.available_24x7 for c in ctx.roster.contacts_of(org))


def pending_request(ticket: Ticket, ctx: RuleContext) -> datetime | None:
    """When the open request to the customer was made: ticketwarden's request for a 24×7 contact
    or support putting the ticket to wait on the customer — unless the customer answered since."""
    requests = [t for t in (_at(ctx.state.recall(REQUESTED)), ctx.state.waiting_since) if t]
    if not requests:
        return None
    request = max(requests)
    answered = ctx.state.last_customer_reply_at
    return None if answered is not None and answered >= request else request


def _applies(ticket: Ticket, ctx: RuleContext) -> bool:
    return (
        ticket.severity == Severity.CRITICAL
        and not ticket.status.is_done
        and not ctx.state.recall(LOWERED)
    )


def request_24x7_contact(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SEV1-1: a severity-1 ticket without a named around-the-clock contact asks for one, once."""
    if not _applies(ticket, ctx) or contact_named(ticket, ctx) or ctx.state.recall(REQUESTED):
        return []
    continuity = ctx.policy.continuity
    return [
        AddComment(
            rule_id="SEV1-1",
            reason="severity 1 needs an authorized contact available around the clock",
            body=render(
                continuity.request_message,
                timeout=human_span(continuity.contact_timeout),
                number=ticket.number,
            ),
            occasion="contact-request",
            remember={REQUESTED: ctx.now.isoformat()},
        )
    ]


def contact_timeout(ticket: Ticket, ctx: RuleContext) -> datetime | None:
    """SEV1-1: when an unanswered request times out (24×7 clock)."""
    if not _applies(ticket, ctx):
        return None
    request = pending_request(ticket, ctx)
    if request is None:
        return None
    return request + ctx.policy.continuity.contact_timeout.to_timedelta(
        ctx.policy.clock("24x7").day_length
    )


def suspend_and_lower(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SEV1-1: no contact answered within the timeout — suspend work (wait on the customer) and
    lower the severity (to 2 by default) with a comment saying why."""
    due = contact_timeout(ticket, ctx)
    if due is None or ctx.now < due:
        return []
    continuity = ctx.policy.continuity
    reason = (
        f"no authorized contact answered within {human_span(continuity.contact_timeout)} "
        "of a request"
    )
    occasion = f"timeout:{due.isoformat()}"
    return [
        Remember(rule_id="SEV1-1", reason=reason, remember={LOWERED: True}, occasion=occasion),
        *change_severity(
            ctx, continuity.lower_to, rule_id="SEV1-1", reason=reason, occasion=occasion
        ),
        AddComment(
            rule_id="SEV1-1",
            reason=reason,
            body=render(
                continuity.lowered_message,
                timeout=human_span(continuity.contact_timeout),
                severity=int(continuity.lower_to),
                number=ticket.number,
            ),
            occasion=occasion,
        ),
        SetStatus(
            rule_id="SEV1-1",
            reason=f"{reason}: work suspended",
            status=Status.WAITING_ON_CUSTOMER,
            occasion=occasion,
        ),
    ]


@hookimpl
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SEV1-1 on a new severity-1 ticket."""
    return request_24x7_contact(ticket, ctx)


@hookimpl
def on_ticket_updated(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """SEV1-1 when a ticket is raised to severity 1."""
    if "severity" not in change.fields_changed:
        return []
    return request_24x7_contact(ticket, ctx)


@hookimpl
def on_stale(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SEV1-1 contact timeouts."""
    return suspend_and_lower(ticket, ctx)


@hookimpl
def next_due(ticket: Ticket, ctx: RuleContext) -> Due | None:
    """SEV1-1: when the open request to the customer times out."""
    due = contact_timeout(ticket, ctx)
    return None if due is None else Due(at=due, rule_id="SEV1-1", what="lower severity: no contact")
