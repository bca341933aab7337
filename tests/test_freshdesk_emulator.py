"""The Freshdesk emulator: its responses carry the keys and JSON types of the recorded Freshdesk
bodies in ``../shared/vendor/freshdesk/``, and it behaves as Freshdesk's API v2 reference says —
auth, paging and page limits, ``updated_since``, the filter API, tag replacement, replies and
notes, closed tickets, credits-based rate limits and the automation-rule webhook format."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ticketwarden.core.model import (
    AuthorRole,
    Comment,
    Contact,
    EventKind,
    Organization,
    Priority,
    Severity,
    Status,
    Ticket,
)
from ticketwarden.plugins.freshdesk import fixtures
from ticketwarden.plugins.freshdesk.emulator import (
    Condition,
    FreshdeskEmulator,
    FreshdeskError,
    Junction,
    html_to_text,
    parse_query,
    text_to_html,
)
from ticketwarden.testing.emulator import FakeClock

VENDOR = Path(__file__).resolve().parents[1].parent / "shared" / "vendor" / "freshdesk"
BASIC = "Basic " + base64.b64encode(f"{fixtures.API_KEY}:X".encode()).decode()
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CF = fixtures.TICKET_FIELDS

# --- helpers ------------------------------------------------------------------------------------


def make(**kwargs: Any) -> FreshdeskEmulator:
    return FreshdeskEmulator(clock=FakeClock(START), **kwargs)


def clock(emu: FreshdeskEmulator) -> FakeClock:
    assert isinstance(emu.clock, FakeClock)
    return emu.clock


def call(
    emu: FreshdeskEmulator,
    method: str,
    path: str,
    *,
    params: Any = None,
    body: Any = None,
    auth: str | None = BASIC,
) -> httpx.Response:
    async def go() -> httpx.Response:
        headers = {"authorization": auth} if auth else {}
        async with httpx.AsyncClient(
            transport=emu.transport(), base_url=emu.base_url, headers=headers
        ) as client:
            return await client.request(method, path, params=params, json=body)

    return asyncio.run(go())


def sample(n: int = 1, **overrides: Any) -> Ticket:
    at = overrides.pop("at", START - timedelta(hours=1))
    data: dict[str, Any] = {
        "id": "new",
        "number": "new",
        "subject": f"Dashboard totals differ {n}",
        "description": "120 vs 118 devices.\nExpected: the same number.",
        "status": Status.OPEN,
        "severity": Severity.MEDIUM,
        "priority": Priority.HIGH,
        "requester": Contact(id="u-1", name="Anna Berger", email="anna@acme.example"),
        "organization": Organization(id="acme", name="Acme"),
        "fields": {"server_url": "https://kaseya.acme.example", "version": "10.1.2"},
        "tags": frozenset({"existing-tag"}),
        "group": "support-on-call",
        "assignee": "support-on-call",
        "created_at": at,
        "updated_at": at,
    }
    data.update(overrides)
    return Ticket(**data)


def seeded(count: int = 1, **kwargs: Any) -> tuple[FreshdeskEmulator, list[int]]:
    emu = make(**kwargs)
    return emu, [int(emu.add_ticket(sample(i))) for i in range(count)]


def show(emu: FreshdeskEmulator, tid: int, include: str | None = None) -> dict[str, Any]:
    response = call(
        emu, "GET", f"/api/v2/tickets/{tid}", params={"include": include} if include else None
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def put(emu: FreshdeskEmulator, tid: int, **changes: Any) -> httpx.Response:
    return call(emu, "PUT", f"/api/v2/tickets/{tid}", body=changes)


def search(emu: FreshdeskEmulator, query: str, **params: Any) -> httpx.Response:
    return call(emu, "GET", "/api/v2/search/tickets", params={"query": query, **params})


def found_ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return sorted(r["id"] for r in response.json()["results"])


def errors(response: httpx.Response) -> list[tuple[str, str]]:
    body = response.json()
    assert body["description"] == "Validation failed", body
    return [(e["field"], e["code"]) for e in body["errors"]]


# --- the recorded bodies: every key, with its JSON type ------------------------------------------

ACCOUNT_SPECIFIC = {"custom_fields"}
"""Objects whose keys are the recorded account's own custom fields (``parent_or_child``,
``website``, …): only their type is compared, the emulated account has its own fields."""
TYPE_FAULTS = {("agent_1.json", "contact.mobile"), ("agent_1.json", "contact.phone")}
"""The recorded agent has phone numbers as JSON numbers; the API reference (and the emulator)
give strings or null. Named here so nothing else can slip by."""


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_gaps(recorded: Any, actual: Any, where: str, source: str) -> list[str]:
    """Where ``actual`` lacks a key of ``recorded`` or has another JSON type. A recorded
    ``null`` only says the key exists (it carries no type); array elements are compared
    when both arrays have one."""
    gaps: list[str] = []
    if recorded is None or (source, where) in TYPE_FAULTS:
        return gaps
    if json_type(recorded) != json_type(actual):
        return [f"{where}: recorded {json_type(recorded)}, emulator {json_type(actual)}"]
    if isinstance(recorded, dict):
        if where.rsplit(".", 1)[-1] in ACCOUNT_SPECIFIC:
            return gaps
        for key, value in recorded.items():
            path = f"{where}.{key}" if where else key
            if key not in actual:
                gaps.append(f"{path}: missing")
            else:
                gaps += shape_gaps(value, actual[key], path, source)
    elif isinstance(recorded, list) and recorded and actual:
        gaps += shape_gaps(recorded[0], actual[0], f"{where}[]", source)
    return gaps


def recorded(name: str) -> Any:
    if not VENDOR.is_dir():
        pytest.skip(f"the recorded Freshdesk bodies are not here ({VENDOR})")
    return json.loads((VENDOR / name).read_text())


def full_account() -> tuple[FreshdeskEmulator, int]:
    """A ticket with everything the recordings show set: an agent, a customer reply, an
    agent's reply and private note, tags, resolved (so its stats have times)."""
    emu = make()
    company = emu.add_company(
        "Acme",
        domains=["acme.example"],
        support_tier="premium",
        description="Managed service provider",
        health_score="Happy",
        account_tier="Premium",
        renewal_date=date(2027, 12, 31),
        industry="IT Services",
    )
    emu.add_contact("anna@acme.example", "Anna Berger", company=company, authorized=True)
    tid = int(emu.add_ticket(sample(group=None)))
    emu.customer_reply(str(tid), "Any news?")
    clock(emu).advance(60)
    assert call(
        emu, "POST", f"/api/v2/tickets/{tid}/reply", body={"body": "<p>On it</p>"}
    ).is_success
    note = {"body": "<div>internal</div>", "private": True}
    assert call(emu, "POST", f"/api/v2/tickets/{tid}/notes", body=note).is_success
    assert put(emu, tid, status=4).is_success
    return emu, tid


def test_ticket_view_has_the_recorded_keys_and_types() -> None:
    emu, tid = full_account()
    body = show(emu, tid, "conversations,requester,company,stats")
    assert shape_gaps(recorded("ticket_1.json"), body, "", "ticket_1.json") == []


def test_conversations_have_the_recorded_keys_and_types() -> None:
    emu, tid = full_account()
    response = call(emu, "GET", f"/api/v2/tickets/{tid}/conversations")
    items = response.json()
    for item in recorded("conversations.json"):
        twin = next(c for c in items if c["private"] == item["private"] and not c["incoming"])
        assert shape_gaps(item, twin, "", "conversations.json") == []


def test_contact_and_company_have_the_recorded_keys_and_types() -> None:
    emu, tid = full_account()
    ticket = show(emu, tid)
    contact = call(emu, "GET", f"/api/v2/contacts/{ticket['requester_id']}").json()
    company = call(emu, "GET", f"/api/v2/companies/{ticket['company_id']}").json()
    assert shape_gaps(recorded("contact.json"), contact, "", "contact.json") == []
    assert shape_gaps(recorded("company.json"), company, "", "company.json") == []


def test_list_and_search_have_the_recorded_keys_and_types() -> None:
    """The recorded list and search bodies are API v1-era shapes (``custom_field``,
    ``frDueBy``, ``status_name``, a plain-text ``description``); the list is asked with
    ``include=description`` because v2 leaves descriptions out of lists otherwise."""
    emu, _ = full_account()
    listed = call(
        emu,
        "GET",
        "/api/v2/tickets",
        params={"include": "description", "updated_since": "2026-01-01T00:00:00Z"},
    )
    assert shape_gaps(recorded("all_tickets.json"), listed.json(), "", "all_tickets.json") == []
    searched = search(emu, '"status:4"').json()
    assert shape_gaps(recorded("search_tickets.json"), searched, "", "search_tickets.json") == []


def test_agents_and_groups_have_the_recorded_keys_and_types() -> None:
    emu = make()
    agent = call(emu, "GET", "/api/v2/agents/me").json()
    assert shape_gaps(recorded("agent_1.json"), agent, "", "agent_1.json") == []
    groups = call(emu, "GET", "/api/v2/groups").json()
    assert shape_gaps(recorded("groups.json"), groups, "", "groups.json") == []


# --- authentication and errors ------------------------------------------------------------------


def test_api_key_as_basic_user_with_any_password() -> None:
    emu, ids = seeded()
    other_password = "Basic " + base64.b64encode(f"{fixtures.API_KEY}:secret".encode()).decode()
    assert call(emu, "GET", f"/api/v2/tickets/{ids[0]}", auth=other_password).status_code == 200
    wrong = "Basic " + base64.b64encode(b"not-the-key:X").decode()
    for auth in (None, wrong, f"Bearer {fixtures.API_KEY}", "Basic %%%"):
        response = call(emu, "GET", f"/api/v2/tickets/{ids[0]}", auth=auth)
        assert response.status_code == 401, auth
        assert response.json()["code"] == "invalid_credentials"


def test_error_shapes() -> None:
    emu, ids = seeded()
    missing = call(emu, "GET", "/api/v2/tickets/999")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert call(emu, "GET", "/api/v2/nothing/here").status_code == 404

    async def raw(content: bytes, content_type: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=emu.transport(), base_url=emu.base_url) as client:
            return await client.put(
                f"/api/v2/tickets/{ids[0]}",
                content=content,
                headers={"authorization": BASIC, "content-type": content_type},
            )

    broken = asyncio.run(raw(b"{not json", "application/json"))
    assert (broken.status_code, broken.json()["code"]) == (400, "invalid_json")
    form = asyncio.run(raw(b"status=2", "application/x-www-form-urlencoded"))
    assert (form.status_code, form.json()["code"]) == (415, "invalid_content_type")
    unknown = put(emu, ids[0], safe_update=True)
    assert (unknown.status_code, errors(unknown)) == (400, [("safe_update", "invalid_field")])


# --- tickets: shape, fields, includes -----------------------------------------------------------


def test_a_stored_ticket_in_freshdesk_codes() -> None:
    emu, ids = seeded()
    emu.add_ticket(sample(status=Status.ON_HOLD))
    body = show(emu, ids[0], "stats")
    assert (body["status"], body["priority"], body["source"]) == (2, 3, 2)
    assert body["group_id"] == fixtures.GROUPS["support-on-call"]
    assert body["responder_id"] == fixtures.AGENTS["support-on-call"]
    assert body["custom_fields"][CF["severity"]] == "Severity 3"
    assert body["custom_fields"][CF["server_url"]] == "https://kaseya.acme.example"
    assert body["custom_fields"][CF["module"]] is None  # every field of the account is listed
    assert body["description_text"] == "120 vs 118 devices.\nExpected: the same number."
    assert body["created_at"] == "2026-11-23T07:00:00Z"
    assert show(emu, ids[0] + 1)["status"] == 6  # the custom status "Waiting on Third Party"


def test_include_conversations_embeds_only_ten_and_the_endpoint_pages_all() -> None:
    emu, ids = seeded()
    for n in range(35):
        emu.customer_reply(str(ids[0]), f"message {n}")
    embedded = show(emu, ids[0], "conversations")["conversations"]
    assert [c["body_text"] for c in embedded] == [f"message {n}" for n in range(10)]
    first = call(emu, "GET", f"/api/v2/tickets/{ids[0]}/conversations")
    assert len(first.json()) == 30
    next_url = first.headers["link"].split(";")[0].strip("<>")
    assert first.headers["link"].endswith('rel="next"')
    second = call(emu, "GET", next_url)
    assert [c["body_text"] for c in second.json()] == [f"message {n}" for n in range(30, 35)]
    assert "link" not in second.headers
    big = call(emu, "GET", f"/api/v2/tickets/{ids[0]}/conversations", params={"per_page": 100})
    assert len(big.json()) == 35
    refused = call(emu, "GET", f"/api/v2/tickets/{ids[0]}/conversations", params={"per_page": 101})
    assert errors(refused) == [("per_page", "invalid_value")]
    wrong = call(emu, "GET", f"/api/v2/tickets/{ids[0]}", params={"include": "comments"})
    assert errors(wrong) == [("include", "invalid_value")]


def test_unknown_custom_fields_and_values_are_refused() -> None:
    emu, ids = seeded()
    unknown = put(emu, ids[0], custom_fields={"cf_nobody_made_this": "x"})
    assert errors(unknown) == [("cf_nobody_made_this", "invalid_field")]
    choice = put(emu, ids[0], custom_fields={CF["severity"]: "Sev 1"})
    assert errors(choice) == [(CF["severity"], "invalid_value")]
    assert "Severity 1,Severity 2" in choice.json()["errors"][0]["message"]
    typed = put(emu, ids[0], custom_fields={fixtures.FOLLOW_UP_FIELD: "12"})
    assert errors(typed) == [(fixtures.FOLLOW_UP_FIELD, "datatype_mismatch")]
    emu.add_unknown_field(str(ids[0]))
    assert show(emu, ids[0])["custom_fields"][fixtures.UNKNOWN_FIELD] == "EMEA"
    ok = put(emu, ids[0], custom_fields={CF["severity"]: "Severity 1", CF["module"]: "Reports"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["custom_fields"][CF["server_url"]] == "https://kaseya.acme.example"


def test_contacts_and_companies_carry_the_roster_fields() -> None:
    emu = make()
    company = emu.add_company(
        "Acme", support_tier="premium", authorized_contacts=["anna@acme.example"]
    )
    cid = emu.add_contact(
        "anna@acme.example",
        "Anna",
        company="Acme",
        authorized=True,
        certified_until=date(2027, 6, 30),
        available_24x7=True,
    )
    contact = call(emu, "GET", f"/api/v2/contacts/{cid}").json()
    assert contact["company_id"] == company
    assert contact["custom_fields"] == {
        fixtures.CONTACT_FIELDS["authorized"]: True,
        fixtures.CONTACT_FIELDS["certified_until"]: "2027-06-30",
        fixtures.CONTACT_FIELDS["available_24x7"]: True,
    }
    listed = call(emu, "GET", "/api/v2/contacts", params={"email": "ANNA@acme.example"}).json()
    assert [c["id"] for c in listed] == [cid]
    fields = call(emu, "GET", f"/api/v2/companies/{company}").json()["custom_fields"]
    assert fields[fixtures.COMPANY_FIELDS["authorized_contacts"]] == "anna@acme.example"


# --- the ticket list: updated_since, order, paging, page limit ----------------------------------


def test_updated_since_is_inclusive_and_shared_timestamps_order_by_id() -> None:
    emu = make()
    early = int(emu.add_ticket(sample(at=START - timedelta(hours=3))))
    shared = [int(emu.add_ticket(sample(n, at=START - timedelta(hours=2)))) for n in range(5)]
    late = int(emu.add_ticket(sample(at=START - timedelta(hours=1))))
    params = {
        "updated_since": "2026-11-23T06:00:00Z",
        "order_by": "updated_at",
        "order_type": "asc",
        "per_page": 2,
    }
    seen: list[int] = []
    for page in (1, 2, 3):
        response = call(emu, "GET", "/api/v2/tickets", params={**params, "page": page})
        seen += [t["id"] for t in response.json()]
        assert ("link" in response.headers) == (page < 3)
    assert seen == [*shared, late]
    assert early not in seen
    desc = call(emu, "GET", "/api/v2/tickets", params={**params, "order_type": "desc"})
    assert [t["id"] for t in desc.json()] == [late, shared[-1]]


def test_without_updated_since_only_the_last_thirty_days() -> None:
    emu = make()
    old = int(emu.add_ticket(sample(at=START - timedelta(days=45))))
    new = int(emu.add_ticket(sample()))
    default = call(emu, "GET", "/api/v2/tickets").json()
    assert [t["id"] for t in default] == [new]
    since = call(emu, "GET", "/api/v2/tickets", params={"updated_since": "2026-01-01T00:00:00Z"})
    assert sorted(t["id"] for t in since.json()) == [old, new]
    assert "description" not in default[0]  # v2 lists leave it out without include=description


def test_per_page_up_to_100_and_no_page_past_300() -> None:
    emu = make()
    for n in range(105):
        emu.add_ticket(sample(n))
    full = call(emu, "GET", "/api/v2/tickets", params={"per_page": 100})
    assert len(full.json()) == 100
    assert "page=2" in full.headers["link"] and "per_page=100" in full.headers["link"]
    assert len(call(emu, "GET", "/api/v2/tickets").json()) == 30  # the default
    assert call(emu, "GET", "/api/v2/tickets", params={"page": 300}).json() == []
    beyond = call(emu, "GET", "/api/v2/tickets", params={"page": 301})
    assert beyond.status_code == 400
    assert beyond.json()["errors"] == [
        {
            "field": "page",
            "message": "You cannot access tickets beyond the 300th page. Please provide a "
            "smaller page number.",
            "code": "invalid_value",
        }
    ]
    for bad in ({"per_page": 101}, {"per_page": 0}, {"order_by": "id"}, {"updated_since": "x"}):
        assert call(emu, "GET", "/api/v2/tickets", params=bad).status_code == 400, bad


# --- the filter API -----------------------------------------------------------------------------


def test_parse_query_grammar() -> None:
    parsed = parse_query("\"status:3 AND (tag:'a b' OR priority:>3) AND group_id:null\"")
    assert parsed == Junction(
        "AND",
        (
            Condition("status", ":", 3),
            Junction("OR", (Condition("tag", ":", "a b"), Condition("priority", ":>", 3))),
            Condition("group_id", ":", None),
        ),
    )
    assert parse_query('"a:1 OR b:2 AND c:3"') == Junction(
        "OR",
        (Condition("a", ":", 1), Junction("AND", (Condition("b", ":", 2), Condition("c", ":", 3)))),
    )
    for bad in (
        "status:3",
        '"status:3',
        '"tag:\'open"',
        '"status:"',
        '"(status:3"',
        '"AND"',
        '"status:3 status:4"',
        '"tag:\'x\'" OR "status:2"',
        '"status:open"',
    ):
        with pytest.raises(FreshdeskError):
            parse_query(bad)


def test_search_by_status_and_day() -> None:
    emu = make()
    waiting = int(emu.add_ticket(sample(status=Status.WAITING_ON_CUSTOMER)))
    clock(emu).advance(86400 * 2)
    recent = int(
        emu.add_ticket(sample(status=Status.WAITING_ON_CUSTOMER, at=START + timedelta(days=2)))
    )
    emu.add_ticket(sample(status=Status.OPEN))
    assert found_ids(search(emu, '"status:3"')) == [waiting, recent]
    # dates are whole days: ":<" is on or before that day, ":>" on or after it
    assert found_ids(search(emu, "\"status:3 AND updated_at:<'2026-11-23'\"")) == [waiting]
    assert found_ids(search(emu, "\"status:3 AND updated_at:<'2026-11-22'\"")) == []
    assert found_ids(search(emu, "\"updated_at:>'2026-11-24'\"")) == [recent]
    assert found_ids(search(emu, "\"status:3 AND updated_at:'2026-11-25'\"")) == [recent]
    times = search(emu, "\"updated_at:<'2026-11-23T09:00:00Z'\"")
    assert errors(times) == [("updated_at", "invalid_value")]
    unknown = search(emu, '"nonsense:1"')
    assert errors(unknown) == [("nonsense", "invalid_field")]


def test_search_pages_thirty_at_a_time_up_to_ten() -> None:
    emu = make()
    for n in range(65):
        emu.add_ticket(sample(n))
    first = search(emu, '"priority:3"')
    assert (len(first.json()["results"]), first.json()["total"]) == (30, 65)
    third = search(emu, '"priority:3"', page=3)
    assert len(third.json()["results"]) == 5
    assert search(emu, '"priority:3"', page=10).json()["results"] == []
    assert errors(search(emu, '"priority:3"', page=11)) == [("page", "invalid_value")]
    unquoted = search(emu, "priority:3")
    assert errors(unquoted) == [("query", "invalid_value")]
    too_long = search(emu, '"' + "priority:3 OR " * 40 + 'priority:3"')
    assert errors(too_long) == [("query", "invalid_value")]


def test_search_injection_does_not_widen_the_query() -> None:
    """Operators inside a single-quoted value are literal text; a value cannot smuggle in a
    double quote or an unbalanced quote — those are refused, not reinterpreted."""
    emu = make()
    tagged = int(emu.add_ticket(sample(tags=frozenset({"vip"}))))
    emu.add_ticket(sample(tags=frozenset({"other"})))
    assert found_ids(search(emu, "\"tag:'vip'\"")) == [tagged]
    assert found_ids(search(emu, "\"tag:'vip OR status:2'\"")) == []
    assert found_ids(search(emu, "\"tag:'vip) OR (status:2'\"")) == []
    for attempt in ('"tag:\'vip" OR "status:2\'"', "\"tag:'vip' status:2\"", "\"tag:'vip"):
        assert search(emu, attempt).status_code == 400, attempt
    # there is no escape: a backslash does not protect a quote, so a client must refuse values
    # holding a quote rather than escape them
    assert parse_query("\"tag:'vip\\' OR status:2\"") == Junction(
        "OR", (Condition("tag", ":", "vip\\"), Condition("status", ":", 2))
    )


def test_search_custom_fields_and_nulls() -> None:
    emu, ids = seeded(2)
    follow = call(
        emu,
        "POST",
        "/api/v2/tickets",
        body={
            "subject": "Follow-up",
            "description": "<div>back</div>",
            "requester_id": show(emu, ids[0])["requester_id"],
            "custom_fields": {fixtures.FOLLOW_UP_FIELD: ids[0]},
        },
    ).json()["id"]
    assert found_ids(search(emu, f'"{fixtures.FOLLOW_UP_FIELD}:{ids[0]}"')) == [follow]
    assert found_ids(search(emu, f"\"{CF['severity']}:'severity 3'\"")) == ids
    assert found_ids(search(emu, f'"{CF["module"]}:null AND group_id:null"')) == [follow]


# --- writes -------------------------------------------------------------------------------------


def test_tags_replace_the_list_so_a_stale_merge_loses_an_agents_tag() -> None:
    emu, ids = seeded()
    read = show(emu, ids[0])["tags"]
    emu.agent_update(ids[0], add_tags=["agent-added"])
    written = put(emu, ids[0], tags=[*read, "tw-mine"]).json()
    assert written["tags"] == ["existing-tag", "tw-mine"]  # the agent's tag is gone
    assert put(emu, ids[0], tags=[]).json()["tags"] == []
    long = put(emu, ids[0], tags=["x" * 33])
    assert errors(long) == [("tags", "invalid_value")]
    assert errors(put(emu, ids[0], tags="a,b")) == [("tags", "datatype_mismatch")]


def test_reply_is_public_and_a_note_private_unless_asked() -> None:
    emu, ids = seeded()
    text = "Grüße — 東京 🚀\n<not a tag> & more"
    reply = call(emu, "POST", f"/api/v2/tickets/{ids[0]}/reply", body={"body": text_to_html(text)})
    assert reply.status_code == 201
    assert (reply.json()["private"], reply.json()["source"], reply.json()["incoming"]) == (
        False,
        0,
        False,
    )
    assert reply.json()["body_text"] == text
    note = call(emu, "POST", f"/api/v2/tickets/{ids[0]}/notes", body={"body": "<p>internal</p>"})
    assert (note.json()["private"], note.json()["source"]) == (True, 2)
    public = call(
        emu, "POST", f"/api/v2/tickets/{ids[0]}/notes", body={"body": "<p>x</p>", "private": False}
    )
    assert public.json()["private"] is False
    listed = call(emu, "GET", f"/api/v2/tickets/{ids[0]}/conversations").json()
    assert [c["private"] for c in listed] == [False, True, False]
    refused = call(
        emu, "POST", f"/api/v2/tickets/{ids[0]}/reply", body={"body": "x", "private": True}
    )
    assert errors(refused) == [("private", "invalid_field")]
    assert errors(call(emu, "POST", f"/api/v2/tickets/{ids[0]}/notes", body={})) == [
        ("body", "missing_field")
    ]
    stats = show(emu, ids[0], "stats")["stats"]
    assert stats["first_responded_at"] == "2026-11-23T08:00:00Z"


def test_html_text_round_trip() -> None:
    for text in ("a\nb", "  spaced  ", "x < y & z > w", "", "\n\nlead", "trail\n"):
        assert html_to_text(text_to_html(text)) == text
    assert html_to_text("<p>one</p><p>two</p>") == "one\ntwo"


def test_status_priority_and_escalation_updates() -> None:
    emu, ids = seeded()
    clock(emu).advance(30)
    changed = put(
        emu,
        ids[0],
        status=3,
        priority=4,
        group_id=fixtures.GROUPS["support-leads"],
        responder_id=fixtures.AGENTS["support-leads"],
    ).json()
    assert (changed["status"], changed["priority"]) == (3, 4)
    assert changed["updated_at"] == "2026-11-23T08:00:30Z"
    assert show(emu, ids[0], "stats")["stats"]["pending_since"] == "2026-11-23T08:00:30Z"
    bad_status = put(emu, ids[0], status=7)
    assert errors(bad_status) == [("status", "invalid_value")]
    assert bad_status.json()["errors"][0]["message"] == (
        "It should be one of these values: '2,3,4,5,6'"
    )
    assert errors(put(emu, ids[0], priority=5)) == [("priority", "invalid_value")]
    assert errors(put(emu, ids[0], group_id=1)) == [("group_id", "invalid_value")]
    unchanged = put(emu, ids[0], status=3)
    assert unchanged.json()["updated_at"] == "2026-11-23T08:00:30Z"  # a no-op does not touch


def test_closed_tickets_stay_editable_and_reopen_on_a_customer_reply() -> None:
    emu, ids = seeded()
    clock(emu).advance(10)
    assert put(emu, ids[0], status=5).json()["status"] == 5
    stats = show(emu, ids[0], "stats")["stats"]
    assert stats["closed_at"] == stats["resolved_at"] == "2026-11-23T08:00:10Z"
    note = call(emu, "POST", f"/api/v2/tickets/{ids[0]}/notes", body={"body": "after close"})
    assert note.status_code == 201
    assert put(emu, ids[0], tags=["post-close"]).status_code == 200
    assert show(emu, ids[0])["status"] == 5  # a note or an edit does not reopen
    clock(emu).advance(10)
    emu.customer_reply(str(ids[0]), "It is back")
    reopened = show(emu, ids[0], "stats")
    assert reopened["status"] == 2
    assert reopened["stats"]["reopened_at"] == "2026-11-23T08:00:20Z"
    assert reopened["stats"]["closed_at"] is None
    keep = make(reopen_on_reply=())
    tid = keep.add_ticket(sample(status=Status.CLOSED))
    keep.customer_reply(tid, "hello?")
    assert show(keep, int(tid))["status"] == 5
    assert put(keep, int(tid), status=2).json()["status"] == 2  # agents may reopen


def test_fields_required_for_closure() -> None:
    emu = make(required_for_closure=[CF["resolution_reason"]])
    tid = int(emu.add_ticket(sample()))
    for status in (4, 5):
        refused = put(emu, tid, status=status)
        assert errors(refused) == [(CF["resolution_reason"], "missing_field")]
    resolved = put(emu, tid, status=4, custom_fields={CF["resolution_reason"]: "no_response"})
    assert resolved.json()["status"] == 4


def test_follow_up_ticket_links_by_custom_field() -> None:
    emu = make()
    closed = int(emu.add_ticket(sample(status=Status.CLOSED)))
    requester = show(emu, closed)["requester_id"]
    created = call(
        emu,
        "POST",
        "/api/v2/tickets",
        body={
            "subject": "Follow-up",
            "description": "<div>It is back.</div>",
            "requester_id": requester,
            "status": 2,
            "priority": 2,
            "tags": ["existing-tag"],
            "custom_fields": {fixtures.FOLLOW_UP_FIELD: closed},
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"].endswith(f"/api/v2/tickets/{body['id']}")
    assert body["custom_fields"][fixtures.FOLLOW_UP_FIELD] == closed
    assert body["company_id"] == show(emu, closed)["company_id"]
    assert body["description_text"] == "It is back."
    nobody = call(emu, "POST", "/api/v2/tickets", body={"subject": "x", "description": "y"})
    assert errors(nobody) == [("requester_id", "missing_field")]
    seeded_follow = emu.add_ticket(sample(follow_up_of=str(closed)))
    assert show(emu, int(seeded_follow))["custom_fields"][fixtures.FOLLOW_UP_FIELD] == closed


def test_deleted_tickets_leave_lists_and_refuse_writes() -> None:
    emu, ids = seeded(2)
    assert call(emu, "DELETE", f"/api/v2/tickets/{ids[0]}").status_code == 204
    assert show(emu, ids[0])["deleted"] is True
    assert [t["id"] for t in call(emu, "GET", "/api/v2/tickets").json()] == [ids[1]]
    trash = call(emu, "GET", "/api/v2/tickets", params={"filter": "deleted"}).json()
    assert [t["id"] for t in trash] == [ids[0]]
    assert found_ids(search(emu, '"priority:3"')) == [ids[1]]
    assert put(emu, ids[0], status=3).status_code == 404
    assert (
        call(emu, "POST", f"/api/v2/tickets/{ids[0]}/notes", body={"body": "x"}).status_code == 404
    )


def test_seeded_comments_become_conversations() -> None:
    emu = make()
    at = START - timedelta(minutes=30)
    tid = emu.add_ticket(
        sample(
            comments=(
                Comment(id="1", author_role=AuthorRole.CUSTOMER, body="hi", created_at=at),
                Comment(
                    id="2", author_role=AuthorRole.AGENT, body="n", public=False, created_at=at
                ),
            )
        )
    )
    listed = call(emu, "GET", f"/api/v2/tickets/{tid}/conversations").json()
    assert [(c["incoming"], c["private"], c["source"]) for c in listed] == [
        (True, False, 0),
        (False, True, 2),
    ]


# --- rate limits --------------------------------------------------------------------------------


def test_credits_per_minute_headers_and_429_with_retry_after() -> None:
    emu, ids = seeded(rate_limit=4)
    clock(emu).advance(15)  # 15 s into a minute window (monotonic starts at 1000 = 16:40)
    one = call(emu, "GET", f"/api/v2/tickets/{ids[0]}")
    assert (
        one.headers["x-ratelimit-total"],
        one.headers["x-ratelimit-remaining"],
        one.headers["x-ratelimit-used-currentrequest"],
    ) == ("4", "3", "1")
    included = call(emu, "GET", f"/api/v2/tickets/{ids[0]}", params={"include": "stats,requester"})
    assert included.headers["x-ratelimit-used-currentrequest"] == "3"
    assert included.headers["x-ratelimit-remaining"] == "0"
    limited = call(emu, "GET", f"/api/v2/tickets/{ids[0]}")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "5"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    clock(emu).advance(5)
    assert call(emu, "GET", f"/api/v2/tickets/{ids[0]}").status_code == 200
    listed = call(emu, "GET", "/api/v2/tickets", params={"include": "stats"})
    assert listed.headers["x-ratelimit-used-currentrequest"] == "3"  # two credits an include


def test_nominal_headers_without_an_enforced_limit() -> None:
    emu, ids = seeded()
    for _ in range(3):
        response = call(emu, "GET", f"/api/v2/tickets/{ids[0]}")
    assert response.headers["x-ratelimit-total"] == "400"
    assert response.headers["x-ratelimit-remaining"] == "397"


# --- webhooks -----------------------------------------------------------------------------------


def test_webhook_signature_format() -> None:
    emu, ids = seeded()
    headers, body = emu.make_webhook(str(ids[0]), EventKind.UPDATED, fixtures.WEBHOOK_SECRET)
    payload = json.loads(body)
    assert payload == {
        "ticket_id": str(ids[0]),
        "event": "updated",
        "updated_at": "2026-11-23T07:00:00Z",
        "status": "Open",
    }
    timestamp = headers[fixtures.TIMESTAMP_HEADER]
    assert timestamp == str(int(START.timestamp()))
    expected = hmac.new(
        fixtures.WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers[fixtures.SIGNATURE_HEADER] == f"sha256={expected}"
    assert headers[fixtures.DELIVERY_HEADER] == f"updated-{ids[0]}-2026-11-23T07:00:00Z"
    assert fixtures.SECRET_HEADER not in headers
    old = emu.make_webhook(
        str(ids[0]), EventKind.CREATED, "s", delivery_id="d-1", at=START - timedelta(hours=2)
    )[0]
    assert old[fixtures.TIMESTAMP_HEADER] == str(int(START.timestamp()) - 7200)
    assert old[fixtures.DELIVERY_HEADER] == "d-1"
    static, _ = emu.make_webhook(str(ids[0]), EventKind.UPDATED, "s3cret", static_secret=True)
    assert static[fixtures.SECRET_HEADER] == "s3cret"
    assert fixtures.SIGNATURE_HEADER not in static and fixtures.TIMESTAMP_HEADER not in static


def test_automation_rules_post_a_delivery_per_change() -> None:
    emu, ids = seeded()
    emu.subscribe("https://sidecar.example/webhooks/freshdesk", "s3cret")
    put(emu, ids[0], status=3)
    put(emu, ids[0], status=3)  # no change: no rule fires
    emu.customer_reply(str(ids[0]), "hello")
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202)

    responses = asyncio.run(emu.deliver_webhooks(httpx.MockTransport(handler)))
    assert [r.status_code for r in responses] == [202, 202]
    assert [json.loads(r.content)["status"] for r in received] == ["Open", "Open"]
    assert emu.outbox == []
    assert all(r.headers[fixtures.SIGNATURE_HEADER].startswith("sha256=") for r in received)
