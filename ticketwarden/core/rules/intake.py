"""Intake — "Support-Tickets einreichen": INTAKE-1 … INTAKE-6.

What a new ticket must carry, holding incomplete tickets for the customer, citing the ticket
number in every message, agent-triggered actions when the customer cannot carry out the steps,
the access and action log, and environment problems that wait for the customer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Generator, Sequence
from typing import Any

from ticketwarden.core.actions import (
    AddComment,
    AddTags,
    BaseAction,
    Record,
    RemoveTags,
    SetStatus,
)
from ticketwarden.core.context import RuleContext
from ticketwarden.core.model import AuthorRole, Change, ChangeKind, Status, Ticket
from ticketwarden.core.policy import IntakeField, Policy
from ticketwarden.core.rules import has_phrase, render
from ticketwarden.hooks import hookimpl

RULE_IDS = (
    "INTAKE-1",
    "INTAKE-2",
    "INTAKE-3",
    "INTAKE-4",
    "INTAKE-5",
    "INTAKE-6",
)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""

HOLDING = "INTAKE-2:holding"
HELD = "INTAKE-2:held"
NATIVE = frozenset({"subject", "description", "severity"})


@functools.lru_cache(maxsize=64)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _supplied(ticket: Ticket, item: IntakeField, policy: Policy) -> bool:
    if item.name == "severity":
        return ticket.severity is not None
    value = getattr(ticket, item.name) if item.name in NATIVE else ticket.field(item.name)
    value = value.strip()
    if not value:
        return False
    if item.name == "module":
        known = {m.casefold() for m in policy.intake.modules}
        if known and value.casefold() not in known:
            return False
    return item.pattern is None or _pattern(item.pattern).search(value) is not None


def missing_items(ticket: Ticket, policy: Policy) -> tuple[IntakeField, ...]:
    """INTAKE-1: the required items the ticket lacks (blank, malformed or not a known module)."""
    return tuple(
        item
        for item in policy.intake.fields
        if item.required and not _supplied(ticket, item, policy)
    )


def hold_incomplete_ticket(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """INTAKE-1, INTAKE-2: hold an incomplete ticket once per set of missing items; release it
    with a note when the customer has supplied everything, which starts the response clock."""
    intake = ctx.policy.intake
    missing = missing_items(ticket, ctx.policy)
    holding = ctx.state.recall(HOLDING)
    held = ctx.state.recall(HELD) or []
    assert isinstance(held, list)
    if missing:
        names = ",".join(sorted(m.name for m in missing))
        actions: list[BaseAction] = [
            AddTags(
                rule_id="INTAKE-1",
                reason=f"required information missing: {names}",
                tags=frozenset({intake.incomplete_tag}),
            )
        ]
        if names not in held:
            reason = f"held until the customer supplies: {names}"
            listing = "\n".join(f"- {m.label}" for m in missing)
            actions += [
                SetStatus(
                    rule_id="INTAKE-2",
                    reason=reason,
                    status=Status.WAITING_ON_CUSTOMER,
                    occasion=f"hold:{names}",
                    remember={HOLDING: names, HELD: [*held, names]},
                ),
                AddComment(
                    rule_id="INTAKE-2",
                    reason=reason,
                    body=render(intake.hold_message, missing=listing, number=ticket.number),
                    occasion=f"hold:{names}",
                    unless=frozenset({"resolve", "close"}),
                ),
            ]
        return actions
    actions = [
        RemoveTags(
            rule_id="INTAKE-1",
            reason="all required information supplied",
            tags=frozenset({intake.incomplete_tag}),
        )
    ]
    if holding:
        reason = "the customer supplied the missing information; the response clock starts"
        actions += [
            SetStatus(
                rule_id="INTAKE-2",
                reason=reason,
                status=Status.OPEN,
                occasion=f"release:{holding}",
                remember={HOLDING: None},
            ),
            AddComment(
                rule_id="INTAKE-2",
                reason=reason,
                body=render(intake.complete_message, number=ticket.number),
                occasion=f"release:{holding}",
            ),
        ]
    return actions


def offer_agent_options(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """INTAKE-4: the customer says they cannot carry out the proposed steps. Software can only
    help here: it tells the agents they may close the ticket or lower its severity, and records
    who took such an agent-triggered action and why."""
    intake = ctx.policy.intake
    if change.kind == ChangeKind.AGENT_ACTION and change.agent_action:
        return [
            Record(
                rule_id="INTAKE-4",
                reason="agent-triggered policy action recorded",
                message=f"{change.agent_action} by {change.actor or 'unknown agent'}: "
                f"{change.note or 'no reason given'}",
                actor=change.actor or "unknown agent",
                occasion=f"agent:{change.at.isoformat()}",
            )
        ]
    if change.kind != ChangeKind.CUSTOMER_REPLY or change.comment is None:
        return []
    phrase = has_phrase(change.comment.body, intake.cannot_comply_phrases)
    if phrase is None:
        return []
    reason = f"the customer cannot carry out the proposed steps ({phrase!r})"
    return [
        AddTags(rule_id="INTAKE-4", reason=reason, tags=frozenset({intake.cannot_comply_tag})),
        AddComment(
            rule_id="INTAKE-4",
            reason=reason,
            public=False,
            body="The customer states they cannot carry out the proposed remediation steps. "
            "Per the support policy you may close this ticket or lower its severity; record "
            "your decision and the reason as an agent action.",
            occasion=f"reply:{change.comment.id}",
        ),
    ]


def log_server_access(change: Change, ctx: RuleContext) -> list[BaseAction]:
    """INTAKE-5: an agent's note starting with the access marker logs access to the customer's
    server with the user name and the time in the append-only audit trail. (Every action
    ticketwarden itself takes is audited by the store with actor, time, ticket, rule and
    reason; that needs no rule.)"""
    comment = change.comment
    marker = ctx.policy.intake.access_marker
    if (
        comment is None
        or comment.author_role != AuthorRole.AGENT
        or not comment.body.strip().lower().startswith(marker.lower())
    ):
        return []
    detail = comment.body.strip()[len(marker) :].strip()
    user = comment.author or change.actor or "unknown agent"
    return [
        Record(
            rule_id="INTAKE-5",
            reason="support staff access to the customer's server",
            message=f"server access by {user} at {comment.created_at.isoformat()}: "
            f"{detail or 'no details'}",
            actor=user,
            occasion=f"access:{comment.id}",
        )
    ]


@hookimpl
def on_ticket_created(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """INTAKE-1, INTAKE-2 on a new ticket."""
    return hold_incomplete_ticket(ticket, ctx)


@hookimpl
def on_ticket_updated(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """INTAKE-2 re-checks on replies and field changes; INTAKE-4; INTAKE-5."""
    actions: list[BaseAction] = []
    if not ticket.status.is_done and change.kind in (
        ChangeKind.CUSTOMER_REPLY,
        ChangeKind.FIELD_CHANGE,
    ):
        actions += hold_incomplete_ticket(ticket, ctx)
    actions += offer_agent_options(ticket, change, ctx)
    actions += log_server_access(change, ctx)
    return actions


@hookimpl
def on_resolve(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """INTAKE-6: resolved because the customer's hardware or operating system is below the
    system requirements — recorded as the resolution reason, and turned into a waiting state
    with a recommendation instead of a silent close; work resumes on the customer's reply."""
    intake = ctx.policy.intake
    if ticket.resolution_reason != intake.environment_reason:
        return []
    reason = "environment below the system requirements: support waits for the customer's fix"
    return [
        SetStatus(
            rule_id="INTAKE-6",
            reason=reason,
            status=Status.WAITING_ON_CUSTOMER,
            occasion=f"environment:{ticket.updated_at.isoformat()}",
        ),
        AddComment(
            rule_id="INTAKE-6",
            reason=reason,
            body=render(intake.environment_message, number=ticket.number),
            occasion=f"environment:{ticket.updated_at.isoformat()}",
        ),
    ]


def cite_ticket_number(ticket: Ticket, results: Sequence[Any], policy: Policy) -> list[Any]:
    """INTAKE-3: every message to the customer cites the ticket number and asks the customer to
    cite it too — applied to the public comments of *every* rule, built-in or third-party."""
    notice = render(policy.intake.number_notice, number=ticket.number)
    cited: list[Any] = []
    for result in results:
        if not isinstance(result, list | tuple):
            cited.append(result)
            continue
        cited.append(
            [
                a.model_copy(update={"body": f"{a.body}\n\n{notice}"})
                if isinstance(a, AddComment) and a.public and notice not in a.body
                else a
                for a in result
            ]
        )
    return cited


Wrapped = Generator[None, list[Any], list[Any]]


@hookimpl(wrapper=True, specname="on_ticket_created")
def cite_number_when_created(ticket: Ticket, ctx: RuleContext) -> Wrapped:
    """INTAKE-3 around ``on_ticket_created``."""
    return cite_ticket_number(ticket, (yield), ctx.policy)


@hookimpl(wrapper=True, specname="on_ticket_updated")
def cite_number_when_updated(ticket: Ticket, ctx: RuleContext) -> Wrapped:
    """INTAKE-3 around ``on_ticket_updated``."""
    return cite_ticket_number(ticket, (yield), ctx.policy)


@hookimpl(wrapper=True, specname="on_resolve")
def cite_number_when_resolved(ticket: Ticket, ctx: RuleContext) -> Wrapped:
    """INTAKE-3 around ``on_resolve``."""
    return cite_ticket_number(ticket, (yield), ctx.policy)


@hookimpl(wrapper=True, specname="on_stale")
def cite_number_when_stale(ticket: Ticket, ctx: RuleContext) -> Wrapped:
    """INTAKE-3 around ``on_stale``."""
    return cite_ticket_number(ticket, (yield), ctx.policy)
