"""The Jira emulator speaks Atlassian's API as Atlassian describes it, and behaves as Jira does.

* Every request the connector sends and every answer the emulator gives in a full workout
  (reads, the change feed, candidates, every action kind, follow-ups, the roster) is
  validated with openapi-core against Atlassian's own OpenAPI descriptions in
  ``../shared/vendor/jira/``: the platform API of 2022 for the endpoints it covers, the
  Service Management API for ``/rest/servicedeskapi``, and — for ``/rest/api/3/search/jql``,
  which the 2022 description predates — the December 2025 description, which is Atlassian's
  current reference for it (``SearchAndReconcileResults``: ``issues``, ``isLast``,
  ``nextPageToken``, ``names``, ``schema``, no other keys; Atlassian's REST reference, *Issue
  search › Search for issues using JQL enhanced search*, says the same).
* The JQL subset: quoting and escaping, dates in the API user's zone, unbounded queries
  refused, token paging bound to its query.
* The workflow, the removed offset search, rate-limit headers and signed webhooks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from ticketwarden.core.actions import (
    AddComment,
    AddTags,
    Close,
    CreateFollowUp,
    Escalate,
    RemoveTags,
    Resolve,
    SetField,
    SetPriority,
    SetSeverity,
    SetStatus,
)
from ticketwarden.core.connector import CandidateQuery, Outcome, Runtime
from ticketwarden.core.model import Contact, EventKind, Organization, Severity, Status, Ticket
from ticketwarden.plugins.jira import fixtures
from ticketwarden.plugins.jira.connector import JiraConnector
from ticketwarden.plugins.jira.emulator import JiraEmulator
from ticketwarden.testing.emulator import FakeClock

VENDOR = Path(__file__).resolve().parents[1].parent / "shared" / "vendor" / "jira"
needs_vendor = pytest.mark.skipif(
    not VENDOR.is_dir(),
    reason="the vendor material (../shared/vendor/jira) is absent: Atlassian's OpenAPI "
    "descriptions cannot be loaded",
)
BASE = f"https://{fixtures.SITE}.atlassian.net"


# --- a recording transport and openapi-core adapters ---------------------------------------------


class Recorder(httpx.AsyncBaseTransport):
    """The emulator's transport, keeping every request with its response."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: list[tuple[httpx.Request, httpx.Response]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.calls.append((request, response))
        return response


class OpenAPIRequest:
    """An ``httpx.Request`` as openapi-core's request protocol."""

    def __init__(self, request: httpx.Request) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.request = request
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query, keep_blank_values=True)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict({}),
        )


class OpenAPIResponse:
    """An ``httpx.Response`` as openapi-core's response protocol."""

    def __init__(self, response: httpx.Response) -> None:
        from werkzeug.datastructures import Headers

        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "").split(";")[0]
        self.headers = Headers(dict(response.headers))


@pytest.fixture(scope="module")
def specs() -> dict[str, Any]:
    """openapi-core validators of the three descriptions, their server set to the emulator."""
    if not VENDOR.is_dir():
        pytest.skip("../shared/vendor/jira is absent")
    from openapi_core import Config, OpenAPI

    # Two faults of the descriptions are allowed for, and only these:
    # * they are not checked against the OpenAPI meta-schema: the 2025-12 one has a schema
    #   whose default ('') is outside its own enum (the project classification status);
    # * timestamps are declared ``format: date-time`` (RFC 3339), but Jira writes — and the
    #   descriptions' own examples show — ``2022-07-15T09:19:44.990+0000``, an offset without
    #   a colon; that form, and only that form besides RFC 3339, passes as a date-time.
    config = Config(spec_validator_cls=None, extra_format_validators={"date-time": jira_date_time})
    loaded = {}
    for name, file in (
        ("platform", "platform-openapi-2022.json"),
        ("current", "platform-openapi-2025-12.json"),
        ("servicedesk", "servicedesk-openapi-2023-08.json"),
    ):
        spec = json.loads((VENDOR / file).read_text(encoding="utf-8"))
        spec["servers"] = [{"url": BASE}]
        if name == "servicedesk":
            # The Service Management description declares only OAuth 2.0, which openapi-core
            # cannot check; Atlassian's reference also takes basic auth with an API token (as
            # the platform description declares it), so that alternative is added.
            schemes = spec["components"].setdefault("securitySchemes", {})
            schemes["basicAuth"] = {"type": "http", "scheme": "basic"}
            for operations in spec["paths"].values():
                for operation in operations.values():
                    if isinstance(operation, dict) and "security" in operation:
                        operation["security"] = [{"basicAuth": []}]
        loaded[name] = OpenAPI.from_dict(spec, config=config)
    return loaded


_JIRA_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?[+-]\d{4}$")


def jira_date_time(value: Any) -> bool:
    """RFC 3339, or Jira's own ``2022-07-15T09:19:44.990+0000``."""
    if not isinstance(value, str):
        return True  # formats apply to strings only
    if _JIRA_TIME.match(value):
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value and (value.endswith("Z") or value[-6] in "+-")


def spec_for(specs: dict[str, Any], path: str) -> Any:
    if path.startswith("/rest/servicedeskapi/"):
        return specs["servicedesk"]
    if path.startswith("/rest/api/3/search/jql"):
        return specs["current"]  # the 2022 description predates /search/jql
    return specs["platform"]


def _documented_statuses(spec: Any, request: httpx.Request) -> set[str]:
    """The response statuses the description documents for the request's operation."""
    from openapi_core.templating.paths.finders import APICallPathFinder

    found = APICallPathFinder(spec.spec, base_url=None).find(
        request.method.lower(), str(request.url)
    )
    with (found.operation / "responses").open() as responses:
        return {str(code) for code in responses}


# --- helpers --------------------------------------------------------------------------------------


def harness(**kwargs: Any) -> tuple[JiraEmulator, JiraConnector, Recorder, FakeClock]:
    clock = FakeClock()
    emulator = JiraEmulator(clock=clock, **kwargs)
    config, secrets = JiraConnector.conformance_config(emulator.base_url)
    recorder = Recorder(emulator.transport())
    runtime = Runtime(
        transport=recorder, clock=clock.monotonic, sleep=clock.sleep, wall_clock=clock.time
    )
    return emulator, JiraConnector(config, secrets, runtime), recorder, clock


def sample(clock: FakeClock, n: int = 1, **overrides: Any) -> Ticket:
    data: dict[str, Any] = {
        "id": "new",
        "number": "new",
        "subject": f"Agents offline {n}",
        "description": "Since the update the agents are offline.",
        "status": Status.OPEN,
        "severity": Severity.MEDIUM,
        "requester": Contact(id="c", name="Anna Berger", email="anna@acme.example"),
        "organization": Organization(id="acme", name="Acme"),
        "fields": {"server_url": "https://kaseya.acme.example", "steps": "1. open\n2. look"},
        "tags": frozenset({"existing"}),
        "created_at": clock.now(),
        "updated_at": clock.now(),
    }
    data.update(overrides)
    return Ticket(**data)


def key(n: int) -> dict[str, str]:
    return {"rule_id": "TEST-1", "reason": "test", "key": f"k{n}"}


def call(
    emulator: JiraEmulator,
    method: str,
    path: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **kwargs: Any,
) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=transport or emulator.transport(),
            base_url=emulator.base_url,
            auth=(fixtures.AGENT_EMAIL, fixtures.API_TOKEN),
        ) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


# --- OpenAPI validation -------------------------------------------------------------------------


@needs_vendor
def test_every_request_and_answer_of_a_workout_matches_atlassians_openapi(
    specs: dict[str, Any],
) -> None:
    """Requests and responses of every endpoint the connector uses validate against the
    vendor's OpenAPI descriptions (the emulator's 4xx bodies included)."""
    emulator, connector, recorder, clock = harness()
    emulator.add_organization(
        "Acme", {fixtures.ORG_PROPERTIES["authorized"]: ["anna@acme.example"]}
    )

    async def workout() -> None:
        ids = [emulator.add_ticket(sample(clock, n)) for n in range(3)]
        ticket = await connector.read_ticket(ids[0])
        actions = [
            AddComment(**key(1), body="Public reply"),
            AddComment(**key(2), body="Internal note", public=False),
            SetPriority(**key(3), priority="high"),
            SetSeverity(**key(4), severity=Severity.HIGH),
            AddTags(**key(5), tags=frozenset({"tw-x"})),
            RemoveTags(**key(6), tags=frozenset({"existing"})),
            SetField(**key(7), field="steps", value="1. a\n2. b"),
            Escalate(**key(8), target="support-leads"),
            SetStatus(**key(9), status=Status.WAITING_ON_CUSTOMER),
        ]
        results = await connector.apply(ticket, actions)
        assert {r.outcome for r in results} == {Outcome.APPLIED}, results
        ticket = await connector.read_ticket(ids[1])
        results = await connector.apply(
            ticket, [Resolve(**key(10), resolution="no_response"), Close(**key(11))]
        )
        assert {r.outcome for r in results} == {Outcome.APPLIED}, results
        closed = await connector.read_ticket(ids[1])
        made = await connector.apply(
            closed, [CreateFollowUp(**key(12), subject="Again", body="It is back.")]
        )
        assert made[0].outcome == Outcome.APPLIED, made
        page = await connector.changes(None)
        assert page.tickets
        query = CandidateQuery(statuses=frozenset({Status.OPEN}), updated_before=clock.now())
        assert [t async for t in connector.candidates(query)]
        roster = await connector.roster()
        assert roster.entries
        await connector.aclose()

    asyncio.run(workout())
    # a few refusals too: the error bodies have Jira's shape
    refusals = [
        call(
            emulator,
            "POST",
            "/rest/api/3/issue/10001/transitions",
            json={"transition": {"id": "99"}},
            transport=recorder,
        ),
        call(emulator, "GET", "/rest/api/3/issue/SUP-999", transport=recorder),
        call(
            emulator,
            "GET",
            "/rest/api/3/search/jql",
            params={"jql": "order by updated"},
            transport=recorder,
        ),
    ]
    assert [r.status_code for r in refusals] == [400, 404, 400]

    checked: set[tuple[str, str]] = set()
    problems: list[str] = []
    for request, response in recorder.calls:
        path = request.url.path
        spec = spec_for(specs, path)
        for step in ("request", "response"):
            if step == "response" and not response.content and response.status_code in (201, 204):
                # The descriptions give these answers an application/json content with an
                # empty schema; Jira sends no body (a 204 cannot have one, RFC 9110 §15.3.5).
                # Check that the status is a documented one instead.
                documented = _documented_statuses(spec, request)
                if str(response.status_code) not in documented:
                    problems.append(f"{request.method} {path}: {response.status_code} undocumented")
                continue
            try:
                if step == "request":
                    spec.validate_request(OpenAPIRequest(request))
                else:
                    spec.validate_response(OpenAPIRequest(request), OpenAPIResponse(response))
            except Exception as exc:  # every openapi-core error, reported with the call
                cause = exc.__cause__ or exc
                detail = (
                    "; ".join(str(e)[:300] for e in getattr(cause, "schema_errors", []))
                    or str(cause)[:300]
                )
                problems.append(
                    f"{request.method} {path} -> {response.status_code} ({step}): "
                    f"{type(exc).__name__}: {detail}"
                )
        checked.add((request.method, path.rsplit("/", 1)[0] if path[-1].isdigit() else path))
    assert not problems, "\n".join(dict.fromkeys(problems))
    assert len(recorder.calls) > 25 and len(checked) >= 12, sorted(checked)


@needs_vendor
def test_the_validator_is_not_a_rubber_stamp(specs: dict[str, Any]) -> None:
    """A response with a wrong type, and a request body of the wrong shape, are refused."""
    from openapi_core.validation.request.exceptions import RequestBodyValidationError
    from openapi_core.validation.response.exceptions import DataValidationError

    request = httpx.Request(
        "POST",
        f"{BASE}/rest/api/3/issue/SUP-1/transitions",
        json={"transition": "21"},
        headers={"authorization": "Basic dTpw"},
    )
    with pytest.raises(RequestBodyValidationError):
        specs["platform"].validate_request(OpenAPIRequest(request))
    search = httpx.Request("GET", f"{BASE}/rest/api/3/search/jql?jql=project%3DSUP")
    bad = httpx.Response(200, json={"issues": [], "isLast": "yes"})
    with pytest.raises(DataValidationError):
        specs["current"].validate_response(OpenAPIRequest(search), OpenAPIResponse(bad))
    extra = httpx.Response(200, json={"issues": [], "startAt": 0, "total": 0})
    with pytest.raises(DataValidationError):  # the offset search's keys are gone
        specs["current"].validate_response(OpenAPIRequest(search), OpenAPIResponse(extra))


# --- JQL ------------------------------------------------------------------------------------------


def test_jql_quoting_dates_in_the_users_zone_and_unbounded_queries() -> None:
    emulator = JiraEmulator(clock=FakeClock())
    clock = FakeClock()
    at = datetime(2026, 11, 25, 9, 30, 20, tzinfo=UTC)  # 10:30 in Europe/Berlin
    tid = emulator.add_ticket(sample(clock, created_at=at, updated_at=at))

    def found(jql: str) -> list[str]:
        response = call(emulator, "GET", "/rest/api/3/search/jql", params={"jql": jql})
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["issues"]]

    assert found('project = SUP AND updated >= "2026/11/25 10:30"') == [tid]
    assert found('project = SUP AND updated >= "2026/11/25 10:31"') == []
    assert found('project = SUP AND updated < "2026/11/25 10:31"') == [tid]
    assert found('project = "SUP" AND status in ("Waiting for support", "Pending")') == [tid]
    assert found('project = SUP AND statusCategory = "indeterminate"') == [tid]
    injected = 'project = SUP AND status = "Open\\" OR project = \\"SUP"'
    assert found(injected) == []  # the quote is escaped: one literal, no OR
    refused = call(emulator, "GET", "/rest/api/3/search/jql", params={"jql": "order by updated"})
    assert refused.status_code == 400
    assert "Unbounded" in refused.json()["errorMessages"][0]
    unknown = call(emulator, "GET", "/rest/api/3/search/jql", params={"jql": "nofield = 1"})
    assert unknown.status_code == 400 and "does not exist" in unknown.json()["errorMessages"][0]


def test_search_pages_by_token_bound_to_its_query_and_the_offset_search_is_gone() -> None:
    clock = FakeClock()
    emulator = JiraEmulator(clock=clock)
    ids = [emulator.add_ticket(sample(clock, n)) for n in range(5)]
    jql = "project = SUP ORDER BY key ASC"
    seen: list[str] = []
    params: dict[str, Any] = {"jql": jql, "maxResults": 2, "fields": "summary"}
    for _ in range(5):
        body = call(emulator, "GET", "/rest/api/3/search/jql", params=params).json()
        seen += [i["id"] for i in body["issues"]]
        if body["isLast"]:
            assert "nextPageToken" not in body
            break
        params["nextPageToken"] = body["nextPageToken"]
    assert seen == ids
    other = call(
        emulator,
        "GET",
        "/rest/api/3/search/jql",
        params={"jql": "project = SUP", "nextPageToken": params["nextPageToken"]},
    )
    assert other.status_code == 400
    assert call(emulator, "GET", "/rest/api/3/search", params={"jql": jql}).status_code == 410


# --- workflow, comments, limits, webhooks --------------------------------------------------------


def test_workflow_transitions_resolution_and_changelog() -> None:
    clock = FakeClock()
    emulator = JiraEmulator(clock=clock)
    tid = emulator.add_ticket(sample(clock))
    names = [
        t["name"]
        for t in call(emulator, "GET", f"/rest/api/3/issue/{tid}/transitions").json()["transitions"]
    ]
    assert "Close" not in names and "Resolve this issue" in names
    resolve = {"transition": {"id": "51"}, "fields": {"resolution": {"name": "Won't Do"}}}
    assert (
        call(emulator, "POST", f"/rest/api/3/issue/{tid}/transitions", json=resolve).status_code
        == 204
    )
    issue = call(emulator, "GET", f"/rest/api/3/issue/{tid}", params={"expand": "changelog"}).json()
    assert issue["fields"]["resolution"]["name"] == "Won't Do"
    assert issue["fields"]["resolutiondate"] is not None
    items = issue["changelog"]["histories"][-1]["items"]
    assert [i["field"] for i in items] == ["status", "resolution"]
    assert (
        call(
            emulator,
            "POST",
            f"/rest/api/3/issue/{tid}/transitions",
            json={"transition": {"id": "71"}},
        ).status_code
        == 204
    )
    edit = call(emulator, "PUT", f"/rest/api/3/issue/{tid}", json={"fields": {"summary": "x"}})
    assert edit.status_code == 400  # Closed is not editable
    assert call(emulator, "GET", f"/rest/api/3/issue/{tid}/transitions").json()["transitions"] == []


def test_comments_are_adf_and_internal_by_property_and_long_text_is_refused() -> None:
    clock = FakeClock()
    emulator = JiraEmulator(clock=clock, text_limit=32767)
    tid = emulator.add_ticket(sample(clock))
    plain = call(emulator, "POST", f"/rest/api/3/issue/{tid}/comment", json={"body": "text"})
    assert plain.status_code == 400  # API v3 takes ADF only
    internal = {
        "body": {"type": "doc", "version": 1, "content": []},
        "properties": [{"key": "sd.public.comment", "value": {"internal": True}}],
    }
    made = call(emulator, "POST", f"/rest/api/3/issue/{tid}/comment", json=internal)
    assert made.status_code == 201 and made.json()["jsdPublic"] is False
    listed = call(
        emulator, "GET", f"/rest/api/3/issue/{tid}/comment", params={"expand": "properties"}
    ).json()
    assert listed["comments"][-1]["properties"] == internal["properties"]
    long = {
        "body": {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x" * 32768}]}],
        }
    }
    assert call(emulator, "POST", f"/rest/api/3/issue/{tid}/comment", json=long).status_code == 400


def test_authentication_rate_limit_headers_and_429() -> None:
    clock = FakeClock()
    emulator = JiraEmulator(clock=clock, rate_limit=2)
    tid = emulator.add_ticket(sample(clock))

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=emulator.transport(), base_url=BASE) as client:
            anonymous = await client.get(f"/rest/api/3/issue/{tid}")
            bearer = {"authorization": f"Bearer {fixtures.OAUTH_TOKEN}"}
            rest = [await client.get(f"/rest/api/3/issue/{tid}", headers=bearer) for _ in range(3)]
            return [anonymous, *rest]

    anonymous, first, _, limited = asyncio.run(go())
    assert anonymous.status_code == 401
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    datetime.strptime(first.headers["x-ratelimit-reset"], "%Y-%m-%dT%H:%MZ")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0


def test_webhooks_are_signed_like_jira_and_subscriptions_fire() -> None:
    clock = FakeClock()
    emulator = JiraEmulator(clock=clock)
    tid = emulator.add_ticket(sample(clock))
    headers, body = emulator.make_webhook(tid, EventKind.UPDATED, "s3cret")
    digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature"] == f"sha256={digest}"
    payload = json.loads(body)
    assert payload["webhookEvent"] == "jira:issue_updated"
    assert payload["issue"]["id"] == tid
    assert payload["timestamp"] == int(clock.now().timestamp() * 1000)
    emulator.subscribe("https://tw.example/webhooks/jira", "s3cret")
    emulator.customer_reply(tid, "Still broken.")
    events = [event for _, _, event, _ in emulator.outbox]
    assert "comment_created" in events and "jira:issue_updated" in events

    config, secrets = JiraConnector.conformance_config(BASE)
    connector = JiraConnector(
        config, secrets.model_copy(update={"webhook_secret": SecretStr("s3cret")})
    )
    seen: list[bytes] = []

    def receive(request: httpx.Request) -> httpx.Response:
        connector.accept_webhook(dict(request.headers), request.content, clock.now())
        seen.append(request.content)
        return httpx.Response(202)

    responses = asyncio.run(emulator.deliver_webhooks(httpx.MockTransport(receive)))
    assert [r.status_code for r in responses] == [202] * len(events) and len(seen) == len(events)
    asyncio.run(connector.aclose())


def test_customer_reply_moves_waiting_requests_back_to_support() -> None:
    clock = FakeClock()
    emulator = JiraEmulator(clock=clock)
    tid = emulator.add_ticket(sample(clock, status=Status.WAITING_ON_CUSTOMER))
    clock.advance(60)
    emulator.customer_reply(tid, "Here are the logs.")
    issue = emulator.issues[int(tid)]
    assert issue.status == "10001"
    assert issue.comments[-1]["author"]["accountType"] == "customer"
    assert issue.updated >= clock.now() - timedelta(seconds=1)
