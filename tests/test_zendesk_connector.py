"""The Zendesk connector against respx-mocked Zendesk, the recorded real interactions and
Zendesk's own OpenAPI description — no emulator needed.

* The recorded real responses (``../shared/vendor/zendesk/recorded.json``) are parsed without
  loss: status, priority, requester, organization, tags, custom fields, timestamps.
* The request bodies the connector sends have the shape of the real requests of the same
  endpoints there, and every key is one Zendesk's OpenAPI description names (with the known
  ``custom_fields`` fault of its request schema named where it is worked around).
* Every error path (401, 404, 409, 422, 429, 5xx, timeouts of non-idempotent writes), search
  quoting with an injection attempt, webhook verification, and the incremental export's
  paging, resumption and separate rate limit.

Nothing sleeps for real: every connector runs on a :class:`FakeClock`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta, timezone
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
    ProtocolError,
    RateLimitedError,
    RejectedError,
)
from ticketwarden.core.http import BasicCredentials, BearerToken
from ticketwarden.core.model import (
    AuthorRole,
    Contact,
    EventKind,
    Organization,
    Priority,
    Severity,
    Status,
    Ticket,
)
from ticketwarden.plugins import zendesk as plugin
from ticketwarden.plugins.zendesk import fixtures
from ticketwarden.plugins.zendesk.connector import ZendeskConnector, zendesk_time
from ticketwarden.plugins.zendesk.search import (
    SearchValueError,
    quote_search_value,
    search_time,
    ticket_search_query,
)
from ticketwarden.testing.emulator import FakeClock

VENDOR = Path(__file__).resolve().parents[1].parent / "shared" / "vendor" / "zendesk"
needs_vendor = pytest.mark.skipif(
    not VENDOR.is_dir(),
    reason="the vendor material (../shared/vendor/zendesk) is absent: the recorded Zendesk "
    "interactions and Zendesk's OpenAPI description cannot be loaded",
)

BASE = "https://acme.zendesk.com"
AGENT = fixtures.AGENT_ID
F = fixtures.TICKET_FIELDS
CUSTOMER = 381001
LEAD = 381002  # another agent
STAMP = "2026-11-23T08:00:00Z"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def mock() -> respx.MockRouter:
    """A mocked Zendesk at ``BASE`` (routes a test sets up need not all be called)."""
    return respx.mock(base_url=BASE, assert_all_called=False)


def desk(**overrides: Any) -> DeskConfig:
    data: dict[str, Any] = {
        "name": "zendesk-acme",
        "connector": "zendesk",
        "base_url": BASE,
        "fields": {
            "server_url": f"custom:{F['server_url']}",
            "module": f"custom:{F['module']}",
            "version": f"custom:{F['version']}",
            "severity": f"custom:{F['severity']}",
            "resolution_reason": f"custom:{F['resolution_reason']}",
        },
        "severity_values": dict(fixtures.SEVERITY_VALUES),
        "escalation": {
            "support-leads": {"group": str(fixtures.GROUPS["support-leads"])},
            "duty-manager": {"group": "360000000103", "assignee": str(LEAD)},
            "made-up": {"group": "leads-team"},
        },
        "contacts": {
            "where": "user",
            "authorized_field": fixtures.USER_FIELDS["authorized"],
            "certified_until_field": fixtures.USER_FIELDS["certified_until"],
            "available_24x7_field": fixtures.USER_FIELDS["available_24x7"],
        },
        "http": {"retry": {"jitter": 0.0}},
        "options": {"agent_id": AGENT, "create_settle_seconds": 1.0},
    }
    options = overrides.pop("options", {})
    data.update(overrides)
    data["options"] = {**data["options"], **options}
    return DeskConfig.model_validate(data)


SECRETS = DeskSecrets(
    credentials=BasicCredentials(
        username=f"{fixtures.AGENT_EMAIL}/token", password=SecretStr(fixtures.API_TOKEN)
    ),
    webhook_secret=SecretStr(fixtures.WEBHOOK_SECRET),
)


def connector(clock: FakeClock, config: DeskConfig | None = None) -> ZendeskConnector:
    runtime = Runtime(clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.time)
    return ZendeskConnector(config or desk(), SECRETS, runtime)


def record(tid: int = 42, **overrides: Any) -> dict[str, Any]:
    """A ticket record as Zendesk's show-ticket returns it."""
    data: dict[str, Any] = {
        "url": f"{BASE}/api/v2/tickets/{tid}.json",
        "id": tid,
        "external_id": None,
        "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": "2026-11-20T09:00:00Z",
        "updated_at": STAMP,
        "subject": "Agents offline after the server update",
        "description": "Since yesterday all agents are offline.",
        "priority": "normal",
        "status": "open",
        "requester_id": CUSTOMER,
        "submitter_id": CUSTOMER,
        "assignee_id": AGENT,
        "organization_id": 5001,
        "group_id": fixtures.GROUPS["support-on-call"],
        "tags": ["existing-tag"],
        "custom_fields": [
            {"id": F["server_url"], "value": "https://kaseya.acme.example"},
            {"id": F["module"], "value": "Agent"},
            {"id": F["version"], "value": None},
            {"id": F["severity"], "value": "severity_2"},
            {"id": 999_999, "value": "a field nobody mapped"},
        ],
    }
    data.update(overrides)
    return data


USERS = [
    {"id": CUSTOMER, "name": "Anna Berger", "email": "anna@acme.example", "role": "end-user"},
    {"id": AGENT, "name": "ticketwarden", "email": fixtures.AGENT_EMAIL, "role": "admin"},
    {"id": LEAD, "name": "Lena Lead", "email": "lena@vendor.example", "role": "agent"},
]


def show(ticket: dict[str, Any]) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "users": USERS,
        "organizations": [{"id": 5001, "name": "Acme"}],
        "groups": [{"id": fixtures.GROUPS["support-on-call"], "name": "Support on call"}],
    }


def comment(cid: int, author: int, body: str, **overrides: Any) -> dict[str, Any]:
    data = {
        "id": cid,
        "type": "Comment",
        "author_id": author,
        "body": body,
        "public": True,
        "created_at": "2026-11-20T09:00:00Z",
        "via": {"channel": "web"},
    }
    data.update(overrides)
    return data


def comments_page(*items: dict[str, Any], more: str | None = None) -> dict[str, Any]:
    return {
        "comments": list(items),
        "users": USERS,
        "meta": {"has_more": more is not None, "after_cursor": more, "before_cursor": None},
        "links": {"prev": None, "next": None},
    }


def ticket(**overrides: Any) -> Ticket:
    """The normalized ticket the connector would have read (the base of apply() calls)."""
    data: dict[str, Any] = {
        "id": "42",
        "number": "#42",
        "desk": "zendesk-acme",
        "status": Status.OPEN,
        "requester": Contact(id=str(CUSTOMER), email="anna@acme.example"),
        "organization": Organization(id="5001"),
        "tags": frozenset({"existing-tag"}),
        "created_at": datetime(2026, 11, 20, 9, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 23, 8, tzinfo=UTC),
    }
    data.update(overrides)
    return Ticket(**data)


def act(cls: type[BaseAction], key: str = "k1", **fields: Any) -> Any:
    return cls(rule_id="TEST-1", reason="test", key=key, **fields)


def sent(route: respx.Route, number: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls[number].request.content)
    return body


def updated(ticket_record: dict[str, Any], **changes: Any) -> httpx.Response:
    return httpx.Response(200, json={"ticket": {**ticket_record, **changes}, "audit": {}})


# --- the recorded real interactions --------------------------------------------------------------


@functools.cache
def recorded() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((VENDOR / "recorded.json").read_text("utf-8"))
    return data


def interactions(method: str, path: str) -> list[dict[str, Any]]:
    """Recorded interactions whose path (without query) matches the regular expression."""
    pattern = re.compile(path)
    return [
        i
        for i in recorded()
        if i["method"] == method
        and pattern.fullmatch(httpx.URL(i["uri"]).path)
        and i["status"] < 400
    ]


def real(kind: str) -> dict[int, dict[str, Any]]:
    """Every distinct real ticket, user or organization record in a recorded response body."""
    singular = kind[:-1]
    found: dict[int, dict[str, Any]] = {}
    for interaction in recorded():
        body = interaction["body"]
        if not isinstance(body, dict):
            continue
        items = list(body.get(kind) or [])
        if isinstance(body.get(singular), dict):
            items.append(body[singular])
        for item in items:
            if isinstance(item, dict) and "created_at" in item and "id" in item:
                found[item["id"]] = item
    return found


@functools.cache
def openapi() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((VENDOR / "support-openapi-2025-06.json").read_text("utf-8"))
    return spec


def schema(name: str) -> dict[str, Any]:
    """A component schema with ``allOf`` merged and ``$ref`` resolved one level."""
    node: dict[str, Any] = openapi()["components"]["schemas"][name]
    properties: dict[str, Any] = {}
    for part in node.get("allOf", [node]):
        if "$ref" in part:
            part = schema(part["$ref"].rsplit("/", 1)[1])
        properties.update(part.get("properties", {}))
    return {"properties": properties}


JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "integer": int,
    "string": str,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def json_type(value: Any) -> str:
    for name, cls in JSON_TYPES.items():
        if isinstance(value, cls) and not (name == "integer" and isinstance(value, bool)):
            return name
    return "null" if value is None else type(value).__name__


def assert_matches_schema(value: dict[str, Any], name: str, *, undocumented: set[str]) -> None:
    """Every key of ``value`` is a property of the schema, with the declared JSON type."""
    properties = schema(name)["properties"]
    for key, item in value.items():
        if key in undocumented:
            continue
        assert key in properties, f"{key!r} is not a property of {name}"
        declared = properties[key]
        if "$ref" in declared:
            assert json_type(item) == "object", f"{key}: {item!r}"
            continue
        assert json_type(item) == declared["type"], f"{key}: {item!r} is not {declared['type']}"


# --- (a) parsing the recorded real responses -----------------------------------------------------


@needs_vendor
def test_every_recorded_ticket_parses_without_loss(clock: FakeClock) -> None:
    """All 556 real ticket records: id, status, priority, requester (with the real user's name
    and e-mail), organization (with its real name), group, assignee, tags, timestamps."""
    tickets, users, orgs = real("tickets"), real("users"), real("organizations")
    assert len(tickets) > 500
    zd = connector(clock)
    statuses = {"new": Status.NEW, "open": Status.OPEN}
    for tid, raw in tickets.items():
        parsed = zd.ticket_from(raw, users=users.values(), organizations=orgs.values())
        assert parsed.id == str(tid) and parsed.number == f"#{tid}"
        assert parsed.subject == raw["subject"] and parsed.description == raw["description"]
        assert parsed.status == statuses[raw["status"]]
        assert parsed.priority == (Priority(raw["priority"]) if raw["priority"] else None)
        assert parsed.requester.id == str(raw["requester_id"])
        assert parsed.requester.email == (users[raw["requester_id"]]["email"] or "")
        assert parsed.requester.name == users[raw["requester_id"]]["name"]
        if raw["organization_id"] is None:
            assert parsed.organization is None
        else:
            assert parsed.organization == Organization(
                id=str(raw["organization_id"]), name=orgs[raw["organization_id"]]["name"]
            )
        assert parsed.group == (str(raw["group_id"]) if raw["group_id"] else None)
        assert parsed.assignee == (str(raw["assignee_id"]) if raw["assignee_id"] else None)
        assert parsed.tags == frozenset(raw["tags"])
        assert zendesk_time(parsed.created_at) == raw["created_at"]
        assert zendesk_time(parsed.updated_at) == raw["updated_at"]
        assert parsed.fields == {} and parsed.severity is None  # no custom values recorded
        assert parsed.follow_up_of is None


@needs_vendor
@pytest.mark.anyio
async def test_the_sample_ticket_reads_through_the_api_from_real_records(
    clock: FakeClock,
) -> None:
    """read_ticket on Zendesk's own sample ticket (#1, recorded in the ticket list): two
    requests, the real requester, group, assignee, priority and tags."""
    sample = real("tickets")[1]
    users = real("users")
    people = [users[sample["requester_id"]], users[sample["assignee_id"]]]
    zd = connector(clock)
    with mock() as desk_:
        desk_.get("/api/v2/tickets/1.json").respond(json={"ticket": sample, "users": people})
        desk_.get("/api/v2/tickets/1/comments.json").respond(
            json={"comments": [], "users": [], "meta": {"has_more": False}}
        )
        read = await zd.read_ticket("1")
        assert len(desk_.calls) == 2
    assert read.status == Status.OPEN and read.priority == Priority.NORMAL
    assert read.requester == Contact(
        id="6130869168922", name="The Customer", email="customer@example.com"
    )
    assert (read.group, read.assignee) == ("6130852536346", "6130907993114")
    assert read.tags == {"sample", "support", "zendesk"}


@needs_vendor
def test_real_custom_field_ids_map_through_the_configuration(clock: FakeClock) -> None:
    """Custom fields by the real ids of fields created in the recorded account. The recorded
    tickets carry no custom field values, so values in the response schema's shape
    (``{"id": int, "value": str}``) are put on a real ticket record."""
    created = [
        i["body"]["ticket_field"] for i in interactions("POST", r"/api/v2/ticket_fields\.json")
    ]
    ids = [f["id"] for f in created]
    assert len(ids) == 3 and all(isinstance(i, int) for i in ids)
    config = desk(fields={"server_url": f"custom:{ids[0]}", "version": f"custom:{ids[1]}"})
    zd = connector(clock, config)
    raw = real("tickets")[4016]
    assert zd.ticket_from(raw).fields == {}
    response_item = openapi()["components"]["schemas"]["TicketObject"]["properties"][
        "custom_fields"
    ]["items"]["properties"]
    values = [
        {"id": ids[0], "value": "https://kaseya.acme.example"},
        {"id": ids[1], "value": "10.1.2"},
        {"id": ids[2], "value": "not mapped by this desk"},
    ]
    for item in values:
        assert {k: json_type(v) for k, v in item.items()} == {
            k: v["type"] for k, v in response_item.items()
        }
    parsed = zd.ticket_from({**raw, "custom_fields": values, "fields": values})
    assert parsed.fields == {"server_url": "https://kaseya.acme.example", "version": "10.1.2"}


@needs_vendor
def test_recorded_create_and_update_responses_parse(clock: FakeClock) -> None:
    """The real POST /tickets.json (201) and PUT /tickets/{id}.json (200) response bodies —
    ``{"ticket": …, "audit": …}`` — are what apply() reads the new stamp from."""
    zd = connector(clock)
    for interaction in interactions("POST", r"/api/v2/tickets\.json") + interactions(
        "PUT", r"/api/v2/tickets/\d+\.json"
    ):
        body = interaction["body"]
        assert set(body) == {"ticket", "audit"}
        parsed = zd.ticket_from(body["ticket"])
        assert zendesk_time(parsed.updated_at) == body["ticket"]["updated_at"]
        assert parsed.status == Status.NEW and parsed.requester.id == "6130907993114"


@needs_vendor
@pytest.mark.anyio
async def test_roster_from_real_user_records(clock: FakeClock) -> None:
    """The recorded users as the user search export returns them: their ``user_fields`` are
    empty (a search hit the index has not caught up with is checked again and dropped); then
    one of them with the authorized-contact user fields set."""
    users = [u for u in real("users").values() if u.get("email")]
    acme = [u for u in users if u["organization_id"] == 6130869157658]
    assert acme, "the recorded account has users in its organization"
    keys = fixtures.USER_FIELDS
    flagged = dict(acme[0])
    flagged["user_fields"] = {
        keys["authorized"]: True,
        keys["certified_until"]: "2027-03-31",
        keys["available_24x7"]: True,
    }

    def results(*found: dict[str, Any]) -> dict[str, Any]:
        return {
            "results": [{**u, "result_type": "user"} for u in found],
            "facets": None,
            "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
            "links": {"next": None, "prev": None},
        }

    zd = connector(clock)
    with mock() as desk_:
        route = desk_.get("/api/v2/search/export.json")
        route.respond(json=results(*users))
        assert (await zd.roster()).entries == ()
        route.respond(json=results(flagged, *users[1:]))
        roster = await zd.roster()
    params = route.calls[0].request.url.params
    assert params["query"] == f"{keys['authorized']}:true"
    assert params["filter[type]"] == "user"
    (entry,) = roster.entries
    assert entry.organization == "6130869157658"
    (contact,) = entry.contacts
    assert contact.email == flagged["email"].lower() and contact.name == flagged["name"]
    assert contact.certified_until is not None
    assert contact.certified_until.isoformat() == "2027-03-31"
    assert contact.available_24x7


# --- (b) request bodies compared with the real requests and the OpenAPI description --------------


@needs_vendor
@pytest.mark.anyio
async def test_the_update_body_has_the_shape_of_the_real_update_request(clock: FakeClock) -> None:
    """One evaluation's field changes and comment go out as one PUT whose body has the real
    request's shape: top-level ``ticket``, keys of Zendesk's TicketUpdateInput with their
    types, ``custom_fields`` as ``[{"id": int, "value": …}]``, ``safe_update`` and the
    ``updated_stamp`` read."""
    (real_request,) = [i["request_body"] for i in interactions("PUT", r"/api/v2/tickets/\d+\.json")]
    real_response = interactions("PUT", r"/api/v2/tickets/\d+\.json")[0]["body"]
    zd = connector(clock)
    actions = [
        act(SetField, "f", field="server_url", value="https://new.acme.example"),
        act(SetSeverity, "s", severity=Severity.CRITICAL),
        act(SetPriority, "p", priority=Priority.URGENT),
        act(AddTags, "t", tags=frozenset({"tw-sev1"})),
        act(RemoveTags, "r", tags=frozenset({"existing-tag"})),
        act(AddComment, "c", body="We are on it.", public=True),
        act(Escalate, "e", target="support-leads"),
        act(SetStatus, "st", status=Status.WAITING_ON_CUSTOMER),
    ]
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json").mock(
            return_value=updated(
                real_response["ticket"], id=42, tags=["tw-sev1"], updated_at="2026-11-23T08:00:05Z"
            )
        )
        results = await zd.apply(ticket(), actions)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * len(actions)
    assert route.call_count == 1, "one safe update for the whole evaluation"
    body = sent(route)
    assert set(body) == set(real_request) == {"ticket"}
    ours, theirs = body["ticket"], real_request["ticket"]
    for key in set(ours) & set(theirs):
        assert json_type(ours[key]) == json_type(theirs[key]), key
    assert ours == {
        "custom_fields": [
            {"id": F["server_url"], "value": "https://new.acme.example"},
            {"id": F["severity"], "value": "severity_1"},
        ],
        "priority": "urgent",
        "additional_tags": ["tw-sev1"],
        "remove_tags": ["existing-tag"],
        "comment": {"body": "We are on it.", "public": True, "author_id": AGENT},
        "group_id": fixtures.GROUPS["support-leads"],
        "status": "pending",
        "safe_update": True,
        "updated_stamp": STAMP,
    }
    # Zendesk documents additional_tags/remove_tags in "Adding tags to tickets without
    # overwriting existing tags", not in the OpenAPI TicketUpdateInput; and the OpenAPI request
    # schema describes custom_fields items as field *definitions* (its known fault), so they
    # are checked against the response schema's {"id": integer, "value": string}.
    assert_matches_schema(
        ours, "TicketUpdateInput", undocumented={"additional_tags", "remove_tags"}
    )
    assert "title" in schema("CustomFieldObject")["properties"]  # the faulty request schema
    item = openapi()["components"]["schemas"]["TicketObject"]["properties"]["custom_fields"]
    for field_value in ours["custom_fields"]:
        assert {k: json_type(v) for k, v in field_value.items()} == {
            k: v["type"] for k, v in item["items"]["properties"].items()
        }
    assert_matches_schema(ours["comment"], "TicketCommentObject", undocumented=set())


@needs_vendor
@pytest.mark.anyio
async def test_the_follow_up_body_has_the_shape_of_the_real_create_request(
    clock: FakeClock,
) -> None:
    """POST /tickets.json: top-level ``ticket`` like the real request, ``subject`` a string like
    there, every key a property of Zendesk's TicketCreateInput."""
    real_request = interactions("POST", r"/api/v2/tickets\.json")[0]["request_body"]
    real_response = interactions("POST", r"/api/v2/tickets\.json")[0]["body"]
    zd = connector(clock)
    follow = act(CreateFollowUp, "fu1", subject="Re: agents offline", body="It is back.")
    with mock() as desk_:
        route = desk_.post("/api/v2/tickets.json").respond(201, json=real_response)
        (result,) = await zd.apply(ticket(status=Status.CLOSED), [follow])
    assert result.outcome == Outcome.APPLIED and result.created_id == "4014"
    body = sent(route)
    assert set(body) == set(real_request) == {"ticket"}
    ours, theirs = body["ticket"], real_request["ticket"]
    assert set(ours) & set(theirs) == {"subject"}
    assert json_type(ours["subject"]) == json_type(theirs["subject"]) == "string"
    assert ours == {
        "subject": "Re: agents offline",
        "comment": {"body": "It is back.", "public": True, "author_id": CUSTOMER},
        "requester_id": CUSTOMER,
        "via_followup_source_id": 42,
        "external_id": "tw:fu1",
    }
    assert_matches_schema(ours, "TicketCreateInput", undocumented=set())


# --- writes: batching and the mapping of each action ---------------------------------------------


@pytest.mark.anyio
async def test_close_of_an_open_ticket_solves_then_closes_with_the_returned_stamp(
    clock: FakeClock,
) -> None:
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json")
        route.side_effect = [
            updated(record(), status="solved", updated_at="2026-11-23T08:00:07Z"),
            updated(record(), status="closed", updated_at="2026-11-23T08:00:08Z"),
        ]
        results = await zd.apply(
            ticket(), [act(Resolve, "r", resolution="no_response"), act(Close, "c")]
        )
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]
    first, second = sent(route, 0)["ticket"], sent(route, 1)["ticket"]
    assert first["status"] == "solved" and first["updated_stamp"] == STAMP
    assert first["custom_fields"] == [{"id": F["resolution_reason"], "value": "no_response"}]
    assert first["additional_tags"] == ["resolution-no_response"]
    assert second == {
        "status": "closed",
        "safe_update": True,
        "updated_stamp": "2026-11-23T08:00:07Z",  # what the first update returned
    }


@pytest.mark.anyio
async def test_close_of_a_solved_ticket_is_one_update(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json").mock(
            return_value=updated(record(), status="closed")
        )
        (result,) = await zd.apply(ticket(status=Status.RESOLVED), [act(Close)])
    assert result.outcome == Outcome.APPLIED and route.call_count == 1
    assert sent(route)["ticket"]["status"] == "closed"


@pytest.mark.anyio
async def test_each_further_comment_is_one_more_update(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json")
        route.side_effect = [
            updated(record(), updated_at="2026-11-23T08:00:01Z"),
            updated(record(), updated_at="2026-11-23T08:00:02Z"),
        ]
        results = await zd.apply(
            ticket(),
            [
                act(AddComment, "a", body="Public reply"),
                act(AddComment, "b", body="Internal note", public=False),
            ],
        )
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED]
    assert sent(route, 1)["ticket"] == {
        "comment": {"body": "Internal note", "public": False, "author_id": AGENT},
        "safe_update": True,
        "updated_stamp": "2026-11-23T08:00:01Z",
    }


@pytest.mark.anyio
async def test_refusals_fail_visibly_without_a_request(clock: FakeClock) -> None:
    """Unmapped escalation targets and fields, a target that is not a Zendesk id, and every
    update of a closed ticket are ``failed`` with a clear detail and send nothing."""
    zd = connector(clock)
    with mock() as desk_:
        results = await zd.apply(
            ticket(),
            [
                act(Escalate, "e1", target="no-such-target"),
                act(Escalate, "e2", target="made-up"),
                act(SetField, "f", field="steps", value="1. 2. 3."),
                act(Record, "rec", message="audit only"),
            ],
        )
        closed = await zd.apply(
            ticket(status=Status.CLOSED), [act(AddComment, "c", body="Hello?"), act(Close, "x")]
        )
        assert not desk_.calls
    outcomes = [r.outcome for r in results]
    assert outcomes == [Outcome.FAILED, Outcome.FAILED, Outcome.FAILED, Outcome.UNCHANGED]
    assert "escalation target 'no-such-target' is not mapped" in results[0].detail
    assert "'leads-team' is not a Zendesk id" in results[1].detail
    assert "field 'steps' is not mapped" in results[2].detail
    assert closed[0].outcome == Outcome.FAILED and "closed" in closed[0].detail
    assert closed[1].outcome == Outcome.UNCHANGED  # already where the action wants it


@pytest.mark.anyio
async def test_escalation_to_a_group_and_an_assignee(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json").mock(return_value=updated(record()))
        await zd.apply(ticket(), [act(Escalate, target="duty-manager")])
    assert sent(route)["ticket"]["group_id"] == 360000000103
    assert sent(route)["ticket"]["assignee_id"] == LEAD


@pytest.mark.anyio
async def test_severity_as_native_priority_or_tag_and_priorities_mapping(clock: FakeClock) -> None:
    config = desk(
        fields={"severity": "native:priority"},
        severity_values={},
        priorities={"urgent": "urgent", "high": "high", "normal": "normal", "low": "low"},
    )
    zd = connector(clock, config)
    assert zd.ticket_from(record(priority="high")).severity == Severity.HIGH
    tagged = connector(clock, desk(fields={"severity": "tag:sev-"}, severity_values={}))
    assert tagged.ticket_from(record(tags=["sev-3", "x"])).severity == Severity.MEDIUM
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json").mock(return_value=updated(record()))
        await zd.apply(ticket(), [act(SetSeverity, severity=Severity.CRITICAL)])
        assert sent(route)["ticket"]["priority"] == "urgent"
        await tagged.apply(
            ticket(tags=frozenset({"sev-3", "x"})), [act(SetSeverity, severity=Severity.HIGH)]
        )
        assert sent(route)["ticket"]["additional_tags"] == ["sev-2"]
        assert sent(route)["ticket"]["remove_tags"] == ["sev-3"]


@pytest.mark.anyio
async def test_a_tag_change_zendesk_ignored_is_reported_failed(clock: FakeClock) -> None:
    """Zendesk documents additional_tags/remove_tags for bulk updates only: the returned
    ticket is checked, and an ignored tag change is never reported applied."""
    zd = connector(clock)
    with mock() as desk_:
        desk_.put("/api/v2/tickets/42.json").mock(
            return_value=updated(record(), tags=["existing-tag"], priority="high")
        )
        results = await zd.apply(
            ticket(),
            [
                act(SetPriority, "p", priority=Priority.HIGH),
                act(AddTags, "t", tags=frozenset({"tw-new"})),
            ],
        )
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.FAILED]
    assert "tags_endpoint" in results[1].detail


@pytest.mark.anyio
async def test_the_tags_endpoint_method(clock: FakeClock) -> None:
    """options.tag_method = "tags_endpoint": PUT /tags.json adds (safe update), DELETE
    removes; the next update re-reads the stamp."""
    zd = connector(clock, desk(options={"tag_method": "tags_endpoint"}))
    with mock() as desk_:
        put_ticket = desk_.put("/api/v2/tickets/42.json").mock(
            return_value=updated(record(), updated_at="2026-11-23T08:00:03Z")
        )
        add = desk_.put("/api/v2/tickets/42/tags.json").respond(json={"tags": ["a", "b"]})
        remove = desk_.delete("/api/v2/tickets/42/tags.json").respond(json={"tags": ["a"]})
        results = await zd.apply(
            ticket(),
            [
                act(SetPriority, "p", priority=Priority.LOW),
                act(AddTags, "t", tags=frozenset({"b", "a"})),
                act(RemoveTags, "r", tags=frozenset({"existing-tag"})),
            ],
        )
    assert {r.outcome for r in results} == {Outcome.APPLIED}
    assert "additional_tags" not in sent(put_ticket)["ticket"]
    assert sent(add) == {
        "tags": ["a", "b"],
        "safe_update": True,
        "updated_stamp": "2026-11-23T08:00:03Z",
    }
    assert sent(remove) == {"tags": ["existing-tag"]}


@pytest.mark.anyio
async def test_follow_up_of_an_open_ticket_is_linked_by_a_tag(clock: FakeClock) -> None:
    """Zendesk ignores via_followup_source_id unless the ticket is closed; the link is kept in
    a tag, which reading maps back to follow_up_of."""
    zd = connector(clock)
    created = record(99, tags=["tw_follow_up_of_42"], external_id="tw:fu")
    with mock() as desk_:
        route = desk_.post("/api/v2/tickets.json").respond(201, json={"ticket": created})
        (result,) = await zd.apply(ticket(), [act(CreateFollowUp, "fu", subject="S", body="B")])
    assert result.created_id == "99"
    assert sent(route)["ticket"]["tags"] == ["tw_follow_up_of_42"]
    assert zd.ticket_from(created).follow_up_of == "42"
    via = {
        "channel": "api",
        "source": {"from": {"ticket_id": 7, "subject": "x"}, "rel": "follow_up"},
    }
    assert zd.ticket_from(record(100, via=via)).follow_up_of == "7"
    strict = connector(clock, desk(options={"followups_only_of_closed": True}))
    (refused,) = await strict.apply(ticket(), [act(CreateFollowUp, subject="S", body="B")])
    assert refused.outcome == Outcome.FAILED and "closed tickets only" in refused.detail


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_read_ticket_maps_everything_in_two_requests(clock: FakeClock) -> None:
    zd = connector(clock)
    thread = [
        comment(1, CUSTOMER, "The agents are offline."),
        comment(2, AGENT, "Automatic acknowledgement", via={"channel": "api"}),
        comment(3, AGENT, "Replied by hand from the agent workspace", via={"channel": "web"}),
        comment(4, LEAD, "Looking into it", public=False),
        comment(5, 777, "An author Zendesk no longer knows"),
        comment(6, -1, "Zendesk system message"),
    ]
    raw = record(tags=["existing-tag", "resolution-fixed"], custom_fields=record()["custom_fields"])
    with mock() as desk_:
        show_route = desk_.get("/api/v2/tickets/42.json").respond(json=show(raw))
        comments_route = desk_.get("/api/v2/tickets/42/comments.json")
        comments_route.side_effect = [
            httpx.Response(200, json=comments_page(*thread[:3], more="c2")),
            httpx.Response(200, json=comments_page(*thread[3:])),
        ]
        read = await zd.read_ticket("42")
        assert len(desk_.calls) == 3  # the ticket, and two pages of comments
    assert show_route.calls[0].request.url.params["include"] == "users,organizations,groups"
    second_page = comments_route.calls[1].request.url.params
    assert second_page["page[after]"] == "c2" and second_page["include"] == "users"
    assert comments_route.calls[0].request.url.params["page[size]"] == "100"
    assert read.requester == Contact(
        id=str(CUSTOMER), name="Anna Berger", email="anna@acme.example"
    )
    assert read.organization == Organization(id="5001", name="Acme")
    assert read.status == Status.OPEN and read.priority == Priority.NORMAL
    assert read.severity == Severity.HIGH
    assert read.fields == {"server_url": "https://kaseya.acme.example", "module": "Agent"}
    assert read.resolution_reason == "fixed"  # from the tag: the reason field is empty
    assert [c.author_role for c in read.comments] == [
        AuthorRole.CUSTOMER,
        AuthorRole.SYSTEM,
        AuthorRole.AGENT,
        AuthorRole.AGENT,
        AuthorRole.CUSTOMER,
        AuthorRole.SYSTEM,
    ]
    assert read.comments[3].public is False and read.comments[0].author == "Anna Berger"


@pytest.mark.anyio
async def test_statuses_and_custom_statuses(clock: FakeClock) -> None:
    config = desk(statuses={"22644243148813": "on_hold", "hold": "waiting_on_customer"})
    zd = connector(clock, config)

    def status_of(**raw: Any) -> Status:
        return zd.ticket_from(record(**raw)).status

    assert status_of(status="pending") == Status.WAITING_ON_CUSTOMER
    assert status_of(status="solved") == Status.RESOLVED
    assert status_of(status="hold") == Status.WAITING_ON_CUSTOMER
    assert status_of(status="open", custom_status_id=22644243148813) == Status.ON_HOLD
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json").mock(return_value=updated(record()))
        await zd.apply(ticket(), [act(SetStatus, status=Status.ON_HOLD)])
        assert sent(route)["ticket"]["custom_status_id"] == 22644243148813
        await zd.apply(ticket(), [act(SetStatus, status=Status.WAITING_ON_CUSTOMER)])
        assert sent(route)["ticket"]["status"] == "hold"


@pytest.mark.anyio
async def test_the_api_user_is_looked_up_once_without_agent_id(clock: FakeClock) -> None:
    zd = connector(clock, desk(options={"agent_id": None}))
    with mock() as desk_:
        desk_.get("/api/v2/tickets/42.json").respond(json=show(record()))
        desk_.get("/api/v2/tickets/42/comments.json").respond(
            json=comments_page(comment(1, AGENT, "ack", via={"channel": "api"}))
        )
        me = desk_.get("/api/v2/users/me.json").respond(json={"user": {"id": AGENT}})
        for _ in range(2):
            read = await zd.read_ticket("42")
        assert me.call_count == 1
    assert read.comments[0].author_role == AuthorRole.SYSTEM


def test_bearer_tokens_and_the_base_url(clock: FakeClock) -> None:
    assert ZendeskConnector.base_url_for("acme") == "https://acme.zendesk.com"
    with pytest.raises(ValueError, match="subdomain"):
        ZendeskConnector.base_url_for("acme.evil.example/")
    with pytest.raises(ValueError, match="without /api/v2"):
        connector(clock, desk(base_url="https://acme.zendesk.com/api/v2"))
    oauth = DeskSecrets(credentials=BearerToken(token=SecretStr(fixtures.OAUTH_TOKEN)))
    zd = ZendeskConnector(desk(), oauth, Runtime(clock=clock.monotonic, sleep=clock.sleep))
    assert fixtures.OAUTH_TOKEN in zd.client.secrets()
    assert fixtures.OAUTH_TOKEN in zd.export_client.secrets()


# --- (c) error paths -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_401_is_an_authentication_error(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        desk_.get("/api/v2/tickets/42.json").respond(
            401, json={"error": "Couldn't authenticate you"}
        )
        with pytest.raises(AuthenticationError) as raised:
            await zd.read_ticket("42")
    assert fixtures.API_TOKEN not in str(raised.value)


@needs_vendor
@pytest.mark.anyio
async def test_404_is_not_found_with_the_real_body(clock: FakeClock) -> None:
    (real_404,) = [i for i in recorded() if i["status"] == 404 and i["method"] == "PUT"][:1]
    zd = connector(clock)
    with mock() as desk_:
        desk_.get("/api/v2/tickets/9.json").respond(404, json=real_404["body"])
        with pytest.raises(NotFoundError, match="RecordNotFound - Not found"):
            await zd.read_ticket("9")
    with pytest.raises(NotFoundError, match="not a Zendesk ticket id"):
        await zd.read_ticket("1/../../users/me")


@pytest.mark.anyio
async def test_409_on_a_safe_update_is_a_conflict_and_never_retried(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json").respond(
            409,
            json={"error": "UpdateConflict", "description": "Ticket updated by someone else"},
        )
        with pytest.raises(ConflictError):
            await zd.apply(ticket(), [act(SetPriority, priority=Priority.HIGH)])
        with pytest.raises(ConflictError):
            await zd.apply(ticket(), [act(AddComment, body="Hello")])
    assert route.call_count == 2, "each update sent once: a conflict is re-read, not retried"


@pytest.mark.anyio
async def test_422_for_a_closed_ticket_is_rejected_and_reported_failed(clock: FakeClock) -> None:
    """The desk refuses the update as such (RejectedError): it is not retried, and the actions
    of that update — and of the updates after it — are reported failed with its message."""
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.put("/api/v2/tickets/42.json").respond(
            422,
            json={
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": {"status": [{"description": "Status: closed prevents ticket update"}]},
            },
        )
        results = await zd.apply(
            ticket(),
            [act(AddComment, "a", body="One"), act(AddComment, "b", body="Two")],
        )
        assert route.call_count == 1
        with pytest.raises(RejectedError, match="closed prevents ticket update"):
            await zd.client.send_json("PUT", "/api/v2/tickets/42.json", {"ticket": {}})
    assert results[0].outcome == results[1].outcome == Outcome.FAILED
    assert "closed prevents ticket update" in results[0].detail
    assert "not sent" in results[1].detail


@pytest.mark.anyio
async def test_429_waits_as_long_as_retry_after_asks(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.get("/api/v2/tickets/42.json")
        route.side_effect = [
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "TooManyRequests"}),
            httpx.Response(200, json=show(record())),
        ]
        desk_.get("/api/v2/tickets/42/comments.json").respond(json=comments_page())
        started = clock.monotonic()
        await zd.read_ticket("42")
    assert route.call_count == 2
    assert clock.monotonic() - started >= 7
    assert sum(clock.sleeps) >= 7
    config = desk(http={"retry": {"max_retry_after": 30}})
    patient = connector(clock, config)
    with mock() as desk_:
        desk_.get("/api/v2/tickets/42.json").respond(429, headers={"Retry-After": "3600"})
        with pytest.raises(RateLimitedError) as raised:
            await patient.read_ticket("42")
    assert raised.value.retry_after == 3600


@pytest.mark.anyio
async def test_server_errors_on_reads_are_retried(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.get("/api/v2/tickets/42.json")
        route.side_effect = [
            httpx.Response(500),
            httpx.Response(503),
            httpx.Response(200, json=show(record())),
        ]
        desk_.get("/api/v2/tickets/42/comments.json").respond(json=comments_page())
        assert (await zd.read_ticket("42")).id == "42"
    assert route.call_count == 3


@pytest.mark.parametrize("landed", [True, False])
@pytest.mark.anyio
async def test_a_timed_out_comment_update_is_looked_for_before_it_is_sent_again(
    clock: FakeClock, landed: bool
) -> None:
    """The PUT carrying a comment times out: the comments are read; found (by ticketwarden,
    same body, after the stamp, not one already read) it is not sent again; not found it is
    sent once more. The same text from an earlier occasion — a day ago, or a moment ago in the
    very second the ticket was read (and read with it) — is not taken for the lost one."""
    zd = connector(clock)
    text = "We have restarted the agent service."
    earlier = comment(7, AGENT, text, created_at="2026-11-22T10:00:00Z", via={"channel": "api"})
    same_second = comment(6, AGENT, text, created_at=STAMP, via={"channel": "api"})
    mine = comment(8, AGENT, text, created_at="2026-11-23T08:00:01Z", via={"channel": "api"})
    read = ticket(comments=zd.ticket_from(record(), comments=[earlier, same_second]).comments)
    with mock() as desk_:
        put = desk_.put("/api/v2/tickets/42.json")
        put.side_effect = [
            httpx.ReadTimeout("lost response"),
            updated(record(), updated_at="2026-11-23T08:00:02Z"),
        ]
        desk_.get("/api/v2/tickets/42/comments.json").respond(
            json=comments_page(earlier, same_second, *([mine] if landed else []))
        )
        desk_.get("/api/v2/tickets/42.json").respond(json=show(record()))
        (result,) = await zd.apply(read, [act(AddComment, body=text)])
    assert result.outcome == Outcome.APPLIED
    assert put.call_count == (1 if landed else 2)
    assert clock.sleeps[:1] == [1.0]  # the settle time before looking
    if not landed:
        assert sent(put, 0) == sent(put, 1)  # the same stamp: a landed first try would 409


@pytest.mark.anyio
async def test_a_5xx_on_a_comment_update_is_not_blindly_retried(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        put = desk_.put("/api/v2/tickets/42.json")
        put.side_effect = [httpx.Response(502), updated(record())]
        look = desk_.get("/api/v2/tickets/42/comments.json").respond(json=comments_page())
        (result,) = await zd.apply(ticket(), [act(AddComment, body="Hi")])
    assert result.outcome == Outcome.APPLIED
    assert look.call_count == 1 and put.call_count == 2


@pytest.mark.anyio
async def test_a_timed_out_follow_up_is_found_by_its_external_id(clock: FakeClock) -> None:
    zd = connector(clock)
    existing = record(77, external_id="tw:fu-key")
    with mock() as desk_:
        post = desk_.post("/api/v2/tickets.json").mock(side_effect=httpx.ReadTimeout("lost"))
        find = desk_.get("/api/v2/tickets.json").respond(json={"tickets": [existing]})
        (result,) = await zd.apply(
            ticket(status=Status.CLOSED), [act(CreateFollowUp, "fu-key", subject="S", body="B")]
        )
    assert (result.outcome, result.created_id) == (Outcome.APPLIED, "77")
    assert post.call_count == 1
    assert find.calls[0].request.url.params["external_id"] == "tw:fu-key"


# --- (d) search: quoting, an injection attempt, candidates ---------------------------------------


def test_search_values_are_quoted_and_injection_is_refused() -> None:
    assert quote_search_value("pending") == '"pending"'
    assert quote_search_value("MD Photo") == '"MD Photo"'
    for attack in [
        'pending" type:user "',
        'pending" -status:closed',
        "pending\\",
        "pending\nstatus:closed",
        "",
        "   ",
    ]:
        with pytest.raises(SearchValueError):
            quote_search_value(attack)
    with pytest.raises(SearchValueError):
        ticket_search_query('status:"x" OR type', "pending")
    with pytest.raises(SearchValueError):
        search_time(datetime(2026, 11, 23, 8))  # naive
    at = datetime(2026, 11, 23, 9, 0, 0, 999_000, tzinfo=timezone(timedelta(hours=1)))
    assert search_time(at) == "2026-11-23T08:00:00Z"
    assert (
        ticket_search_query("status", "pending", updated_before=at, updated_after=at)
        == 'status:"pending" updated<2026-11-23T08:00:00Z updated>2026-11-23T08:00:00Z'
    )


@pytest.mark.anyio
async def test_candidates_search_export_quoted_paged_and_rechecked(clock: FakeClock) -> None:
    zd = connector(clock, desk(statuses={"123": "waiting_on_customer"}))
    cutoff = datetime(2026, 11, 23, 8, tzinfo=UTC)
    old = record(1, status="pending", updated_at="2026-11-22T08:00:00Z")
    lagging = record(2, status="pending", updated_at="2026-11-23T09:00:00Z")  # index lag
    reopened = record(3, status="open", updated_at="2026-11-22T08:00:00Z")
    custom = record(4, status="open", custom_status_id=123, updated_at="2026-11-21T08:00:00Z")
    with mock() as desk_:
        route = desk_.get("/api/v2/search/export.json")
        route.side_effect = [
            httpx.Response(
                200,
                json={
                    "results": [{**old, "result_type": "ticket"}, lagging],
                    "meta": {"has_more": True, "after_cursor": "next"},
                    "links": {"next": None, "prev": None},
                },
            ),
            httpx.Response(
                200, json={"results": [reopened, old], "meta": {"has_more": False}, "links": {}}
            ),
            httpx.Response(200, json={"results": [custom], "meta": {"has_more": False}}),
        ]
        query = CandidateQuery(
            statuses=frozenset({Status.WAITING_ON_CUSTOMER}), updated_before=cutoff
        )
        found = [t.id async for t in zd.candidates(query)]
    assert found == ["1", "4"]
    params = [call.request.url.params for call in route.calls]
    assert params[0]["query"] == 'status:"pending" updated<2026-11-23T08:00:00Z'
    assert params[0]["filter[type]"] == "ticket" and params[0]["page[size]"] == "100"
    assert "type:" not in params[0]["query"]
    assert params[1]["page[after]"] == "next"
    assert params[2]["query"] == 'custom_status_id:"123" updated<2026-11-23T08:00:00Z'


# --- (e) webhooks --------------------------------------------------------------------------------


def signed(
    body: dict[str, Any] | bytes,
    at: datetime,
    secret: str = fixtures.WEBHOOK_SECRET,
    invocation: str = "01HANA2B5D5W9XSJS3NE5SQA1J",
) -> tuple[dict[str, str], bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), stamp.encode() + raw, hashlib.sha256).digest()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Webhook-Id": "01HAN96XNH1J7DY8D7RZ22QMT9",
        "X-Zendesk-Webhook-Invocation-Id": invocation,
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
    }
    return headers, raw


NOW = datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC)
PAYLOAD = {
    "ticket_id": "42",
    "event": "updated",
    "updated_at": "2026-11-23T08:00Z",
    "status": "Pending",
}


def test_a_valid_webhook_is_normalized(clock: FakeClock) -> None:
    zd = connector(clock)
    headers, body = signed(PAYLOAD, NOW - timedelta(seconds=20))
    (event,) = zd.verify_webhook(headers, body, NOW)
    assert event.ticket_id == "42" and event.kind == EventKind.UPDATED
    assert event.delivery_id == "01HANA2B5D5W9XSJS3NE5SQA1J"
    assert event.at == datetime(2026, 11, 23, 8, tzinfo=UTC)
    created, raw = signed({"ticket_id": 43, "event": "created"}, NOW, invocation="other")
    (event,) = zd.verify_webhook(created, raw, NOW)
    assert (event.ticket_id, event.kind, event.at) == ("43", EventKind.CREATED, NOW)


def test_the_signature_follows_zendesks_documented_example(clock: FakeClock) -> None:
    """The fixtures' signing secret is the one of Zendesk's verification example; the
    signature is base64(HMAC-SHA256(secret, timestamp + body)) as that page says."""
    zd = connector(clock)
    stamp = "2026-11-23T08:00:00Z"
    body = json.dumps(PAYLOAD).encode()
    digest = hmac.new(fixtures.WEBHOOK_SECRET.encode(), stamp.encode() + body, hashlib.sha256)
    headers = {
        "x-zendesk-webhook-signature": base64.b64encode(digest.digest()).decode(),
        "x-zendesk-webhook-signature-timestamp": stamp,
    }
    (event,) = zd.parse_webhook(headers, body, NOW)
    assert event.delivery_id == "42:updated:2026-11-23T08:00:00Z"  # no invocation id header
    epoch = str(int(NOW.timestamp()))
    digest = hmac.new(fixtures.WEBHOOK_SECRET.encode(), epoch.encode() + body, hashlib.sha256)
    unix = {
        "x-zendesk-webhook-signature": base64.b64encode(digest.digest()).decode(),
        "x-zendesk-webhook-signature-timestamp": epoch,
    }
    assert zd.parse_webhook(unix, body, NOW)[0].ticket_id == "42"


def _rejection(clock: FakeClock, headers: dict[str, str], body: bytes) -> str:
    with pytest.raises(WebhookRejected) as rejected:
        connector(clock).verify_webhook(headers, body, NOW)
    return rejected.value.reason


def test_tampered_unsigned_stale_future_and_replayed_webhooks_are_rejected(
    clock: FakeClock,
) -> None:
    headers, body = signed(PAYLOAD, NOW)
    assert _rejection(clock, headers, body.replace(b'"42"', b'"43"')) == "bad_signature"
    assert _rejection(clock, headers, body + b" ") == "bad_signature"
    other, raw = signed(PAYLOAD, NOW, secret="someone else's secret")
    assert _rejection(clock, other, raw) == "bad_signature"
    for missing in ("X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp"):
        partial = {k: v for k, v in headers.items() if k != missing}
        assert _rejection(clock, partial, body) == "unsigned"
    stale, raw = signed(PAYLOAD, NOW - timedelta(minutes=6))
    assert _rejection(clock, stale, raw) == "expired"
    future, raw = signed(PAYLOAD, NOW + timedelta(minutes=6))
    assert _rejection(clock, future, raw) == "expired"
    zd = connector(clock)
    zd.verify_webhook(headers, body, NOW)
    zd.verify_webhook(headers, body, NOW)  # not stored yet: a helpdesk retry must get through
    zd.accept_webhook(headers, body, NOW)
    with pytest.raises(WebhookRejected) as replayed:
        zd.verify_webhook(headers, body, NOW)
    assert replayed.value.reason == "replayed"
    unsecured = ZendeskConnector(desk(), DeskSecrets(), Runtime())
    with pytest.raises(WebhookRejected, match="unsigned"):
        unsecured.verify_webhook(headers, body, NOW)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"event": "updated"}).encode(),
        json.dumps({"ticket_id": "42"}).encode(),
        json.dumps({"ticket_id": "42", "event": "deleted"}).encode(),
        json.dumps({"ticket_id": "42", "event": "stale"}).encode(),
        json.dumps({"ticket_id": "{{ticket.id}}", "event": "updated"}).encode(),
        json.dumps({"ticket_id": "42", "event": "updated", "updated_at": "yesterday"}).encode(),
    ],
)
def test_malformed_webhook_bodies_are_rejected(clock: FakeClock, body: bytes) -> None:
    headers, raw = signed(body, NOW)
    assert _rejection(clock, headers, raw) == "malformed"


def test_an_unreadable_signed_timestamp_is_malformed(clock: FakeClock) -> None:
    body = json.dumps(PAYLOAD).encode()
    stamp = "last tuesday"
    digest = hmac.new(fixtures.WEBHOOK_SECRET.encode(), stamp.encode() + body, hashlib.sha256)
    headers = {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest.digest()).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
    }
    assert _rejection(clock, headers, body) == "malformed"


# --- (f) the incremental export ------------------------------------------------------------------


def export_page(*tickets: dict[str, Any], after: str | None, end: bool) -> dict[str, Any]:
    return {
        "tickets": list(tickets),
        "users": USERS,
        "organizations": [{"id": 5001, "name": "Acme"}],
        "after_cursor": after,
        "after_url": None if after is None else f"{BASE}/api/v2/incremental/x?cursor={after}",
        "before_cursor": None,
        "before_url": None,
        "end_of_stream": end,
    }


@pytest.mark.anyio
async def test_the_incremental_export_pages_to_end_of_stream_and_resumes(
    clock: FakeClock,
) -> None:
    since = clock.now() - timedelta(days=1)
    with mock() as desk_:
        route = desk_.get("/api/v2/incremental/tickets/cursor.json")
        route.side_effect = [
            httpx.Response(200, json=export_page(record(1), record(2), after="c1", end=False)),
            httpx.Response(
                200,
                json=export_page(record(3, status="deleted"), record(4), after="c2", end=True),
            ),
            httpx.Response(200, json=export_page(record(5), after="c3", end=True)),
        ]
        first = connector(clock)
        page = await first.changes(None, since=since)
        assert [t.id for t in page.tickets] == ["1", "2"]
        assert (page.cursor, page.has_more) == ("c1", True)
        assert page.tickets[0].requester.name == "Anna Berger"
        page = await first.changes(page.cursor)
        assert [t.id for t in page.tickets] == ["4"]
        assert (page.cursor, page.has_more) == ("c2", False)
        await first.aclose()
        resumed = connector(clock)  # a new process, from the stored cursor
        page = await resumed.changes("c2")
        assert [t.id for t in page.tickets] == ["5"] and page.cursor == "c3"
    params = [call.request.url.params for call in route.calls]
    assert params[0]["start_time"] == str(int(since.timestamp()))
    assert "cursor" not in params[0]
    assert params[0]["per_page"] == "1000" and params[0]["exclude_deleted"] == "true"
    assert params[0]["include"] == "users,organizations,groups"
    assert params[1]["cursor"] == "c1" and "start_time" not in params[1]
    assert params[2]["cursor"] == "c2"


@pytest.mark.anyio
async def test_the_start_time_is_at_least_a_minute_old_and_an_empty_export_keeps_it(
    clock: FakeClock,
) -> None:
    zd = connector(clock)
    with mock() as desk_:
        route = desk_.get("/api/v2/incremental/tickets/cursor.json").respond(
            json=export_page(after=None, end=True)
        )
        page = await zd.changes(None, since=clock.now())
        start = int(clock.time()) - 60
        assert route.calls[0].request.url.params["start_time"] == str(start)
        assert (page.tickets, page.cursor, page.has_more) == ((), f"start_time:{start}", False)
        await zd.changes(page.cursor)
        assert route.calls[1].request.url.params["start_time"] == str(start)
        await zd.changes(None)
        assert route.calls[2].request.url.params["start_time"] == "0"


@pytest.mark.anyio
async def test_the_export_has_its_own_rate_limit(clock: FakeClock) -> None:
    """Twenty export pages in a row never put more than 10 requests into one minute, and the
    reads in between are not slowed by the export's budget."""
    zd = connector(clock)
    times: list[float] = []

    def page(request: httpx.Request) -> httpx.Response:
        times.append(clock.monotonic())
        n = len(times)
        return httpx.Response(200, json=export_page(record(n), after=f"c{n}", end=False))

    with mock() as desk_:
        desk_.get("/api/v2/incremental/tickets/cursor.json").mock(side_effect=page)
        desk_.get("/api/v2/tickets/42.json").respond(json=show(record()))
        desk_.get("/api/v2/tickets/42/comments.json").respond(json=comments_page())
        cursor = None
        for _ in range(20):
            cursor = (await zd.changes(cursor)).cursor
        before = clock.monotonic()
        await zd.read_ticket("42")
        assert clock.monotonic() == before, "reads do not wait for the export's budget"
    for i, at in enumerate(times):
        in_window = [t for t in times[i:] if t < at + 60]
        assert len(in_window) <= 10, f"{len(in_window)} export requests within a minute"


@pytest.mark.anyio
async def test_an_export_that_does_not_advance_is_a_protocol_error(clock: FakeClock) -> None:
    zd = connector(clock)
    with mock() as desk_:
        desk_.get("/api/v2/incremental/tickets/cursor.json").respond(
            json=export_page(record(1), after="same", end=False)
        )
        with pytest.raises(ProtocolError, match="did not advance"):
            await zd.changes("same")
        desk_.get("/api/v2/incremental/tickets/cursor.json").respond(json={"tickets": []})
        with pytest.raises(ProtocolError, match="unexpected incremental export page"):
            await zd.changes("x")


# --- roster from organization fields, plugin registration, conformance configuration -------------


@pytest.mark.anyio
async def test_roster_from_organization_fields(clock: FakeClock) -> None:
    config = desk(
        contacts={
            "where": "organization",
            "authorized_field": "tw_authorized_contacts",
            "certified_until_field": "tw_certified_until",
            "available_24x7_field": "tw_contacts_24x7",
        }
    )
    zd = connector(clock, config)
    orgs = [
        {
            "id": 5001,
            "name": "Acme",
            "created_at": "2026-01-01T00:00:00Z",
            "organization_fields": {
                "tw_authorized_contacts": "anna@acme.example, Ben@Acme.example\nnot-an-email",
                "tw_certified_until": "2027-01-31",
                "tw_contacts_24x7": "ben@acme.example",
            },
        },
        {"id": 5002, "name": "Globex", "created_at": "x", "organization_fields": {}},
    ]
    with mock() as desk_:
        route = desk_.get("/api/v2/organizations.json")
        route.side_effect = [
            httpx.Response(
                200,
                json={
                    "organizations": orgs[:1],
                    "meta": {"has_more": True, "after_cursor": "o2"},
                    "links": {"next": f"{BASE}/api/v2/organizations.json?page[after]=o2"},
                },
            ),
            httpx.Response(200, json={"organizations": orgs[1:], "meta": {"has_more": False}}),
        ]
        roster = await zd.roster()
    (entry,) = roster.entries
    assert entry.organization == "5001"
    assert [(c.email, c.available_24x7) for c in entry.contacts] == [
        ("anna@acme.example", False),
        ("ben@acme.example", True),
    ]
    assert {c.certified_until.isoformat() for c in entry.contacts if c.certified_until} == {
        "2027-01-31"
    }


def test_the_plugin_registers_the_connector() -> None:
    from ticketwarden.core.registry import load_plugins

    assert plugin.register_connectors() == {"zendesk": ZendeskConnector}
    plugins = load_plugins(extra=[("zendesk", plugin)], entry_points=False)
    assert plugins.connectors() == {"zendesk": ZendeskConnector}


def test_the_conformance_configuration_uses_the_emulators_account() -> None:
    config, secrets = ZendeskConnector.conformance_config("http://emulator.test")
    assert next(iter(config.fields)) == "server_url"  # the suite's set_field writes the first
    assert config.fields["severity"].id == str(F["severity"])
    assert config.severity_values == fixtures.SEVERITY_VALUES
    assert config.escalation["support-leads"].group == str(fixtures.GROUPS["support-leads"])
    assert config.contacts.authorized_field == fixtures.USER_FIELDS["authorized"]
    assert config.options["per_page"] == 100
    assert isinstance(secrets.credentials, BasicCredentials)
    assert secrets.credentials.username == f"{fixtures.AGENT_EMAIL}/token"
    assert secrets.credentials.password.get_secret_value() == fixtures.API_TOKEN
    assert secrets.webhook_secret is not None
    assert secrets.webhook_secret.get_secret_value() == fixtures.WEBHOOK_SECRET


def test_bad_options_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="per_page"):
        connector(FakeClock(), desk(options={"per_page": 5000}))
    with pytest.raises(ValidationError, match="tag_method"):
        connector(FakeClock(), desk(options={"tag_method": "replace"}))


# --- the administrator's page: its configuration and trigger bodies work as written ----------

DOC = Path(__file__).resolve().parents[1] / "docs" / "helpdesks" / "zendesk.md"


def test_the_documented_desk_section_is_a_valid_configuration(clock: FakeClock) -> None:
    import tomllib

    (block,) = re.findall(r"```toml\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)
    section = tomllib.loads(block)["desks"]["zendesk-acme"]
    config = DeskConfig.model_validate({"name": "zendesk-acme", **section})
    zd = connector(clock, config)
    assert zd.opts.agent_id == 381000 and zd.opts.tag_method == "update"
    assert config.fields["severity"].kind == "custom"
    assert config.escalation["support-management"].assignee == "381002"


@pytest.mark.parametrize("event", ["created", "updated"])
def test_the_documented_trigger_bodies_are_accepted(clock: FakeClock, event: str) -> None:
    """The JSON bodies the page tells administrators to paste, with Zendesk's placeholders
    filled in the way Zendesk renders them, pass verification and normalize."""
    bodies = re.findall(r"```json\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)
    (template,) = [b for b in bodies if f'"event": "{event}"' in b]
    rendered = (
        template.replace("{{ticket.id}}", "42")
        .replace("{{ticket.updated_at_with_timestamp}}", "2026-11-23T08:00Z")
        .replace("{{ticket.status}}", "Open")
    )
    assert set(json.loads(rendered)) == {"ticket_id", "event", "updated_at", "status"}
    headers, body = signed(rendered.encode(), NOW)
    (parsed,) = connector(clock).verify_webhook(headers, body, NOW)
    assert (parsed.ticket_id, parsed.kind.value) == ("42", event)


def test_secrets_from_the_environment_names_zendesk_uses() -> None:
    values = {
        "EMAIL": SecretStr("bot@example.com"),
        "API_TOKEN": SecretStr("tok-123"),
        "WEBHOOK_SECRET": SecretStr("whs"),
    }
    secrets = ZendeskConnector.secrets_from(values)
    assert isinstance(secrets.credentials, BasicCredentials)
    assert secrets.credentials.password.get_secret_value() == "tok-123"
    assert secrets.credentials.username == "bot@example.com/token"
    bearer = ZendeskConnector.secrets_from({**values, "OAUTH_TOKEN": SecretStr("oauth")})
    assert isinstance(bearer.credentials, BearerToken)
    assert "tok-123" not in repr(secrets) and "oauth" not in repr(bearer)
