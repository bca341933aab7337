"""The Jira connector against respx-mocked Jira: every error path, JQL escaping with an
injection attempt, the minute-precision change cursor, transitions, webhook verification,
secrets and ADF — no emulator needed. Nothing sleeps for real (a :class:`FakeClock`)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx
from pydantic import SecretStr

from ticketwarden.core.actions import AddComment, Close, Escalate, SetStatus
from ticketwarden.core.connector import (
    CandidateQuery,
    DeskConfig,
    DeskSecrets,
    EscalationTarget,
    Outcome,
    Runtime,
    WebhookRejected,
)
from ticketwarden.core.errors import (
    AuthenticationError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    ServerError,
)
from ticketwarden.core.http import BasicCredentials, BearerToken
from ticketwarden.core.model import AuthorRole, Contact, Status, Ticket
from ticketwarden.plugins.jira.adf import to_adf, to_text
from ticketwarden.plugins.jira.connector import JiraConnector, jira_time
from ticketwarden.plugins.jira.jql import JqlValueError, jql_string, jql_time
from ticketwarden.testing.emulator import FakeClock

BASE = "https://acme.atlassian.net"
ME = "5b10ac8d82e05b22cc7d4ef5"
CUSTOMER = "qm:6e3f2d1c-customer"


def desk(**overrides: Any) -> DeskConfig:
    data: dict[str, Any] = {
        "name": "jira-acme",
        "connector": "jira",
        "base_url": BASE,
        "statuses": {"Waiting for customer": "waiting_on_customer", "Closed": "closed"},
        "fields": {"server_url": "custom:customfield_10101"},
        "escalation": {"leads": {"assignee": "5b10leads"}},
        "options": {
            "projects": ["SUP"],
            "jql_time_zone": "Europe/Berlin",
            "agent_account_id": ME,
            "create_settle_seconds": 0,
        },
    }
    data.update(overrides)
    return DeskConfig.model_validate(data)


def connector(clock: FakeClock, config: DeskConfig | None = None) -> JiraConnector:
    secrets = DeskSecrets(
        credentials=BasicCredentials(username="tw@acme.example", password=SecretStr("tok-123456")),
        webhook_secret=SecretStr("hook-secret"),
    )
    runtime = Runtime(clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.time)
    return JiraConnector(config or desk(), secrets, runtime)


def status(name: str, category: str, sid: str = "1") -> dict[str, Any]:
    return {"id": sid, "name": name, "statusCategory": {"key": category}}


def issue(iid: int = 10001, updated: str = "2026-11-25T09:30:15.123+0000", **fields: Any) -> dict:
    base = {
        "summary": "Agents offline",
        "status": status("Waiting for support", "indeterminate"),
        "reporter": {"accountId": CUSTOMER, "displayName": "Anna", "emailAddress": "a@x.example"},
        "created": "2026-11-20T08:00:00.000+0000",
        "updated": updated,
        "labels": ["existing"],
        "customfield_10002": [{"id": "7", "name": "Acme"}],
    }
    base.update(fields)
    return {"id": str(iid), "key": f"SUP-{iid - 10000}", "fields": base}


def comments(*items: dict[str, Any]) -> dict[str, Any]:
    return {"startAt": 0, "maxResults": 100, "total": len(items), "comments": list(items)}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def ticket(**overrides: Any) -> Ticket:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    data: dict[str, Any] = {
        "id": "10001",
        "number": "SUP-1",
        "status": Status.OPEN,
        "requester": Contact(id=CUSTOMER, email="a@x.example"),
        "created_at": now,
        "updated_at": now,
    }
    data.update(overrides)
    return Ticket(**data)


# --- reading --------------------------------------------------------------------------------------


def test_reads_an_issue_with_visibility_roles_and_organization() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        mock.get("/rest/api/3/issue/10001").respond(json=issue(customfield_10101="https://s"))
        mock.get("/rest/api/3/issue/10001/comment").respond(
            json=comments(
                {
                    "id": "1",
                    "author": {"accountId": CUSTOMER, "accountType": "customer"},
                    "body": to_adf("Help\nplease"),
                    "created": "2026-11-20T08:00:00.000+0000",
                    "jsdPublic": True,
                },
                {
                    "id": "2",
                    "author": {"accountId": ME, "accountType": "atlassian"},
                    "body": to_adf("note"),
                    "created": "2026-11-20T09:00:00.000+0000",
                    "properties": [
                        {"key": "sd.public.comment", "value": {"internal": True}},
                        {"key": "ticketwarden", "value": {"key": "k"}},
                    ],
                },
                {
                    "id": "3",
                    "author": {"accountId": ME, "accountType": "atlassian"},
                    "body": to_adf("typed by a person on the shared account"),
                    "created": "2026-11-20T10:00:00.000+0000",
                    "jsdPublic": True,
                },
            )
        )
        t = run(connector(clock).read_ticket("10001"))
    assert t.number == "SUP-1" and t.status == Status.OPEN
    assert t.organization is not None and t.organization.id == "7"
    assert t.fields == {"server_url": "https://s"}
    assert [(c.author_role, c.public, c.body) for c in t.comments] == [
        (AuthorRole.CUSTOMER, True, "Help\nplease"),
        (AuthorRole.SYSTEM, False, "note"),
        (AuthorRole.AGENT, True, "typed by a person on the shared account"),
    ]
    assert t.updated_at == datetime(2026, 11, 25, 9, 30, 15, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status_code", "error"),
    [(401, AuthenticationError), (403, AuthenticationError), (404, NotFoundError)],
)
def test_read_errors_are_typed_with_jiras_message(status_code: int, error: type) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/rest/api/3/issue/10001").respond(
            status_code, json={"errorMessages": ["Issue does not exist"], "errors": {}}
        )
        with pytest.raises(error) as raised:
            run(connector(FakeClock()).read_ticket("10001"))
    assert "Issue does not exist" in str(raised.value)


def test_a_429_beyond_the_ceiling_is_deferred_and_a_5xx_is_retried() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        mock.get("/rest/api/3/issue/10001").respond(
            429, headers={"Retry-After": "3600"}, json={"errorMessages": ["Rate limited"]}
        )
        with pytest.raises(RateLimitedError) as raised:
            run(connector(clock).read_ticket("10001"))
    assert raised.value.retry_after == 3600
    with respx.mock(base_url=BASE) as mock:
        mock.get("/rest/api/3/issue/10001").respond(503)
        with pytest.raises(ServerError):
            run(connector(clock).read_ticket("10001"))
        assert mock.calls.call_count == 4  # the policy's attempts


def test_malformed_bodies_and_search_token_loops_are_protocol_errors() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        mock.get("/rest/api/3/issue/10001").respond(200, content=b'{"id": "100')
        with pytest.raises(ProtocolError):
            run(connector(clock).read_ticket("10001"))
    with respx.mock(base_url=BASE) as mock:
        page = {"issues": [], "isLast": False, "nextPageToken": "same"}
        mock.get("/rest/api/3/search/jql").respond(json=page)
        with pytest.raises(ProtocolError, match="loop"):
            run(connector(clock).changes(None))
    with pytest.raises(NotFoundError):
        run(connector(clock).read_ticket("10001 OR 1=1"))


# --- the change feed and candidates ---------------------------------------------------------------


def test_change_cursor_survives_issues_sharing_a_minute_and_a_later_change() -> None:
    clock = FakeClock()
    same = "2026-11-25T09:30:15.000+0000"
    sent: list[str] = []

    def search(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.params["jql"])
        found = [issue(10001, same), issue(10002, same), issue(10003, same)]
        if len(sent) >= 3:
            found[0] = issue(10001, "2026-11-25T09:31:02.000+0000")
            found = [found[1], found[2], found[0]]
        return httpx.Response(200, json={"issues": found, "isLast": True})

    config = desk(options={**desk().options, "page_size": 2, "changes_overlap_seconds": 0})
    with respx.mock(base_url=BASE) as mock:
        mock.get("/rest/api/3/search/jql").mock(side_effect=search)
        one = run(connector(clock, config).changes(None))
        two = run(connector(clock, config).changes(one.cursor))
        three = run(connector(clock, config).changes(two.cursor))
    assert [t.id for t in one.tickets] == ["10001", "10002"] and one.has_more
    assert [t.id for t in two.tickets] == ["10003"] and not two.has_more
    assert [t.id for t in three.tickets] == ["10001"]  # changed again: once more
    # minute precision, in the API user's zone (09:30 UTC is 10:30 in Berlin)
    assert 'updated >= "2026/11/25 10:30"' in sent[1]
    assert sent[0].endswith("ORDER BY updated ASC, key ASC")


def test_candidate_jql_escapes_every_value_and_an_injection_stays_a_literal() -> None:
    clock = FakeClock()
    evil = 'Waiting" OR project = "SECRET'
    config = desk(statuses={evil: "waiting_on_customer"})
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/rest/api/3/search/jql").respond(json={"issues": [], "isLast": True})
        query = CandidateQuery(
            statuses=frozenset({Status.WAITING_ON_CUSTOMER}),
            updated_before=datetime(2026, 11, 25, 9, 30, 1, tzinfo=UTC),
        )

        async def drain() -> list[Ticket]:
            return [t async for t in connector(clock, config).candidates(query)]

        assert run(drain()) == []
    jql = route.calls.last.request.url.params["jql"]
    assert 'status in ("Waiting\\" OR project = \\"SECRET")' in jql
    assert 'updated < "2026/11/25 10:31"' in jql  # widened to the next whole minute
    with pytest.raises(JqlValueError):
        jql_string("line\nbreak")
    assert (
        jql_time(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), ZoneInfo("UTC")) == '"2026/07/01 10:00"'
    )


# --- writing --------------------------------------------------------------------------------------


def test_a_missing_transition_fails_with_the_offered_ones() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        mock.get("/rest/api/3/issue/10001/transitions").respond(
            json={
                "transitions": [
                    {"id": "11", "name": "Start", "to": status("In Progress", "indeterminate", "3")}
                ]
            }
        )
        action = SetStatus(rule_id="TEST-1", reason="r", key="k", status=Status.WAITING_ON_CUSTOMER)
        results = run(connector(clock).apply(ticket(), [action]))
    assert results[0].outcome == Outcome.FAILED
    assert "no transition" in results[0].detail and "'Start' → 'In Progress'" in results[0].detail


def test_close_goes_through_resolved_with_a_resolution_when_needed() -> None:
    clock = FakeClock()
    posted: list[Any] = []
    state = {"status": "open"}

    def transitions(request: httpx.Request) -> httpx.Response:
        if state["status"] == "open":
            offered = [
                {
                    "id": "51",
                    "name": "Resolve",
                    "to": status("Resolved", "done", "5"),
                    "fields": {"resolution": {"required": True}},
                }
            ]
        else:
            offered = [{"id": "71", "name": "Close", "to": status("Closed", "done", "6")}]
        return httpx.Response(200, json={"transitions": offered})

    def transition(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        state["status"] = "resolved"
        return httpx.Response(204)

    with respx.mock(base_url=BASE) as mock:
        mock.get("/rest/api/3/issue/10001/transitions").mock(side_effect=transitions)
        mock.post("/rest/api/3/issue/10001/transitions").mock(side_effect=transition)
        results = run(
            connector(clock).apply(ticket(), [Close(rule_id="TEST-1", reason="r", key="k")])
        )
    assert results[0].outcome == Outcome.APPLIED, results
    assert posted == [
        {"transition": {"id": "51"}, "fields": {"resolution": {"name": "Done"}}},
        {"transition": {"id": "71"}},
    ]


def test_a_comment_whose_response_is_lost_is_found_by_its_marker_not_sent_twice() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        post = mock.post("/rest/api/3/issue/10001/comment").respond(502)
        mock.get("/rest/api/3/issue/10001/comment").respond(
            json=comments(
                {
                    "id": "99",
                    "author": {"accountId": ME},
                    "body": to_adf("Hello"),
                    "created": "2026-11-25T09:00:00.000+0000",
                    "properties": [{"key": "ticketwarden", "value": {"key": "k-1"}}],
                }
            )
        )
        action = AddComment(rule_id="TEST-1", reason="r", key="k-1", body="Hello", public=False)
        results = run(connector(clock).apply(ticket(), [action]))
    assert results[0].outcome == Outcome.APPLIED and results[0].created_id == "99"
    assert post.call_count == 1
    sent = json.loads(post.calls.last.request.content)
    assert sent["body"] == to_adf("Hello")
    assert {"key": "sd.public.comment", "value": {"internal": True}} in sent["properties"]


def test_a_comment_lost_and_not_found_raises_outcome_unknown_after_three_sends() -> None:
    clock = FakeClock()
    with respx.mock(base_url=BASE) as mock:
        post = mock.post("/rest/api/3/issue/10001/comment").respond(500)
        mock.get("/rest/api/3/issue/10001/comment").respond(json=comments())
        action = AddComment(rule_id="TEST-1", reason="r", key="k-2", body="Hi")
        with pytest.raises(OutcomeUnknownError):
            run(connector(clock).apply(ticket(), [action]))
    assert post.call_count == 3


def test_escalation_targets_jira_cannot_honour_fail_visibly() -> None:
    clock = FakeClock()
    config = desk(escalation={"team": {"group": "360000000101"}})
    action = Escalate(rule_id="TEST-1", reason="r", key="k", target="team")
    results = run(connector(clock, config).apply(ticket(), [action]))
    assert results[0].outcome == Outcome.FAILED and "no groups" in results[0].detail
    assert EscalationTarget(component="Escalations").unsupported(frozenset({"group"})) == [
        "component"
    ]


# --- webhooks, secrets, ADF -----------------------------------------------------------------------


def delivery(secret: bytes, at: datetime, event: str = "jira:issue_updated") -> tuple[dict, bytes]:
    body = json.dumps(
        {"timestamp": int(at.timestamp() * 1000), "webhookEvent": event, "issue": {"id": "10001"}}
    ).encode()
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={signature}", "X-Atlassian-Webhook-Identifier": "d-1"}, body


def test_webhooks_are_verified_in_constant_time_and_normalized() -> None:
    clock = FakeClock()
    c = connector(clock)
    now = clock.now()
    headers, body = delivery(b"hook-secret", now, "comment_created")
    events = c.verify_webhook(headers, body, now)
    assert [(e.delivery_id, e.ticket_id, e.kind.value) for e in events] == [
        ("d-1", "10001", "updated")
    ]
    wrong, _ = delivery(b"other", now)
    with pytest.raises(WebhookRejected) as rejected:
        c.verify_webhook(wrong, body, now)
    assert rejected.value.reason == "bad_signature"
    old_headers, old_body = delivery(b"hook-secret", now - timedelta(hours=1))
    with pytest.raises(WebhookRejected) as rejected:
        c.verify_webhook(old_headers, old_body, now)
    assert rejected.value.reason == "expired"
    odd_headers, odd_body = delivery(b"hook-secret", now, "sprint_started")
    with pytest.raises(WebhookRejected) as rejected:
        c.verify_webhook(odd_headers, odd_body, now)
    assert rejected.value.reason == "malformed"


def test_secrets_from_the_environment_and_base_urls() -> None:
    basic = JiraConnector.secrets_from(
        {"EMAIL": SecretStr("tw@acme.example"), "API_TOKEN": SecretStr("tok")}
    )
    assert isinstance(basic.credentials, BasicCredentials)
    assert basic.credentials.username == "tw@acme.example"
    bearer = JiraConnector.secrets_from(
        {"EMAIL": SecretStr("e"), "API_TOKEN": SecretStr("t"), "OAUTH_TOKEN": SecretStr("o")}
    )
    assert isinstance(bearer.credentials, BearerToken)
    with pytest.raises(ValueError, match="without /rest"):
        JiraConnector(desk(base_url=f"{BASE}/rest/api/3"))
    oauth = JiraConnector(desk(base_url="https://api.atlassian.com/ex/jira/1a2b"))
    assert str(oauth.client.resolve("/rest/api/3/myself")).endswith(
        "/ex/jira/1a2b/rest/api/3/myself"
    )


def test_adf_round_trips_text_and_reads_rich_documents() -> None:
    for text in ("", "one", "a\n\nb\n", "Grüße — 東京 🚀"):
        assert to_text(to_adf(text)) == text
    rich = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Hi "},
                    {"type": "mention", "attrs": {"text": "@Ann"}},
                ],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [
                                    {"type": "text", "text": "x"},
                                    {"type": "hardBreak"},
                                    {"type": "text", "text": "y"},
                                ],
                            }
                        ],
                    }
                ],
            },
        ],
    }
    assert to_text(rich) == "Hi @Ann\nx\ny"
    assert (
        jira_time(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
        == "2026-01-02T03:04:05.678+0000"
    )
