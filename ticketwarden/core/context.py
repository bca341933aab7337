"""What a rule sees besides the ticket: the ticket's policy state and the evaluation context.

:class:`TicketState` is what ticketwarden remembers about a ticket between evaluations — the
facts the engine keeps (when the customer was last waited on, when the ticket was resolved, the
pauses that stop the response clocks) and each rule's own ``memory``. It is persisted by the
store and handed back on the next evaluation; rules change it only through the ``remember`` of
their actions.

:class:`RuleContext` bundles the policy, the injected clock (``now``), the desk, the roster and
the state, plus the clock arithmetic every time-based rule needs, so that rules stay pure.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ticketwarden.core import clock
from ticketwarden.core.model import AwareDatetime, FrozenJson, Roster, Severity, Status

if TYPE_CHECKING:
    from ticketwarden.core.policy import Policy, SeverityLevel, Targets

T = TypeVar("T")


class PauseSpan(BaseModel):
    """A stretch of time spent waiting on the customer (``end`` None: still waiting)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime
    end: AwareDatetime | None = None


class PlanSpan(BaseModel):
    """From ``since`` on, the ticket's targets came from this plan and organization override
    (HOURS-1, RESP-1, RESP-2). Kept only when the policy has plans or organizations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    since: AwareDatetime
    plan: str | None = None
    organization: str | None = None
    source: str = Field("", description="how the plan was chosen, e.g. 'field plan'")

    @property
    def key(self) -> tuple[str | None, str | None]:
        """The plan and organization override, as :attr:`Targets.key`."""
        return (self.plan, self.organization)


class TicketState(BaseModel):
    """What ticketwarden remembers about one ticket between evaluations.

    The engine keeps the facts up to date from every ticket it sees; ``memory`` belongs to the
    rules (keys are prefixed with the rule id by convention, e.g. ``CLOSE-3:reminders``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    created_seen: bool = Field(False, description="on_ticket_created has run for this ticket")
    status: Status | None = None
    severity: Severity | None = None
    waiting_since: AwareDatetime | None = None
    pauses: tuple[PauseSpan, ...] = ()
    resolved_at: AwareDatetime | None = Field(
        None, description="when the ticket was last resolved; kept after a reopen (CLOSE-4)"
    )
    closed_at: AwareDatetime | None = None
    first_response_at: AwareDatetime | None = None
    last_agent_reply_at: AwareDatetime | None = None
    last_customer_reply_at: AwareDatetime | None = None
    next_due: AwareDatetime | None = None
    plan_history: tuple[PlanSpan, ...] = Field(
        (),
        description="the support plans the ticket was on, oldest first: the response clocks "
        "count each stretch of time on the plan in force then (empty: never changed, or no "
        "plans in the policy)",
    )
    memory: FrozenJson = Field(default_factory=dict)

    def recall(self, key: str, default: JsonValue = None) -> JsonValue:
        """A rule's remembered value, or ``default``."""
        return self.memory.get(key, default)

    @property
    def clock_pauses(self) -> tuple[clock.Pause, ...]:
        """The pauses as the clock module takes them (HOURS-1)."""
        return _clock_pauses(self.pauses)


@lru_cache(maxsize=4096)
def _clock_pauses(pauses: tuple[PauseSpan, ...]) -> tuple[clock.Pause, ...]:
    # Not a cached_property: model_copy would carry a stale cache into the updated state.
    return tuple(clock.Pause(start=p.start, end=p.end) for p in pauses)


class Due(BaseModel):
    """A timer a rule will want to fire: when, which rule, and what it will do then."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime
    rule_id: str
    what: str


class RuleContext:
    """Everything a rule may consult besides the ticket; rules never look elsewhere.

    Built by the engine for one evaluation. ``now`` is the injected clock: rules must compare
    against it and never read the wall clock. ``targets`` are the ticket's effective response
    targets (base → plan → organization); the clock arithmetic below runs on them and, when
    the ticket changed plans, on each plan's clock for the time the plan was in force.
    """

    __slots__ = ("_memo", "desk", "now", "policy", "roster", "state", "targets")

    def __init__(
        self,
        *,
        policy: Policy,
        now: datetime,
        state: TicketState,
        roster: Roster | None = None,
        desk: str = "default",
        targets: Targets | None = None,
    ) -> None:
        self.policy = policy
        self.now = now
        self.state = state
        self.roster = roster if roster is not None else Roster()
        self.desk = desk
        self.targets = targets if targets is not None else policy.targets(None)
        self._memo: dict[Hashable, object] = {}

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per context and key: rules that share a derived value (ESC-1 and
        RESP-1 both need the response timers) compute it once per evaluation."""
        if key not in self._memo:
            self._memo[key] = compute()
        return cast(T, self._memo[key])

    def level(self, severity: Severity | None) -> SeverityLevel:
        """The effective targets of a severity for this ticket (SEV-1..SEV-4, RESP-1, RESP-2):
        the base policy's, overridden by the ticket's plan and organization."""
        return self.targets.level(severity)

    def calendar(self, severity: Severity | None) -> clock.BusinessCalendar:
        """The calendar the response targets of this severity run on now (SEV-1..SEV-4,
        HOURS-1)."""
        return self.policy.clock(self.targets.level(severity).clock)

    def span(self, span: clock.Span, severity: Severity | None) -> timedelta:
        """A policy duration as time on the severity's clock ("1d" is one business day there)."""
        return span.to_timedelta(self.calendar(severity).day_length)

    def _segments(self, severity: Severity | None) -> list[tuple[datetime, clock.BusinessCalendar]]:
        """The clock of each stretch of the plan history (the first from the beginning of
        time), ending with the current one; a single stretch when the plan never changed."""
        history = self.state.plan_history
        current = self.calendar(severity)
        if len(history) < 2:
            return [(_DAWN, current)]
        sev = severity or Severity.LOW
        segments = [
            (
                _DAWN if i == 0 else span.since,
                self.policy.clock(self.policy.resolve(*span.key)[sev].level.clock),
            )
            for i, span in enumerate(history[:-1])
        ]
        segments.append((history[-1].since, current))
        return segments

    def elapsed(
        self, start: datetime, severity: Severity | None, end: datetime | None = None
    ) -> timedelta:
        """Clock time of the severity between ``start`` and ``end`` (default ``now``), without the
        time spent waiting on the customer (HOURS-1); each stretch of a plan change history is
        counted on the clock of the plan then in force, so nothing is lost or counted twice."""
        stop = end or self.now
        pauses = self.state.clock_pauses
        segments = self._segments(severity)
        total = timedelta(0)
        for i, (since, calendar) in enumerate(segments):
            until = segments[i + 1][0] if i + 1 < len(segments) else stop
            a, b = max(start, since), min(stop, until)
            if b > a:
                total += clock.elapsed(calendar, a, b, pauses)
        return total

    def due(
        self, start: datetime, duration: timedelta, severity: Severity | None
    ) -> datetime | None:
        """When ``duration`` of the severity's clock has run since ``start``, pauses excluded;
        ``None`` while the ticket waits on the customer (HOURS-1).

        After a plan change (RESP-1, RESP-2) the time already elapsed under earlier plans is
        kept and the rest of ``duration`` (the current plan's target) runs on the current
        plan's clock from the moment of the change; a target already used up by then falls due
        at that moment."""
        pauses = self.state.clock_pauses
        if len(self.state.plan_history) < 2:  # never changed plans: the current clock only
            return clock.due(self.calendar(severity), start, duration, pauses)
        segments = self._segments(severity)
        since, calendar = segments[-1]
        if start >= since:
            return clock.due(calendar, start, duration, pauses)
        used = self.elapsed(start, severity, since)
        if used >= duration:
            return since
        return clock.due(calendar, since, duration - used, pauses)

    def with_state(self, state: TicketState) -> RuleContext:
        """The same context around another state (used for ``next_due`` after actions)."""
        return RuleContext(
            policy=self.policy,
            now=self.now,
            state=state,
            roster=self.roster,
            desk=self.desk,
            targets=self.targets,
        )


_DAWN = datetime(1, 1, 1, tzinfo=UTC)
"""Where the first stretch of a plan history starts: before any ticket."""
