"""Closure — "Richtlinie zum Ticketabschluss": CLOSE-1 … CLOSE-5.

A ticket stays open until the customer has been told the solution; it is resolved only with a
policy reason; a silent customer is reminded and then resolved; a resolved ticket can be
reopened within a window; after that it is closed for good, and later replies start a new
ticket that links the old one. Silence and windows count calendar time on the policy's
``closure.silence_clock`` (24×7 by default).
"""

from __future__ import annotations

from datetime import datetime

from ticketwarden.core.actions import (
    AddComment,
    BaseAction,
    Close,
    CreateFollowUp,
    Resolve,
    SetStatus,
)
from ticketwarden.core.clock import Span
from ticketwarden.core.context import Due, RuleContext
from ticketwarden.core.model import AuthorRole, Change, ChangeKind, Status, Ticket
from ticketwarden.core.rules import human_span, human_time, normalize, render
from ticketwarden.hooks import hookimpl

RULE_IDS = (
    "CLOSE-1",
    "CLOSE-2",
    "CLOSE-3",
    "CLOSE-4",
    "CLOSE-5",
)
"""The policy rules this plugin enforces (policy tests reject rule ids no plugin declares)."""

REMINDERS = "CLOSE-3:reminders"
REOPENED = "CLOSE-4:reopened"


def _silence_add(ctx: RuleContext, start: datetime, span: Span) -> datetime:
    """``span`` after ``start`` on the silence clock (calendar days by default)."""
    calendar = ctx.policy.clock(ctx.policy.closure.silence_clock)
    return calendar.add(start, span.to_timedelta(calendar.day_length))


def customer_was_told(ticket: Ticket) -> bool:
    """Whether a public reply from support (an agent or ticketwarden) follows the customer's
    last message — the customer has been told where things stand."""
    last_customer = None
    last_support = None
    for comment in ticket.comments:
        if not comment.public:
            continue
        if comment.author_role == AuthorRole.CUSTOMER:
            last_customer = comment.created_at
        else:
            last_support = comment.created_at
    return last_support is not None and (last_customer is None or last_support >= last_customer)


def keep_open_until_answered(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """CLOSE-1, CLOSE-2: a ticket may be resolved only with one of the policy's resolution
    reasons, and only once support has told the customer the solution. Software cannot judge an
    investigation; it checks the part it can see — a reason from the list, and a public reply
    after the customer's last message — and otherwise reopens the ticket with a note to the
    agent. A reason whose explanation ticketwarden sends itself needs no agent reply."""
    closure = ctx.policy.closure
    reason = closure.reason(ticket.resolution_reason or "")
    actions: list[BaseAction] = []
    occasion = f"resolved:{ticket.updated_at.isoformat()}"
    if reason is None:
        allowed = ", ".join(r.code for r in closure.reasons)
        given = ticket.resolution_reason or "none"
        actions += [
            SetStatus(
                rule_id="CLOSE-2",
                reason=f"resolved without an allowed resolution reason (given: {given})",
                status=Status.OPEN,
                occasion=occasion,
            ),
            AddComment(
                rule_id="CLOSE-2",
                reason="a resolution reason is required",
                public=False,
                body=render(
                    closure.unresolved_note,
                    problem=f"an allowed resolution reason (given: {given})",
                    requirement=f"it is resolved with one of: {allowed}",
                ),
                occasion=occasion,
            ),
        ]
        return actions
    if reason.code == closure.no_response_reason or reason.explanation or customer_was_told(ticket):
        return actions
    return [
        SetStatus(
            rule_id="CLOSE-1",
            reason="resolved before the customer was told the solution",
            status=Status.OPEN,
            occasion=occasion,
        ),
        AddComment(
            rule_id="CLOSE-1",
            reason="the customer has not been told the solution",
            public=False,
            body=render(
                closure.unresolved_note,
                problem="a public reply telling the customer the solution",
                requirement="support has told the customer the solution",
            ),
            occasion=occasion,
        ),
    ]


def tell_resolution_reason(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """CLOSE-2: reasons that come with an explanation (e.g. (e) feature request: file it in the
    knowledge base) are explained to the customer; SCOPE-2's excluded causes explain their own."""
    reason = ctx.policy.closure.reason(ticket.resolution_reason or "")
    if reason is None or not reason.explanation or reason.unsupported_cause:
        return []
    return [
        AddComment(
            rule_id="CLOSE-2",
            reason=f"resolved as {reason.label}",
            body=reason.explanation,
            occasion=f"resolved:{ticket.updated_at.isoformat()}",
        )
    ]


def _reminders_sent(ctx: RuleContext) -> int:
    memo = ctx.state.recall(REMINDERS)
    since = ctx.state.waiting_since
    if isinstance(memo, dict) and since is not None and memo.get("since") == since.isoformat():
        count = memo.get("count", 0)
        return count if isinstance(count, int) else 0
    return 0


def silence_schedule(ticket: Ticket, ctx: RuleContext) -> tuple[list[datetime], datetime] | None:
    """CLOSE-3: ``(reminder times, auto-resolve time)`` while the ticket waits on the customer."""
    since = ctx.state.waiting_since
    if ticket.status != Status.WAITING_ON_CUSTOMER or since is None:
        return None
    closure = ctx.policy.closure
    reminders = [_silence_add(ctx, since, span) for span in closure.reminders]
    return reminders, _silence_add(ctx, since, closure.auto_resolve_after)


def remind_or_resolve_silent_customer(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """CLOSE-3: a ticket waiting on the customer gets the configured reminders (2 days and 5
    days by default) and is resolved with reason (a) after 7 days without a reply. A run that
    comes late sends only the latest reminder due, and none when the ticket is resolved."""
    schedule = silence_schedule(ticket, ctx)
    if schedule is None:
        return []
    reminders, deadline = schedule
    closure = ctx.policy.closure
    since = ctx.state.waiting_since
    assert since is not None
    if ctx.now >= deadline:
        reason = (
            f"no customer reply for {human_span(closure.auto_resolve_after)} despite "
            f"{len(reminders)} reminder(s)"
        )
        occasion = f"silence:{since.isoformat()}"
        return [
            AddComment(
                rule_id="CLOSE-3",
                reason=reason,
                body=render(
                    closure.auto_resolve_message,
                    reopen_window=human_span(closure.reopen_window),
                    number=ticket.number,
                ),
                occasion=occasion,
            ),
            Resolve(
                rule_id="CLOSE-3",
                reason=reason,
                resolution=closure.no_response_reason,
                occasion=occasion,
            ),
        ]
    sent = _reminders_sent(ctx)
    due = sum(1 for at in reminders if ctx.now >= at)
    if due <= sent:
        return []
    return [
        AddComment(
            rule_id="CLOSE-3",
            reason=f"reminder {due} of {len(reminders)}: waiting on the customer since "
            f"{since.isoformat()}",
            body=render(
                closure.reminder_message,
                count=due,
                total=len(reminders),
                deadline=human_time(deadline, ctx.policy.timezone),
                number=ticket.number,
            ),
            occasion=f"reminder:{due}:{since.isoformat()}",
            unless=frozenset({"resolve", "close"}),
            remember={REMINDERS: {"since": since.isoformat(), "count": due}},
        )
    ]


def _is_acknowledgement(text: str, phrases: tuple[str, ...]) -> bool:
    bare = normalize("".join(ch for ch in text if ch.isalnum() or ch.isspace()))
    return bare in {normalize(p) for p in phrases}


def handle_reply_after_resolution(
    ticket: Ticket, change: Change, ctx: RuleContext
) -> list[BaseAction]:
    """CLOSE-4, CLOSE-5: a customer reply to a resolved ticket reopens it within the reopen
    window when it brings a clarification (a bare "thanks" does not); after the window, and for
    a closed ticket, the reply becomes a new ticket that links the old one."""
    if change.kind != ChangeKind.CUSTOMER_REPLY or change.comment is None:
        return []
    closure = ctx.policy.closure
    previous = change.previous_status or ticket.status
    body = change.comment.body
    occasion = f"reply:{change.comment.id}"
    follow_up = CreateFollowUp(
        rule_id="CLOSE-5",
        reason="the customer wrote to a ticket that can no longer be reopened",
        subject=f"Follow-up to {ticket.number}: {ticket.subject}".strip(": "),
        body=body,
        occasion=occasion,
    )
    if previous == Status.CLOSED or ticket.status == Status.CLOSED:
        return [follow_up]
    if previous != Status.RESOLVED:
        return []
    resolved_at = ctx.state.resolved_at or ticket.resolved_at or change.at
    window_end = _silence_add(ctx, resolved_at, closure.reopen_window)
    if change.at > window_end:
        return [
            AddComment(
                rule_id="CLOSE-5",
                reason="reply after the reopen window: closed for good, follow-up opened",
                body=render(
                    closure.follow_up_message,
                    reopen_window=human_span(closure.reopen_window),
                    number=ticket.number,
                ),
                occasion=occasion,
            ),
            Close(
                rule_id="CLOSE-5",
                reason=f"resolved since {resolved_at.isoformat()}, past the reopen window",
                occasion=occasion,
            ),
            follow_up,
        ]
    if _is_acknowledgement(body, closure.acknowledgement_phrases):
        return [
            SetStatus(
                rule_id="CLOSE-4",
                reason="an acknowledgement without a clarification does not reopen the ticket",
                status=Status.RESOLVED,
                occasion=occasion,
            )
        ]
    return [
        SetStatus(
            rule_id="CLOSE-4",
            reason=f"the customer clarified within {human_span(closure.reopen_window)} of the "
            "resolution: reopened",
            status=Status.OPEN,
            occasion=occasion,
            remember={REOPENED: change.at.isoformat()},
        )
    ]


def final_close_time(ticket: Ticket, ctx: RuleContext) -> datetime | None:
    """CLOSE-5: when a resolved ticket with no further update is closed for good."""
    if ticket.status != Status.RESOLVED or ctx.state.resolved_at is None:
        return None
    last = max(
        t
        for t in (
            ctx.state.resolved_at,
            ctx.state.last_agent_reply_at,
            ctx.state.last_customer_reply_at,
        )
        if t is not None
    )
    return _silence_add(ctx, last, ctx.policy.closure.final_close_after)


def close_for_good(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """CLOSE-5: a resolved ticket with no update for 7 days is closed and cannot be reopened."""
    at = final_close_time(ticket, ctx)
    if at is None or ctx.now < at:
        return []
    span = human_span(ctx.policy.closure.final_close_after)
    return [
        Close(
            rule_id="CLOSE-5",
            reason=f"resolved with no update for {span}",
            occasion=f"final:{ctx.state.resolved_at.isoformat() if ctx.state.resolved_at else ''}",
        )
    ]


@hookimpl
def on_ticket_updated(ticket: Ticket, change: Change, ctx: RuleContext) -> list[BaseAction]:
    """CLOSE-4 and CLOSE-5 on customer replies."""
    return handle_reply_after_resolution(ticket, change, ctx)


@hookimpl
def on_resolve(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """CLOSE-1 and CLOSE-2 when a ticket is marked resolved."""
    return keep_open_until_answered(ticket, ctx) + tell_resolution_reason(ticket, ctx)


@hookimpl
def on_stale(ticket: Ticket, ctx: RuleContext) -> list[BaseAction]:
    """CLOSE-3 reminders and auto-resolve; CLOSE-5 final close."""
    return remind_or_resolve_silent_customer(ticket, ctx) + close_for_good(ticket, ctx)


@hookimpl
def next_due(ticket: Ticket, ctx: RuleContext) -> list[Due]:
    """CLOSE-3 and CLOSE-5 timers."""
    dues: list[Due] = []
    schedule = silence_schedule(ticket, ctx)
    if schedule is not None:
        reminders, deadline = schedule
        sent = _reminders_sent(ctx)
        if sent < len(reminders):
            dues.append(Due(at=reminders[sent], rule_id="CLOSE-3", what=f"reminder {sent + 1}"))
        dues.append(Due(at=deadline, rule_id="CLOSE-3", what="auto-resolve: no customer reply"))
    final = final_close_time(ticket, ctx)
    if final is not None:
        dues.append(Due(at=final, rule_id="CLOSE-5", what="close for good"))
    return dues
