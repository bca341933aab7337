"""The engine: facts, hook dispatch, merging, idempotency keys, next due times, explanations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from ticketwarden import hookimpl
from ticketwarden.core.actions import (
    AddComment,
    AddTags,
    Close,
    Remember,
    Resolve,
    SetPriority,
    SetStatus,
)
from ticketwarden.core.context import Due, RuleContext, TicketState
from ticketwarden.core.engine import Engine, observe
from ticketwarden.core.model import (
    AuthorRole,
    Change,
    ChangeKind,
    Comment,
    Event,
    EventKind,
    Priority,
    Status,
    Ticket,
)
from ticketwarden.core.policy import Policy
from ticketwarden.core.registry import load_plugins

from .conftest import MONDAY

CREATED = Event(id="e1", kind=EventKind.CREATED, at=MONDAY)


def engine_with(policy: Policy, *rules: Callable[..., Any]) -> Engine:
    """An engine with only inline test plugins, each a set of hook functions."""
    extra = []
    for i, hooks in enumerate(rules):
        plugin = SimpleNamespace(**{fn.__name__: hookimpl(fn) for fn in hooks()})
        extra.append((f"test{i}", plugin))
    return Engine(load_plugins(entry_points=False, extra=extra), policy)


def created_returning(*actions: Any) -> Callable[..., Any]:
    def hooks() -> list[Callable[..., Any]]:
        def on_ticket_created() -> list[Any]:
            return list(actions)

        return [on_ticket_created]

    return hooks


def test_identical_effects_from_two_rules_are_applied_once(
    policy: Policy, make_ticket: Any
) -> None:
    tag = AddTags(rule_id="X-1", reason="a", tags=frozenset({"t"}))
    same = AddTags(rule_id="X-2", reason="b", tags=frozenset({"t"}))
    result = engine_with(policy, created_returning(tag, same)).evaluate(
        CREATED, make_ticket(), None, MONDAY
    )
    assert [a.rule_id for a in result.actions] == ["X-1"]
    assert "same effect as X-1" in result.explanation.dropped[0].why


def test_actions_that_change_nothing_are_dropped_but_remembered(
    policy: Policy, make_ticket: Any
) -> None:
    noop = SetStatus(rule_id="X-1", reason="r", status=Status.NEW, remember={"X-1:seen": True})
    result = engine_with(policy, created_returning(noop)).evaluate(
        CREATED, make_ticket(), None, MONDAY
    )
    assert result.actions == ()
    assert result.state.recall("X-1:seen") is True
    assert result.explanation.dropped[0].why == "the ticket already is that way"


def test_a_reminder_is_not_sent_when_the_same_evaluation_resolves(
    policy: Policy, make_ticket: Any
) -> None:
    reminder = AddComment(
        rule_id="X-1",
        reason="remind",
        body="still there?",
        unless=frozenset({"resolve"}),
        remember={"X-1:count": 1},
    )
    resolve = Resolve(rule_id="X-2", reason="silent", resolution="no_response")
    result = engine_with(policy, created_returning(reminder, resolve)).evaluate(
        CREATED, make_ticket(), None, MONDAY
    )
    assert [a.kind for a in result.actions] == ["resolve"]
    assert result.state.recall("X-1:count") is None, "a dropped action must not be remembered"
    assert result.projected.status == Status.RESOLVED


def test_status_conflicts_are_settled_by_precedence(policy: Policy, make_ticket: Any) -> None:
    wait = SetStatus(rule_id="A-1", reason="r", status=Status.WAITING_ON_CUSTOMER)
    reopen = SetStatus(rule_id="B-1", reason="r", status=Status.OPEN)
    close = Close(rule_id="C-1", reason="r")
    result = engine_with(policy, created_returning(reopen, wait, close)).evaluate(
        CREATED, make_ticket(), None, MONDAY
    )
    assert [a.kind for a in result.actions] == ["close"]
    assert {d.action.rule_id for d in result.explanation.dropped} == {"A-1", "B-1"}


def test_the_most_urgent_priority_wins(policy: Policy, make_ticket: Any) -> None:
    low = SetPriority(rule_id="A-1", reason="r", priority=Priority.LOW)
    urgent = SetPriority(rule_id="B-1", reason="r", priority=Priority.URGENT)
    result = engine_with(policy, created_returning(low, urgent)).evaluate(
        CREATED, make_ticket(), None, MONDAY
    )
    assert [a.rule_id for a in result.actions] == ["B-1"]


def test_actions_come_in_application_order(policy: Policy, make_ticket: Any) -> None:
    actions = (
        Resolve(rule_id="A-1", reason="r", resolution="no_response"),
        AddComment(rule_id="Z-1", reason="r", body="bye"),
        AddTags(rule_id="M-1", reason="r", tags=frozenset({"t"})),
    )
    result = engine_with(policy, created_returning(*actions)).evaluate(
        CREATED, make_ticket(), None, MONDAY
    )
    assert [a.kind for a in result.actions] == ["add_tags", "comment", "resolve"]


def test_idempotency_keys_are_deterministic_and_separate_occasions(
    policy: Policy, make_ticket: Any
) -> None:
    first = AddComment(rule_id="X-1", reason="r", body="hi", occasion="reminder:1")
    second = AddComment(rule_id="X-1", reason="r", body="hi", occasion="reminder:2")
    engine = engine_with(policy, created_returning(first, second))
    a = engine.evaluate(CREATED, make_ticket(), None, MONDAY)
    b = engine.evaluate(CREATED, make_ticket(), None, MONDAY)
    assert [x.key for x in a.actions] == [x.key for x in b.actions]
    assert len({x.key for x in a.actions}) == 2
    other_ticket = engine.evaluate(CREATED, make_ticket(id="2"), None, MONDAY)
    assert not {x.key for x in a.actions} & {x.key for x in other_ticket.actions}


def test_created_runs_once_per_ticket(engine: Engine, make_ticket: Any, roster: Any) -> None:
    first = engine.evaluate(CREATED, make_ticket(), None, MONDAY, roster=roster)
    again = engine.evaluate(CREATED, make_ticket(), first.state, MONDAY, roster=roster)
    assert first.actions and again.actions == ()
    assert "already ran" in again.explanation.notes[0]


def test_waiting_on_the_customer_is_a_pause_of_the_clocks(make_ticket: Any) -> None:
    """HOURS-1: entering waiting opens a pause, leaving it closes the pause."""
    waiting = make_ticket(status=Status.WAITING_ON_CUSTOMER)
    state = observe(TicketState(), waiting, MONDAY)
    assert state.waiting_since == MONDAY and state.pauses[-1].end is None
    later = MONDAY + timedelta(hours=5)
    state = observe(state, make_ticket(status=Status.OPEN, updated_at=later), later)
    assert state.waiting_since is None
    assert (state.pauses[-1].start, state.pauses[-1].end) == (MONDAY, later)


def test_a_status_change_dates_from_the_tickets_last_update(make_ticket: Any) -> None:
    """However late the change is noticed (a catch-up, a re-run after a crash), the wait
    starts when the desk changed the ticket."""
    changed = MONDAY + timedelta(hours=2)
    noticed = MONDAY + timedelta(days=3)
    waiting = make_ticket(status=Status.WAITING_ON_CUSTOMER, updated_at=changed)
    state = observe(TicketState(status=Status.OPEN), waiting, noticed)
    assert state.waiting_since == changed


def test_replies_are_facts_but_ticketwardens_own_comments_are_not(make_ticket: Any) -> None:
    t = MONDAY + timedelta(hours=1)
    comments = (
        Comment(id="1", author_role=AuthorRole.SYSTEM, body="auto", created_at=MONDAY),
        Comment(id="2", author_role=AuthorRole.AGENT, body="note", public=False, created_at=t),
        Comment(id="3", author_role=AuthorRole.CUSTOMER, body="hi", created_at=t),
    )
    state = observe(TicketState(), make_ticket(comments=comments), t)
    assert state.first_response_at is None
    assert state.last_customer_reply_at == t


def test_next_due_is_the_earliest_timer_and_explained(
    engine: Engine, make_ticket: Any, roster: Any
) -> None:
    result = engine.evaluate(CREATED, make_ticket(), None, MONDAY, roster=roster)
    upcoming = result.explanation.upcoming
    assert result.next_due == upcoming[0].at == min(d.at for d in upcoming)
    assert {d.rule_id for d in upcoming} >= {"RESP-1", "ESC-1"}
    assert any("next RESP-1" in line for line in result.explanation.lines())


def test_updated_event_without_change_is_rejected(engine: Engine, make_ticket: Any) -> None:
    with pytest.raises(ValueError, match="needs a change"):
        engine.evaluate(
            Event(id="u", kind=EventKind.UPDATED, at=MONDAY), make_ticket(), None, MONDAY
        )


def test_naive_now_is_rejected(engine: Engine, make_ticket: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        engine.evaluate(CREATED, make_ticket(), None, MONDAY.replace(tzinfo=None))


def test_rules_see_only_the_injected_clock(policy: Policy, make_ticket: Any) -> None:
    seen: list[Any] = []

    def hooks() -> list[Callable[..., Any]]:
        def on_stale(ctx: RuleContext) -> None:
            seen.append(ctx.now)

        def next_due(ctx: RuleContext) -> Due:
            return Due(at=ctx.now + timedelta(days=1), rule_id="X-1", what="again")

        return [on_stale, next_due]

    far_future = MONDAY + timedelta(days=400)
    result = engine_with(policy, hooks).evaluate(
        Event(id="s", kind=EventKind.STALE, at=far_future), make_ticket(), None, far_future
    )
    assert seen == [far_future]
    assert result.next_due == far_future + timedelta(days=1)


def test_customer_reply_resets_the_silence_reminders(
    engine: Engine, make_ticket: Any, roster: Any
) -> None:
    """CLOSE-3: the reminder count belongs to one waiting period."""
    waiting = make_ticket(status=Status.WAITING_ON_CUSTOMER)
    state = engine.evaluate(CREATED, waiting, None, MONDAY, roster=roster).state
    day3 = MONDAY + timedelta(days=3)
    stale = engine.evaluate(Event(id="s", kind=EventKind.STALE, at=day3), waiting, state, day3)
    assert [a.rule_id for a in stale.actions if a.kind == "comment"] == ["CLOSE-3"]
    reply = Comment(id="c", author_role=AuthorRole.CUSTOMER, body="here", created_at=day3)
    reopened = waiting.model_copy(update={"status": Status.OPEN, "comments": (reply,)})
    change = Change(
        kind=ChangeKind.CUSTOMER_REPLY,
        at=day3,
        comment=reply,
        previous_status=Status.WAITING_ON_CUSTOMER,
    )
    after = engine.evaluate(
        Event(id="u", kind=EventKind.UPDATED, at=day3, change=change), reopened, stale.state, day3
    )
    assert after.state.waiting_since is None
    assert not any(d.rule_id == "CLOSE-3" for d in after.explanation.upcoming)


def test_remember_only_actions_reach_the_state_not_the_desk(
    policy: Policy, make_ticket: Any
) -> None:
    note = Remember(rule_id="X-1", reason="r", remember={"X-1:k": [1, 2]})
    result = engine_with(policy, created_returning(note)).evaluate(
        CREATED, make_ticket(), None, MONDAY
    )
    assert result.state.recall("X-1:k") == [1, 2]
    assert result.projected == make_ticket()


def test_ticket_is_immutable(make_ticket: Any) -> None:
    ticket: Ticket = make_ticket()
    with pytest.raises(Exception, match="frozen"):
        ticket.status = Status.CLOSED  # type: ignore[misc]
    with pytest.raises(TypeError):
        ticket.fields["version"] = "1"  # type: ignore[index]


def test_tickets_states_and_actions_round_trip_through_json(
    engine: Engine, make_ticket: Any, roster: Any
) -> None:
    """The store persists states and actions as JSON; nothing may be lost on the way."""
    from pydantic import TypeAdapter

    from ticketwarden.core.actions import Action

    ticket = make_ticket(status=Status.WAITING_ON_CUSTOMER, tags=["a", "b"], severity=1)
    assert Ticket.model_validate_json(ticket.model_dump_json()) == ticket
    result = engine.evaluate(CREATED, ticket, None, MONDAY, roster=roster)
    assert result.state.memory, "the evaluation should have remembered something"
    assert TicketState.model_validate_json(result.state.model_dump_json()) == result.state
    adapter = TypeAdapter(Action)
    for action in result.actions:
        assert adapter.validate_json(action.model_dump_json()) == action
