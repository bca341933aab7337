"""The engine: (event, ticket, state, now) → hook calls → merged, explained actions.

Pure and synchronous. It keeps the ticket's facts in the policy state up to date, calls the
lifecycle hook the event asks for, and turns what the rules returned into one consistent list:

1. every action gets a deterministic idempotency ``key`` (desk, ticket, rule, effect, occasion);
2. identical effects asked by several rules are kept once;
3. an action is dropped when the evaluation also asks for a kind in its ``unless``
   (no reminder for a ticket the same evaluation resolves);
4. conflicts are settled: closing beats resolving beats any other status change; the most urgent
   priority wins; for other single-valued changes the first rule in rule-id order wins;
5. actions that would change nothing on the ticket are dropped last (their ``remember`` still
   counts) — until then they count as asked for, so a re-evaluation after a crash settles
   exactly as the first one did.

The result carries the actions in a fixed application order, the new state to persist (facts
projected as if the actions were applied, and the rules' ``remember`` of surviving actions), the
ticket's next due time, and an :class:`Explanation` of which rules ran and fired and why
anything was dropped. Time comes only from ``now``; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import JsonValue

from ticketwarden.core.actions import (
    AddComment,
    AddTags,
    BaseAction,
    Close,
    CreateFollowUp,
    Escalate,
    Record,
    RemoveTags,
    Resolve,
    SetField,
    SetPriority,
    SetSeverity,
    SetStatus,
)
from ticketwarden.core.context import Due, PauseSpan, PlanSpan, RuleContext, TicketState
from ticketwarden.core.model import (
    AuthorRole,
    Comment,
    Event,
    EventKind,
    Roster,
    RosterChange,
    Severity,
    Status,
    Ticket,
)
from ticketwarden.core.policy import Policy, Targets
from ticketwarden.core.registry import Plugins

APPLY_ORDER = (
    "set_field",
    "set_severity",
    "set_priority",
    "add_tags",
    "remove_tags",
    "comment",
    "escalate",
    "set_status",
    "resolve",
    "close",
    "create_follow_up",
    "record",
    "remember",
)
"""The order connectors apply one evaluation's actions in (fields before the comment that cites
them, the comment before the status change that hides the ticket from the agent's view)."""

_ORDER = {kind: i for i, kind in enumerate(APPLY_ORDER)}

STATUS_PRECEDENCE = (
    Status.NEW,
    Status.OPEN,
    Status.ON_HOLD,
    Status.WAITING_ON_CUSTOMER,
    Status.RESOLVED,
    Status.CLOSED,
)


@dataclass(frozen=True)
class Dropped:
    """An action the merge removed, and why."""

    action: BaseAction
    why: str


@dataclass(frozen=True)
class Explanation:
    """What happened in one evaluation, in words: for ``explain``, scenarios and the audit."""

    hook: str
    ran: tuple[str, ...]
    fired: tuple[BaseAction, ...]
    dropped: tuple[Dropped, ...]
    upcoming: tuple[Due, ...]
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """A human-readable account, one line per fact."""
        out = [f"{self.hook}: ran {', '.join(self.ran) or 'no rules'}"]
        out += [f"  fired {a.rule_id}: {a.describe()} — {a.reason}" for a in self.fired]
        out += [
            f"  dropped {d.action.rule_id}: {d.action.describe()} — {d.why}" for d in self.dropped
        ]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  next {d.rule_id} at {d.at.isoformat()}: {d.what}" for d in self.upcoming]
        return out


@dataclass(frozen=True)
class Evaluation:
    """The engine's answer for one event: what to do, what to remember, and why.

    ``state`` is the state once the actions are applied; ``before`` the facts as observed
    before any rule ran (what a store keeps while the actions are still in flight)."""

    event: Event
    ticket: Ticket
    actions: tuple[BaseAction, ...]
    state: TicketState
    projected: Ticket
    before: TicketState
    explanation: Explanation
    memory_updates: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def next_due(self) -> datetime | None:
        """When this ticket next needs ``on_stale``, if ever."""
        return self.state.next_due


# --- Facts ----------------------------------------------------------------------------------------


def observe(state: TicketState, ticket: Ticket, at: datetime) -> TicketState:
    """The state's facts brought up to date with the ticket as seen at ``at``; a status change
    dates from the ticket's last update.

    Entering *waiting on customer* opens a pause of the response clocks and leaving it closes
    the pause (HOURS-1); resolution and closing times are remembered; replies are taken from the
    ticket's public comments (ticketwarden's own comments are ``system`` and count as no reply).
    """
    if ticket.status != state.status:
        # A status reached since the state was kept dates from the ticket's last update,
        # whatever occasion brings it here now (a webhook, a catch-up after a crash, a
        # candidate search, an old ticket seen for the first time).
        at = ticket.updated_at
    waiting_since = state.waiting_since
    pauses = state.pauses
    if ticket.status == Status.WAITING_ON_CUSTOMER:
        if waiting_since is None:
            waiting_since = at
            pauses = (*pauses, PauseSpan(start=at))
    elif waiting_since is not None:
        last = pauses[-1]
        pauses = (*pauses[:-1], PauseSpan(start=last.start, end=max(at, last.start)))
        waiting_since = None
    done = ticket.status.is_done
    resolved_at = state.resolved_at
    if done and (state.status is None or not state.status.is_done or resolved_at is None):
        resolved_at = ticket.resolved_at or at
    closed_at = (state.closed_at or at) if ticket.status == Status.CLOSED else None
    first_response = state.first_response_at
    last_agent = state.last_agent_reply_at
    last_customer = state.last_customer_reply_at
    for comment in ticket.comments:
        if not comment.public:
            continue
        if comment.author_role == AuthorRole.AGENT:
            if first_response is None or comment.created_at < first_response:
                first_response = comment.created_at
            if last_agent is None or comment.created_at > last_agent:
                last_agent = comment.created_at
        elif comment.author_role == AuthorRole.CUSTOMER and (
            last_customer is None or comment.created_at > last_customer
        ):
            last_customer = comment.created_at
    return state.model_copy(
        update={
            "status": ticket.status,
            "severity": ticket.severity,
            "waiting_since": waiting_since,
            "pauses": pauses,
            "resolved_at": resolved_at,
            "closed_at": closed_at,
            "first_response_at": first_response,
            "last_agent_reply_at": last_agent,
            "last_customer_reply_at": last_customer,
        }
    )


def track_plan(
    state: TicketState, ticket: Ticket, targets: Targets, now: datetime
) -> tuple[TicketState, PlanSpan | None]:
    """HOURS-1, RESP-1, RESP-2: the plan history brought up to date with the ticket's targets.

    The first time a ticket is seen its plan (and organization override) is recorded from its
    creation on. When it differs later — the organization upgraded, an agent re-classified the
    ticket — a new stretch starts at the ticket's last update (the change that brought it; never
    before the previous stretch, never after ``now``), and the response clocks count each
    stretch on the plan in force then. Returns the new state and the new stretch (``None``
    when nothing changed)."""
    history = state.plan_history
    span = PlanSpan(
        since=ticket.created_at,
        plan=targets.plan,
        organization=targets.organization,
        source=targets.plan_source,
    )
    if not history:
        return state.model_copy(update={"plan_history": (span,)}), None
    last = history[-1]
    if last.key == targets.key:
        return state, None
    since = min(max(ticket.updated_at, last.since), max(now, last.since))
    span = span.model_copy(update={"since": since})
    return state.model_copy(update={"plan_history": (*history, span)}), span


def project(ticket: Ticket, actions: Sequence[BaseAction], now: datetime) -> Ticket:
    """The ticket as it will look once ``actions`` are applied (for state and ``next_due``).

    Emulators and policy tests use it as the reference semantics of each action kind.
    """
    update: dict[str, Any] = {}
    tags = set(ticket.tags)
    fields = dict(ticket.fields)
    comments = list(ticket.comments)
    status = ticket.status
    for action in actions:
        if isinstance(action, SetStatus):
            status = action.status
        elif isinstance(action, Resolve):
            status = Status.RESOLVED
            update["resolution_reason"] = action.resolution
            update["resolved_at"] = now
        elif isinstance(action, Close):
            status = Status.CLOSED
        elif isinstance(action, SetSeverity):
            update["severity"] = action.severity
        elif isinstance(action, SetPriority):
            update["priority"] = action.priority
        elif isinstance(action, AddTags):
            tags |= action.tags
        elif isinstance(action, RemoveTags):
            tags -= action.tags
        elif isinstance(action, SetField):
            fields[action.field] = action.value
        elif isinstance(action, Escalate):
            update["group"] = action.target
        elif isinstance(action, AddComment):
            comments.append(
                Comment(
                    id=f"tw-{action.key or len(comments)}",
                    author_role=AuthorRole.SYSTEM,
                    author="ticketwarden",
                    body=action.body,
                    public=action.public,
                    created_at=now,
                )
            )
    if status != ticket.status:
        update["status"] = status
        if status not in (Status.RESOLVED, Status.CLOSED):
            update["resolved_at"] = None
    if not actions:
        return ticket
    update.update(tags=frozenset(tags), fields=fields, comments=tuple(comments), updated_at=now)
    return ticket.model_copy(update=update)


# --- Merge ----------------------------------------------------------------------------------------


def idempotency_key(desk: str, ticket_id: str, action: BaseAction, occasion: str) -> str:
    """A short deterministic key: the same rule asking the same effect on the same occasion."""
    text = f"{desk}\x1f{ticket_id}\x1f{action.rule_id}\x1f{action.effect!r}\x1f{occasion}"
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _is_noop(action: BaseAction, ticket: Ticket) -> bool:
    if isinstance(action, SetStatus):
        return action.status == ticket.status
    if isinstance(action, SetSeverity):
        return action.severity == ticket.severity
    if isinstance(action, SetPriority):
        return action.priority == ticket.priority
    if isinstance(action, AddTags):
        return action.tags <= ticket.tags
    if isinstance(action, RemoveTags):
        return not (action.tags & ticket.tags)
    if isinstance(action, SetField):
        return ticket.field(action.field) == action.value
    if isinstance(action, Escalate):
        return ticket.group == action.target
    if isinstance(action, Resolve):
        return ticket.status == Status.RESOLVED and ticket.resolution_reason == action.resolution
    if isinstance(action, Close):
        return ticket.status == Status.CLOSED
    return False


def _status_of(action: BaseAction) -> Status | None:
    if isinstance(action, SetStatus):
        return action.status
    if isinstance(action, Resolve):
        return Status.RESOLVED
    if isinstance(action, Close):
        return Status.CLOSED
    return None


def _slot(action: BaseAction) -> tuple[str, ...] | None:
    """Actions in the same slot set the same single value and so conflict."""
    if _status_of(action) is not None:
        return ("status",)
    if isinstance(action, SetSeverity):
        return ("severity",)
    if isinstance(action, SetPriority):
        return ("priority",)
    if isinstance(action, SetField):
        return ("field", action.field)
    if isinstance(action, Escalate):
        return ("escalate",)
    return None


def _winner(candidates: list[BaseAction]) -> BaseAction:
    first = candidates[0]
    if _status_of(first) is not None:
        return max(candidates, key=lambda a: STATUS_PRECEDENCE.index(_status_of(a) or Status.NEW))
    if isinstance(first, SetPriority):
        return min(candidates, key=lambda a: a.priority.rank if isinstance(a, SetPriority) else 9)
    return first


def merge(
    actions: Sequence[BaseAction], ticket: Ticket
) -> tuple[list[BaseAction], list[Dropped], dict[str, JsonValue]]:
    """Merge one evaluation's actions: see the module docstring for the steps.

    An action that would change nothing still counts as *asked for* while ``unless`` and
    conflicts are settled (a reminder is not sent when the same evaluation asks to resolve a
    ticket that is already resolved); it is dropped only at the end.

    :returns: the surviving actions in application order, the dropped ones with reasons, and
        the memory to persist (from survivors, and from no-ops and duplicates whose intent the
        ticket already fulfils).
    """
    ordered = sorted(actions, key=lambda a: (a.rule_id, _ORDER[str(a.kind)], a.key))
    memory: dict[str, JsonValue] = {}
    dropped: list[Dropped] = []
    kept: list[BaseAction] = []
    seen: dict[tuple[Any, ...], BaseAction] = {}
    for action in ordered:
        first = seen.get(action.effect)
        repeats = first is not None and (
            not isinstance(action, AddComment | CreateFollowUp)
            or (isinstance(action, AddComment) and action.occasion == first.occasion)
        )
        if first is not None and repeats:
            memory.update(action.remember)
            dropped.append(Dropped(action, f"same effect as {first.rule_id}"))
        else:
            seen.setdefault(action.effect, action)
            kept.append(action)
    kinds = {a.kind for a in kept}
    survivors: list[BaseAction] = []
    for action in kept:
        blocking = sorted(action.unless & kinds)
        if blocking:
            dropped.append(
                Dropped(action, f"superseded: the same evaluation asks to {blocking[0]}")
            )
        else:
            survivors.append(action)
    slots: dict[tuple[str, ...], list[BaseAction]] = {}
    for action in survivors:
        slot = _slot(action)
        if slot is not None:
            slots.setdefault(slot, []).append(action)
    losers: set[int] = set()
    for candidates in slots.values():
        if len(candidates) > 1:
            winner = _winner(candidates)
            for action in candidates:
                if action is not winner:
                    losers.add(id(action))
                    dropped.append(
                        Dropped(action, f"conflicts with {winner.rule_id}: {winner.describe()}")
                    )
    final: list[BaseAction] = []
    for action in survivors:
        if id(action) in losers:
            continue
        memory.update(action.remember)
        if _is_noop(action, ticket):
            dropped.append(Dropped(action, "the ticket already is that way"))
        else:
            final.append(action)
    final.sort(key=lambda a: (_ORDER[str(a.kind)], a.rule_id, a.key))
    return final, dropped, memory


UNKNOWN_PLAN = "HOURS-1:unknown_plan"
"""State memory: the unknown plan named in the ticket's plan field last recorded in the audit."""


def _hm(duration: timedelta) -> str:
    """A duration as ``3h05m`` (hours may exceed 24) for explanations."""
    minutes = int(duration.total_seconds()) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m"


# --- The engine -----------------------------------------------------------------------------------

_HOOK_NAMES = {
    EventKind.CREATED: "on_ticket_created",
    EventKind.UPDATED: "on_ticket_updated",
    EventKind.RESOLVED: "on_resolve",
    EventKind.STALE: "on_stale",
}


class Engine:
    """Evaluates tickets against a policy with the registered rule plugins."""

    def __init__(self, plugins: Plugins, policy: Policy) -> None:
        self.plugins = plugins
        self.policy = policy

    def context(
        self,
        state: TicketState,
        now: datetime,
        *,
        roster: Roster | None = None,
        desk: str = "default",
        targets: Targets | None = None,
    ) -> RuleContext:
        """A rule context for one evaluation (``targets``: the ticket's effective targets)."""
        return RuleContext(
            policy=self.policy, now=now, state=state, roster=roster, desk=desk, targets=targets
        )

    def _targets_at(self, span: PlanSpan) -> Targets:
        """The targets of an earlier stretch of a plan history."""
        return Targets(
            plan=span.plan,
            organization=span.organization,
            plan_source=span.source,
            levels=self.policy.resolve(span.plan, span.organization),
        )

    def _plan_change(
        self,
        ticket: Ticket,
        old: RuleContext,
        new: RuleContext,
        change: PlanSpan,
    ) -> tuple[list[str], Record]:
        """HOURS-1, RESP-1, RESP-2: what a plan change does to the ticket's response clocks, in
        words, and the audit record of it: the time already elapsed under the old plan, the
        current targets, and every timer that moved."""
        at = change.since
        severity = ticket.severity
        level = new.level(severity)
        lines = [
            f"support plan changed at {at.isoformat()}: {old.targets.describe_plan()} → "
            f"{new.targets.describe_plan()}; layers now {new.targets.layers()}"
        ]
        state = new.state
        if state.first_response_at is None and not ticket.status.is_done:
            used = old.elapsed(ticket.created_at, severity, at)
            lines.append(
                f"first response: {_hm(used)} of response-clock time elapsed before the change "
                f"and is kept; the target is now {level.first_response} on the {level.clock} "
                "clock, the rest of it counts from the change"
            )
        if state.last_agent_reply_at is not None and not ticket.status.is_done:
            used = old.elapsed(state.last_agent_reply_at, severity, at)
            lines.append(
                f"next update: {_hm(used)} elapsed since the last update is kept; the interval "
                f"is now {level.update_interval} on the {level.clock} clock"
            )
        before = {(d.rule_id, d.what): d.at for d in self.plugins.next_due(ticket, old)}
        for due in self.plugins.next_due(ticket, new):
            was = before.get((due.rule_id, due.what))
            if was is not None and was != due.at:
                lines.append(
                    f"{due.rule_id} {due.what}: due {was.isoformat()} → {due.at.isoformat()}"
                )
        record = Record(
            rule_id="HOURS-1",
            reason="the ticket's support plan changed: elapsed response time is kept and the "
            "remaining targets are recomputed from the change",
            message="; ".join(lines),
            occasion=f"plan-change:{at.isoformat()}",
        )
        return lines, record

    def evaluate(
        self,
        event: Event,
        ticket: Ticket,
        state: TicketState | None,
        now: datetime,
        *,
        roster: Roster | None = None,
    ) -> Evaluation:
        """Run the hook for ``event`` on ``ticket`` and return merged, explained actions."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        before = observe(state or TicketState(), ticket, event.at)
        targets = self.policy.targets_for(ticket)
        notes: list[str] = []
        extra: list[BaseAction] = []
        if self.policy.has_layers:
            tracked, change = track_plan(before, ticket, targets, now)
            ctx = self.context(tracked, now, roster=roster, desk=ticket.desk, targets=targets)
            if change is not None:
                old = self.context(
                    before,
                    now,
                    roster=roster,
                    desk=ticket.desk,
                    targets=self._targets_at(before.plan_history[-1]),
                )
                lines, record = self._plan_change(ticket, old, ctx, change)
                notes += lines
                extra.append(record)
            before = tracked
            for note in targets.notes:
                notes.append(note)
                if before.recall(UNKNOWN_PLAN) != note:
                    extra.append(
                        Record(
                            rule_id="HOURS-1",
                            reason="the ticket names a support plan the policy does not have",
                            message=f"{note}: {targets.describe_plan()} applies",
                            occasion=f"unknown-plan:{note}",
                            remember={UNKNOWN_PLAN: note},
                        )
                    )
        else:
            ctx = self.context(before, now, roster=roster, desk=ticket.desk, targets=targets)
        hook = _HOOK_NAMES[event.kind]
        raw: list[BaseAction]
        if event.kind == EventKind.CREATED:
            if before.created_seen:
                raw = []
                notes.append("on_ticket_created already ran for this ticket; not repeated")
            else:
                raw = self.plugins.ticket_created(ticket, ctx)
        elif event.kind == EventKind.UPDATED:
            if event.change is None:
                raise ValueError(f"event {event.id}: an 'updated' event needs a change")
            raw = self.plugins.ticket_updated(ticket, event.change, ctx)
        elif event.kind == EventKind.RESOLVED:
            raw = self.plugins.resolved(ticket, ctx)
        else:
            raw = self.plugins.stale(ticket, ctx)
        keyed = [
            a.model_copy(
                update={"key": idempotency_key(ticket.desk, ticket.id, a, a.occasion or event.id)}
            )
            for a in [*extra, *raw]
        ]
        actions, dropped, memory = merge(keyed, ticket)
        projected = project(ticket, actions, now)
        after = observe(before, projected, now)
        updates: dict[str, Any] = {}
        if memory:
            merged_memory = dict(after.memory)
            for key, value in memory.items():
                if value is None:
                    merged_memory.pop(key, None)
                else:
                    merged_memory[key] = value
            updates["memory"] = merged_memory
        if event.kind == EventKind.CREATED or before.created_seen:
            updates["created_seen"] = True
        after = after.model_copy(update=updates) if updates else after
        upcoming = self.plugins.next_due(projected, ctx.with_state(after))
        after = after.model_copy(update={"next_due": upcoming[0].at if upcoming else None})
        explanation = Explanation(
            hook=hook,
            ran=tuple(self.plugins.hook_names(hook)),
            fired=tuple(actions),
            dropped=tuple(dropped),
            upcoming=tuple(upcoming),
            notes=tuple(notes),
        )
        return Evaluation(
            event=event,
            ticket=ticket,
            actions=tuple(actions),
            state=after,
            projected=projected,
            before=before,
            explanation=explanation,
            memory_updates=memory,
        )

    def track(
        self,
        ticket: Ticket,
        state: TicketState | None,
        now: datetime,
        *,
        roster: Roster | None = None,
    ) -> TicketState:
        """The ticket's facts and next due time, with no rule firing: for a ticket seen for
        the first time already resolved or closed, whose timers (CLOSE-5) still run."""
        after = observe(state or TicketState(), ticket, now)
        targets = self.policy.targets_for(ticket)
        if self.policy.has_layers:
            after, _ = track_plan(after, ticket, targets, now)
        ctx = self.context(after, now, roster=roster, desk=ticket.desk, targets=targets)
        upcoming = self.plugins.next_due(ticket, ctx)
        return after.model_copy(update={"next_due": upcoming[0].at if upcoming else None})

    def describe_targets(self, ticket: Ticket, state: TicketState | None = None) -> list[str]:
        """For ``explain``: the ticket's effective targets for its severity, naming the layer
        (base, plan, organization) that set each value, and its plan history if it changed."""
        targets = self.policy.targets_for(ticket)
        lines = targets.lines([ticket.severity or Severity.LOW])
        history = state.plan_history if state is not None else ()
        if len(history) > 1:
            lines += [
                f"plan since {span.since.isoformat()}: {self._targets_at(span).describe_plan()}"
                for span in history
            ]
        return lines

    def roster_changed(
        self,
        changes: Sequence[RosterChange],
        now: datetime,
        *,
        roster: Roster,
        desk: str = "default",
    ) -> list[BaseAction]:
        """Run ``on_roster_changed`` (AUTH-2); returns the keyed audit actions."""
        if not changes:
            return []
        ctx = self.context(TicketState(), now, roster=roster, desk=desk)
        occasion = now.isoformat()
        return [
            a.model_copy(
                update={"key": idempotency_key(desk, "-roster-", a, a.occasion or occasion)}
            )
            for a in self.plugins.roster_changed(changes, ctx)
        ]
