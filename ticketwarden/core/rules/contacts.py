"""Authorized contacts — "Autorisierte Kontaktpersonen": AUTH-1 … AUTH-3.

Only the contacts an organization designated may open tickets; the roster of those contacts is
data (read from the helpdesk or a roster file) and every change to it is audited; requesters
holding a valid Certified Administrator certification are served first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from ticketwarden.core.actions import (
    AddComment,
    AddTags,
    BaseAction,
    Record,
    RemoveTags,
    SetPriority,
    SetStatus,
)
from ticketwarden.core.context import RuleContext
from ticketwarden.core.model import (
    AuthorizedContact,
    AuthorRole,
    Change,
    ChangeKind,
    Priority,
    RosterChange,
    Status,
    Ticket,
)
from ticketwarden.core.rules import render
from ticketwarden.core.rules.response import level_of
from ticketwarden.hooks import hookimpl

RULE_IDS = (
    "AUTH-1",
    "AUTH-2",
    "AUTH-3",
)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""

REJECTED = "AUTH-1:rejected"


def _org_id(ticket: Ticket) -> str | None:
    return ticket.organization.id if ticket.organization else None


def local_today(ctx: RuleContext) -> date:
    """Today in the support organisation's home time zone (expiry dates are judged there)."""
    return ctx.now.astimezone(ZoneInfo(ctx.policy.timezone)).date()


def check_requester_authorized(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """AUTH-1: a ticket from someone who is not an authorized contact of the organization is
    flagged and answered with an explanation — rejected (held until an authorized contact
    confirms it) or flag-only, as configured — and never silently dropped."""
    contacts = ctx.policy.contacts
    org = _org_id(ticket)
    if ctx.roster.knows(org):
        if ctx.roster.lookup(org, ticket.requester.email) is not None:
            return []
        mode: str = contacts.unauthorized
        why = f"{ticket.requester.email or 'the requester'} is not an authorized contact of {org}"
    else:
        mode = contacts.unknown_organization
        if mode == "allow":
            return []
        why = f"no authorized-contact roster for organization {org or '(none)'}"
    tag = AddTags(rule_id="AUTH-1", reason=why, tags=frozenset({contacts.unauthorized_tag}))
    if mode == "flag":
        return [
            tag,
            AddComment(
                rule_id="AUTH-1",
                reason=why,
                public=False,
                body=render(
                    contacts.flag_note,
                    email=ticket.requester.email or "(unknown)",
                    organization=(ticket.organization.name or org) if ticket.organization else "-",
                ),
            ),
        ]
    return [
        tag,
        AddComment(rule_id="AUTH-1", reason=why, body=render(contacts.reject_message)),
        SetStatus(
            rule_id="AUTH-1",
            reason=f"{why}: waiting for an authorized contact",
            status=Status.WAITING_ON_CUSTOMER,
            remember={REJECTED: True},
        ),
    ]


def accept_confirmation(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """AUTH-1: a rejected ticket is taken up once an authorized contact writes in it."""
    comment = change.comment
    if (
        not ctx.state.recall(REJECTED)
        or change.kind != ChangeKind.CUSTOMER_REPLY
        or comment is None
        or comment.author_role != AuthorRole.CUSTOMER
        or ctx.roster.lookup(_org_id(ticket), comment.author) is None
    ):
        return []
    reason = f"authorized contact {comment.author} confirmed the request"
    return [
        RemoveTags(
            rule_id="AUTH-1",
            reason=reason,
            tags=frozenset({ctx.policy.contacts.unauthorized_tag}),
        ),
        SetStatus(rule_id="AUTH-1", reason=reason, status=Status.OPEN, remember={REJECTED: None}),
    ]


def certification_valid(contact: AuthorizedContact | None, today: date) -> bool:
    """AUTH-3: a Certified Administrator certification counts until (and on) its expiry date."""
    return (
        contact is not None
        and contact.certified_until is not None
        and today <= contact.certified_until
    )


def prioritize_certified_admin(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """AUTH-3: a ticket opened by an authorized contact with a valid certification is tagged and
    raised one priority level (if configured); an expired certification gives no priority."""
    contacts = ctx.policy.contacts
    contact = ctx.roster.lookup(_org_id(ticket), ticket.requester.email)
    if not certification_valid(contact, local_today(ctx)):
        return []
    assert contact is not None and contact.certified_until is not None
    reason = f"certified administrator (valid until {contact.certified_until.isoformat()})"
    actions: list[BaseAction] = [
        AddTags(rule_id="AUTH-3", reason=reason, tags=frozenset({contacts.certified_tag}))
    ]
    if contacts.certified_priority_boost and ticket.severity is not None:
        base = level_of(ticket, ctx).priority
        boosted = list(Priority)[max(base.rank - 1, 0)]
        actions.append(SetPriority(rule_id="AUTH-3", reason=reason, priority=boosted))
    return actions


def audit_roster_changes(changes: Sequence[RosterChange]) -> list[BaseAction]:
    """AUTH-2: every change to the authorized-contact roster is written to the audit trail."""
    actions: list[BaseAction] = []
    for change in changes:
        detail = ""
        if change.before is not None and change.after is not None:
            diffs = [
                f"{name}: {getattr(change.before, name)!s} → {getattr(change.after, name)!s}"
                for name in AuthorizedContact.model_fields
                if getattr(change.before, name) != getattr(change.after, name)
            ]
            detail = f" ({'; '.join(diffs)})"
        actions.append(
            Record(
                rule_id="AUTH-2",
                reason="authorized-contact roster changed",
                message=f"{change.organization}: {change.email} {change.change}{detail}",
                occasion=f"{change.organization}:{change.email}:{change.change}:{detail}",
            )
        )
    return actions


@hookimpl
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """AUTH-1 and AUTH-3 on a new ticket."""
    return check_requester_authorized(ticket, ctx) + prioritize_certified_admin(ticket, ctx)


@hookimpl
def on_ticket_updated(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """AUTH-1 confirmations; AUTH-3 again when the severity (and so the priority) changes."""
    actions = accept_confirmation(ticket, change, ctx)
    if "severity" in change.fields_changed:
        actions += prioritize_certified_admin(ticket, ctx)
    return actions


@hookimpl
def on_roster_changed(changes: Sequence[RosterChange]) -> list[BaseAction]:
    """AUTH-2."""
    return audit_roster_changes(changes)
