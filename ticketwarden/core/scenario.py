"""Policy tests: scenarios that run the engine on simulated time and check what it does.

A scenario is a YAML file (see ``docs/policy-tests.md``): a policy (the default preset plus
overrides), a roster, one ticket, and a timeline of events at given moments — created,
customer reply, agent reply, status change by an agent, field change, escalation request,
agent action, roster change, or just time passing. Each step may name the actions it expects
(rule id, action kind, key parameters) and the actions that must not happen.

The runner simulates a helpdesk around the engine: events change the ticket the way a helpdesk
would (a customer reply to a ticket waiting on the customer reopens it; whether a reply reopens
a resolved ticket is left to the rules, CLOSE-4), the
engine's actions are applied to the ticket, and between steps every timer the engine asks for
(``next_due``) fires exactly on time through ``on_stale``. Expectations at a step are checked
against every action taken since the previous step, timers included. Actions ticketwarden
applies do not come back as events (the ledger recognises them on the real paths).

A scenario naming an unknown rule id, action kind or parameter is an *error*, never a pass.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ticketwarden.core.actions import ACTION_KINDS, ACTION_TYPES, BaseAction
from ticketwarden.core.clock import parse_span
from ticketwarden.core.context import TicketState
from ticketwarden.core.engine import Engine, Evaluation
from ticketwarden.core.model import (
    AuthorRole,
    Change,
    ChangeKind,
    Comment,
    Contact,
    Event,
    EventKind,
    Organization,
    Roster,
    Severity,
    Status,
    Ticket,
    diff_rosters,
)
from ticketwarden.core.policy import (
    Policy,
    PolicyError,
    deep_merge,
    format_validation_error,
    policy_data,
    policy_from_data,
)
from ticketwarden.core.registry import Plugins

DEFAULT_START = datetime.fromisoformat("2026-11-23T09:00:00+01:00")
"""Monday 23 November 2026, 09:00 in Berlin: inside the default business hours."""

MAX_TIMERS_PER_STEP = 500

_PARAMS: dict[str, frozenset[str]] = {
    str(t.model_fields["kind"].default): frozenset(t.model_fields) - set(BaseAction.model_fields)
    for t in ACTION_TYPES
}
_MATCH_EXTRAS = frozenset({"rule", "action", "contains", "count"})


class ScenarioError(ValueError):
    """A scenario file that cannot be run: the message names the file and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketSpec(_Strict):
    """The ticket at creation. Defaults make a complete ticket from an authorized contact, so a
    scenario only states what its rule is about."""

    number: str = "#1001"
    subject: str = "Dashboard totals differ from the exported report"
    description: str = (
        "The dashboard shows 120 devices, the exported report 118. Expected: both show the "
        "same number."
    )
    severity: int | None = 3
    requester: str = "anna@acme.example"
    requester_name: str = "Anna Berger"
    organization: str | None = "acme"
    fields: dict[str, str | None] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    def fields_with_defaults(self) -> dict[str, str]:
        """The default intake fields overridden by the scenario's (``null`` removes one)."""
        merged: dict[str, str | None] = {
            "server_url": "https://kaseya.acme.example",
            "module": "Reporting",
            "steps": "1. Open the dashboard. 2. Export the device report. 3. Compare totals.",
            "sample_machines": "group acme.berlin / machine ws-0042",
            "version": "10.1.2",
            **self.fields,
        }
        return {k: v for k, v in merged.items() if v is not None}


class Expectation(_Strict):
    """An action expected (or forbidden) at a step: rule id, kind and key parameters."""

    rule: str | None = None
    action: str | None = None
    contains: str | None = Field(None, description="substring of the comment body or message")
    count: int | None = Field(None, ge=0, description="exactly this many matching actions")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_params(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("an expectation is a mapping like {rule: CLOSE-3, action: comment}")
        known = {k: v for k, v in data.items() if k in _MATCH_EXTRAS}
        params = {k: v for k, v in data.items() if k not in _MATCH_EXTRAS}
        return {**known, "params": params}

    def describe(self) -> str:
        """The expectation as it was written."""
        parts = [f"rule={self.rule}"] if self.rule else []
        parts += [f"action={self.action}"] if self.action else []
        parts += [f"{k}={v}" for k, v in self.params.items()]
        parts += [f"contains={self.contains!r}"] if self.contains else []
        parts += [f"count={self.count}"] if self.count is not None else []
        return "{" + ", ".join(parts) + "}"


class TicketCheck(_Strict):
    """What the ticket must look like after a step."""

    status: Status | None = None
    severity: int | None = None
    priority: str | None = None
    group: str | None = None
    tags: list[str] = Field(default_factory=list, description="tags that must be present")
    absent_tags: list[str] = Field(default_factory=list)
    next_due: datetime | Literal["none"] | None = None


class StepKind(enum.StrEnum):
    """What happens at a step."""

    CREATED = "created"
    CUSTOMER_REPLY = "customer_reply"
    AGENT_REPLY = "agent_reply"
    AGENT_NOTE = "agent_note"
    STATUS_CHANGE = "status_change"
    FIELD_CHANGE = "field_change"
    ESCALATION_REQUEST = "escalation_request"
    AGENT_ACTION = "agent_action"
    ROSTER_CHANGE = "roster_change"
    TIME_PASSES = "time_passes"


class Step(_Strict):
    """One moment of the timeline."""

    at: str | datetime = Field(description="offset from the start like '2d4h', or an ISO timestamp")
    event: StepKind
    body: str = ""
    author: str | None = None
    public: bool = True
    status: Status | None = None
    reason: str | None = Field(None, description="resolution reason with status: resolved")
    severity: int | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    tags_add: list[str] = Field(default_factory=list)
    tags_remove: list[str] = Field(default_factory=list)
    action: str | None = Field(None, description="agent_action: what the agent did")
    note: str = ""
    roster: list[dict[str, Any]] | None = None
    expect: list[Expectation] = Field(default_factory=list)
    forbid: list[Expectation] = Field(default_factory=list)
    then: TicketCheck | None = None


class Scenario(_Strict):
    """A whole policy test."""

    name: str
    rules: list[str] = Field(min_length=1, description="the rule ids this scenario shows")
    description: str = ""
    start: datetime = DEFAULT_START
    policy: dict[str, Any] = Field(default_factory=dict)
    roster: list[dict[str, Any]] | None = None
    ticket: TicketSpec = TicketSpec()
    timeline: list[Step] = Field(min_length=1)


DEFAULT_ROSTER: list[dict[str, Any]] = [
    {
        "organization": "acme",
        "contacts": [
            {"email": "anna@acme.example", "name": "Anna Berger", "phone": "+49 30 1234 0"},
            {"email": "ben@acme.example", "name": "Ben Hofmann"},
        ],
    }
]


# --- Results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TakenAction:
    """An action the engine took during the simulation, and when."""

    at: datetime
    hook: str
    action: BaseAction

    def line(self) -> str:
        """``+2d 09:00 CLOSE-3 comment public=True body=...``"""
        return (
            f"{self.at.isoformat()} [{self.hook}] {self.action.rule_id}: {self.action.describe()}"
        )


@dataclass
class StepResult:
    """What happened in one step and which checks failed."""

    index: int
    step: Step
    at: datetime
    taken: list[TakenAction] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    """The outcome of one scenario: passed, failed (with diffs) or an error."""

    path: str
    name: str
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        """No error and no failed check."""
        return self.error is None and not any(s.failures for s in self.steps)

    @property
    def outcome(self) -> str:
        """``passed``, ``failed`` or ``error``."""
        return "error" if self.error else ("passed" if self.passed else "failed")


# --- Loading ----------------------------------------------------------------------------------


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; errors name the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a YAML mapping with name, rules and timeline")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            format_validation_error(exc, str(path)).replace("in the policy", "in the scenario")
        ) from None


def find_scenarios(paths: Sequence[Path]) -> list[Path]:
    """Scenario files under the given files and directories (``*.yaml``/``*.yml``), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            found.append(path)
        else:
            raise ScenarioError(f"{path}: no such file or directory")
    return found


def _moment(text: str | datetime, start: datetime) -> datetime:
    if isinstance(text, datetime):
        at = text
        if at.tzinfo is None:
            raise ValueError(f"timestamp {text.isoformat()} needs a time zone")
        return at
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        span = parse_span(text)
        return start + span.to_timedelta(timedelta(days=1))
    if at.tzinfo is None:
        raise ValueError(f"timestamp {text!r} needs a time zone")
    return at


def _validate_expectations(
    scenario: Scenario, known_rules: frozenset[str], where: str
) -> list[str]:
    problems = []
    unknown = sorted(set(scenario.rules) - known_rules)
    if unknown:
        problems.append(f"{where}: rules: unknown rule id(s) {', '.join(unknown)}")
    for i, step in enumerate(scenario.timeline):
        for kind, items in (("expect", step.expect), ("forbid", step.forbid)):
            for j, exp in enumerate(items):
                loc = f"{where}: timeline[{i}].{kind}[{j}]"
                if exp.rule is not None and exp.rule not in known_rules:
                    problems.append(f"{loc}: unknown rule id {exp.rule!r}")
                if exp.action is not None and exp.action not in ACTION_KINDS:
                    problems.append(
                        f"{loc}: unknown action kind {exp.action!r} "
                        f"(known: {', '.join(sorted(ACTION_KINDS))})"
                    )
                if exp.action is not None and exp.action not in _PARAMS:
                    continue
                allowed = (
                    _PARAMS[exp.action] if exp.action else frozenset().union(*_PARAMS.values())
                )
                for name in exp.params:
                    if name not in allowed:
                        problems.append(
                            f"{loc}: unknown parameter {name!r} for "
                            f"{exp.action or 'any action'} (known: {', '.join(sorted(allowed))})"
                        )
        if step.status is not None and step.event not in (
            StepKind.STATUS_CHANGE,
            StepKind.AGENT_REPLY,
            StepKind.CUSTOMER_REPLY,
        ):
            problems.append(
                f"{where}: timeline[{i}]: status goes with status_change or a reply, "
                f"not with {step.event}"
            )
    return problems


# --- Matching ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    return value


def matches(exp: Expectation, action: BaseAction) -> bool:
    """Whether an action satisfies an expectation (tags: the expected ones are present)."""
    if exp.rule is not None and action.rule_id != exp.rule:
        return False
    if exp.action is not None and action.kind != exp.action:
        return False
    for name, wanted in exp.params.items():
        if not hasattr(action, name):
            return False
        have = _plain(getattr(action, name))
        if isinstance(have, list):
            want = sorted(wanted) if isinstance(wanted, list) else [wanted]
            if not set(want) <= set(have):
                return False
        elif have != wanted and str(have) != str(wanted):
            return False
    if exp.contains is not None:
        text = " ".join(
            str(getattr(action, name, "")) for name in ("body", "message", "subject", "reason")
        )
        if exp.contains.lower() not in text.lower():
            return False
    return True


def _check(
    step: Step, taken: list[TakenAction], ticket: Ticket | None, state: TicketState
) -> list[str]:
    failures = []
    actions = [t.action for t in taken]
    for exp in step.expect:
        found = [a for a in actions if matches(exp, a)]
        if exp.count is not None and len(found) != exp.count:
            failures.append(f"expected {exp.count} × {exp.describe()}, got {len(found)}")
        elif exp.count is None and not found:
            failures.append(f"expected {exp.describe()}, but no action matched")
    for exp in step.forbid:
        found = [a for a in actions if matches(exp, a)]
        if found:
            failures.append(
                f"forbidden {exp.describe()} happened: "
                + "; ".join(f"{a.rule_id}: {a.describe()}" for a in found)
            )
    check = step.then
    if check is not None and ticket is not None:
        if check.status is not None and ticket.status != check.status:
            failures.append(f"ticket status is {ticket.status}, expected {check.status}")
        if check.severity is not None and ticket.severity != check.severity:
            failures.append(f"ticket severity is {ticket.severity}, expected {check.severity}")
        if check.priority is not None and (ticket.priority or "") != check.priority:
            failures.append(f"ticket priority is {ticket.priority}, expected {check.priority}")
        if check.group is not None and ticket.group != check.group:
            failures.append(f"ticket group is {ticket.group}, expected {check.group}")
        missing = sorted(set(check.tags) - ticket.tags)
        if missing:
            failures.append(f"ticket lacks tags {missing} (has {sorted(ticket.tags)})")
        present = sorted(set(check.absent_tags) & ticket.tags)
        if present:
            failures.append(f"ticket still has tags {present}")
        if check.next_due is not None:
            want = None if check.next_due == "none" else check.next_due
            if state.next_due != want:
                failures.append(f"next due is {state.next_due}, expected {want}")
    return failures


# --- Simulation -------------------------------------------------------------------------------


class _Desk:
    """The simulated helpdesk: one ticket, its policy state, and the engine."""

    def __init__(self, engine: Engine, roster: Roster) -> None:
        self.engine = engine
        self.roster = roster
        self.ticket: Ticket | None = None
        self.state = TicketState()
        self.seq = 0

    def evaluate(self, event: Event, now: datetime) -> Iterator[TakenAction]:
        assert self.ticket is not None
        result: Evaluation = self.engine.evaluate(
            event, self.ticket, self.state, now, roster=self.roster
        )
        self.ticket = result.projected
        self.state = result.state
        for action in result.actions:
            yield TakenAction(at=now, hook=result.explanation.hook, action=action)

    def run_timers(self, until: datetime) -> list[TakenAction]:
        taken: list[TakenAction] = []
        fired = 0
        while self.ticket is not None and self.state.next_due is not None:
            due = self.state.next_due
            if due > until:
                break
            fired += 1
            if fired > MAX_TIMERS_PER_STEP:
                raise ScenarioError(
                    f"a rule keeps asking to be called at {due.isoformat()} without moving on"
                )
            before = self.state
            due = due.astimezone(until.tzinfo)
            event = Event(id=f"stale:{due.isoformat()}", kind=EventKind.STALE, at=due)
            taken += self.evaluate(event, due)
            if self.state.next_due == before.next_due and self.state == before.model_copy(
                update={"next_due": due}
            ):
                raise ScenarioError(
                    f"timer at {due.isoformat()} fired but nothing changed: a next_due hook "
                    "reports a time at which its on_stale does nothing"
                )
        return taken

    def comment(
        self, role: AuthorRole, body: str, at: datetime, author: str, public: bool
    ) -> Comment:
        self.seq += 1
        return Comment(
            id=f"c{self.seq}",
            author_role=role,
            author=author,
            body=body,
            public=public,
            created_at=at,
        )


def _roster(data: list[dict[str, Any]] | None) -> Roster:
    return Roster.model_validate({"entries": DEFAULT_ROSTER if data is None else data})


def _apply_step(desk: _Desk, step: Step, at: datetime, spec: TicketSpec) -> list[TakenAction]:
    """Turn one timeline step into helpdesk changes and engine evaluations."""
    if step.event == StepKind.TIME_PASSES:
        return []
    if step.event == StepKind.ROSTER_CHANGE:
        new = _roster(step.roster)
        changes = diff_rosters(desk.roster, new)
        desk.roster = new
        return [
            TakenAction(at=at, hook="on_roster_changed", action=a)
            for a in desk.engine.roster_changed(changes, at, roster=new)
        ]
    if step.event == StepKind.CREATED:
        if desk.ticket is not None:
            raise ScenarioError("the ticket is created twice")
        desk.ticket = Ticket(
            id="1",
            number=spec.number,
            subject=spec.subject,
            description=spec.description,
            status=Status.NEW,
            severity=Severity(spec.severity) if spec.severity is not None else None,
            requester=Contact(id="requester", name=spec.requester_name, email=spec.requester),
            organization=Organization(id=spec.organization, name=spec.organization.title())
            if spec.organization
            else None,
            fields=spec.fields_with_defaults(),
            tags=frozenset(spec.tags),
            created_at=at,
            updated_at=at,
        )
        return list(desk.evaluate(Event(id="created", kind=EventKind.CREATED, at=at), at))
    ticket = desk.ticket
    if ticket is None:
        raise ScenarioError(f"{step.event} before the ticket was created")
    previous = ticket.status
    update: dict[str, Any] = {"updated_at": at}
    comment = None
    fields_changed: set[str] = set()
    status = step.status
    if step.event == StepKind.CUSTOMER_REPLY:
        comment = desk.comment(
            AuthorRole.CUSTOMER, step.body, at, step.author or ticket.requester.email, True
        )
        if previous in (Status.WAITING_ON_CUSTOMER, Status.NEW):
            status = status or Status.OPEN
        kind = ChangeKind.CUSTOMER_REPLY
    elif step.event in (StepKind.AGENT_REPLY, StepKind.AGENT_NOTE):
        public = step.public and step.event == StepKind.AGENT_REPLY
        comment = desk.comment(AuthorRole.AGENT, step.body, at, step.author or "agent", public)
        kind = ChangeKind.AGENT_REPLY if public else ChangeKind.AGENT_NOTE
        if previous == Status.NEW:
            status = status or Status.OPEN
    elif step.event == StepKind.STATUS_CHANGE:
        kind = ChangeKind.STATUS_CHANGE
        if status is None:
            raise ScenarioError("status_change needs a status")
    elif step.event == StepKind.ESCALATION_REQUEST:
        kind = ChangeKind.ESCALATION_REQUEST
    elif step.event == StepKind.AGENT_ACTION:
        kind = ChangeKind.AGENT_ACTION
    else:
        kind = ChangeKind.FIELD_CHANGE
    if previous == Status.CLOSED:
        status = None  # a closed ticket never changes (CLOSE-5)
    if comment is not None and previous != Status.CLOSED:
        update["comments"] = (*ticket.comments, comment)
    if status is not None and status != previous:
        update["status"] = status
        fields_changed.add("status")
        if status == Status.RESOLVED:
            update["resolved_at"] = at
            update["resolution_reason"] = step.reason
    if step.severity is not None:
        update["severity"] = Severity(step.severity)
        fields_changed.add("severity")
    if step.fields:
        update["fields"] = {**ticket.fields, **step.fields}
        fields_changed |= set(step.fields)
    if step.tags_add or step.tags_remove:
        update["tags"] = (ticket.tags | set(step.tags_add)) - set(step.tags_remove)
        fields_changed.add("tags")
    desk.ticket = ticket.model_copy(update=update)
    change = Change(
        kind=kind,
        at=at,
        actor=step.author
        or ("agent" if kind != ChangeKind.CUSTOMER_REPLY else ticket.requester.email),
        comment=comment,
        previous_status=previous,
        fields_changed=frozenset(fields_changed),
        tags_added=frozenset(step.tags_add),
        tags_removed=frozenset(step.tags_remove),
        agent_action=step.action,
        note=step.note,
    )
    desk.seq += 1
    taken = list(
        desk.evaluate(Event(id=f"u{desk.seq}", kind=EventKind.UPDATED, at=at, change=change), at)
    )
    if (
        desk.ticket.status == Status.RESOLVED
        and previous != Status.RESOLVED
        and status == Status.RESOLVED
    ):
        taken += desk.evaluate(Event(id=f"r{desk.seq}", kind=EventKind.RESOLVED, at=at), at)
    return taken


def run_scenario(
    path: Path, plugins: Plugins, *, base_policy: Policy | None = None
) -> ScenarioResult:
    """Load and run one scenario file against the registered rule plugins."""
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        return ScenarioResult(path=str(path), name=path.stem, error=str(exc))
    result = ScenarioResult(path=str(path), name=scenario.name)
    problems = _validate_expectations(scenario, plugins.rule_ids(), str(path))
    if problems:
        result.error = "\n".join(problems)
        return result
    try:
        base = policy_data(base_policy) if base_policy is not None else {}
        policy = policy_from_data(deep_merge(base, scenario.policy), f"{path}: policy")
        roster = _roster(scenario.roster)
        desk = _Desk(Engine(plugins, policy), roster)
        previous = scenario.start
        for index, step in enumerate(scenario.timeline):
            try:
                at = _moment(step.at, scenario.start)
            except ValueError as exc:
                raise ScenarioError(f"timeline[{index}].at: {exc}") from None
            if at < previous:
                raise ScenarioError(
                    f"timeline[{index}].at: {at.isoformat()} is before the previous step "
                    f"({previous.isoformat()}); steps must be in time order"
                )
            taken = desk.run_timers(at)
            taken += _apply_step(desk, step, at, scenario.ticket)
            taken += desk.run_timers(at)
            outcome = StepResult(index=index, step=step, at=at, taken=taken)
            outcome.failures = _check(step, taken, desk.ticket, desk.state)
            result.steps.append(outcome)
            previous = at
    except (PolicyError, ScenarioError, ValidationError, ValueError) as exc:
        message = str(exc)
        if isinstance(exc, ValidationError):
            message = format_validation_error(exc, str(path))
        result.error = message if message.startswith(str(path)) else f"{path}: {message}"
    return result
