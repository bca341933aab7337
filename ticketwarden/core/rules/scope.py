"""Exclusions — "Zusätzliche Bedingungen" and scope: SCOPE-1 and SCOPE-2.

Implementation, training, consulting, development and hosting are not technical support and
are routed elsewhere; problems with excluded causes (misuse, modification, unapproved
environments, …) are resolved with a recorded reason the customer is told.
"""

from __future__ import annotations

from ticketwarden.core.actions import AddComment, AddTags, BaseAction, Escalate, Record, Resolve
from ticketwarden.core.context import RuleContext
from ticketwarden.core.model import Ticket
from ticketwarden.core.policy import OutOfScopeCategory
from ticketwarden.core.rules import has_phrase, render
from ticketwarden.hooks import hookimpl

RULE_IDS = (
    "SCOPE-1",
    "SCOPE-2",
)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""


def out_of_scope_category(ticket: Ticket, ctx: RuleContext) -> OutOfScopeCategory | None:
    """SCOPE-1: the category a request falls in — named by the category field, or found by its
    keywords in the subject or description."""
    scope = ctx.policy.scope
    named = ticket.field(scope.category_field).casefold()
    for category in scope.categories:
        if named and named == category.name.casefold():
            return category
    text = f"{ticket.subject}\n{ticket.description}"
    for category in scope.categories:
        if has_phrase(text, category.keywords):
            return category
    return None


def route_out_of_scope(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SCOPE-1: requests for implementation, training, consulting, development or hosting are
    routed to consulting or education and resolved with reason (f) — or only flagged."""
    category = out_of_scope_category(ticket, ctx)
    if category is None:
        return []
    scope = ctx.policy.scope
    reason = f"{category.name} is not technical support"
    tag = AddTags(rule_id="SCOPE-1", reason=reason, tags=frozenset({scope.out_of_scope_tag}))
    if scope.action == "flag":
        return [
            tag,
            AddComment(
                rule_id="SCOPE-1",
                reason=reason,
                public=False,
                body=f"This looks like a {category.name} request, which is not technical "
                f"support; consider routing it to {category.route_to}.",
            ),
        ]
    return [
        tag,
        Escalate(rule_id="SCOPE-1", reason=reason, target=category.route_to),
        AddComment(
            rule_id="SCOPE-1",
            reason=reason,
            body=render(
                scope.routed_message,
                category=category.name,
                route_to=category.route_to,
                number=ticket.number,
            ),
        ),
        Resolve(rule_id="SCOPE-1", reason=reason, resolution="out_of_scope"),
    ]


def explain_unsupported_cause(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SCOPE-2: a ticket resolved because of an excluded cause (added features or devices,
    accident, misuse, modification, inadequate or unapproved environment, no test environment
    before a major upgrade, off-label use, a fixing release not applied) tells the customer why
    and records the cause in the audit trail."""
    reason = ctx.policy.closure.reason(ticket.resolution_reason or "")
    if reason is None or not reason.unsupported_cause:
        return []
    occasion = f"resolved:{ticket.updated_at.isoformat()}"
    why = f"not supported: {reason.label}"
    return [
        AddComment(rule_id="SCOPE-2", reason=why, body=reason.explanation, occasion=occasion),
        Record(
            rule_id="SCOPE-2",
            reason=why,
            message=f"{ticket.number} resolved as unsupported ({reason.code}) by "
            f"{ticket.assignee or 'an agent'}",
            occasion=occasion,
        ),
    ]


@hookimpl
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SCOPE-1 on a new ticket."""
    return route_out_of_scope(ticket, ctx)


@hookimpl
def on_resolve(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """SCOPE-2 when a ticket is resolved with an excluded cause."""
    return explain_unsupported_cause(ticket, ctx)
