"""The Freshdesk connector against respx-mocked Freshdesk, the recorded Freshdesk response bodies
and — where a behaviour needs a stateful desk (tie groups in the change feed, the filter API's
300-result cap, an agent editing tags meanwhile) — the Freshdesk emulator.

* The recorded bodies (``../shared/vendor/freshdesk/*.json``) parse without loss of anything the
  model holds, in the API v2 shape (ticket view, conversations, company, agent) and in the API
  v1-era shape the recorded list, search and contact bodies have.
* Every error path: 401, 404, 400 "Validation failed" (Freshdesk's field messages in the
  result), 429 with ``Retry-After`` on a fake clock, 5xx retried on reads and never blindly on
  creates, timed-out replies and follow-ups looked for before they are sent again.
* The change feed across shared timestamps, tickets moving mid-walk and the page-number cap;
  filter-API escaping with injection attempts and the 300-result cap; tags merged with a
  concurrent change; webhook verification (HMAC and the static-secret fallback).

Nothing sleeps for real: every connector runs on a :class:`FakeClock`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

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
from ticketwarden.core.connector import (
    CandidateQuery,
    DeskConfig,
    DeskSecrets,
    Outcome,
    Runtime,
    WebhookRejected,
)
from ticketwarden.core.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    RejectedError,
    TicketwardenError,
)
from ticketwarden.core.http import BasicCredentials
from ticketwarden.core.model import (
    AuthorizedContact,
    AuthorRole,
    Contact,
    EventKind,
    Organization,
    Priority,
    Severity,
    Status,
    Ticket,
)
from ticketwarden.plugins import freshdesk as plugin
from ticketwarden.plugins.freshdesk import fixtures
from ticketwarden.plugins.freshdesk.connector import (
    FreshdeskConnector,
    freshdesk_time,
    html_to_text,
    text_to_html,
)
from ticketwarden.plugins.freshdesk.emulator import FreshdeskEmulator
from ticketwarden.plugins.freshdesk.search import (
    QUERY_MAX_LENGTH,
    SearchValueError,
    quote_string,
    search_day,
    search_field,
    search_number,
    term,
    ticket_candidates_query,
    wrap_query,
)
from ticketwarden.testing.emulator import FakeClock

VENDOR = Path(__file__).resolve().parents[1].parent / "shared" / "vendor" / "freshdesk"
needs_vendor = pytest.mark.skipif(
    not VENDOR.is_dir(),
    reason="the vendor material (../shared/vendor/freshdesk) is absent: the recorded Freshdesk "
    "response bodies cannot be loaded",
)

BASE = "https://acme.freshdesk.com"
AGENT = fixtures.AGENT_ID
CUSTOMER = 43000300011
LEAD = fixtures.AGENTS["support-leads"]
COMPANY = 43000300012
STAMP = "2026-11-23T08:00:00Z"
F = fixtures.TICKET_FIELDS
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


TICKET_FIELDS = [
    {"id": 43000400001 + n, "name": name, "type": kind}
    for n, (name, kind) in enumerate(
        [
            (F["severity"], "custom_dropdown"),
            (F["server_url"], "custom_text"),
            (F["module"], "custom_text"),
            (F["version"], "custom_text"),
            (F["resolution_reason"], "custom_text"),
            (fixtures.FOLLOW_UP_FIELD, "custom_number"),
        ]
    )
]
"""``GET /api/v2/ticket_fields`` (the keys the connector reads)."""


def mock() -> respx.MockRouter:
    """A mocked Freshdesk at ``BASE`` (routes a test sets up need not all be called) that
    answers the ticket-field list the connector reads once before writing custom fields."""
    router = respx.mock(base_url=BASE, assert_all_called=False)
    router.get("/api/v2/ticket_fields").respond(json=TICKET_FIELDS)
    return router


def desk(**overrides: Any) -> DeskConfig:
    data: dict[str, Any] = {
        "name": "freshdesk-acme",
        "connector": "freshdesk",
        "base_url": BASE,
        "fields": {
            "server_url": f"custom:{F['server_url']}",
            "module": f"custom:{F['module']}",
            "version": f"custom:{F['version']}",
            "severity": f"custom:{F['severity']}",
            "resolution_reason": f"custom:{F['resolution_reason']}",
        },
        "statuses": {"6": "on_hold"},
        "severity_values": dict(fixtures.SEVERITY_VALUES),
        "escalation": {
            "support-leads": {"group": str(fixtures.GROUPS["support-leads"])},
            "duty-manager": {
                "group": str(fixtures.GROUPS["support-management"]),
                "assignee": str(LEAD),
            },
            "made-up": {"group": "leads-team"},
        },
        "contacts": {
            "where": "user",
            "authorized_field": fixtures.CONTACT_FIELDS["authorized"],
            "certified_until_field": fixtures.CONTACT_FIELDS["certified_until"],
            "available_24x7_field": fixtures.CONTACT_FIELDS["available_24x7"],
        },
        "http": {"retry": {"jitter": 0.0}},
        "options": {
            "agent_id": AGENT,
            "create_settle_seconds": 1.0,
            "follow_up_field": fixtures.FOLLOW_UP_FIELD,
        },
    }
    options = overrides.pop("options", {})
    data.update(overrides)
    data["options"] = {**data["options"], **options}
    return DeskConfig.model_validate(data)


SECRETS = DeskSecrets(
    credentials=BasicCredentials(username=SecretStr(fixtures.API_KEY), password=SecretStr("X")),
    webhook_secret=SecretStr(fixtures.WEBHOOK_SECRET),
)


def connector(clock: FakeClock, config: DeskConfig | None = None) -> FreshdeskConnector:
    runtime = Runtime(clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.time)
    return FreshdeskConnector(config or desk(), SECRETS, runtime)


def record(tid: int = 42, **overrides: Any) -> dict[str, Any]:
    """A ticket as Freshdesk's View a Ticket returns it with ``include=requester,company,stats``."""
    data: dict[str, Any] = {
        "id": tid,
        "subject": "Agents offline after the server update",
        "description": "<div>Since yesterday all agents are offline.</div>",
        "description_text": "Since yesterday all agents are offline.",
        "status": 2,
        "priority": 2,
        "source": 2,
        "type": "Question",
        "requester_id": CUSTOMER,
        "responder_id": AGENT,
        "group_id": fixtures.GROUPS["support-on-call"],
        "company_id": COMPANY,
        "tags": ["existing-tag"],
        "custom_fields": {
            F["server_url"]: "https://kaseya.acme.example",
            F["module"]: "Agent",
            F["version"]: None,
            F["severity"]: "Severity 2",
            F["resolution_reason"]: None,
            fixtures.FOLLOW_UP_FIELD: None,
            fixtures.UNKNOWN_FIELD: "EMEA",
        },
        "created_at": "2026-11-20T09:00:00Z",
        "updated_at": STAMP,
        "requester": {
            "id": CUSTOMER,
            "name": "Anna Berger",
            "email": "anna@acme.example",
            "mobile": None,
            "phone": "+49 30 1234",
        },
        "company": {"id": COMPANY, "name": "Acme"},
        "stats": {"resolved_at": None, "first_responded_at": None},
    }
    data.update(overrides)
    return data


def conversation(cid: int, user: int, text: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": cid,
        "body": text_to_html(text),
        "body_text": text,
        "incoming": user == CUSTOMER,
        "private": False,
        "user_id": user,
        "source": 0,
        "ticket_id": 42,
        "created_at": "2026-11-20T09:00:00Z",
        "updated_at": "2026-11-20T09:00:00Z",
    }
    data.update(overrides)
    return data


def ticket(**overrides: Any) -> Ticket:
    """The normalized ticket the connector would have read (the base of apply() calls)."""
    data: dict[str, Any] = {
        "id": "42",
        "number": "#42",
        "desk": "freshdesk-acme",
        "status": Status.OPEN,
        "requester": Contact(id=str(CUSTOMER), email="anna@acme.example"),
        "organization": Organization(id=str(COMPANY)),
        "tags": frozenset({"existing-tag"}),
        "created_at": datetime(2026, 11, 20, 9, tzinfo=UTC),
        "updated_at": NOW,
    }
    data.update(overrides)
    return Ticket(**data)


def act(cls: type[BaseAction], key: str = "k1", **fields: Any) -> Any:
    return cls(rule_id="TEST-1", reason="test", key=key, **fields)


def sent(route: respx.Route, number: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[number].request.content)
    return body


# --- the emulator, for stateful behaviour ---------------------------------------------------------


def on_emulator(clock: FakeClock, **options: Any) -> tuple[FreshdeskEmulator, FreshdeskConnector]:
    emulator = FreshdeskEmulator(clock=clock)
    config, secrets = FreshdeskConnector.conformance_config(emulator.base_url)
    config = config.model_copy(update={"options": {**config.options, **options}})
    runtime = Runtime(
        transport=emulator.transport(),
        clock=clock.monotonic,
        sleep=clock.sleep,
        wall_clock=clock.time,
    )
    return emulator, FreshdeskConnector(config, secrets, runtime)


def sample(clock: FakeClock, **overrides: Any) -> Ticket:
    now = clock.now()
    data: dict[str, Any] = {
        "id": "new",
        "number": "new",
        "subject": "Dashboard totals differ",
        "status": Status.OPEN,
        "priority": Priority.NORMAL,
        "requester": Contact(id="u-1", name="Anna Berger", email="anna@acme.example"),
        "organization": Organization(id="acme", name="Acme"),
        "tags": frozenset({"existing-tag"}),
        "created_at": now,
        "updated_at": now,
    }
    data.update(overrides)
    return Ticket(**data)


# --- (a) the recorded Freshdesk response bodies ---------------------------------------------------


@functools.cache
def vendor(name: str) -> Any:
    return json.loads((VENDOR / name).read_text("utf-8"))


@needs_vendor
def test_the_recorded_ticket_view_and_conversations_parse_without_loss(clock: FakeClock) -> None:
    """``ticket_1.json`` (API v2, with stats and requester) and ``conversations.json``: every
    field the model holds. The sample's ``custom_fields`` have no ``cf_`` prefix (a hand-made
    sample: the API reference names custom fields ``cf_…``) and are read by whatever name the
    configuration gives; ``type`` is mapped as a native field."""
    raw = vendor("ticket_1.json")
    config = desk(
        fields={"module": "native:type", "server_url": "custom:parent_ticket_id"},
        options={"agent_id": 999},
    )
    fd = connector(clock, config)
    parsed = fd.ticket_from(raw, conversations=vendor("conversations.json"))
    assert (parsed.id, parsed.number, parsed.subject) == ("1", "#1", raw["subject"])
    assert parsed.description == raw["description_text"]
    assert parsed.status == Status.OPEN and parsed.priority == Priority.LOW
    # the embedded requester's id (43026449322) differs from requester_id in this sample: the
    # contact keeps the ticket's requester_id and the embedded name and e-mail
    assert parsed.requester == Contact(
        id="6012691534", name="Dummyname", email="dummyname@example.com"
    )
    assert parsed.organization is None and parsed.group is None
    assert parsed.assignee == "6010396333"
    assert parsed.tags == {"foo", "bar"}
    assert freshdesk_time(parsed.created_at) == raw["created_at"]
    assert freshdesk_time(parsed.updated_at) == raw["updated_at"]
    # stats.resolved_at is set on this open ticket (the sample is not consistent): an open
    # ticket has no resolution time
    assert parsed.resolved_at is None
    assert dict(parsed.fields) == {"module": "Question"}  # parent_ticket_id is null
    note, reply = parsed.comments
    assert (note.id, note.body, note.public) == ("1", "This is a private note", False)
    assert (reply.id, reply.body, reply.public) == ("2", "This is a reply", True)
    assert note.author_role == reply.author_role == AuthorRole.AGENT
    assert reply.author == "Rachel <rachel@freshdesk.com>"
    assert reply.created_at == datetime(2016, 5, 19, 5, 36, 14, tzinfo=UTC)
    mine = connector(clock, desk(options={"agent_id": 1})).ticket_from(
        raw, conversations=vendor("conversations.json")
    )
    assert {c.author_role for c in mine.comments} == {AuthorRole.SYSTEM}
    resolved = fd.ticket_from({**raw, "status": 4})
    assert resolved.resolved_at == datetime(2020, 7, 24, 15, 35, 21, tzinfo=UTC)


@needs_vendor
def test_the_recorded_list_and_search_bodies_in_the_v1_shape_parse(clock: FakeClock) -> None:
    """``all_tickets.json`` and ``search_tickets.json`` have the API v1 era's keys
    (``custom_field``, ``ticket_type``, ``requester_name``, ``description_html``, times with
    offsets); everything the model holds is still read."""
    fd = connector(clock, desk(fields={"module": "native:ticket_type"}))
    (raw,) = vendor("all_tickets.json")
    parsed = fd.ticket_from(raw)
    brisbane = timezone(timedelta(hours=10))
    assert parsed.id == "1" and parsed.status == Status.OPEN and parsed.priority == Priority.LOW
    assert parsed.requester == Contact(id="5004272351", name="Rachel")
    assert parsed.assignee == "5004272350" and parsed.group is None
    assert parsed.description == "This is a sample ticket, feel free to delete it."
    assert parsed.created_at == datetime(2014, 12, 31, 12, 27, 9, tzinfo=brisbane)
    assert parsed.updated_at == datetime(2015, 1, 1, 10, 58, 39, tzinfo=brisbane)
    assert parsed.tags == {"mytag"} and dict(parsed.fields) == {"module": "Question"}
    results = vendor("search_tickets.json")["results"]
    assert [fd.ticket_from(r).tags for r in results] == [{"mytag"}, {"mytag", "myothertag"}]


@needs_vendor
@pytest.mark.anyio
async def test_recorded_list_and_search_pages_through_the_api(clock: FakeClock) -> None:
    """The change feed and the candidate search over the recorded bodies. Both search results
    carry ``"id": 1`` in the recording: the candidate search yields the ticket once."""
    fd = connector(clock)
    with mock() as fake:
        fake.get("/api/v2/tickets").respond(json=vendor("all_tickets.json"))
        fake.get("/api/v2/search/tickets").respond(json=vendor("search_tickets.json"))
        page = await fd.changes(None, since=datetime(2014, 1, 1, tzinfo=UTC))
        found = [t async for t in fd.candidates(CandidateQuery(statuses=frozenset({Status.OPEN})))]
    assert [t.id for t in page.tickets] == ["1"] and page.has_more is False
    assert [t.id for t in found] == ["1"]


@needs_vendor
@pytest.mark.anyio
async def test_the_recorded_contact_and_company_feed_the_roster(clock: FakeClock) -> None:
    """``contact.json`` (v1 keys: ``customer_id`` for the company, ``custom_field``) and
    ``company.json`` (v2: ``custom_fields`` without a ``cf_`` prefix). The recording holds no
    roster field values — the contact's custom fields are empty and the company's are a web
    site and an address — so the roster fields are added to copies of the real records."""
    contact = vendor("contact.json")
    company = vendor("company.json")
    assert contact["custom_field"] == {} and set(company["custom_fields"]) == {"website", "address"}
    fd = connector(clock)
    with mock() as fake:
        fake.get("/api/v2/contacts").respond(json=[contact])
        assert (await fd.roster()).entries == ()  # nothing ticked: nobody is authorized
        marked = {**contact, "custom_fields": {"tw_authorized_contact": True}}
        fake.get("/api/v2/contacts").respond(json=[marked])
        roster = await fd.roster()
    assert roster.lookup("1", "rachel@freshdesk.com") == AuthorizedContact(
        email="rachel@freshdesk.com", name="Rachel"
    )
    by_company = desk(contacts={"where": "organization", "authorized_field": "address"})
    fd = connector(clock, by_company)
    listed = {
        **company,
        "custom_fields": {**company["custom_fields"], "address": "a@nova.example\nb@nova.example"},
    }
    with mock() as fake:
        fake.get("/api/v2/companies").respond(json=[company])
        assert (await fd.roster()).entries == ()  # an address lists no e-mail addresses
        fake.get("/api/v2/companies").respond(json=[listed])
        roster = await fd.roster()
    assert [c.email for c in roster.contacts_of("1")] == ["a@nova.example", "b@nova.example"]


@needs_vendor
@pytest.mark.anyio
async def test_the_recorded_agent_is_ticketwardens_author(clock: FakeClock) -> None:
    """Without ``options.agent_id`` the API key's agent comes from ``/agents/me``
    (``agent_1.json``, id 1): its conversations read as ``system``; two requests in all."""
    fd = connector(clock, desk(options={"agent_id": None}))
    view = {**vendor("ticket_1.json"), "conversations": vendor("conversations.json")}
    with mock() as fake:
        fake.get("/api/v2/tickets/1").respond(json=view)
        fake.get("/api/v2/agents/me").respond(json=vendor("agent_1.json"))
        read = await fd.read_ticket("1")
        await fd.read_ticket("1")
        assert len(fake.calls) == 3  # agents/me once
    assert {c.author_role for c in read.comments} == {AuthorRole.SYSTEM}


@needs_vendor
@pytest.mark.anyio
async def test_escalation_targets_are_the_recorded_groups(clock: FakeClock) -> None:
    """``groups.json``: an escalation target mapped to a real group id sets ``group_id``."""
    helpdesk = next(g for g in vendor("groups.json") if g["name"] == "Helpdesk")
    fd = connector(clock, desk(escalation={"support-leads": {"group": str(helpdesk["id"])}}))
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record())
        put = fake.put("/api/v2/tickets/42").respond(json=record())
        (result,) = await fd.apply(ticket(), [act(Escalate, target="support-leads")])
    assert result.outcome == Outcome.APPLIED and sent(put) == {"group_id": 2}


# --- (b) reads ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_ticket_is_read_with_one_request(clock: FakeClock) -> None:
    fd = connector(clock)
    view = record(
        conversations=[
            conversation(1, CUSTOMER, "Agents are offline."),
            conversation(2, LEAD, "Looking.", created_at="2026-11-20T10:00:00Z"),
            conversation(3, AGENT, "Internal.", private=True, created_at="2026-11-20T11:00:00Z"),
        ]
    )
    with mock() as fake:
        route = fake.get("/api/v2/tickets/42").respond(json=view)
        read = await fd.read_ticket("42")
        assert len(fake.calls) == 1
    assert route.calls[0].request.url.params["include"] == "conversations,requester,company,stats"
    assert read.requester == Contact(
        id=str(CUSTOMER), name="Anna Berger", email="anna@acme.example", phone="+49 30 1234"
    )
    assert read.organization == Organization(id=str(COMPANY), name="Acme")
    assert read.severity == Severity.HIGH and read.priority == Priority.NORMAL
    assert dict(read.fields) == {"server_url": "https://kaseya.acme.example", "module": "Agent"}
    assert (read.group, read.assignee) == (str(fixtures.GROUPS["support-on-call"]), str(AGENT))
    assert [(c.author_role, c.public) for c in read.comments] == [
        (AuthorRole.CUSTOMER, True),
        (AuthorRole.AGENT, True),
        (AuthorRole.SYSTEM, False),
    ]
    assert read.comments[0].author == "Anna Berger"


@pytest.mark.anyio
async def test_ten_embedded_conversations_mean_listing_them_all(clock: FakeClock) -> None:
    """``include=conversations`` embeds the first ten only: with ten, the conversations
    endpoint is paged through its ``Link`` header."""
    fd = connector(clock)
    ten = [conversation(i, CUSTOMER, f"message {i}") for i in range(1, 11)]
    rest = [conversation(i, CUSTOMER, f"message {i}") for i in range(11, 13)]
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record(conversations=ten))
        listing = fake.get("/api/v2/tickets/42/conversations")
        listing.side_effect = [
            httpx.Response(
                200,
                json=ten,
                headers={
                    "Link": f"<{BASE}/api/v2/tickets/42/conversations?per_page=100&page=2>; "
                    'rel="next"'
                },
            ),
            httpx.Response(200, json=rest),
        ]
        read = await fd.read_ticket("42")
    assert [c.id for c in read.comments] == [str(i) for i in range(1, 13)]
    assert listing.calls[0].request.url.params["per_page"] == "100"


@pytest.mark.anyio
async def test_statuses_priorities_and_severity_map_through_the_configuration(
    clock: FakeClock,
) -> None:
    fd = connector(clock)
    for code, status in [
        (2, Status.OPEN),
        (3, Status.WAITING_ON_CUSTOMER),
        (4, Status.RESOLVED),
        (5, Status.CLOSED),
        (6, Status.ON_HOLD),
    ]:
        assert fd.ticket_from(record(status=code)).status == status
    with pytest.raises(ProtocolError, match=r"unknown Freshdesk status 7.*statuses"):
        fd.ticket_from(record(status=7))
    for code, priority in zip(
        range(1, 5), [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT], strict=True
    ):
        assert fd.ticket_from(record(priority=code)).priority == priority
    by_priority = connector(clock, desk(fields={"severity": "native:priority"}))
    assert [by_priority.ticket_from(record(priority=p)).severity for p in (4, 3, 2, 1)] == [
        Severity.CRITICAL,
        Severity.HIGH,
        Severity.MEDIUM,
        Severity.LOW,
    ]
    remapped = connector(clock, desk(statuses={"3": "on_hold", "7": "waiting_on_customer"}))
    assert remapped.ticket_from(record(status=3)).status == Status.ON_HOLD
    assert remapped.ticket_from(record(status=7)).status == Status.WAITING_ON_CUSTOMER


# --- (c) error paths ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_401_and_404_become_typed_errors_without_the_api_key(clock: FakeClock) -> None:
    fd = connector(clock)
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(
            401,
            json={
                "code": "invalid_credentials",
                "message": "You have to be logged in to perform this action.",
            },
        )
        fake.get("/api/v2/tickets/43").respond(
            404, json={"code": "not_found", "message": "The requested resource could not be found"}
        )
        with pytest.raises(AuthenticationError) as denied:
            await fd.read_ticket("42")
        with pytest.raises(NotFoundError, match="could not be found"):
            await fd.read_ticket("43")
        sent_auth = fake.calls[0].request.headers["authorization"]
    assert "You have to be logged in" in str(denied.value)
    assert fixtures.API_KEY not in str(denied.value) and fixtures.API_KEY not in repr(denied.value)
    assert sent_auth == "Basic " + base64.b64encode(f"{fixtures.API_KEY}:X".encode()).decode()
    with pytest.raises(NotFoundError):
        await fd.read_ticket("../contacts/1")


VALIDATION = {
    "description": "Validation failed",
    "errors": [
        {
            "field": "cf_severity",
            "message": "It should be one of these values: "
            "'Severity 1,Severity 2,Severity 3,Severity 4'",
            "code": "invalid_value",
        }
    ],
}


@pytest.mark.anyio
async def test_a_400_validation_error_fails_the_actions_with_freshdesks_words(
    clock: FakeClock,
) -> None:
    """A refused update reports its actions failed with each field's message; the comment of
    the same evaluation is not sent. A refused read raises RejectedError with the details."""
    fd = connector(clock, desk(severity_values={"Sev 2": 2}))
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record())
        fake.put("/api/v2/tickets/42").respond(400, json=VALIDATION)
        reply = fake.post("/api/v2/tickets/42/reply")
        results = await fd.apply(
            ticket(),
            [act(SetSeverity, "a", severity=Severity.HIGH), act(AddComment, "b", body="Hello")],
        )
        fake.get("/api/v2/tickets").respond(
            400,
            json={
                "description": "Validation failed",
                "errors": [
                    {
                        "field": "page",
                        "message": "You cannot access tickets beyond the 300th page. "
                        "Please provide a smaller page number.",
                        "code": "invalid_value",
                    }
                ],
            },
        )
        with pytest.raises(RejectedError, match="page: You cannot access tickets beyond"):
            await fd.changes(None)
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    assert "Validation failed" in results[0].detail
    assert "cf_severity: It should be one of these values" in results[0].detail
    assert "not sent" in results[1].detail and reply.call_count == 0


@pytest.mark.anyio
async def test_429_waits_as_long_as_retry_after_asks(clock: FakeClock) -> None:
    fd = connector(clock)
    limited = {"message": "You have exceeded the limit of requests per minute"}
    with mock() as fake:
        route = fake.get("/api/v2/tickets/42")
        route.side_effect = [
            httpx.Response(
                429,
                headers={
                    "Retry-After": "7",
                    "X-RateLimit-Total": "400",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Used-CurrentRequest": "5",
                },
                json=limited,
            ),
            httpx.Response(200, json=record()),
        ]
        started = clock.monotonic()
        await fd.read_ticket("42")
    assert route.call_count == 2
    assert clock.monotonic() - started >= 7 and sum(clock.sleeps) >= 7
    patient = connector(clock, desk(http={"retry": {"max_retry_after": 30}}))
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(429, headers={"Retry-After": "3600"}, json=limited)
        with pytest.raises(RateLimitedError) as raised:
            await patient.read_ticket("42")
    assert raised.value.retry_after == 3600
    assert "exceeded the limit of requests per minute" in str(raised.value)


@pytest.mark.anyio
async def test_the_credit_cost_of_a_request_paces_the_next(clock: FakeClock) -> None:
    """``X-RateLimit-Used-CurrentRequest``: a ticket view with four includes costs 5 credits;
    with 3 left the next request waits for the window to turn."""
    fd = connector(clock)
    headers = {
        "X-RateLimit-Total": "50",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Used-CurrentRequest": "5",
    }
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record(), headers=headers)
        await fd.read_ticket("42")
        before = clock.monotonic()
        await fd.read_ticket("42")
    assert clock.monotonic() - before >= 60


@pytest.mark.anyio
async def test_server_errors_on_reads_are_retried(clock: FakeClock) -> None:
    fd = connector(clock)
    with mock() as fake:
        route = fake.get("/api/v2/tickets/42")
        route.side_effect = [
            httpx.Response(500),
            httpx.Response(503),
            httpx.Response(200, json=record()),
        ]
        assert (await fd.read_ticket("42")).id == "42"
    assert route.call_count == 3


@pytest.mark.parametrize("landed", [True, False])
@pytest.mark.anyio
async def test_a_timed_out_reply_is_looked_for_before_it_is_sent_again(
    clock: FakeClock, landed: bool
) -> None:
    """The reply times out: the conversations are read; found (ticketwarden's agent, the same
    text and visibility, not older than the update read, not one already read) it is not sent
    again; not found, it is sent once more. The same text from an earlier occasion — a day
    ago, or read with the ticket — is not taken for the lost one."""
    fd = connector(clock)
    text = "Could you send us the agent log?\nThanks."
    earlier = conversation(5, AGENT, text, created_at="2026-11-22T08:00:00Z")
    read_along = conversation(6, AGENT, text, created_at=STAMP)
    mine = conversation(7, AGENT, text, created_at="2026-11-23T08:00:02Z")
    known = fd.ticket_from(record(), conversations=[earlier, read_along]).comments
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record())
        reply = fake.post("/api/v2/tickets/42/reply")
        reply.side_effect = [httpx.ReadTimeout("lost response"), httpx.Response(201, json=mine)]
        look = fake.get("/api/v2/tickets/42/conversations").respond(
            json=[earlier, read_along, *([mine] if landed else [])]
        )
        (result,) = await fd.apply(ticket(comments=known), [act(AddComment, body=text)])
    assert (result.outcome, result.created_id) == (Outcome.APPLIED, "7")
    assert reply.call_count == (1 if landed else 2) and look.call_count == 1
    assert clock.sleeps[:1] == [1.0]  # the settle time before looking
    assert sent(reply, 0) == {"body": "<div>Could you send us the agent log?<br>Thanks.</div>"}


@pytest.mark.anyio
async def test_a_5xx_on_a_note_is_not_blindly_retried(clock: FakeClock) -> None:
    fd = connector(clock)
    made = conversation(9, AGENT, "Internal", private=True, created_at=STAMP)
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record())
        note = fake.post("/api/v2/tickets/42/notes")
        note.side_effect = [httpx.Response(502), httpx.Response(201, json=made)]
        look = fake.get("/api/v2/tickets/42/conversations").respond(json=[])
        (result,) = await fd.apply(ticket(), [act(AddComment, body="Internal", public=False)])
    assert result.outcome == Outcome.APPLIED
    assert look.call_count == 1 and note.call_count == 2
    assert sent(note) == {"body": "<div>Internal</div>", "private": True}


@pytest.mark.anyio
async def test_a_reply_lost_three_times_is_reported_unknown(clock: FakeClock) -> None:
    fd = connector(clock)
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record())
        fake.post("/api/v2/tickets/42/reply").mock(side_effect=httpx.ReadTimeout("lost"))
        fake.get("/api/v2/tickets/42/conversations").respond(json=[])
        with pytest.raises(OutcomeUnknownError):
            await fd.apply(ticket(), [act(AddComment, body="Hi")])


# --- (d) the change feed --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_change_feed_asks_for_the_list_by_update_time(clock: FakeClock) -> None:
    fd = connector(clock)
    first = record(1, updated_at="2026-11-23T08:00:00Z")
    second = record(2, updated_at="2026-11-23T08:00:05Z")
    with mock() as fake:
        route = fake.get("/api/v2/tickets").respond(json=[first, second])
        page = await fd.changes(
            None, since=datetime(2026, 11, 23, 9, tzinfo=timezone(timedelta(hours=1)))
        )
        route.respond(json=[second])
        again = await fd.changes(page.cursor)
    params = dict(route.calls[0].request.url.params)
    assert params == {
        "updated_since": "2026-11-23T08:00:00Z",
        "order_by": "updated_at",
        "order_type": "asc",
        "per_page": "100",
        "page": "1",
    }
    assert [t.id for t in page.tickets] == ["1", "2"] and not page.has_more
    assert json.loads(page.cursor) == {"updated_since": "2026-11-23T08:00:05Z", "seen": [2]}
    assert route.calls[1].request.url.params["updated_since"] == "2026-11-23T08:00:05Z"
    assert again.tickets == () and again.cursor == page.cursor
    with pytest.raises(TicketwardenError, match="unreadable change-feed cursor"):
        await fd.changes("page=3")


async def drain(fd: FreshdeskConnector, cursor: str | None = None) -> tuple[list[str], str | None]:
    seen: list[str] = []
    for _ in range(2000):
        page = await fd.changes(cursor)
        seen += [t.id for t in page.tickets]
        cursor = page.cursor
        if not page.has_more:
            return seen, cursor
    raise AssertionError("the change feed did not end")


@pytest.mark.anyio
async def test_a_backlog_beyond_the_page_limit_is_read_completely(clock: FakeClock) -> None:
    """305 tickets a page each: more than the list's 300 pages. Every call restarts from the
    last update time, so no request ever asks past page 1 and nothing is refused."""
    emulator, fd = on_emulator(clock, per_page=1)
    ids = []
    for _ in range(305):
        ids.append(emulator.add_ticket(sample(clock)))
        clock.advance(1)
    seen, _ = await drain(fd)
    assert seen == ids
    pages = {r.query for r in emulator.requests if r.path == "/api/v2/tickets"}
    assert all("page=1&" in q or q.endswith("page=1") for q in pages)
    assert all(r.status == 200 for r in emulator.requests)


@pytest.mark.anyio
async def test_a_ticket_moving_mid_walk_does_not_hide_its_neighbour(clock: FakeClock) -> None:
    """Five tickets share one second, two to a page. After the first page, ticket 1 is updated
    and jumps to the end: walking page numbers, page 2 would now start at ticket 4 and ticket 3
    would never be seen. Restarting from the shared second sees all five — and ticket 1 again,
    at its new time."""
    emulator, fd = on_emulator(clock, per_page=2)
    ids = [emulator.add_ticket(sample(clock)) for _ in range(5)]
    first = await fd.changes(None)
    assert [t.id for t in first.tickets] == ids[:2] and first.has_more
    clock.advance(10)
    emulator.agent_update(ids[0], priority=3)
    seen, _ = await drain(fd, first.cursor)
    assert seen == [*ids[2:], ids[0]]


@pytest.mark.anyio
async def test_tickets_joining_the_last_second_later_are_not_skipped(clock: FakeClock) -> None:
    """A ticket updated within the second the feed last stopped at, with a lower id than the
    ones already returned, comes next — the cursor skips ids, not positions."""
    emulator, fd = on_emulator(clock, per_page=10)
    low = emulator.add_ticket(sample(clock, updated_at=clock.now() - timedelta(days=1)))
    high = emulator.add_ticket(sample(clock))
    page = await fd.changes(None, since=clock.now())
    assert [t.id for t in page.tickets] == [high]
    emulator.agent_update(low, priority=4)  # the same second, on the fake clock
    again = await fd.changes(page.cursor)
    assert [t.id for t in again.tickets] == [low]


@pytest.mark.anyio
async def test_more_tickets_in_one_second_than_the_page_limit_is_an_error(
    clock: FakeClock,
) -> None:
    emulator, fd = on_emulator(clock, per_page=1, max_list_page=2)
    for _ in range(3):
        emulator.add_ticket(sample(clock))
    cursor = None
    for _ in range(2):
        cursor = (await fd.changes(cursor)).cursor
    with pytest.raises(ProtocolError, match="more than 2 pages of tickets share the update time"):
        await fd.changes(cursor)


# --- (e) the filter API: escaping and the result cap ----------------------------------------------


def test_filter_values_are_quoted_and_injection_is_refused() -> None:
    assert quote_string("Question") == "'Question'"
    assert quote_string("Severity 1") == "'Severity 1'"
    for attack in [
        "x' OR status:2 OR tag:'y",  # closes the string and adds terms of its own
        'x" OR status:2',  # closes the whole query
        "x\\",
        "x\nstatus:2",
        "",
        "  ",
    ]:
        with pytest.raises(SearchValueError):
            quote_string(attack)
    for name in ["status:2 OR priority", "cf_x)", "AND", "null", "1abc", ""]:
        with pytest.raises(SearchValueError):
            search_field(name)
    assert search_field("cf_severity") == "cf_severity"
    with pytest.raises(SearchValueError):
        search_number(True)
    assert search_day(date(2026, 11, 23)) == "'2026-11-23'"
    assert term("priority", ":>", 3) == "priority:>3"
    assert term("tag", ":", "vip") == "tag:'vip'"
    with pytest.raises(SearchValueError):
        term("tag", ":=", "vip")
    with pytest.raises(SearchValueError):
        wrap_query('status:2" OR "priority:1')
    with pytest.raises(SearchValueError, match="at most 512"):
        wrap_query("(" + " OR ".join(f"status:{n}" for n in range(60)) + ")")
    assert len(wrap_query("x" * (QUERY_MAX_LENGTH - 2))) == QUERY_MAX_LENGTH
    assert ticket_candidates_query([6, 3], to_day=date(2026, 11, 23)) == (
        "\"(status:3 OR status:6) AND updated_at:<'2026-11-23'\""
    )


@pytest.mark.anyio
async def test_the_candidate_query_holds_only_formatted_values(clock: FakeClock) -> None:
    """Codes come from the desk's status mapping; a status key that is not a number — here an
    injection attempt in the configuration — never reaches the query. Whole days are asked
    for and exact times are checked on each result."""
    config = desk(statuses={"6": "on_hold", "3 OR priority:1": "waiting_on_customer"})
    fd = connector(clock, config)
    cutoff = datetime(2026, 11, 23, 9, tzinfo=UTC)
    old = record(1, status=3, updated_at="2026-11-23T08:00:00Z")
    recent = record(2, status=6, updated_at="2026-11-23T10:00:00Z")
    with mock() as fake:
        route = fake.get("/api/v2/search/tickets").respond(
            json={"results": [recent, old], "total": 2}
        )
        query = CandidateQuery(
            statuses=frozenset({Status.WAITING_ON_CUSTOMER, Status.ON_HOLD}),
            updated_before=cutoff,
            updated_after=cutoff - timedelta(days=3),
        )
        found = [t.id async for t in fd.candidates(query)]
    assert found == ["1"]
    assert route.calls[0].request.url.params["query"] == (
        "\"(status:3 OR status:6) AND updated_at:>'2026-11-20' AND updated_at:<'2026-11-23'\""
    )
    assert route.calls[0].request.url.params["page"] == "1"
    with mock() as fake:
        nothing = fake.get("/api/v2/search/tickets")
        new = CandidateQuery(statuses=frozenset({Status.NEW}))
        assert [t async for t in fd.candidates(new)] == []
    assert nothing.call_count == 0  # Freshdesk has no "new": nothing to search for


@pytest.mark.anyio
async def test_candidates_beyond_the_300_result_cap_are_found_by_narrowing(
    clock: FakeClock,
) -> None:
    """330 pending tickets over three days, then 310 more on one day: the filter API returns
    at most 300 of a query's matches, so the days are split in halves, and the crowded day by
    priority, until every part fits. Every ticket is found exactly once."""
    emulator, fd = on_emulator(clock)
    start = clock.now()
    expected = []
    for n in range(330):
        at = start - timedelta(days=3) + timedelta(minutes=13 * n)
        expected.append(
            emulator.add_ticket(
                sample(clock, status=Status.WAITING_ON_CUSTOMER, created_at=at, updated_at=at)
            )
        )
    priorities = list(Priority)
    crowded = start - timedelta(days=5)
    for n in range(310):
        at = crowded + timedelta(seconds=n)
        expected.append(
            emulator.add_ticket(
                sample(
                    clock,
                    status=Status.WAITING_ON_CUSTOMER,
                    priority=priorities[n % 4],
                    created_at=at,
                    updated_at=at,
                )
            )
        )
    emulator.add_ticket(sample(clock, status=Status.OPEN))  # not a candidate
    query = CandidateQuery(statuses=frozenset({Status.WAITING_ON_CUSTOMER}), updated_before=start)
    found = [t.id async for t in fd.candidates(query)]
    assert sorted(found, key=int) == sorted(expected, key=int)
    searches = [r for r in emulator.requests if r.path == "/api/v2/search/tickets"]
    assert all(r.status == 200 for r in searches)
    assert any("priority" in r.query for r in searches)


# --- (f) writes -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_field_changes_go_into_one_update_after_a_re_read(clock: FakeClock) -> None:
    fd = connector(clock)
    with mock() as fake:
        fresh = fake.get("/api/v2/tickets/42").respond(
            json=record(tags=["existing-tag", "agent-tag"])
        )
        put = fake.put("/api/v2/tickets/42").respond(json=record())
        results = await fd.apply(
            ticket(),
            [
                act(SetStatus, "a", status=Status.WAITING_ON_CUSTOMER),
                act(SetPriority, "b", priority=Priority.URGENT),
                act(SetSeverity, "c", severity=Severity.CRITICAL),
                act(SetField, "d", field="version", value="10.1.2"),
                act(AddTags, "e", tags=frozenset({"tw-checked"})),
                act(RemoveTags, "f", tags=frozenset({"existing-tag"})),
                act(Escalate, "g", target="duty-manager"),
                act(Record, "h", message="noted"),
            ],
        )
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 7 + [Outcome.UNCHANGED]
    assert fresh.call_count == 1 and put.call_count == 1
    assert fresh.calls[0].request.url.params.get("include") is None  # one credit
    assert sent(put) == {
        "status": 3,
        "priority": 4,
        "group_id": fixtures.GROUPS["support-management"],
        "responder_id": LEAD,
        "custom_fields": {F["severity"]: "Severity 1", F["version"]: "10.1.2"},
        "tags": ["agent-tag", "tw-checked"],
    }


@pytest.mark.anyio
async def test_tags_are_merged_with_an_agents_concurrent_change(clock: FakeClock) -> None:
    """Freshdesk's ``tags`` replaces the list. An agent adds a tag after the evaluation read
    the ticket; ticketwarden's tag change re-reads and keeps it. A write of more than tags to
    the changed ticket is refused as a conflict instead (the evaluation saw an older ticket),
    unless ``conflict_check`` is off."""
    emulator, fd = on_emulator(clock)
    tid = emulator.add_ticket(sample(clock, tags=frozenset({"existing-tag", "gone-tag"})))
    read = await fd.read_ticket(tid)
    clock.advance(5)
    emulator.agent_update(tid, add_tags=["agent-tag"])
    results = await fd.apply(
        read,
        [
            act(AddTags, "a", tags=frozenset({"tw-reminded"})),
            act(RemoveTags, "b", tags=frozenset({"gone-tag"})),
        ],
    )
    assert {r.outcome for r in results} == {Outcome.APPLIED}
    after = await fd.read_ticket(tid)
    assert after.tags == {"existing-tag", "agent-tag", "tw-reminded"}
    with pytest.raises(ConflictError, match="read it again and re-evaluate"):
        await fd.apply(read, [act(SetStatus, "c", status=Status.WAITING_ON_CUSTOMER)])
    with pytest.raises(ConflictError):
        await fd.apply(read, [act(AddComment, "d", body="Any news?")])
    assert (await fd.read_ticket(tid)).status == Status.OPEN
    emulator2, lax = on_emulator(clock, conflict_check=False)
    tid2 = emulator2.add_ticket(sample(clock))
    stale = await lax.read_ticket(tid2)
    clock.advance(5)
    emulator2.agent_update(tid2, add_tags=["agent-tag"])
    (result,) = await lax.apply(stale, [act(SetStatus, "e", status=Status.WAITING_ON_CUSTOMER)])
    assert result.outcome == Outcome.APPLIED
    assert (await lax.read_ticket(tid2)).status == Status.WAITING_ON_CUSTOMER


@pytest.mark.anyio
async def test_status_codes_and_custom_statuses(clock: FakeClock) -> None:
    fd = connector(clock)
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record())
        put = fake.put("/api/v2/tickets/42").respond(json=record())
        codes = []
        for status in (
            Status.NEW,
            Status.OPEN,
            Status.WAITING_ON_CUSTOMER,
            Status.ON_HOLD,
            Status.RESOLVED,
        ):
            (result,) = await fd.apply(ticket(), [act(SetStatus, status=status)])
            assert result.outcome == Outcome.APPLIED
            codes.append(sent(put)["status"])
    assert codes == [2, 2, 3, 6, 4]
    unmapped = connector(clock, desk(statuses={}))
    (result,) = await unmapped.apply(ticket(), [act(SetStatus, status=Status.ON_HOLD)])
    assert result.outcome == Outcome.FAILED and "map one in the desk's statuses" in result.detail
    overridden = connector(clock, desk(statuses={"3": "on_hold"}))
    (result,) = await overridden.apply(
        ticket(), [act(SetStatus, status=Status.WAITING_ON_CUSTOMER)]
    )
    assert result.outcome == Outcome.FAILED  # 3 means on hold in this desk


@pytest.mark.anyio
async def test_actions_this_desk_cannot_express_fail_without_a_request(clock: FakeClock) -> None:
    fd = connector(clock, desk(fields={}))
    with mock() as fake:
        results = await fd.apply(
            ticket(),
            [
                act(Escalate, "a", target="no-such-target"),
                act(Escalate, "b", target="made-up"),
                act(AddTags, "c", tags=frozenset({"x" * 33})),
                act(SetField, "d", field="server_url", value="https://x.example"),
                act(SetSeverity, "e", severity=Severity.HIGH),
                act(Resolve, "f", resolution="inadequate_environment"),
            ],
        )
        assert len(fake.calls) == 0
    assert [r.outcome for r in results] == [Outcome.FAILED] * 6
    assert "not mapped" in results[0].detail and "not a Freshdesk id" in results[1].detail
    assert "at most 32 characters" in results[2].detail
    assert "map fields.resolution_reason" in results[5].detail


@pytest.mark.anyio
async def test_resolve_sets_status_reason_and_tag(clock: FakeClock) -> None:
    fd = connector(clock)
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record())
        put = fake.put("/api/v2/tickets/42").respond(json=record())
        (short,) = await fd.apply(ticket(), [act(Resolve, resolution="no_response")])
        body = sent(put)
        (long,) = await fd.apply(ticket(), [act(Resolve, resolution="inadequate_environment")])
    assert short.outcome == long.outcome == Outcome.APPLIED
    assert body == {
        "status": 4,
        "custom_fields": {F["resolution_reason"]: "no_response"},
        "tags": ["existing-tag", "resolution-no_response"],
    }
    # "resolution-inadequate_environment" has 33 characters: the field alone records it
    assert sent(put) == {
        "status": 4,
        "custom_fields": {F["resolution_reason"]: "inadequate_environment"},
    }


@pytest.mark.anyio
async def test_a_close_after_comments_comes_last(clock: FakeClock) -> None:
    """The comments go to the ticket before it is closed; without comments the close rides in
    the one update. A ticket already closed is not closed again."""
    fd = connector(clock)
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record())
        put = fake.put("/api/v2/tickets/42").respond(json=record())
        reply = fake.post("/api/v2/tickets/42/reply").respond(
            201, json=conversation(8, AGENT, "Bye")
        )
        results = await fd.apply(
            ticket(),
            [
                act(Close, "a"),
                act(AddComment, "b", body="Bye"),
                act(AddTags, "c", tags=frozenset({"done"})),
            ],
        )
        order = [(c.request.method, c.request.url.path) for c in fake.calls]
        assert [r.outcome for r in results] == [Outcome.APPLIED] * 3
        assert results[1].created_id == "8"
        assert order == [
            ("GET", "/api/v2/tickets/42"),
            ("PUT", "/api/v2/tickets/42"),
            ("POST", "/api/v2/tickets/42/reply"),
            ("PUT", "/api/v2/tickets/42"),
        ]
        assert sent(put, 0) == {"tags": ["existing-tag", "done"]} and sent(put, 1) == {"status": 5}
        (alone,) = await fd.apply(ticket(), [act(Close)])
        assert alone.outcome == Outcome.APPLIED and sent(put) == {"status": 5}
        calls = len(fake.calls)
        (again,) = await fd.apply(ticket(status=Status.CLOSED), [act(Close)])
        assert again.outcome == Outcome.UNCHANGED and len(fake.calls) == calls
    assert reply.call_count == 1


@pytest.mark.anyio
async def test_custom_values_are_sent_as_their_fields_types(clock: FakeClock) -> None:
    """``set_field`` values are text; a number field wants an integer (Freshdesk answers
    ``datatype_mismatch`` otherwise): the types come from ``/ticket_fields``, once."""
    emulator, fd = on_emulator(clock)
    data = fd.config.model_dump(mode="json")
    data["fields"]["ticket_ref"] = f"custom:{fixtures.FOLLOW_UP_FIELD}"
    config = DeskConfig.model_validate(data)
    fd = FreshdeskConnector(config, fd.secrets, fd.runtime)
    tid = emulator.add_ticket(sample(clock))
    read = await fd.read_ticket(tid)
    (result,) = await fd.apply(read, [act(SetField, field="ticket_ref", value="12")])
    assert result.outcome == Outcome.APPLIED, result.detail
    assert emulator.tickets[int(tid)].custom[fixtures.FOLLOW_UP_FIELD] == 12
    (again,) = await fd.apply(
        await fd.read_ticket(tid), [act(SetField, "k2", field="ticket_ref", value="13")]
    )
    assert again.outcome == Outcome.APPLIED
    assert sum(r.path == "/api/v2/ticket_fields" for r in emulator.requests) == 1


@pytest.mark.anyio
async def test_a_follow_up_is_linked_marked_and_carries_the_intake_fields(
    clock: FakeClock,
) -> None:
    emulator, fd = on_emulator(clock)
    closed = sample(
        clock,
        status=Status.CLOSED,
        severity=Severity.HIGH,
        priority=Priority.HIGH,
        fields={"server_url": "https://kaseya.acme.example", "version": "10.1"},
        resolution_reason="no_response",
    )
    tid = emulator.add_ticket(closed)
    read = await fd.read_ticket(tid)
    action = act(CreateFollowUp, "fu-1", subject="Follow-up: agents offline", body="It is back.")
    (result,) = await fd.apply(read, [action])
    assert result.outcome == Outcome.APPLIED and result.created_id
    follow = await fd.read_ticket(result.created_id)
    assert follow.follow_up_of == tid and follow.subject == "Follow-up: agents offline"
    assert follow.description == "It is back." and follow.status == Status.OPEN
    assert follow.requester.email == "anna@acme.example" and follow.priority == Priority.HIGH
    assert dict(follow.fields) == {"server_url": "https://kaseya.acme.example", "version": "10.1"}
    assert follow.severity == Severity.HIGH and follow.resolution_reason is None
    (marker,) = follow.tags
    assert marker == "tw-fu-" + hashlib.sha256(b"fu-1").hexdigest()[:16]
    assert await fd.already_applied(read, action)
    assert not await fd.already_applied(read, act(CreateFollowUp, "fu-2", subject="S", body="B"))


@pytest.mark.anyio
async def test_without_a_link_field_the_follow_up_is_linked_by_a_tag(clock: FakeClock) -> None:
    emulator, fd = on_emulator(clock, follow_up_field=None)
    tid = emulator.add_ticket(sample(clock, status=Status.CLOSED))
    read = await fd.read_ticket(tid)
    (result,) = await fd.apply(read, [act(CreateFollowUp, subject="Again", body="Back.")])
    assert result.created_id is not None
    follow = await fd.read_ticket(result.created_id)
    assert follow.follow_up_of == tid and f"tw_follow_up_of_{tid}" in follow.tags


@pytest.mark.anyio
async def test_a_timed_out_follow_up_is_found_by_its_marker(clock: FakeClock) -> None:
    fd = connector(clock)
    marker = "tw-fu-" + hashlib.sha256(b"fu-key").hexdigest()[:16]
    existing = record(77, tags=[marker], custom_fields={fixtures.FOLLOW_UP_FIELD: 42})
    with mock() as fake:
        fake.get("/api/v2/tickets/42").respond(json=record(status=5))
        post = fake.post("/api/v2/tickets").mock(side_effect=httpx.ReadTimeout("lost"))
        find = fake.get("/api/v2/tickets").respond(json=[record(76), existing])
        (result,) = await fd.apply(
            ticket(status=Status.CLOSED), [act(CreateFollowUp, "fu-key", subject="S", body="B")]
        )
    assert (result.outcome, result.created_id) == (Outcome.APPLIED, "77")
    assert post.call_count == 1
    payload = sent(post)
    assert payload["tags"] == [marker] and payload["requester_id"] == CUSTOMER
    assert payload["custom_fields"][fixtures.FOLLOW_UP_FIELD] == 42
    assert payload["description"] == "<div>B</div>" and payload["status"] == 2
    assert dict(find.calls[0].request.url.params) == {
        "requester_id": str(CUSTOMER),
        "order_by": "created_at",
        "order_type": "desc",
        "per_page": "100",
    }


# --- (g) webhooks ---------------------------------------------------------------------------------

PAYLOAD = {"ticket_id": "42", "event": "updated", "updated_at": STAMP, "status": "Pending"}


def signed(
    body: dict[str, Any] | bytes,
    at: datetime,
    secret: str = fixtures.WEBHOOK_SECRET,
    delivery: str | None = "updated-42-2026-11-23T08:00:00Z",
) -> tuple[dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Ticketwarden-Timestamp": stamp,
        "X-Ticketwarden-Signature": f"sha256={digest}",
    }
    if delivery is not None:
        headers["X-Ticketwarden-Delivery"] = delivery
    return headers, raw


def static(
    body: dict[str, Any] | bytes, secret: str = fixtures.WEBHOOK_SECRET
) -> tuple[dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {"X-Ticketwarden-Secret": secret, "X-Ticketwarden-Delivery": "d-1"}, raw


def rejection(clock: FakeClock, headers: dict[str, str], body: bytes, now: datetime = NOW) -> str:
    with pytest.raises(WebhookRejected) as rejected:
        connector(clock).verify_webhook(headers, body, now)
    return rejected.value.reason


def test_a_signed_webhook_is_normalized(clock: FakeClock) -> None:
    fd = connector(clock)
    headers, body = signed(PAYLOAD, NOW - timedelta(seconds=20))
    (event,) = fd.verify_webhook(headers, body, NOW)
    assert (event.ticket_id, event.kind, event.at) == ("42", EventKind.UPDATED, NOW)
    assert event.delivery_id == "updated-42-2026-11-23T08:00:00Z"
    created, raw = signed({"ticket_id": 43, "event": "created"}, NOW, delivery=None)
    (event,) = fd.verify_webhook(created, raw, NOW)
    assert (event.ticket_id, event.kind, event.at) == ("43", EventKind.CREATED, NOW)
    assert event.delivery_id == f"created-43-{int(NOW.timestamp())}"
    # the placeholder may render a time that is not ISO 8601: the delivery's time is used
    odd, raw = signed({**PAYLOAD, "updated_at": "Mon, 23 Nov 2026 at 09:00 AM"}, NOW, delivery=None)
    (event,) = fd.verify_webhook(odd, raw, NOW)
    assert event.at == NOW and event.delivery_id == "updated-42-Mon, 23 Nov 2026 at 09:00 AM"


def test_the_emulators_deliveries_verify(clock: FakeClock) -> None:
    emulator, fd = on_emulator(clock)
    tid = emulator.add_ticket(sample(clock))
    for form in (False, True):
        headers, body = emulator.make_webhook(
            tid, EventKind.CREATED, fixtures.WEBHOOK_SECRET, static_secret=form
        )
        (event,) = fd.accept_webhook(headers, body, clock.now())
        assert (event.ticket_id, event.kind) == (tid, EventKind.CREATED)
        with pytest.raises(WebhookRejected) as again:
            fd.verify_webhook(headers, body, clock.now())
        assert again.value.reason == "replayed"
        fd.replay_guard = type(fd.replay_guard)(fd.replay_window)


def test_tampered_unsigned_stale_and_replayed_signed_webhooks_are_rejected(
    clock: FakeClock,
) -> None:
    headers, body = signed(PAYLOAD, NOW)
    assert rejection(clock, headers, body.replace(b'"42"', b'"43"')) == "bad_signature"
    assert rejection(clock, headers, body + b" ") == "bad_signature"
    other, raw = signed(PAYLOAD, NOW, secret="someone else's secret")
    assert rejection(clock, other, raw) == "bad_signature"
    changed = {**headers, "X-Ticketwarden-Timestamp": str(int(NOW.timestamp()) + 1)}
    assert rejection(clock, changed, body) == "bad_signature"  # the timestamp is signed too
    unsigned = {k: v for k, v in headers.items() if k != "X-Ticketwarden-Signature"}
    assert rejection(clock, unsigned, body) == "unsigned"
    no_stamp = {k: v for k, v in headers.items() if k != "X-Ticketwarden-Timestamp"}
    assert rejection(clock, no_stamp, body) == "malformed"
    stale, raw = signed(PAYLOAD, NOW - timedelta(minutes=6))
    assert rejection(clock, stale, raw) == "expired"
    future, raw = signed(PAYLOAD, NOW + timedelta(minutes=6))
    assert rejection(clock, future, raw) == "expired"
    fd = connector(clock)
    fd.accept_webhook(headers, body, NOW)
    with pytest.raises(WebhookRejected) as replayed:
        fd.verify_webhook(headers, body, NOW + timedelta(seconds=30))
    assert replayed.value.reason == "replayed"
    nosecret = FreshdeskConnector(desk(), DeskSecrets(credentials=SECRETS.credentials))
    with pytest.raises(WebhookRejected) as refused:
        nosecret.verify_webhook(headers, body, NOW)
    assert refused.value.reason == "unsigned"


def test_the_static_secret_fallback(clock: FakeClock) -> None:
    """The shared secret in ``X-Ticketwarden-Secret``, compared in constant time: accepted when
    right, ``bad_signature`` when wrong. It cannot detect a changed body (a tampered body with
    the right secret is accepted — hence the HMAC where a relay can compute it); a timestamp
    and a delivery id, when sent, are still checked."""
    fd = connector(clock)
    headers, body = static(PAYLOAD)
    (event,) = fd.accept_webhook(headers, body, NOW)
    assert (event.ticket_id, event.delivery_id) == ("42", "d-1")
    with pytest.raises(WebhookRejected) as replayed:
        fd.verify_webhook(headers, body, NOW)
    assert replayed.value.reason == "replayed"
    wrong, raw = static(PAYLOAD, secret=fixtures.WEBHOOK_SECRET[:-1] + "x")
    assert rejection(clock, wrong, raw) == "bad_signature"
    tampered = body.replace(b'"42"', b'"43"')
    (event,) = connector(clock).verify_webhook(headers, tampered, NOW)
    assert event.ticket_id == "43"  # undetectable without a signature
    stale = {
        **headers,
        "X-Ticketwarden-Timestamp": str(int((NOW - timedelta(hours=1)).timestamp())),
    }
    assert rejection(clock, stale, body) == "expired"
    assert (
        rejection(clock, {**headers, "X-Ticketwarden-Timestamp": "yesterday"}, body) == "malformed"
    )
    assert rejection(clock, {"X-Ticketwarden-Delivery": "d-1"}, body) == "unsigned"
    # no delivery id, no update time, no timestamp: nothing tells two deliveries apart, so
    # neither is refused as the other's replay
    bare = json.dumps({"ticket_id": "42", "event": "updated"}).encode()
    fd = connector(clock)
    secret_only = {"X-Ticketwarden-Secret": fixtures.WEBHOOK_SECRET}
    first = fd.accept_webhook(secret_only, bare, NOW)
    second = fd.accept_webhook(secret_only, bare, NOW)
    assert first[0].delivery_id != second[0].delivery_id


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"event": "updated"}',
        b'{"ticket_id": "42"}',
        b'{"ticket_id": "42; DROP", "event": "updated"}',
        b'{"ticket_id": "{{ticket.id}}", "event": "updated"}',
        b'{"ticket_id": "42", "event": "deleted"}',
        b'{"ticket_id": "42", "event": "resolved"}',
    ],
)
def test_malformed_webhook_bodies_are_rejected(clock: FakeClock, body: bytes) -> None:
    headers, raw = signed(body, NOW)
    assert rejection(clock, headers, raw) == "malformed"


# --- (h) plumbing ---------------------------------------------------------------------------------


def test_secrets_from_the_environment_values() -> None:
    values = {"API_KEY": SecretStr("abcdefgh12345678"), "WEBHOOK_SECRET": SecretStr("whs")}
    secrets = FreshdeskConnector.secrets_from(values)
    credentials = secrets.credentials
    assert isinstance(credentials, BasicCredentials)
    assert isinstance(credentials.username, SecretStr)
    assert credentials.username.get_secret_value() == "abcdefgh12345678"
    assert credentials.password.get_secret_value() == "X"
    assert "abcdefgh12345678" in credentials.secrets()  # redacted from logs and errors
    assert secrets.webhook_secret == SecretStr("whs")
    for other in (
        {"USERNAME": SecretStr("u"), "PASSWORD": SecretStr("p")},
        {"OAUTH_TOKEN": SecretStr("t")},
    ):
        assert FreshdeskConnector.secrets_from(other).credentials is None


def test_the_plugin_registers_the_connector() -> None:
    assert plugin.register_connectors() == {"freshdesk": FreshdeskConnector}
    assert FreshdeskConnector.emulator() is FreshdeskEmulator


def test_the_base_url_is_the_helpdesks_origin() -> None:
    assert FreshdeskConnector.base_url_for("acme") == "https://acme.freshdesk.com"
    assert (
        FreshdeskConnector.base_url_for("https://Acme.freshdesk.com/")
        == "https://acme.freshdesk.com"
    )
    with pytest.raises(ValueError):
        FreshdeskConnector.base_url_for("acme.example.com/x")
    fd = FreshdeskConnector(desk(base_url=f"{BASE}/api/v2/"), SECRETS)
    assert str(fd.client.base_url).rstrip("/") == BASE
    assert fd.config.base_url == BASE


def test_text_and_html_round_trip() -> None:
    text = "Grüße — <b>not bold</b> & 東京\n\nsecond line"
    assert html_to_text(text_to_html(text)) == text
    assert html_to_text("<p>One</p><p>Two<br/>three &amp; four</p>") == "One\nTwo\nthree & four"
