"""The scheduled sync job: one idempotent pass over a desk.

For a desk it (1) takes the desk's lease, (2) reads the tickets changed since the stored cursor
and turns each ticket's difference from its stored policy state into events, (3) runs the
engine, applies the actions through the connector and records them, and (4) fires every due
timer — tickets whose stored next-due time has come, and tickets never seen before that the
connector's candidate search finds waiting or resolved.

Nothing is lost and nothing repeats, wherever a run stops:

- before an evaluation's actions are sent, they go into the ledger as *pending* (each action
  whole) together with the state they lead to, in one committed transaction: a write-ahead
  plan; after the connector reports, the outcomes and the audit rows are committed;
- an action already *applied* is never sent again; a plan a killed run left *pending* is
  finished as planned by the next run that meets the ticket (:meth:`DeskSync._recover`):
  actions the connector finds landed on the freshly read ticket are recorded
  (:meth:`~ticketwarden.core.connector.Connector.already_applied`), the rest are sent;
- the cursor moves only after every ticket of its page is recorded.

A dry run computes and reports the same plan but writes nothing: no request that changes the
desk, no ledger, no state, not even the cursor.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import JsonValue
from sqlalchemy.engine import Connection

from ticketwarden.core.actions import AddComment, BaseAction
from ticketwarden.core.connector import (
    ActionResult,
    CandidateQuery,
    Capability,
    Connector,
    Outcome,
)
from ticketwarden.core.context import TicketState
from ticketwarden.core.engine import Engine, Evaluation
from ticketwarden.core.errors import ConflictError, HelpdeskError
from ticketwarden.core.model import (
    AuthorRole,
    Change,
    ChangeKind,
    Event,
    EventKind,
    Roster,
    RosterChange,
    Status,
    Ticket,
    diff_rosters,
)
from ticketwarden.core.store import AuditEntry, Store, holder_is_dead

log = logging.getLogger("ticketwarden.sync")

SEEN_COMMENTS = "_sync:comments"
"""State memory: ids of the comments already turned into events."""
SEEN_FIELDS = "_sync:fields"
"""State memory: the mapped fields and tags as last seen, to detect field and tag changes."""
CREATED_AT = "_sync:created_at"
"""State memory: when the helpdesk created the ticket (``ticketwarden report`` measures the
first-response target from it)."""
AGENT_UPDATES = "_sync:agent_updates"
"""State memory: the times (UTC, ISO) of the agents' public replies, oldest first
(``ticketwarden report`` measures each update interval between them)."""

MAX_CONFLICT_RETRIES = 3
MAX_TIMERS_IN_HAND = 5
"""Timers fired on a ticket just read before its state is saved (several may be due)."""


# --- Events from differences ------------------------------------------------------------------


def _snapshot(ticket: Ticket) -> JsonValue:
    fields: dict[str, JsonValue] = dict(ticket.fields)
    tags: list[JsonValue] = list(sorted(ticket.tags))
    return {"fields": fields, "tags": tags}


STATUS_KINDS = frozenset({"set_status", "resolve", "close"})
FIELD_KINDS = frozenset({"set_field", "set_severity", "set_priority", "add_tags", "remove_tags"})


def events_for(
    ticket: Ticket, state: TicketState | None, *, own_pending: frozenset[str] = frozenset()
) -> list[Event]:
    """The events a freshly read ticket means, given what was stored about it.

    A ticket never seen is *created* — unless it is already resolved or closed, which a first
    sync of an existing desk meets by the thousand and which must not be held or commented on
    retroactively (its timers still run). A known ticket yields one event per new customer or
    agent comment (ticketwarden's own are not events), a status change (plus *resolved* when it
    became resolved), and a field change for severity, mapped fields or tags. Event ids are
    derived from the ticket and what changed, so evaluating the same read twice asks for the
    same actions.

    ``own_pending`` names the action kinds a run that died left *pending* for this ticket:
    status or field differences of those kinds are most likely ticketwarden's own landed writes,
    not an agent's, and raise no event (the re-evaluation settles them through the ledger).
    """
    if state is None and ticket.status.is_done:
        return []
    if state is None or not state.created_seen:
        # (a state that is not yet created_seen was stored by a run that died while carrying
        # out the creation's actions: they are evaluated again, whatever status they left)
        return [Event(id=f"created:{ticket.id}", kind=EventKind.CREATED, at=ticket.created_at)]
    events: list[Event] = []
    seen = set(_as_list(state.recall(SEEN_COMMENTS)))
    previous = state.status
    for comment in sorted(ticket.comments, key=lambda c: (c.created_at, c.id)):
        if comment.id in seen or comment.author_role == AuthorRole.SYSTEM:
            continue
        if comment.author_role == AuthorRole.CUSTOMER:
            kind = ChangeKind.CUSTOMER_REPLY
        else:
            kind = ChangeKind.AGENT_REPLY if comment.public else ChangeKind.AGENT_NOTE
        change = Change(
            kind=kind,
            at=comment.created_at,
            actor=comment.author,
            comment=comment,
            previous_status=previous,
        )
        events.append(
            Event(
                id=f"comment:{ticket.id}:{comment.id}",
                kind=EventKind.UPDATED,
                at=comment.created_at,
                change=change,
            )
        )
    old_fields, old_tags, known = _seen_fields(state)
    changed: set[str] = {
        name
        for name in set(ticket.fields) | set(old_fields)
        if old_fields.get(name) != ticket.fields.get(name)
    }
    if state.severity != ticket.severity:
        changed.add("severity")
    added = frozenset(ticket.tags - old_tags) if known else frozenset()
    removed = frozenset(old_tags - ticket.tags) if known else frozenset()
    if added or removed:
        changed.add("tags")
    stamp = ticket.updated_at.isoformat()
    own_status = bool(own_pending & STATUS_KINDS)
    if state.status is not None and ticket.status != state.status and not own_status:
        events.append(
            Event(
                id=f"status:{ticket.id}:{stamp}",
                kind=EventKind.UPDATED,
                at=ticket.updated_at,
                change=Change(
                    kind=ChangeKind.STATUS_CHANGE,
                    at=ticket.updated_at,
                    previous_status=state.status,
                    fields_changed=frozenset({"status"}),
                ),
            )
        )
    if changed and known and not own_pending & FIELD_KINDS:
        events.append(
            Event(
                id=f"fields:{ticket.id}:{stamp}",
                kind=EventKind.UPDATED,
                at=ticket.updated_at,
                change=Change(
                    kind=ChangeKind.FIELD_CHANGE,
                    at=ticket.updated_at,
                    previous_status=state.status,
                    fields_changed=frozenset(changed),
                    tags_added=added,
                    tags_removed=removed,
                ),
            )
        )
    if ticket.status == Status.RESOLVED and state.status != Status.RESOLVED and not own_status:
        events.append(
            Event(id=f"resolved:{ticket.id}:{stamp}", kind=EventKind.RESOLVED, at=ticket.updated_at)
        )
    return events


def _seen_fields(state: TicketState) -> tuple[dict[str, str], set[str], bool]:
    """The fields and tags as last seen, and whether a snapshot exists at all."""
    snapshot = state.recall(SEEN_FIELDS)
    if not isinstance(snapshot, dict):
        return {}, set(), False
    fields = snapshot.get("fields")
    old_fields = {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
    return old_fields, set(_as_list(snapshot.get("tags"))), True


def _as_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def remember_seen(state: TicketState, ticket: Ticket) -> TicketState:
    """The state with the ticket's comments and fields marked as seen, and its creation time
    and the agents' public reply times kept for reports."""
    memory: dict[str, JsonValue] = dict(state.memory)
    seen: list[JsonValue] = list(
        sorted({*_as_list(memory.get(SEEN_COMMENTS)), *(c.id for c in ticket.comments)})
    )
    memory[SEEN_COMMENTS] = seen
    memory[SEEN_FIELDS] = _snapshot(ticket)
    memory[CREATED_AT] = ticket.created_at.astimezone(UTC).isoformat()
    replies: list[JsonValue] = list(
        sorted(
            {
                *_as_list(memory.get(AGENT_UPDATES)),
                *(
                    c.created_at.astimezone(UTC).isoformat()
                    for c in ticket.comments
                    if c.public and c.author_role == AuthorRole.AGENT
                ),
            }
        )
    )
    memory[AGENT_UPDATES] = replies
    return state.model_copy(update={"memory": memory})


# --- Reports ----------------------------------------------------------------------------------


@dataclass
class DeskReport:
    """What one pass over a desk did."""

    desk: str
    tickets_read: int = 0
    events: int = 0
    timers: int = 0
    actions_by_rule: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    api_calls: int = 0
    rate_limited: int = 0
    skipped: str | None = None
    cursor: str | None = None

    @property
    def ok(self) -> bool:
        """No ticket failed."""
        return not self.failures


@dataclass
class SyncOptions:
    """How a pass runs."""

    now: datetime
    dry_run: bool = False
    page_limit: int = 1000
    candidate_lookback: timedelta = timedelta(days=30)
    lease_ttl: timedelta = timedelta(minutes=10)
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )


ActionListener = Callable[[str, Ticket, BaseAction, ActionResult | None], None]


# --- The pass ---------------------------------------------------------------------------------


class DeskSync:
    """One pass of the sync job over one desk."""

    def __init__(
        self,
        connector: Connector,
        engine: Engine,
        store: Store,
        options: SyncOptions,
        *,
        on_action: ActionListener | None = None,
        on_progress: Callable[[str, int], None] | None = None,
    ) -> None:
        self.connector = connector
        self.engine = engine
        self.store = store
        self.options = options
        self.desk = connector.config.name
        self.report = DeskReport(desk=self.desk)
        self.on_action = on_action
        self.on_progress = on_progress
        self.roster = Roster()
        self._asked: set[str] = set()
        """Keys of every action evaluations of this pass asked for."""
        self.on_save: Callable[[Connection], None] | None = None
        """Called in the transaction that saves a processed ticket's state (the sidecar marks
        the ticket's inbox events done in it: one commit instead of two)."""
        self._interrupted: dict[str, bool] = {}
        """Tickets that had pending entries of an interrupted run when this pass read them."""

    async def run(self, *, catch_up: bool = True) -> DeskReport:
        """Take the lease, catch up on changes (unless ``catch_up`` is false: the sidecar's
        timer ticks between its catch-ups), fire due timers, release the lease."""
        if not self.options.dry_run and not self._take_lease():
            holder = self.store.lease_holder(self.desk, self.options.now)
            self.report.skipped = f"desk {self.desk} is being synced by {holder}; skipped"
            return self.report
        try:
            if catch_up or not self.roster.entries:
                # the roster is read with each catch-up; the sidecar's timer ticks in between
                # keep the copy the worker holds (a roster changes rarely, and reading it can
                # take a request per organization)
                await self.refresh_roster()
            if catch_up:
                await self._catch_up()
            await self._timers(candidates=catch_up)
        finally:
            if not self.options.dry_run:
                self.store.release_lease(self.desk, self.options.holder)
            stats = self.connector.http_stats()
            self.report.api_calls = stats.requests
            self.report.rate_limited = stats.rate_limited
        return self.report

    async def refresh_roster(self) -> None:
        """Read the desk's authorized-contact roster (if the connector has one) and audit how
        it changed since the last read (AUTH-2)."""
        if self.connector.supports(Capability.ROSTER):
            self.roster = await self.connector.roster()
            self._audit_roster_changes()

    def _audit_roster_changes(self) -> None:
        """AUTH-2: compare the roster with the copy seen last pass; audit every change."""
        previous = self.store.snapshot(self.desk, "roster")
        current = self.roster.model_dump_json()
        if previous == current:
            return
        if previous is None:  # the first pass: nothing to compare with, only remember it
            changes: tuple[RosterChange, ...] = ()
        else:
            changes = diff_rosters(Roster.model_validate_json(previous), self.roster)
        records = self.engine.roster_changed(
            changes, self.options.now, roster=self.roster, desk=self.desk
        )
        if self.options.dry_run:
            self.report.planned += [f"{self.desk}: {r.rule_id} {r.describe()}" for r in records]
            return
        entries = [
            AuditEntry(
                at=self.options.now,
                actor=getattr(r, "actor", "ticketwarden"),
                desk=self.desk,
                ticket_id="-",
                rule_id=r.rule_id,
                action=r.kind,
                reason=r.reason,
                outcome="recorded",
                detail=getattr(r, "message", r.describe()),
            )
            for r in records
        ]
        with self.store.transaction() as tx:
            self.store.append_audit(tx, entries)
            self.store.save_snapshot(tx, self.desk, "roster", current)
        for record in records:
            self.report.actions_by_rule[record.rule_id] += 1

    def _take_lease(self) -> bool:
        """Take the desk's lease; a lease left by a dead process on this machine (a killed
        run) is taken over at once instead of waiting for it to expire."""
        now, ttl, me = self.options.now, self.options.lease_ttl, self.options.holder
        if self.store.acquire_lease(self.desk, me, ttl, now):
            return True
        holder = self.store.lease_holder(self.desk, now)
        if holder is not None and holder_is_dead(holder):
            log.warning(
                "%s: taking over the lease of %s, which is no longer running", self.desk, holder
            )
            self.store.release_lease(self.desk, holder)
            return self.store.acquire_lease(self.desk, me, ttl, now)
        return False

    async def _catch_up(self) -> None:
        cursor = self.store.cursor(self.desk)
        since = None if cursor else self.options.now - self.options.candidate_lookback
        for _ in range(self.options.page_limit):
            page = await self.connector.changes(cursor, since=since)
            for ticket in page.tickets:
                self.report.tickets_read += 1
                await self._process(ticket)
                if self.on_progress:
                    self.on_progress(self.desk, self.report.tickets_read)
            cursor = page.cursor
            self.report.cursor = cursor
            if not self.options.dry_run:
                with self.store.transaction() as tx:
                    self.store.save_cursor(tx, self.desk, cursor)
                self.store.acquire_lease(
                    self.desk, self.options.holder, self.options.lease_ttl, self.options.now
                )
            if not page.has_more:
                return

    async def process(self, listed: Ticket, *, complete: bool | None = None) -> bool:
        """Turn one changed ticket into events, carry them out and fire its due timers; the
        sidecar's worker calls this for a ticket its webhooks named. ``complete`` says whether
        ``listed`` is the whole ticket (default: whatever the connector's change feed gives);
        if not, it is read again first. Returns false when the ticket failed (reported)."""
        failures = len(self.report.failures)
        await self._process(listed, complete=complete)
        return len(self.report.failures) == failures

    async def _process(self, listed: Ticket, *, complete: bool | None = None) -> None:
        """Turn one changed ticket into events and carry them out; failures are reported."""
        if complete is None:
            complete = self.connector.changes_are_complete
        try:
            state = self.store.state(self.desk, listed.id)
            ticket = listed
            if not complete:
                ticket = await self.connector.read_ticket(listed.id)
            own: frozenset[str] = frozenset()
            if state is not None:
                ticket, own = await self._recover(ticket)
            events = events_for(ticket, state, own_pending=own)
            self.report.events += len(events)
            for event in events:
                ticket, state = await self._evaluate(event, ticket, state)
            if state is None:  # a done ticket never seen: remember its facts for the timers
                state = self.engine.track(ticket, None, self.options.now, roster=self.roster)
            for _ in range(MAX_TIMERS_IN_HAND):
                # timers already due fire on the ticket in hand instead of reading it again
                due = state.next_due
                if due is None or due > self.options.now:
                    break
                event = Event(
                    id=f"stale:{ticket.id}:{due.isoformat()}",
                    kind=EventKind.STALE,
                    at=self.options.now,
                )
                self.report.timers += 1
                ticket, state = await self._evaluate(event, ticket, state)
                if state.next_due == due:
                    break
            self._save(ticket, state)
        except HelpdeskError as exc:
            self.report.failures.append(f"{listed.id}: {exc}")
            log.warning("%s ticket %s failed: %s", self.desk, listed.id, exc)

    async def _timers(self, *, candidates: bool = True) -> None:
        """Fire every stored due timer; with ``candidates``, also search the desk for tickets
        never seen whose timers may be due (part of a catch-up: tickets a webhook or the change
        feed brought in are known already)."""
        now = self.options.now
        done: set[str] = set()
        while True:  # every due timer, in batches; a ticket fires at most once per pass
            batch = [t for t in self.store.due(self.desk, now) if t not in done]
            if not batch:
                break
            for ticket_id in batch:
                done.add(ticket_id)
                await self._stale(ticket_id, self.store.state(self.desk, ticket_id))
        if not candidates or not self.connector.supports(Capability.CANDIDATES):
            return
        query = CandidateQuery(
            statuses=frozenset({Status.WAITING_ON_CUSTOMER, Status.RESOLVED}),
            updated_after=now - self.options.candidate_lookback,
            updated_before=now,
        )
        async for ticket in self.connector.candidates(query):  # streamed: flat memory
            if ticket.id not in done and not self.store.known(self.desk, [ticket.id]):
                done.add(ticket.id)
                await self._stale(ticket.id, None)

    async def _stale(self, ticket_id: str, state: TicketState | None) -> None:
        try:
            ticket = await self.connector.read_ticket(ticket_id)
            if state is not None:
                ticket, _ = await self._recover(ticket)
            # a ticket seen for the first time is observed as of its last update, so its
            # waiting time counts from then (HOURS-1, CLOSE-3)
            at = self.options.now if state is not None else ticket.updated_at
            due = state.next_due.isoformat() if state and state.next_due else "first"
            event = Event(id=f"stale:{ticket_id}:{due}", kind=EventKind.STALE, at=at)
            self.report.timers += 1
            ticket, new_state = await self._evaluate(event, ticket, state)
            self._save(ticket, new_state)
        except HelpdeskError as exc:
            self.report.failures.append(f"{ticket_id}: {exc}")
            log.warning("%s ticket %s failed: %s", self.desk, ticket_id, exc)

    async def _recover(self, ticket: Ticket) -> tuple[Ticket, frozenset[str]]:
        """Finish what a run that died left pending on this ticket, as it was planned: actions
        found landed are recorded, the others sent now. Returns the ticket as it is afterwards
        and the kinds of pending entries whose plan cannot be read (an older version's), which
        are settled once the ticket is evaluated again (see :meth:`Store.settle_interrupted`)."""
        actions, unreadable = self.store.pending_actions(self.desk, ticket.id)
        if unreadable:
            self._interrupted[ticket.id] = True
        if not actions or self.options.dry_run:
            return ticket, frozenset(unreadable)
        landed: list[tuple[BaseAction, ActionResult]] = []
        todo: list[BaseAction] = []
        for action in actions:
            if await self._landed(ticket, action):
                landed.append((action, _result(action, Outcome.APPLIED, LANDED)))
            else:
                todo.append(action)
        holder = self.options.holder
        with self.store.transaction() as tx:
            todo = self.store.mark_pending(
                tx, self.desk, ticket.id, todo, self.options.now, holder=holder
            )
            if landed:
                self.store.record_results(tx, self.desk, ticket.id, landed, self.options.now)
        results: list[ActionResult] = []
        try:
            if todo:
                log.info(
                    "%s ticket %s: finishing %d action(s) an interrupted run left pending",
                    self.desk,
                    ticket.id,
                    len(todo),
                )
                results = await self.connector.apply(ticket, todo)
        finally:
            with self.store.transaction() as tx:
                if results:
                    done = list(zip(todo, results, strict=True))
                    self.store.record_results(tx, self.desk, ticket.id, done, self.options.now)
                self.store.release_ticket(tx, self.desk, ticket.id, holder)
        for action, result in zip(todo, results, strict=True):
            self.report.outcomes[result.outcome] += 1
            if result.outcome == Outcome.FAILED:
                self.report.failures.append(f"{ticket.id}: {action.kind} failed: {result.detail}")
            if self.on_action:
                self.on_action(self.desk, ticket, action, result)
        if todo:
            ticket = await self.connector.read_ticket(ticket.id)
        return ticket, frozenset(unreadable)

    async def _landed(self, ticket: Ticket, action: BaseAction) -> bool:
        """Whether an action an interrupted run sent is on the freshly read ticket: a comment
        by its words, anything else as the connector recognises it."""
        if isinstance(action, AddComment) and _already_said(ticket, action):
            return True
        return await self.connector.already_applied(ticket, action)

    async def _evaluate(
        self, event: Event, ticket: Ticket, state: TicketState | None
    ) -> tuple[Ticket, TicketState]:
        """Evaluate one event and carry its actions out; on a concurrent agent edit re-read the
        ticket and evaluate again rather than overwrite."""
        for _ in range(MAX_CONFLICT_RETRIES):
            evaluation = self.engine.evaluate(
                event, ticket, state, self.options.now, roster=self.roster
            )
            try:
                await self._carry_out(ticket, evaluation)
            except ConflictError:
                ticket = await self.connector.read_ticket(ticket.id)
                continue
            return evaluation.projected, evaluation.state
        raise ConflictError(
            self.desk,
            f"ticket {ticket.id} kept changing while ticketwarden updated it; retried next run",
        )

    async def _carry_out(self, ticket: Ticket, evaluation: Evaluation) -> None:
        actions = list(evaluation.actions)
        self._asked.update(a.key for a in actions)
        for action in actions:
            self.report.actions_by_rule[action.rule_id] += 1
        if self.options.dry_run:
            for action in actions:
                self.report.planned.append(
                    f"{self.desk} {ticket.number}: {action.rule_id} {action.describe()} — "
                    f"{action.reason}"
                )
                if self.on_action:
                    self.on_action(self.desk, ticket, action, None)
            return
        todo = await self._not_yet_applied(ticket, actions)
        if not todo:
            return
        holder = self.options.holder
        with self.store.transaction() as tx:
            # claims the ticket: no other process sends to it until the outcome is recorded
            todo = self.store.mark_pending(
                tx, self.desk, ticket.id, todo, self.options.now, holder=holder
            )
            # Write ahead: the pending entries hold the plan and this is the state it leads
            # to. A run that dies now is *finished* as planned by the next one (_recover), not
            # planned again on a half-changed ticket, which can decide otherwise (a resolve
            # that landed makes INTAKE-2's hold, which it overruled, come back).
            planned = remember_seen(evaluation.state, evaluation.projected)
            self.store.save_state(tx, self.desk, ticket.id, planned)
        if not todo:
            with self.store.transaction() as tx:
                self.store.release_ticket(tx, self.desk, ticket.id, holder)
            return
        try:
            results = await self.connector.apply(ticket, todo)
        except BaseException:
            with self.store.transaction() as tx:  # pending stays: settled by already_applied
                self.store.release_ticket(tx, self.desk, ticket.id, holder)
            raise
        with self.store.transaction() as tx:
            self.store.record_results(
                tx, self.desk, ticket.id, list(zip(todo, results, strict=True)), self.options.now
            )
            self.store.release_ticket(tx, self.desk, ticket.id, holder)
        for action, result in zip(todo, results, strict=True):
            self.report.outcomes[result.outcome] += 1
            if result.outcome == Outcome.FAILED:
                self.report.failures.append(f"{ticket.id}: {action.kind} failed: {result.detail}")
            if self.on_action:
                self.on_action(self.desk, ticket, action, result)

    async def _not_yet_applied(
        self, ticket: Ticket, actions: Sequence[BaseAction]
    ) -> list[BaseAction]:
        ledger = self.store.ledger(a.key for a in actions)
        todo: list[BaseAction] = []
        fresh: Ticket | None = None
        landed: list[tuple[BaseAction, ActionResult]] = []
        for action in actions:
            entry = ledger.get(action.key)
            if entry is not None and entry.status != "pending":
                continue  # applied (or settled) before: never twice
            if isinstance(action, AddComment) and _already_said(ticket, action):
                # ticketwarden never posts the same text twice on a ticket: a message whose
                # occasion shifted across a crash recovery is recognised by its words; one
                # left pending by an interrupted run is that run's own comment, landed
                if entry is not None:
                    landed.append((action, _result(action, Outcome.APPLIED, LANDED)))
                else:
                    landed.append((action, _result(action, Outcome.UNCHANGED, SAID)))
                continue
            if entry is not None:
                fresh = fresh or await self.connector.read_ticket(ticket.id)
                if await self._landed(fresh, action):
                    landed.append((action, _result(action, Outcome.APPLIED, LANDED)))
                    continue
            todo.append(action)
        if landed:
            with self.store.transaction() as tx:
                self.store.record_results(tx, self.desk, ticket.id, landed, self.options.now)
        return todo

    def _save(self, ticket: Ticket, state: TicketState | None) -> None:
        if state is None or self.options.dry_run:
            return
        if self._interrupted.pop(ticket.id, False):
            settled = self.store.settle_interrupted(
                self.desk, ticket.id, self._asked, self.options.now, self.options.holder
            )
            for entry in settled:
                log.info(
                    "%s ticket %s: %s %s from an interrupted run settled (no longer asked for)",
                    self.desk,
                    ticket.id,
                    entry.rule_id,
                    entry.kind,
                )
        with self.store.transaction() as tx:
            self.store.save_state(tx, self.desk, ticket.id, remember_seen(state, ticket))
            if self.on_save is not None:
                self.on_save(tx)


LANDED = "found applied after an interrupted run"
SAID = "the same text is already on the ticket"


def _result(action: BaseAction, outcome: Outcome, detail: str) -> ActionResult:
    return ActionResult(key=action.key, kind=action.kind, outcome=outcome, detail=detail)


def _already_said(ticket: Ticket, action: AddComment) -> bool:
    wanted = " ".join(action.body.split())
    return any(
        c.author_role != AuthorRole.CUSTOMER
        and c.public == action.public
        and " ".join(c.body.split()) == wanted
        for c in ticket.comments
    )


def log_action_line(
    desk: str, ticket: Ticket, action: BaseAction, result: ActionResult | None
) -> str:
    """One structured log line per action (for non-terminal output)."""
    return json.dumps(
        {
            "at": datetime.now(UTC).isoformat(),
            "desk": desk,
            "ticket": ticket.number,
            "rule": action.rule_id,
            "action": action.kind,
            "outcome": result.outcome.value if result else "planned",
            "reason": action.reason,
        },
        ensure_ascii=False,
    )


def counts(reports: Iterable[DeskReport]) -> dict[str, int]:
    """Totals over several desks, for the closing summary."""
    total: Counter[str] = Counter()
    for report in reports:
        total["tickets"] += report.tickets_read
        total["actions"] += sum(report.actions_by_rule.values())
        total["failures"] += len(report.failures)
        total["api_calls"] += report.api_calls
        total["rate_limited"] += report.rate_limited
    return dict(total)
