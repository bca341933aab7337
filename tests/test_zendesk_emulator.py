"""The Zendesk emulator: its responses have the real Zendesk shapes (compared with the recorded
real interactions in ``../shared/vendor/zendesk/``), and it behaves as Zendesk does — auth,
rate limits, sideloads, paging, the incremental export, search, safe updates, statuses,
follow-ups and signed webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
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
from ticketwarden.plugins.zendesk import fixtures
from ticketwarden.plugins.zendesk.emulator import (
    UNKNOWN_FIELD_ID,
    SearchTerm,
    ZendeskEmulator,
    ZendeskError,
    parse_query,
)
from ticketwarden.testing.emulator import FakeClock

VENDOR = Path(__file__).resolve().parents[1].parent / "shared" / "vendor" / "zendesk"
BASIC = (
    "Basic "
    + base64.b64encode(f"{fixtures.AGENT_EMAIL}/token:{fixtures.API_TOKEN}".encode()).decode()
)
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
F = fixtures.TICKET_FIELDS

# --- helpers ------------------------------------------------------------------------------------


def make(**kwargs: Any) -> ZendeskEmulator:
    return ZendeskEmulator(clock=FakeClock(START), **kwargs)


def clock(emu: ZendeskEmulator) -> FakeClock:
    assert isinstance(emu.clock, FakeClock)
    return emu.clock


def call(
    emu: ZendeskEmulator,
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
        "description": "120 vs 118 devices. Expected: the same number.",
        "status": Status.OPEN,
        "severity": Severity.MEDIUM,
        "priority": Priority.HIGH,
        "requester": Contact(id="u-1", name="Anna Berger", email="anna@acme.example"),
        "organization": Organization(id="acme", name="Acme"),
        "fields": {"server_url": "https://kaseya.acme.example", "version": "10.1.2"},
        "tags": frozenset({"existing-tag"}),
        "group": "support-on-call",
        "assignee": str(fixtures.AGENT_ID),
        "created_at": at,
        "updated_at": at,
    }
    data.update(overrides)
    return Ticket(**data)


def seeded(count: int = 1, **kwargs: Any) -> tuple[ZendeskEmulator, list[int]]:
    emu = make(**kwargs)
    return emu, [int(emu.add_ticket(sample(i))) for i in range(count)]


def ticket(emu: ZendeskEmulator, tid: int) -> dict[str, Any]:
    response = call(emu, "GET", f"/api/v2/tickets/{tid}.json")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["ticket"]
    return result


def put(emu: ZendeskEmulator, tid: int, **changes: Any) -> httpx.Response:
    return call(emu, "PUT", f"/api/v2/tickets/{tid}.json", body={"ticket": changes})


def search(emu: ZendeskEmulator, query: str, **params: Any) -> list[Any]:
    response = call(emu, "GET", "/api/v2/search.json", params={"query": query, **params})
    assert response.status_code == 200, response.text
    return [(r["result_type"], r["id"]) for r in response.json()["results"]]


# --- comparison with the real recorded responses -----------------------------------------------

JsonType = str


def json_type(value: Any) -> JsonType:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


@pytest.fixture(scope="module")
def recorded() -> list[dict[str, Any]]:
    path = VENDOR / "recorded.json"
    if not path.exists():
        pytest.skip(f"the recorded Zendesk interactions are not here ({path}): /work/shared absent")
    data: list[dict[str, Any]] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    path = VENDOR / "support-openapi-2025-06.json"
    if not path.exists():
        pytest.skip(f"Zendesk's OpenAPI description is not here ({path}): /work/shared absent")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def real(recorded: list[dict[str, Any]], method: str, path_regex: str) -> list[Any]:
    """Bodies of the successful recorded interactions of one endpoint."""
    found = []
    for item in recorded:
        path = re.sub(r"^https://example\.zendesk\.com(:443)?|\?.*$", "", item["uri"])
        if item["method"] == method and re.fullmatch(path_regex, path) and item["status"] < 300:
            found.append(item)
    assert found, f"no recorded {method} {path_regex}"
    return found


def schema_properties(openapi: dict[str, Any], name: str) -> dict[str, Any]:
    schema = openapi["components"]["schemas"][name]
    if "anyOf" in schema:
        merged: dict[str, Any] = {}
        for option in schema["anyOf"]:
            merged.update(schema_properties(openapi, option["$ref"].rsplit("/", 1)[1]))
        return merged
    properties: dict[str, Any] = schema.get("properties", {})
    return properties


TICKET_KEYS = [
    "id",
    "subject",
    "description",
    "status",
    "priority",
    "requester_id",
    "organization_id",
    "group_id",
    "assignee_id",
    "tags",
    "custom_fields",
    "created_at",
    "updated_at",
    "via",
]
USER_KEYS = ["id", "name", "email", "phone", "organization_id", "user_fields"]
ORGANIZATION_KEYS = ["id", "name", "organization_fields"]


def assert_like_real(
    what: str,
    real_items: list[dict[str, Any]],
    ours: dict[str, Any],
    read_keys: list[str],
    documented: dict[str, Any],
) -> None:
    """Every key all real items have is present; every key the connector reads has a JSON type
    the real responses show. Where the recordings only ever show ``null``, the type Zendesk's
    OpenAPI description documents is accepted too (a value is set in ours)."""
    always = set.intersection(*(set(item) for item in real_items))
    missing = always - set(ours)
    assert not missing, f"{what}: keys the real response has are missing: {sorted(missing)}"
    for key in read_keys:
        seen = {json_type(item[key]) for item in real_items if key in item}
        allowed = set(seen)
        if seen <= {"null"}:
            allowed.add(documented[key]["type"])
        got = json_type(ours[key])
        assert got in allowed, f"{what}.{key}: ours is {got}, the real responses show {seen}"


def emulator_for_shapes() -> tuple[ZendeskEmulator, int]:
    """A ticket with a value in every field the connector reads, and a comment."""
    emu = make()
    emu.add_user(
        "anna@acme.example",
        "Anna Berger",
        organization="acme",
        phone="+49 221 555 0100",
        authorized=True,
        certified_until=date(2027, 3, 31),
    )
    tid = int(emu.add_ticket(sample()))
    emu.tickets[tid].external_id = "tw-1"
    return emu, tid


def test_ticket_responses_have_the_real_keys_and_types(
    recorded: list[dict[str, Any]], openapi: dict[str, Any]
) -> None:
    documented = schema_properties(openapi, "TicketObject")
    emu, tid = emulator_for_shapes()
    cases = {
        "show_many": (
            [
                t
                for r in real(recorded, "GET", r"/api/v2/tickets/show_many\.json")
                for t in r["body"]["tickets"]
            ],
            call(emu, "GET", "/api/v2/tickets/show_many.json", params={"ids": str(tid)}),
            "tickets",
        ),
        "list": (
            [
                t
                for r in real(recorded, "GET", r"/api/v2/tickets\.json")
                for t in r["body"]["tickets"]
            ],
            call(emu, "GET", "/api/v2/tickets.json", params={"page[size]": "100"}),
            "tickets",
        ),
        "create": (
            [r["body"]["ticket"] for r in real(recorded, "POST", r"/api/v2/tickets\.json")],
            call(
                emu,
                "POST",
                "/api/v2/tickets.json",
                body={
                    "ticket": {
                        "subject": "test",
                        "comment": {"body": "test"},
                        "priority": "low",
                        "group_id": fixtures.GROUPS["consulting"],
                        "assignee_id": fixtures.AGENT_ID,
                    }
                },
            ),
            "ticket",
        ),
        "update": (
            [r["body"]["ticket"] for r in real(recorded, "PUT", r"/api/v2/tickets/\d+\.json")],
            put(emu, tid, subject="changed"),
            "ticket",
        ),
    }
    for name, (real_items, response, key) in cases.items():
        assert response.status_code < 300, f"{name}: {response.text}"
        found = response.json()[key]
        ours = found[0] if isinstance(found, list) else found
        assert_like_real(f"{name} ticket", real_items, ours, TICKET_KEYS, documented)
        for real_item in real_items:
            assert set(real_item["via"]) <= set(ours["via"])
            assert set(real_item["via"]["source"]) <= set(ours["via"]["source"])
    # endpoints the recordings do not cover return the same ticket shape as show_many
    shown = real(recorded, "GET", r"/api/v2/tickets/show_many\.json")[0]["body"]["tickets"]
    listed = real(recorded, "GET", r"/api/v2/tickets\.json")[0]["body"]["tickets"]
    assert_like_real("show", shown, ticket(emu, tid), TICKET_KEYS, documented)
    export = call(emu, "GET", "/api/v2/incremental/tickets/cursor.json", params={"start_time": 1})
    assert_like_real("export", listed, export.json()["tickets"][0], TICKET_KEYS, documented)
    found = call(emu, "GET", "/api/v2/search.json", params={"query": "type:ticket"})
    assert_like_real("search", listed, found.json()["results"][0], TICKET_KEYS, documented)
    # custom field items: integer ids, values as the response schema documents (text or null)
    item_schema = documented["custom_fields"]["items"]["properties"]
    for item in ticket(emu, tid)["custom_fields"]:
        assert json_type(item["id"]) == item_schema["id"]["type"]
        assert json_type(item["value"]) in (item_schema["value"]["type"], "null")


def test_user_and_organization_responses_have_the_real_keys_and_types(
    recorded: list[dict[str, Any]], openapi: dict[str, Any]
) -> None:
    emu, tid = emulator_for_shapes()
    record = ticket(emu, tid)
    users = [r["body"]["user"] for r in real(recorded, "GET", r"/api/v2/users/\d+\.json")]
    users += [
        u
        for r in real(recorded, "GET", r"/api/v2/users/show_many\.json")
        for u in r["body"]["users"]
    ]
    ours = call(emu, "GET", f"/api/v2/users/{record['requester_id']}.json").json()["user"]
    assert_like_real("user", users, ours, USER_KEYS, schema_properties(openapi, "UserObject"))
    assert set(fixtures.USER_FIELDS.values()) <= set(ours["user_fields"])
    orgs = [
        r["body"]["organization"] for r in real(recorded, "GET", r"/api/v2/organizations/\d+\.json")
    ]
    org = call(emu, "GET", f"/api/v2/organizations/{record['organization_id']}.json")
    assert_like_real(
        "organization",
        orgs,
        org.json()["organization"],
        ORGANIZATION_KEYS,
        schema_properties(openapi, "OrganizationObject"),
    )


def test_envelopes_audits_errors_and_headers_match_the_real_ones(
    recorded: list[dict[str, Any]],
) -> None:
    emu, tid = emulator_for_shapes()
    created = call(
        emu,
        "POST",
        "/api/v2/tickets.json",
        body={"ticket": {"subject": "test", "comment": {"body": "test"}}},
    )
    updated = put(emu, tid, subject="changed")
    listed = call(emu, "GET", "/api/v2/tickets.json", params={"page[size]": "100"})
    many = call(emu, "GET", "/api/v2/tickets/show_many.json", params={"ids": str(tid)})
    pairs = [
        (real(recorded, "POST", r"/api/v2/tickets\.json"), created),
        (real(recorded, "PUT", r"/api/v2/tickets/\d+\.json"), updated),
        (real(recorded, "GET", r"/api/v2/tickets\.json"), listed),
        (real(recorded, "GET", r"/api/v2/tickets/show_many\.json"), many),
    ]
    for real_items, response in pairs:
        for item in real_items:
            assert item["status"] == response.status_code
            assert set(item["body"]) <= set(response.json()), response.json().keys()
            missing = set(item["headers"]) - {"link"} - set(response.headers)
            assert not missing, f"headers {sorted(missing)} missing"
    assert created.headers["content-type"] == "application/json; charset=utf-8"
    # audits: the same keys, and a comment event with the real comment event's keys
    for real_items, response in pairs[:2]:
        real_audit = real_items[0]["body"]["audit"]
        audit = response.json()["audit"]
        assert set(real_audit) <= set(audit)
        assert {e["type"] for e in real_audit["events"]} <= {e["type"] for e in audit["events"]}
        for kind in ("Comment", "Create", "Change"):
            theirs = [e for e in real_audit["events"] if e["type"] == kind]
            mine = [e for e in audit["events"] if e["type"] == kind]
            if theirs:
                assert set(theirs[0]) <= set(mine[0]), kind
    # errors: RecordNotFound for a missing ticket, TooManyValues beyond 100 ids
    real_404 = next(r for r in recorded if r["status"] == 404 and "/tickets/" in r["uri"])
    for method in ("GET", "PUT"):
        missing_ticket = call(emu, method, "/api/v2/tickets/999999.json", body={"ticket": {}})
        assert (missing_ticket.status_code, missing_ticket.json()) == (404, real_404["body"])
    real_400 = next(r for r in recorded if r["status"] == 400 and "tickets" in r["uri"])
    too_many = call(
        emu,
        "GET",
        "/api/v2/tickets/show_many.json",
        params={"ids": ",".join(str(i) for i in range(1, 102))},
    )
    assert too_many.status_code == 400
    assert set(too_many.json()) == set(real_400["body"])


def test_export_search_and_comment_envelopes_follow_the_openapi_schemas(
    openapi: dict[str, Any],
) -> None:
    emu, tid = emulator_for_shapes()
    export = call(emu, "GET", "/api/v2/incremental/tickets/cursor.json", params={"start_time": 1})
    assert set(schema_properties(openapi, "CursorBasedExportIncrementalTicketsResponse")) <= set(
        export.json()
    )
    found = call(emu, "GET", "/api/v2/search.json", params={"query": "type:ticket"})
    assert set(schema_properties(openapi, "SearchResponse")) <= set(found.json())
    exported = call(
        emu,
        "GET",
        "/api/v2/search/export.json",
        params={"query": "status:open", "filter[type]": "ticket"},
    )
    assert set(schema_properties(openapi, "SearchExportResponse")) <= set(exported.json())
    comments = call(emu, "GET", f"/api/v2/tickets/{tid}/comments.json").json()["comments"]
    documented = schema_properties(openapi, "TicketCommentObject")
    readable = {k for k, v in documented.items() if k != "uploads"}  # uploads: write-only tokens
    assert readable <= set(comments[0])
    for key in readable - {"via", "metadata", "attachments"}:
        assert json_type(comments[0][key]) == documented[key]["type"], key


# --- authentication and rate limits -------------------------------------------------------------


def test_authentication_by_api_token_or_oauth_and_zendesks_401() -> None:
    emu, [tid] = seeded()
    path = f"/api/v2/tickets/{tid}.json"
    assert call(emu, "GET", path).status_code == 200
    assert call(emu, "GET", path, auth=f"Bearer {fixtures.OAUTH_TOKEN}").status_code == 200
    password = "Basic " + base64.b64encode(f"{fixtures.AGENT_EMAIL}:secret".encode()).decode()
    for auth in (None, "Bearer wrong", password, "Basic !!notbase64"):
        refused = call(emu, "GET", path, auth=auth)
        assert refused.status_code == 401
        assert refused.json() == {"error": "Couldn't authenticate you"}


def test_rate_limit_headers_on_every_response_and_429_with_retry_after() -> None:
    emu, [tid] = seeded(rate_limit=2)
    first, second, third = (call(emu, "GET", f"/api/v2/tickets/{tid}") for _ in range(3))
    assert first.headers["x-rate-limit"] == first.headers["ratelimit-limit"] == "2"
    assert [first.headers["x-rate-limit-remaining"], second.headers["ratelimit-remaining"]] == [
        "1",
        "0",
    ]
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) == int(third.headers["ratelimit-reset"]) > 0
    clock(emu).advance(int(third.headers["retry-after"]))
    assert call(emu, "GET", f"/api/v2/tickets/{tid}").status_code == 200
    unlimited, [tid] = seeded()
    headers = call(unlimited, "GET", f"/api/v2/tickets/{tid}/comments.json").headers
    assert headers["x-rate-limit"] == "700" and headers["x-rate-limit-remaining"] == "699"


def test_incremental_export_has_its_own_lower_limit() -> None:
    emu, [tid] = seeded(rate_limit=700)
    export = "/api/v2/incremental/tickets/cursor.json"
    answers = [call(emu, "GET", export, params={"start_time": 1}) for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert (
        answers[0]
        .headers["zendesk-ratelimit-incremental-exports"]
        .startswith("total=10; remaining=9; resets=")
    )
    limited = answers[-1]
    wait = int(limited.headers["retry-after"])
    assert 0 < wait <= 60
    assert limited.json()["error"] == "APIRateLimitExceeded"
    # the account limit is counted apart: other endpoints still answer, and count all 12 requests
    other = call(emu, "GET", f"/api/v2/tickets/{tid}.json")
    assert other.status_code == 200 and other.headers["x-rate-limit-remaining"] == str(700 - 12)
    clock(emu).advance(wait)
    assert call(emu, "GET", export, params={"start_time": 1}).status_code == 200
    configured = make(export_rate_limit=2)
    statuses = [
        call(configured, "GET", export, params={"start_time": 1}).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


# --- reading tickets ----------------------------------------------------------------------------


def test_show_ticket_sideloads_users_organizations_and_groups() -> None:
    emu, [tid] = seeded()
    body = call(
        emu, "GET", f"/api/v2/tickets/{tid}.json", params={"include": "users,organizations,groups"}
    ).json()
    record = body["ticket"]
    assert {u["id"] for u in body["users"]} >= {record["requester_id"], record["assignee_id"]}
    assert [o["id"] for o in body["organizations"]] == [record["organization_id"]]
    assert body["organizations"][0]["name"] == "Acme"
    assert [g["id"] for g in body["groups"]] == [fixtures.GROUPS["support-on-call"]]
    plain = call(emu, "GET", f"/api/v2/tickets/{tid}").json()
    assert set(plain) == {"ticket"}
    assert call(emu, "GET", "/api/v2/tickets/123456.json").json() == {
        "error": "RecordNotFound",
        "description": "Not found",
    }
    unknown = call(emu, "GET", "/api/v2/no/such/thing.json")
    assert unknown.status_code == 404 and unknown.json()["error"] == "InvalidEndpoint"


def test_comments_page_by_cursor_or_offset_and_sideload_their_authors() -> None:
    emu, [tid] = seeded()
    for i in range(120):
        if i % 2:
            emu.customer_reply(str(tid), f"customer {i}")
        else:
            emu.agent_update(tid, comment={"body": f"agent {i}", "public": i % 4 == 0})
    path = f"/api/v2/tickets/{tid}/comments.json"
    seen: list[int] = []
    params: dict[str, str] = {"page[size]": "50", "include": "users"}
    pages = 0
    while True:
        body = call(emu, "GET", path, params=params).json()
        pages += 1
        seen += [c["id"] for c in body["comments"]]
        assert {u["id"] for u in body["users"]} == {c["author_id"] for c in body["comments"]}
        if not body["meta"]["has_more"]:
            break
        assert body["links"]["next"].startswith(f"{emu.base_url}{path}?page%5Bafter%5D=")
        params = {
            "page[size]": "50",
            "include": "users",
            "page[after]": body["meta"]["after_cursor"],
        }
    assert pages == 3 and len(seen) == len(set(seen)) == 121  # the description is comment 1
    first = call(emu, "GET", path).json()  # offset paging: 100 a page at most
    assert len(first["comments"]) == 100 and first["count"] == 121 and first["next_page"]
    comment = first["comments"][1]
    assert comment["type"] == "Comment" and comment["plain_body"] == comment["body"] == "agent 0"
    assert comment["html_body"].startswith('<div class="zd-comment"')
    assert comment["public"] is True and first["comments"][3]["public"] is False
    assert isinstance(comment["audit_id"], int) and comment["attachments"] == []


# --- the incremental export ---------------------------------------------------------------------


def drain(emu: ZendeskEmulator, params: dict[str, Any]) -> tuple[list[int], str, int]:
    seen: list[int] = []
    requests = 0
    while True:
        body = call(emu, "GET", "/api/v2/incremental/tickets/cursor.json", params=params).json()
        requests += 1
        seen += [t["id"] for t in body["tickets"]]
        cursor = body["after_cursor"]
        if body["end_of_stream"]:
            return seen, cursor, requests
        params = {"cursor": cursor, "per_page": params.get("per_page", 1000)}


def test_incremental_export_pages_tickets_sharing_a_timestamp_without_loss_or_repeat() -> None:
    emu = make(export_rate_limit=100)
    same = START - timedelta(hours=2)
    ids = [int(emu.add_ticket(sample(i, at=same))) for i in range(25)]
    ids += [int(emu.add_ticket(sample(99, at=same + timedelta(seconds=1))))]
    seen, cursor, requests = drain(emu, {"start_time": int(same.timestamp()), "per_page": 10})
    assert requests == 3
    assert seen == ids, "every ticket exactly once, ordered by update time then id"
    # nothing changed: the stored cursor yields nothing and stays put
    again = call(emu, "GET", "/api/v2/incremental/tickets/cursor.json", params={"cursor": cursor})
    assert again.json()["tickets"] == [] and again.json()["end_of_stream"] is True
    assert again.json()["after_cursor"] == cursor
    clock(emu).advance(5)
    emu.customer_reply(str(ids[3]), "One more thing.")
    later, _, _ = drain(emu, {"cursor": cursor})
    assert later == [ids[3]]
    first = call(
        emu,
        "GET",
        "/api/v2/incremental/tickets/cursor.json",
        params={"start_time": 1, "per_page": 2, "include": "users,organizations"},
    ).json()
    assert first["end_of_stream"] is False
    assert first["after_url"].endswith("&per_page=2&include=users%2Corganizations")
    assert first["tickets"][0]["generated_timestamp"] == int(same.timestamp())
    assert {"users", "organizations"} <= set(first)


def test_incremental_export_start_time_must_be_a_minute_old() -> None:
    emu, _ = seeded()
    now = int(START.timestamp())
    path = "/api/v2/incremental/tickets/cursor.json"
    for start in (now + 3600, now - 30):
        refused = call(emu, "GET", path, params={"start_time": start})
        assert refused.status_code == 422
        assert refused.json()["error"] == "InvalidValue"
        assert "Too recent start_time" in refused.json()["description"]
    assert call(emu, "GET", path, params={"start_time": now - 61}).status_code == 200
    assert call(emu, "GET", path).status_code == 400
    assert call(emu, "GET", path, params={"cursor": "garbage"}).status_code == 400


def test_incremental_export_leaves_out_the_last_minute_and_shows_deleted_tickets() -> None:
    emu = make(export_lag_seconds=60)
    old = int(emu.add_ticket(sample(1)))
    fresh = int(emu.add_ticket(sample(2, at=START)))
    seen, cursor, _ = drain(emu, {"start_time": 1})
    assert seen == [old]
    clock(emu).advance(61)
    emu.delete_ticket(old)
    assert call(emu, "GET", f"/api/v2/tickets/{old}.json").status_code == 404
    assert drain(emu, {"cursor": cursor})[0] == [fresh]
    clock(emu).advance(61)
    body = call(
        emu, "GET", "/api/v2/incremental/tickets/cursor.json", params={"cursor": cursor}
    ).json()
    assert [(t["id"], t["status"]) for t in body["tickets"]] == [(fresh, "open"), (old, "deleted")]
    kept = call(
        emu,
        "GET",
        "/api/v2/incremental/tickets/cursor.json",
        params={"cursor": cursor, "exclude_deleted": "true"},
    ).json()
    assert [t["id"] for t in kept["tickets"]] == [fresh]


# --- search -------------------------------------------------------------------------------------


def test_query_parser_keeps_quoted_values_literal() -> None:
    assert parse_query("type:ticket status<solved updated>2026-11-20T10:00:00Z") == [
        SearchTerm("type", ":", "ticket"),
        SearchTerm("status", "<", "solved"),
        SearchTerm("updated", ">", "2026-11-20T10:00:00Z"),
    ]
    assert parse_query('status:"pending OR type:user" -tags:x "a \\"b\\"" word') == [
        SearchTerm("status", ":", "pending OR type:user", quoted=True),
        SearchTerm("tags", ":", "x", negated=True),
        SearchTerm(None, ":", 'a "b"', quoted=True),
        SearchTerm(None, ":", "word"),
    ]
    assert parse_query("created>=2026-11-01 priority:<high") == [
        SearchTerm("created", ">=", "2026-11-01"),
        SearchTerm("priority", "<", "high"),
    ]


def test_search_statuses_times_tags_users_and_injection() -> None:
    emu = make()
    base = START - timedelta(days=3)
    statuses = [
        Status.NEW,
        Status.OPEN,
        Status.WAITING_ON_CUSTOMER,
        Status.ON_HOLD,
        Status.RESOLVED,
        Status.CLOSED,
    ]
    ids = {}
    for i, status in enumerate(statuses):
        at = base + timedelta(hours=i * 12)
        tags = frozenset({"tw-wait"} if status == Status.WAITING_ON_CUSTOMER else {"other"})
        ids[status] = int(emu.add_ticket(sample(i, status=status, at=at, tags=tags)))
    emu.add_user(
        "ben@acme.example",
        "Ben Hofmann",
        organization="acme",
        authorized=True,
        certified_until=date(2027, 1, 31),
    )
    pending, hold = ids[Status.WAITING_ON_CUSTOMER], ids[Status.ON_HOLD]

    def tickets(query: str) -> list[int]:
        return [i for kind, i in search(emu, query) if kind == "ticket"]

    assert tickets("type:ticket status:pending") == [pending]
    assert tickets('type:ticket status:"pending"') == [pending]
    assert tickets("type:ticket status<solved") == [ids[s] for s in statuses[:4]]
    assert tickets("type:ticket status>open") == [ids[s] for s in statuses[2:]]
    assert tickets("type:ticket status>=solved") == [ids[s] for s in statuses[4:]]
    cutoff = base + timedelta(hours=30)  # between pending (24h) and hold (36h)
    iso_cutoff = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert tickets(f"type:ticket status<solved updated<{iso_cutoff}") == [
        ids[s] for s in statuses[:3]
    ]
    assert tickets(f"type:ticket updated>{iso_cutoff} status<solved") == [hold]
    day = (base + timedelta(days=1)).date().isoformat()  # pending and hold were made that day
    assert tickets(f"type:ticket created:{day}") == [pending, hold]
    assert tickets(f"type:ticket created>{day}") == [ids[s] for s in statuses[4:]]
    assert tickets(f"type:ticket updated<{day}") == [ids[s] for s in statuses[:2]]
    assert tickets("type:ticket tags:tw-wait") == [pending]
    assert tickets("type:ticket -tags:other") == [pending]
    assert tickets("type:ticket tags:tw-*") == [pending]
    assert tickets("type:ticket status:pending tags:other") == []  # terms combine with AND
    assert tickets('"totals differ 3"') == [hold]
    # users by their user fields and organization
    ben = [i for kind, i in search(emu, "type:user tw_authorized_contact:true")]
    assert [emu.users[i]["email"] for i in ben] == ["ben@acme.example"]
    assert search(emu, "type:user tw_authorized_contact:true organization:acme") == [
        ("user", ben[0])
    ]
    assert search(emu, "type:user tw_certified_admin_until>2027-01-01") == [("user", ben[0])]
    assert search(emu, "type:user tw_authorized_contact:false email:ben@acme.example") == []
    # injection: a quoted value is a literal, never syntax
    for attack in (
        'status:"pending OR type:user"',
        'status:"pending\\" type:user"',
        'tags:"tw-wait type:user"',
        'requester:"x" OR "y"',
    ):
        assert search(emu, f"type:ticket {attack}") == [], attack
    assert search(emu, 'status:"pending OR type:user"') == []


def test_search_pages_by_offset_with_result_types_and_the_1000_limit() -> None:
    emu, ids = seeded(5)
    body = call(
        emu,
        "GET",
        "/api/v2/search.json",
        params={"query": "type:ticket status:open", "per_page": 2},
    ).json()
    assert body["count"] == 5 and len(body["results"]) == 2
    assert {r["result_type"] for r in body["results"]} == {"ticket"}
    assert body["next_page"].startswith(f"{emu.base_url}/api/v2/search.json?query=type%3Aticket")
    last = call(
        emu,
        "GET",
        "/api/v2/search.json",
        params={"query": "type:ticket status:open", "per_page": 2, "page": 3},
    ).json()
    assert [r["id"] for r in last["results"]] == ids[4:] and last["next_page"] is None
    assert {kind for kind, _ in search(emu, "acme")} == {"organization"}  # free text
    assert {kind for kind, _ in search(emu, "berger")} == {"user"}
    assert {kind for kind, _ in search(emu, "dashboard")} == {"ticket"}
    too_deep = call(
        emu,
        "GET",
        "/api/v2/search.json",
        params={"query": "type:ticket", "per_page": 100, "page": 11},
    )
    assert too_deep.status_code == 422


def test_search_export_pages_by_cursor_and_takes_the_type_as_a_filter() -> None:
    emu, ids = seeded(7)
    path = "/api/v2/search/export.json"
    seen: list[int] = []
    params: dict[str, Any] = {"query": "status:open", "filter[type]": "ticket", "page[size]": 3}
    while True:
        body = call(emu, "GET", path, params=params).json()
        seen += [r["id"] for r in body["results"]]
        assert body["links"]["prev"] is None
        if not body["meta"]["has_more"]:
            assert body["links"]["next"] is None
            break
        assert "page%5Bafter%5D=" in body["links"]["next"]
        params = {**params, "page[after]": body["meta"]["after_cursor"]}
    assert seen == ids
    assert call(emu, "GET", path, params={"query": "status:open"}).status_code == 400
    typed = call(emu, "GET", path, params={"query": "type:ticket", "filter[type]": "ticket"})
    assert typed.status_code == 400


# --- updates ------------------------------------------------------------------------------------


def test_safe_update_refuses_to_overwrite_an_agents_edit_with_409() -> None:
    emu, [tid] = seeded()
    read = ticket(emu, tid)
    emu.agent_update(tid, priority="urgent")  # same second: updated_at still moves on
    edited = ticket(emu, tid)
    assert edited["updated_at"] != read["updated_at"]
    stale = put(emu, tid, status="pending", safe_update=True, updated_stamp=read["updated_at"])
    assert stale.status_code == 409
    assert stale.json() == {
        "error": "UpdateConflict",
        "description": "Safe Update prevented the update due to outdated ticket data. "
        "Please fetch the latest ticket data and try again.",
    }
    assert ticket(emu, tid)["status"] == "open"
    fresh = put(emu, tid, status="pending", safe_update=True, updated_stamp=edited["updated_at"])
    assert fresh.status_code == 200 and fresh.json()["ticket"]["status"] == "pending"
    assert fresh.json()["ticket"]["priority"] == "urgent"
    unsafe = put(emu, tid, status="hold", updated_stamp=read["updated_at"])  # no safe_update
    assert unsafe.status_code == 200


def test_a_closed_ticket_refuses_every_update_and_statuses_move_like_zendesk() -> None:
    emu, [tid] = seeded()
    assert put(emu, tid, status="closed").status_code == 422  # closed only from solved
    assert put(emu, tid, status="new").status_code == 422  # never back to new
    assert put(emu, tid, status="nonsense").status_code == 422
    assert put(emu, tid, status="solved").status_code == 200
    closed = put(emu, tid, status="closed")
    assert closed.status_code == 200 and closed.json()["ticket"]["status"] == "closed"
    for change in ({"comment": {"body": "late"}}, {"additional_tags": ["x"]}, {"priority": "low"}):
        refused = put(emu, tid, **change)
        assert refused.status_code == 422
        assert refused.json()["error"] == "RecordInvalid"
        assert refused.json()["details"]["status"][0]["description"] == (
            "Status: closed prevents ticket update"
        )
    with pytest.raises(ZendeskError) as agent_refused:
        emu.agent_update(tid, status="open")
    assert agent_refused.value.status == 422


def test_zendesks_native_status_rules() -> None:
    emu = make()
    tid = int(emu.add_ticket(sample(status=Status.NEW, assignee=None)))
    assigned = put(emu, tid, assignee_id=fixtures.AGENT_ID).json()["ticket"]
    assert assigned["status"] == "open"  # assigning a new ticket opens it
    unassigned = int(emu.add_ticket(sample(2, assignee=None)))
    solved = put(emu, unassigned, status="solved").json()["ticket"]
    assert solved["assignee_id"] == fixtures.AGENT_ID  # auto-assign upon solve
    for status in ("pending", "hold", "solved"):
        assert put(emu, tid, status=status).status_code == 200
        emu.customer_reply(str(tid), f"reply while {status}")
        assert ticket(emu, tid)["status"] == "open", status
    agent_note = put(emu, tid, status="pending", comment={"body": "waiting", "public": False})
    assert agent_note.json()["ticket"]["status"] == "pending"  # an agent's comment does not reopen
    assert put(emu, tid, priority=None).json()["ticket"]["priority"] == "high"  # never unset
    assert put(emu, tid, priority="extreme").status_code == 422
    # an update that changes nothing leaves updated_at alone; any real change moves it
    before = ticket(emu, tid)["updated_at"]
    assert put(emu, tid, status="pending").json()["ticket"]["updated_at"] == before


def test_added_and_removed_tags_keep_an_agents_concurrent_tag_change() -> None:
    emu, [tid] = seeded()
    read = ticket(emu, tid)
    assert read["tags"] == ["existing-tag"]
    emu.agent_update(tid, additional_tags=["agent-tag"])
    merged = put(emu, tid, additional_tags=["tw-checked"], remove_tags=["existing-tag"])
    assert merged.json()["ticket"]["tags"] == ["agent-tag", "tw-checked"]
    events = [e for e in merged.json()["audit"]["events"] if e["field_name"] == "tags"]
    assert events[0]["previous_value"] == ["agent-tag", "existing-tag"]
    # "tags" replaces the whole list, so writing back a stale list loses the agent's tag
    clobbered = put(emu, tid, tags=[*read["tags"], "tw-checked"])
    assert clobbered.json()["ticket"]["tags"] == ["existing-tag", "tw-checked"]


def test_custom_fields_group_assignee_and_comments_ride_along_in_one_update() -> None:
    emu, [tid] = seeded()
    response = put(
        emu,
        tid,
        custom_fields=[
            {"id": F["severity"], "value": "severity_1"},
            {"id": F["resolution_reason"], "value": "no_response"},
            {"id": 424242, "value": "ignored: the account has no such field"},
        ],
        group_id=fixtures.GROUPS["support-leads"],
        comment={"html_body": "<p>Escalated &amp; noted</p>", "public": False},
    )
    assert response.status_code == 200
    record = response.json()["ticket"]
    values = {f["id"]: f["value"] for f in record["custom_fields"]}
    assert values[F["severity"]] == "severity_1" and values[F["resolution_reason"]] == "no_response"
    assert 424242 not in values and record["fields"] == record["custom_fields"]
    assert record["group_id"] == fixtures.GROUPS["support-leads"]
    comments = call(emu, "GET", f"/api/v2/tickets/{tid}/comments.json").json()["comments"]
    assert comments[-1]["body"] == "Escalated & noted" and comments[-1]["public"] is False
    assert comments[-1]["author_id"] == fixtures.AGENT_ID
    audit = response.json()["audit"]
    assert {e["field_name"] for e in audit["events"] if e["type"] == "Change"} == {
        str(F["severity"]),
        str(F["resolution_reason"]),
        "group_id",
    }
    assert put(emu, tid, custom_fields="not a list").status_code == 400


def test_audits_list_every_change_with_the_requests_custom_metadata() -> None:
    emu, [tid] = seeded()
    marked = put(
        emu, tid, comment={"body": "Note", "public": False}, metadata={"custom": {"tw_key": "k-1"}}
    )
    assert marked.json()["audit"]["metadata"]["custom"] == {"tw_key": "k-1"}
    put(emu, tid, status="open")  # no change: no audit
    emu.agent_update(tid, comment="From the agent")
    body = call(emu, "GET", f"/api/v2/tickets/{tid}/audits.json").json()
    assert body["count"] == 3 and body["next_page"] is None
    first, mine, agents = body["audits"]
    assert first["events"][0]["body"] == emu.tickets[tid].description
    assert (
        mine["metadata"]["custom"] == {"tw_key": "k-1"} and mine["events"][0]["type"] == "Comment"
    )
    assert agents["metadata"]["custom"] == {} and agents["author_id"] != fixtures.AGENT_ID
    paged = call(emu, "GET", f"/api/v2/tickets/{tid}/audits", params={"page[size]": 2}).json()
    assert len(paged["audits"]) == 2 and paged["meta"]["has_more"] is True


# --- creating tickets ---------------------------------------------------------------------------


def test_follow_up_of_a_closed_ticket_links_back_and_inherits_tags() -> None:
    emu, [tid] = seeded()
    put(emu, tid, status="solved")
    put(emu, tid, status="closed")
    requester = ticket(emu, tid)["requester_id"]
    created = call(
        emu,
        "POST",
        "/api/v2/tickets.json",
        body={
            "ticket": {
                "subject": "Follow-up",
                "comment": {"body": "It is back.", "public": True},
                "requester_id": requester,
                "via_followup_source_id": tid,
                "external_id": "tw-fu-1",
            }
        },
    )
    assert created.status_code == 201
    assert created.headers["location"].endswith(
        f"/api/v2/tickets/{created.json()['ticket']['id']}.json"
    )
    follow = created.json()["ticket"]
    assert follow["via"] == {
        "channel": "api",
        "source": {
            "from": {"ticket_id": tid, "subject": "Dashboard totals differ 0"},
            "to": {},
            "rel": "follow_up",
        },
    }
    assert follow["tags"] == ["existing-tag"] and follow["requester_id"] == requester
    assert follow["status"] == "new" and follow["description"] == "It is back."
    assert ticket(emu, tid)["followup_ids"] == [follow["id"]]
    # "The parameter only works with closed tickets. It has no effect with other tickets."
    open_source = int(emu.add_ticket(sample(2)))
    plain = call(
        emu,
        "POST",
        "/api/v2/tickets.json",
        body={
            "ticket": {
                "subject": "x",
                "comment": {"body": "y"},
                "via_followup_source_id": open_source,
                "tags": ["mine"],
            }
        },
    ).json()["ticket"]
    assert plain["via"]["source"]["rel"] is None and plain["tags"] == ["mine"]
    # a customer writing to a closed ticket gets a follow-up, as an e-mail reply would
    emu.customer_reply(str(tid), "Still broken")
    assert len(ticket(emu, tid)["followup_ids"]) == 2


def test_tickets_are_found_by_external_id_for_idempotent_creation() -> None:
    emu, _ = seeded()
    body = {"ticket": {"subject": "s", "comment": {"body": "b"}, "external_id": "tw:key-1"}}
    first = call(emu, "POST", "/api/v2/tickets.json", body=body).json()["ticket"]
    found = call(emu, "GET", "/api/v2/tickets.json", params={"external_id": "tw:key-1"}).json()
    assert [t["id"] for t in found["tickets"]] == [first["id"]] and found["count"] == 1
    none = call(emu, "GET", "/api/v2/tickets.json", params={"external_id": "tw:key-2"}).json()
    assert none["tickets"] == []
    found_by_search = search(emu, "type:ticket external_id:tw:key-1")
    assert found_by_search == [("ticket", first["id"])]
    # the recorded real request: description instead of comment, no requester (the API user)
    legacy = call(
        emu,
        "POST",
        "/api/v2/tickets.json",
        body={"ticket": {"description": "test", "subject": "test"}},
    )
    assert legacy.status_code == 201
    assert legacy.json()["ticket"]["requester_id"] == fixtures.AGENT_ID
    empty = call(emu, "POST", "/api/v2/tickets.json", body={"ticket": {"subject": "no body"}})
    assert empty.status_code == 422 and empty.json()["error"] == "RecordInvalid"


# --- conformance hooks and webhooks -------------------------------------------------------------


def test_add_ticket_maps_a_normalized_ticket_to_zendesk() -> None:
    emu = make()
    source = int(emu.add_ticket(sample(status=Status.CLOSED)))
    normalized = sample(
        2,
        status=Status.RESOLVED,
        severity=Severity.CRITICAL,
        priority=Priority.URGENT,
        group="support-leads",
        resolution_reason="no_response",
        follow_up_of=str(source),
        comments=(
            Comment(
                id="c1",
                author_role=AuthorRole.AGENT,
                body="Seen.",
                public=False,
                created_at=START - timedelta(minutes=30),
            ),
        ),
    )
    tid = emu.add_ticket(normalized)
    record = ticket(emu, int(tid))
    values = {f["id"]: f["value"] for f in record["custom_fields"]}
    assert record["status"] == "solved" and record["priority"] == "urgent"
    assert values[F["severity"]] == "severity_1"
    assert values[F["server_url"]] == "https://kaseya.acme.example"
    assert values[F["resolution_reason"]] == "no_response" and values[F["module"]] is None
    assert record["group_id"] == fixtures.GROUPS["support-leads"]
    assert record["via"]["source"] == {
        "from": {"ticket_id": source, "subject": "Dashboard totals differ 1"},
        "to": {},
        "rel": "follow_up",
    }
    assert record["created_at"] == "2026-11-23T07:00:00Z"
    requester = emu.users[record["requester_id"]]
    assert (requester["email"], requester["role"], requester["external_id"]) == (
        "anna@acme.example",
        "end-user",
        "u-1",
    )
    assert requester["user_fields"] == {
        "tw_authorized_contact": False,
        "tw_certified_admin_until": None,
        "tw_available_24x7": False,
    }
    assert emu.organizations[record["organization_id"]]["external_id"] == "acme"
    again = ticket(emu, int(emu.add_ticket(sample(3))))
    assert again["requester_id"] == record["requester_id"]  # the same person, not a new user
    comments = call(emu, "GET", f"/api/v2/tickets/{tid}/comments.json").json()["comments"]
    assert [(c["body"], c["public"]) for c in comments] == [
        (normalized.description, True),
        ("Seen.", False),
    ]
    emu.add_unknown_field(tid)
    values = {f["id"]: f["value"] for f in ticket(emu, int(tid))["custom_fields"]}
    assert values[UNKNOWN_FIELD_ID] == "something new"
    assert UNKNOWN_FIELD_ID not in F.values()


def _signature(secret: str, timestamp: str, body: bytes) -> str:
    """Zendesk's documented formula: base64(HMACSHA256(TIMESTAMP + BODY))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_webhooks_are_signed_with_the_documented_formula() -> None:
    emu, [tid] = seeded()
    headers, body = emu.make_webhook(
        str(tid),
        EventKind.UPDATED,
        fixtures.WEBHOOK_SECRET,
        delivery_id="01HZZDELIVERY0000000000000",
    )
    stamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
    assert stamp == "2026-11-23T08:00:00Z"
    assert headers["X-Zendesk-Webhook-Signature"] == _signature(
        fixtures.WEBHOOK_SECRET, stamp, body
    )
    assert headers["X-Zendesk-Webhook-Invocation-Id"] == "01HZZDELIVERY0000000000000"
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", headers["X-Zendesk-Webhook-Id"])
    assert json.loads(body) == {
        "ticket_id": str(tid),
        "event": "updated",
        "updated_at": ticket(emu, tid)["updated_at"],
        "status": "open",
    }
    old = START - timedelta(hours=2)
    stale_headers, stale_body = emu.make_webhook(str(tid), EventKind.CREATED, "s", at=old)
    assert stale_headers["X-Zendesk-Webhook-Signature-Timestamp"] == "2026-11-23T06:00:00Z"
    assert json.loads(stale_body)["event"] == "created"
    other = emu.make_webhook(str(tid), EventKind.UPDATED, "s")[0]
    assert (
        other["X-Zendesk-Webhook-Invocation-Id"] != stale_headers["X-Zendesk-Webhook-Invocation-Id"]
    )


def test_subscribed_webhooks_fire_on_changes_like_a_trigger() -> None:
    emu, [tid] = seeded()
    received: list[tuple[dict[str, str], bytes]] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append((dict(request.headers), request.content))
        return httpx.Response(200)

    emu.subscribe("https://sidecar.example/webhooks/zendesk", "hook-secret")
    put(emu, tid, status="pending")
    call(
        emu,
        "POST",
        "/api/v2/tickets.json",
        body={"ticket": {"subject": "s", "comment": {"body": "b"}}},
    )
    put(emu, tid, status="pending")  # no change, no trigger
    emu.customer_reply(str(tid), "hello")
    assert [kind for _, _, kind in emu.outbox] == [
        EventKind.UPDATED,
        EventKind.CREATED,
        EventKind.UPDATED,
    ]
    responses = asyncio.run(emu.deliver_webhooks(httpx.MockTransport(receiver)))
    assert [r.status_code for r in responses] == [200, 200, 200] and emu.outbox == []
    for headers, content in received:
        stamp = headers["x-zendesk-webhook-signature-timestamp"]
        assert headers["x-zendesk-webhook-signature"] == _signature("hook-secret", stamp, content)
    assert [json.loads(c)["status"] for _, c in received] == ["open", "new", "open"]


def test_routes_answer_with_and_without_the_json_suffix() -> None:
    emu, [tid] = seeded()
    record = ticket(emu, tid)
    for path in (
        f"/api/v2/tickets/{tid}",
        f"/api/v2/tickets/{tid}/comments",
        f"/api/v2/users/{record['requester_id']}",
        f"/api/v2/organizations/{record['organization_id']}",
        f"/api/v2/groups/{record['group_id']}",
        "/api/v2/users/me",
    ):
        assert call(emu, "GET", path).status_code == 200, path
        assert call(emu, "GET", f"{path}.json").status_code == 200, path
    me = call(emu, "GET", "/api/v2/users/me.json").json()["user"]
    assert (me["id"], me["email"]) == (fixtures.AGENT_ID, fixtures.AGENT_EMAIL)
    many = call(
        emu,
        "GET",
        "/api/v2/users/show_many.json",
        params={"ids": f"{record['requester_id']},{fixtures.AGENT_ID}"},
    ).json()
    assert many["count"] == 2
    assert call(emu, "DELETE", f"/api/v2/tickets/{tid}.json").status_code == 204
    assert call(emu, "DELETE", f"/api/v2/tickets/{tid}.json").status_code == 404
