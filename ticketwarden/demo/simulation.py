"""``ticketwarden demo``: a fortnight of support on every built-in helpdesk, in under a minute.

Everything is embedded and real except the helpdesks and the clock:

- the built-in emulators (Zendesk, Jira Service Management, Freshdesk) serve their APIs on
  loopback ports, seeded with fictitious organizations and their rosters;
- the sidecar (the same app as ``ticketwarden serve``) listens on loopback and receives the
  emulators' signed webhooks — for the customers' and agents' changes and for ticketwarden's
  own, as a helpdesk's triggers would send them;
- its worker carries each webhook out and its scheduler runs the sync job's pass for the
  timers, against a SQLite store in the work directory;
- one simulated clock, shared by the emulators, the connectors and the engine, jumps from one
  story step to the next, so two weeks pass in seconds.

The stories (:mod:`ticketwarden.demo.stories`) are the shipped policy scenarios re-cast many
times over. One event loop runs everything, one event at a time: the same seed gives the same
tickets, the same actions and the same report.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ticketwarden.core.connector import Connector, DeskConfig, DeskSecrets, Runtime
from ticketwarden.core.engine import Engine
from ticketwarden.core.model import Contact, EventKind, Organization, Severity, Status, Ticket
from ticketwarden.core.policy import Policy, policy_data, policy_from_data
from ticketwarden.core.registry import load_plugins
from ticketwarden.core.scenario import Step, StepKind
from ticketwarden.core.settings import Config, ServeSettings
from ticketwarden.core.sidecar import Sidecar, build
from ticketwarden.core.store import AuditFilter, Store
from ticketwarden.demo.stories import (
    ORGANIZATIONS,
    Person,
    Story,
    build_stories,
    demo_policy_overrides,
    people,
    roster_delta,
    templates,
    ticket_fields,
)
from ticketwarden.testing.emulator import FakeClock

START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
"""The simulated fortnight starts on Monday 23 November 2026, 08:00 in Berlin."""
HIGH_LIMIT = 10_000_000
"""Requests a minute the emulators allow: the demo measures the policy, not a plan's limit."""


@dataclass
class DemoOptions:
    """What ``ticketwarden demo`` runs."""

    days: int = 14
    tickets: int = 300
    seed: int = 1
    workdir: Path = Path(".")
    timers_every: timedelta = timedelta(hours=1)
    catch_up_every: timedelta = timedelta(hours=6)


@dataclass
class DemoResult:
    """What the demo did, for the summary."""

    tickets_by_desk: Counter[str] = field(default_factory=Counter)
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(rule, desk) → actions carried out (audit rows that did not fail)."""
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    citing: int = 0
    """Public comments carrying the ticket-number notice (INTAKE-3)."""
    report: Any = None
    """The :class:`~ticketwarden.core.report.Report` over the fortnight."""
    webhooks: int = 0
    rules: tuple[str, ...] = ()
    report_path: Path | None = None
    database: Path | None = None
    started: datetime = START
    ended: datetime = START

    def by_rule(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (rule, _), n in self.actions.items():
            totals[rule] += n
        return dict(totals)


ProgressCallback = Callable[[datetime, int, int], None]
"""Called as simulated time moves: (now, tickets created so far, actions so far)."""


# --- the helpdesks --------------------------------------------------------------------------------


class DemoDesk:
    """One built-in helpdesk in the demo: its emulator and how the stories play on it."""

    name: str = ""
    rich: bool = False
    """Whether agents' steps (replies, resolutions, field changes) can be played here."""

    def __init__(self, connector: type[Connector], clock: FakeClock, port: int) -> None:
        self.connector = connector
        emulator_class = connector.emulator()
        assert emulator_class is not None
        self.base_url = f"http://127.0.0.1:{port}"
        self.port = port
        self.emulator: Any = emulator_class(
            clock=clock, rate_limit=HIGH_LIMIT, base_url=self.base_url
        )
        self.config, self.secrets = self._config()
        self.ids: dict[int, str] = {}

    def _config(self) -> tuple[DeskConfig, DeskSecrets]:
        config, secrets = self.connector.conformance_config(self.base_url)
        budget = {"requests_per_minute": HIGH_LIMIT, "share": 1.0, "burst": 10_000}
        http = config.http.model_copy(
            update={"budget": config.http.budget.model_copy(update=budget)}
        )
        return config.model_copy(update={"name": self.name, "http": http}), secrets

    def seed_roster(self, org: str, org_name: str, contacts: Iterable[Person]) -> None:
        raise NotImplementedError

    def subscribe(self, url: str) -> None:
        assert self.secrets.webhook_secret is not None
        self.emulator.subscribe(url, self.secrets.webhook_secret.get_secret_value())

    def create(self, story: Story, at: datetime) -> str:
        spec = story.ticket
        ticket = Ticket(
            id="new",
            number="new",
            subject=spec.subject,
            description=spec.description,
            status=Status.NEW,
            severity=Severity(spec.severity) if spec.severity is not None else None,
            requester=Contact(
                id=story.requester.email, email=story.requester.email, name=story.requester.name
            ),
            organization=Organization(id=story.org, name=story.org_name)
            if spec.organization
            else None,
            fields=ticket_fields(story),
            tags=frozenset(spec.tags),
            created_at=at,
            updated_at=at,
        )
        ticket_id = str(self.emulator.add_ticket(ticket))
        self.ids[story.index] = ticket_id
        return ticket_id

    def customer_reply(self, ticket_id: str, body: str) -> None:
        self.emulator.customer_reply(ticket_id, body)

    def agent(self, ticket_id: str, step: Step) -> None:
        raise NotImplementedError(f"{self.name} plays no agent steps in the demo")

    def roster_change(self, org: str, changed: Sequence[Person], removed: Sequence[str]) -> None:
        raise NotImplementedError(f"{self.name} plays no roster changes in the demo")

    def comments_citing_the_number(self) -> int:
        """ticketwarden's public comments that end with the ticket-number notice (INTAKE-3,
        which changes other rules' comments rather than acting itself); 0 where the demo
        does not look."""
        return 0


class ZendeskDesk(DemoDesk):
    """Zendesk: every kind of step, through the emulator's agent and user hooks."""

    name = "zendesk"
    rich = True

    def seed_roster(self, org: str, org_name: str, contacts: Iterable[Person]) -> None:
        self.emulator.add_organization(org_name, external_id=org)
        for person in contacts:
            self._user(org, person)

    def _user(self, org: str, person: Person) -> None:
        self.emulator.add_user(
            person.email,
            person.name,
            organization=org,
            phone=person.phone,
            authorized=person.authorized,
            certified_until=person.certified_until,
            available_24x7=person.available_24x7,
        )

    def agent(self, ticket_id: str, step: Step) -> None:
        from ticketwarden.plugins.zendesk import fixtures
        from ticketwarden.plugins.zendesk.emulator import ZENDESK_STATUS

        current = self.emulator.tickets[int(ticket_id)].status
        if current == "closed":
            return  # Zendesk refuses any change to a closed ticket
        changes: dict[str, Any] = {}
        custom: dict[int, Any] = {}
        status = step.status
        if step.event in (StepKind.AGENT_REPLY, StepKind.AGENT_NOTE):
            public = step.public and step.event == StepKind.AGENT_REPLY
            changes["comment"] = {"body": step.body, "public": public}
            if current == "new" and status is None:
                status = Status.OPEN
        if status is not None:
            changes["status"] = ZENDESK_STATUS[status]
        if step.reason:
            custom[fixtures.TICKET_FIELDS["resolution_reason"]] = step.reason
        for name, value in step.fields.items():
            if name in fixtures.TICKET_FIELDS:
                custom[fixtures.TICKET_FIELDS[name]] = value
        if step.severity is not None:
            tag = next(t for t, n in fixtures.SEVERITY_VALUES.items() if n == step.severity)
            custom[fixtures.TICKET_FIELDS["severity"]] = tag
        if custom:
            changes["custom_fields"] = custom
        if step.tags_add:
            changes["additional_tags"] = list(step.tags_add)
        if step.tags_remove:
            changes["remove_tags"] = list(step.tags_remove)
        if changes:
            self.emulator.agent_update(ticket_id, **changes)

    def comments_citing_the_number(self) -> int:
        from ticketwarden.plugins.zendesk import fixtures

        return sum(
            1
            for ticket in self.emulator.tickets.values()
            for c in ticket.comments
            if c["author_id"] == fixtures.AGENT_ID
            and c.get("public")
            and "please cite this ticket number" in c["body"]
        )

    def roster_change(self, org: str, changed: Sequence[Person], removed: Sequence[str]) -> None:
        for person in changed:
            self._user(org, person)
        for email in removed:
            self._user(org, Person(email=email, name=email.split("@")[0], authorized=False))


class JiraDesk(DemoDesk):
    """Jira Service Management: organizations carry the roster as properties."""

    name = "jira"

    def seed_roster(self, org: str, org_name: str, contacts: Iterable[Person]) -> None:
        from ticketwarden.plugins.jira import fixtures

        listed = list(contacts)
        properties = {
            fixtures.ORG_PROPERTIES["authorized"]: [p.email for p in listed if p.authorized],
            fixtures.ORG_PROPERTIES["available_24x7"]: [
                p.email for p in listed if p.available_24x7
            ],
        }
        self.emulator.add_organization(org_name, properties)
        for person in listed:
            self.emulator.add_customer(person.email, person.name, organization=org_name)


class FreshdeskDesk(DemoDesk):
    """Freshdesk: contacts carry the roster in their custom fields."""

    name = "freshdesk"

    def seed_roster(self, org: str, org_name: str, contacts: Iterable[Person]) -> None:
        self.emulator.add_company(org_name)
        for person in contacts:
            self.emulator.add_contact(
                person.email,
                person.name,
                company=org_name,
                phone=person.phone,
                authorized=person.authorized,
                certified_until=person.certified_until,
                available_24x7=person.available_24x7,
            )


DESKS: dict[str, type[DemoDesk]] = {
    "zendesk": ZendeskDesk,
    "jira": JiraDesk,
    "freshdesk": FreshdeskDesk,
}


# --- the run -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_policy(scenarios: Sequence[Any]) -> Policy:
    """The built-in preset plus what the replayed scenarios need (end-of-life dates)."""
    data = policy_data(policy_from_data({}))
    for key, value in demo_policy_overrides(scenarios).items():
        data[key] = {**data.get(key, {}), **value}
    return policy_from_data(data, "the demo policy")


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[None]:
    """Serve ``app`` on ``127.0.0.1:port`` in this event loop for the block's duration."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="error", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    # Ctrl-C belongs to the demo, not to four servers' shutdown handlers
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@dataclass(order=True)
class _Due:
    at: datetime
    order: int
    story: Story = field(compare=False)
    step: Step = field(compare=False)


async def run_demo(options: DemoOptions, *, progress: ProgressCallback | None = None) -> DemoResult:
    """Run the simulated fortnight; the database and the HTML report go to ``workdir``."""
    plugins = load_plugins(allow=None, block=())
    connectors = plugins.connectors()
    directory = Path(str(resources.files("ticketwarden") / "examples" / "scenarios"))
    if not directory.is_dir():  # a source checkout, not an installed wheel
        directory = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
    scenarios = templates(directory)
    policy = demo_policy(scenarios)
    clock = FakeClock(START)
    desks = [
        DESKS[name](connectors[name], clock, free_port()) for name in DESKS if name in connectors
    ]
    rich = next(d for d in desks if d.rich)
    stories = build_stories(
        scenarios,
        options.tickets,
        start=START,
        days=options.days,
        seed=options.seed,
        desks=[d.name for d in desks],
        rich_desk=rich.name,
    )
    for desk in desks:
        for slug, name in ORGANIZATIONS:
            desk.seed_roster(slug, name, people(slug).values())

    database = options.workdir / "ticketwarden.db"
    store = Store(f"sqlite:///{database}")
    config = Config(
        policy=policy,
        desks={d.name: d.config for d in desks},
        serve=ServeSettings(
            catch_up_every=f"{int(options.catch_up_every.total_seconds())}s",
            timers_every=f"{int(options.timers_every.total_seconds())}s",
        ),
    )
    sidecar_port = free_port()
    sidecar: Sidecar = build(
        config,
        store,
        Engine(plugins, policy),
        {d.name: d.connector for d in desks},
        {d.name: d.secrets for d in desks},
        runtime=Runtime(clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.time),
        clock=clock.now,
        monotonic=clock.monotonic,
        run_worker=False,
    )
    worker = sidecar.worker
    assert worker is not None
    by_name = {d.name: d for d in desks}
    result = DemoResult(started=START)
    end = START + timedelta(days=options.days)

    queue: list[_Due] = []
    for story in stories:
        for order, item in enumerate(story.steps):
            at = story.start + item.offset
            if at < end:
                heapq.heappush(queue, _Due(at, story.index * 1000 + order, story, item.step))

    loopback = httpx.AsyncHTTPTransport()  # one connection pool for every delivery

    async def settle() -> None:
        """Deliver every queued webhook and carry them out, until the desks are quiet."""
        for _ in range(6):
            delivered = 0
            for desk in desks:
                responses = await desk.emulator.deliver_webhooks(transport=loopback)
                delivered += len(responses)
            result.webhooks += delivered
            handled = await worker.drain()
            if not delivered and not handled:
                return

    async with contextlib.AsyncExitStack() as stack:
        for desk in desks:
            await stack.enter_async_context(serving(desk.emulator, desk.port))
        await stack.enter_async_context(serving(sidecar.app, sidecar_port))
        for desk in desks:
            desk.subscribe(f"http://127.0.0.1:{sidecar_port}/webhooks/{desk.name}")
        created = 0
        next_tick = START
        while True:
            upcoming = queue[0].at if queue else end
            if next_tick <= upcoming and next_tick < end:
                _advance(clock, next_tick)
                await worker.tick()
                await settle()
                next_tick += options.timers_every
                if progress:
                    progress(clock.now(), created, _actions(store))
                continue
            if not queue or upcoming >= end:
                break
            due = heapq.heappop(queue)
            _advance(clock, due.at)
            desk = by_name[due.story.desk]
            if await _play(desk, due, result):
                created += 1
            await settle()
        _advance(clock, end)
        result.citing = sum(d.comments_citing_the_number() for d in desks)
        await worker.aclose()
        await loopback.aclose()

    result.ended = end
    _tally(store, result)
    result.rules = tuple(sorted(plugins.rule_ids()))
    result.database = database
    result.report, result.report_path = _report(store, policy, options.workdir, end)
    store.close()
    return result


def _advance(clock: FakeClock, at: datetime) -> None:
    seconds = (at - clock.now()).total_seconds()
    if seconds > 0:
        clock.advance(seconds)


async def _play(desk: DemoDesk, due: _Due, result: DemoResult) -> bool:
    """Play one story step on its desk; true when it created the ticket."""
    step, story = due.step, due.story
    if step.event == StepKind.CREATED:
        ticket_id = desk.create(story, due.at)
        assert desk.secrets.webhook_secret is not None
        desk.emulator.outbox.extend(_created(desk, ticket_id))
        result.tickets_by_desk[desk.name] += 1
        return True
    known = desk.ids.get(story.index)
    if known is None or step.event == StepKind.TIME_PASSES:
        return False
    ticket_id = known
    if step.event == StepKind.CUSTOMER_REPLY:
        desk.customer_reply(ticket_id, step.body)
    elif step.event == StepKind.ROSTER_CHANGE:
        changed, removed = roster_delta(step, story.org)
        desk.roster_change(story.org, changed, removed)
    else:
        desk.agent(ticket_id, step)
    return False


def _created(desk: DemoDesk, ticket_id: str) -> list[Any]:
    """The helpdesk's "ticket created" trigger firing, in the emulator's own outbox shape."""
    if desk.name == "jira":
        millis = int(desk.emulator.clock.time() * 1000)
        return [(s, ticket_id, "jira:issue_created", millis) for s in desk.emulator.subscriptions]
    return [(s, ticket_id, EventKind.CREATED) for s in desk.emulator.subscriptions]


def _actions(store: Store) -> int:
    with store.reading() as connection:
        from sqlalchemy import text

        return int(connection.execute(text("SELECT count(*) FROM audit_log")).scalar_one())


def _tally(store: Store, result: DemoResult) -> None:
    for row in store.audit(AuditFilter()):
        if row.rule_id.startswith("-"):
            continue
        if row.outcome == "failed":
            result.failed[(row.rule_id, row.desk)] += 1
        else:
            result.actions[(row.rule_id, row.desk)] += 1


def _report(store: Store, policy: Policy, directory: Path, end: datetime) -> tuple[Any, Path]:
    from ticketwarden.reporting import load_report
    from ticketwarden.reporting.html import write_html

    report = load_report(store, policy, since=START, until=end, now=end)
    path = directory / "report.html"
    write_html(report, path)
    return report, path


CLOCK_RULES = frozenset({"HOURS-1"})
"""Rules that act through the clocks of the others (business hours, pauses) and raise no
action of their own unless a support plan changes mid-ticket."""
WRAPPING_RULES = frozenset({"INTAKE-3"})
"""Rules that change the other rules' comments instead of acting themselves."""


def summary_desks(result: DemoResult) -> list[str]:
    """The desks of the summary's columns."""
    return sorted({d for _, d in result.actions} | set(result.tickets_by_desk))


def summary_rows(result: DemoResult) -> list[tuple[str, list[int], int]]:
    """(rule, actions per desk in :func:`summary_desks` order, total) for every rule id."""
    rows = []
    for rule in result.rules:
        counts = [result.actions.get((rule, d), 0) for d in summary_desks(result)]
        rows.append((rule, counts, sum(counts)))
    return rows


def rules_without_actions(result: DemoResult) -> list[str]:
    """Rules that act on tickets but did nothing in this run (the demo aims for none)."""
    totals = result.by_rule()
    missing = [r for r in result.rules if r not in CLOCK_RULES | WRAPPING_RULES]
    missing = [r for r in missing if not totals.get(r)]
    if "INTAKE-3" in result.rules and not result.citing:
        missing.append("INTAKE-3")
    return missing
