"""ToyDesk: a minimal helpdesk connector and emulator, built only on the public SDK.

It exists to test the connector kit itself: the conformance suite runs against it (and must
pass), and the broken variants in ``toydesk_broken.py`` must fail exactly the standard tests
that should catch them. Its API is deliberately small but has every hard part of a real one:
a change feed whose tickets share timestamps, non-idempotent comment creation, closed tickets
that refuse updates, custom fields, and HMAC-signed webhooks with a timestamp.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticketwarden.core.actions import (
    AddComment,
    AddTags,
    BaseAction,
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
from ticketwarden.core.connector import (
    ActionResult,
    CandidateQuery,
    ChangePage,
    Connector,
    DeskConfig,
    DeskSecrets,
    Outcome,
    WebhookEvent,
    WebhookRejected,
    check_timestamp,
    hmac_sha256,
    signatures_match,
)
from ticketwarden.core.http import BearerToken, create_once, paginate_pages
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
from ticketwarden.testing.emulator import Emulator, epoch

STATUSES = {
    "new": Status.NEW,
    "open": Status.OPEN,
    "pending": Status.WAITING_ON_CUSTOMER,
    "hold": Status.ON_HOLD,
    "solved": Status.RESOLVED,
    "closed": Status.CLOSED,
}
CUSTOM_IDS = {"server_url": "f_server", "version": "f_version", "module": "f_module"}
"""The emulator's custom field ids for canonical fields (the conformance configuration maps
them the same way, as an administrator would after creating the fields)."""
TOKEN = "toy-secret-token"
WEBHOOK_SECRET = "toy-webhook-secret"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# --- the emulator -------------------------------------------------------------------------------


class ToyEmulator(Emulator):
    """The ToyDesk API: tickets, a change feed, search, comments, updates, webhooks."""

    name = "toydesk"
    page_size = 5

    def __init__(self, **kwargs: Any) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.next_id = 100
        super().__init__(**kwargs)

    def routes(self) -> list[Route]:
        return [
            Route("/api/changes", self.get_changes),
            Route("/api/search", self.get_search),
            Route("/api/tickets", self.post_ticket, methods=["POST"]),
            Route("/api/tickets", self.find_tickets, methods=["GET"]),
            Route("/api/tickets/{id}", self.get_ticket, methods=["GET"]),
            Route("/api/tickets/{id}", self.patch_ticket, methods=["PATCH"]),
            Route("/api/tickets/{id}/comments", self.get_comments, methods=["GET"]),
            Route("/api/tickets/{id}/comments", self.post_comment, methods=["POST"]),
        ]

    def authenticate(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    # seeding and inspection (the conformance suite's hooks) -----------------------------------

    def add_ticket(self, ticket: Ticket) -> str:
        self.next_id += 1
        tid = str(self.next_id)
        status = next(k for k, v in STATUSES.items() if v == ticket.status)
        self.tickets[tid] = {
            "id": tid,
            "subject": ticket.subject,
            "description": ticket.description,
            "status": status,
            "severity": int(ticket.severity) if ticket.severity else None,
            "priority": ticket.priority.value if ticket.priority else None,
            "tags": sorted(ticket.tags),
            "custom": {CUSTOM_IDS[k]: v for k, v in ticket.fields.items() if k in CUSTOM_IDS},
            "group": ticket.group,
            "assignee": ticket.assignee,
            "requester": {"id": ticket.requester.id, "email": ticket.requester.email},
            "org": ticket.organization.id if ticket.organization else None,
            "created": _ms(ticket.created_at),
            "updated": _ms(ticket.updated_at),
            "resolution": ticket.resolution_reason,
            "follow_up_of": ticket.follow_up_of,
            "comments": [],
        }
        return tid

    def customer_reply(self, ticket_id: str, body: str) -> None:
        record = self.tickets[ticket_id]
        record["comments"].append(self._comment(body, True, "customer"))
        record["updated"] = self.now_ms()

    def add_unknown_field(self, ticket_id: str) -> None:
        self.tickets[ticket_id]["custom"]["f_unknown_9981"] = "something new"

    def make_webhook(
        self,
        ticket_id: str,
        kind: EventKind,
        secret: str,
        *,
        delivery_id: str | None = None,
        at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        sent = at or datetime.fromtimestamp(self.clock.time(), UTC)
        body = json.dumps(
            {"event": kind.value, "ticket_id": ticket_id, "at": sent.isoformat()}
        ).encode()
        stamp = str(epoch(sent))
        signature = hmac_sha256(SecretStr(secret), stamp.encode(), b".", body).hex()
        headers = {
            "content-type": "application/json",
            "x-toy-delivery": delivery_id or uuid.uuid4().hex,
            "x-toy-timestamp": stamp,
            "x-toy-signature": signature,
        }
        return headers, body

    def _comment(self, body: str, public: bool, role: str, marker: str = "") -> dict[str, Any]:
        self.next_id += 1
        return {
            "id": str(self.next_id),
            "body": body,
            "public": public,
            "role": role,
            "marker": marker,
            "created": self.now_ms(),
        }

    def _find(self, request: Request) -> dict[str, Any] | None:
        return self.tickets.get(request.path_params["id"])

    # routes ------------------------------------------------------------------------------------

    async def get_ticket(self, request: Request) -> Response:
        record = self._find(request)
        if record is None:
            return self.json({"error": "not found"}, 404)
        return self.json({"ticket": record})

    async def get_comments(self, request: Request) -> Response:
        record = self._find(request)
        if record is None:
            return self.json({"error": "not found"}, 404)
        return self.json({"comments": record["comments"]})

    async def post_comment(self, request: Request) -> Response:
        record = self._find(request)
        if record is None:
            return self.json({"error": "not found"}, 404)
        if record["status"] == "closed":
            return self.json({"error": "closed tickets cannot be changed"}, 422)
        data = json.loads(await request.body())
        comment = self._comment(
            data["body"], data.get("public", True), "agent", data.get("marker", "")
        )
        record["comments"].append(comment)
        record["updated"] = self.now_ms()
        return self.json({"comment": comment}, 201)

    async def patch_ticket(self, request: Request) -> Response:
        record = self._find(request)
        if record is None:
            return self.json({"error": "not found"}, 404)
        if record["status"] == "closed":
            return self.json({"error": "closed tickets cannot be changed"}, 422)
        data = json.loads(await request.body())
        for key in ("status", "severity", "priority", "group", "assignee", "resolution"):
            if key in data:
                record[key] = data[key]
        tags = set(record["tags"]) | set(data.get("tags_add", ()))
        record["tags"] = sorted(tags - set(data.get("tags_remove", ())))
        record["custom"].update(data.get("custom", {}))
        record["updated"] = self.now_ms()
        return self.json({"ticket": record})

    async def post_ticket(self, request: Request) -> Response:
        data = json.loads(await request.body())
        now = _at(self.now_ms())
        ticket = Ticket(
            id="0",
            number="0",
            subject=data["subject"],
            description=data["body"],
            requester=Contact(id=data["requester"]["id"], email=data["requester"]["email"]),
            created_at=now,
            updated_at=now,
            follow_up_of=data.get("follow_up_of"),
        )
        tid = self.add_ticket(ticket)
        self.tickets[tid]["marker"] = data.get("marker", "")
        return self.json({"ticket": self.tickets[tid]}, 201)

    async def find_tickets(self, request: Request) -> Response:
        marker = request.query_params.get("marker", "")
        found = [r for r in self.tickets.values() if marker and r.get("marker") == marker]
        return self.json({"tickets": found})

    def _ordered(self) -> list[dict[str, Any]]:
        return sorted(self.tickets.values(), key=lambda r: (r["updated"], int(r["id"])))

    async def get_changes(self, request: Request) -> Response:
        since = int(request.query_params.get("since", "0"))
        after_id = request.query_params.get("after_id")
        limit = min(int(request.query_params.get("limit", str(self.page_size))), self.page_size)
        if after_id is None:
            rows = [r for r in self._ordered() if r["updated"] > since]
        else:
            rows = [
                r for r in self._ordered() if (r["updated"], int(r["id"])) > (since, int(after_id))
            ]
        page = rows[:limit]
        return self.json({"tickets": page, "more": len(rows) > limit})

    async def get_search(self, request: Request) -> Response:
        statuses = set(request.query_params.get("status", "").split(","))
        before = request.query_params.get("updated_before")
        after = request.query_params.get("updated_after")
        rows = [
            r
            for r in self._ordered()
            if r["status"] in statuses
            and (before is None or r["updated"] < int(before))
            and (after is None or r["updated"] > int(after))
        ]
        page = int(request.query_params.get("page", "1"))
        per_page = int(request.query_params.get("per_page", str(self.page_size)))
        return self.json({"tickets": rows[(page - 1) * per_page : page * per_page]})


# --- the connector ------------------------------------------------------------------------------


class ToyConnector(Connector):
    """The ToyDesk connector: every capability, through the shared client only."""

    name: ClassVar[str] = "toydesk"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            "read",
            "changes",
            "candidates",
            "webhooks",
            "comment",
            "set_status",
            "set_severity",
            "set_priority",
            "add_tags",
            "remove_tags",
            "set_field",
            "escalate",
            "resolve",
            "close",
            "create_follow_up",
        }
    )

    @classmethod
    def emulator(cls) -> type[Emulator]:
        return ToyEmulator

    @classmethod
    def conformance_config(cls, base_url: str) -> tuple[DeskConfig, DeskSecrets]:
        """The configuration and secrets the conformance suite uses against the emulator."""
        config = DeskConfig(
            name="toy",
            connector=cls.name,
            base_url=base_url,
            fields={name: f"custom:{ident}" for name, ident in CUSTOM_IDS.items()},
            escalation={
                "support-leads": {"group": "leads"},
                "support-management": {"group": "management"},
                "support-on-call": {"assignee": "on-call"},
            },
        )
        secrets = DeskSecrets(
            credentials=BearerToken(token=SecretStr(TOKEN)),
            webhook_secret=SecretStr(WEBHOOK_SECRET),
        )
        return config, secrets

    # reading -----------------------------------------------------------------------------------

    def _status(self, value: str) -> Status:
        configured = {k: v for k, v in self.config.statuses.items()}
        return configured.get(value) or STATUSES[value]

    def _ticket(self, record: dict[str, Any]) -> Ticket:
        fields = {}
        for canonical, source in self.config.fields.items():
            if source.kind == "custom" and record["custom"].get(source.id) is not None:
                fields[canonical] = str(record["custom"][source.id])
        comments = tuple(
            Comment(
                id=c["id"],
                author_role=AuthorRole.CUSTOMER if c["role"] == "customer" else AuthorRole.AGENT,
                body=c["body"],
                public=c["public"],
                created_at=_at(c["created"]),
            )
            for c in record.get("comments", ())
        )
        return Ticket(
            id=record["id"],
            number=f"#{record['id']}",
            desk=self.config.name,
            subject=record["subject"],
            description=record["description"],
            status=self._status(record["status"]),
            severity=Severity(record["severity"]) if record.get("severity") else None,
            priority=Priority(record["priority"]) if record.get("priority") else None,
            requester=Contact(id=record["requester"]["id"], email=record["requester"]["email"]),
            organization=Organization(id=record["org"]) if record.get("org") else None,
            fields=fields,
            tags=frozenset(record["tags"]),
            comments=comments,
            group=record.get("group"),
            assignee=record.get("assignee"),
            created_at=_at(record["created"]),
            updated_at=_at(record["updated"]),
            resolution_reason=record.get("resolution"),
            follow_up_of=record.get("follow_up_of"),
        )

    async def read_ticket(self, ticket_id: str) -> Ticket:
        body = await self.client.get_json(f"/api/tickets/{ticket_id}")
        return self._ticket(body["ticket"])

    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        params: dict[str, str] = {"limit": str(ToyEmulator.page_size)}
        if cursor:
            stamp, _, after_id = cursor.partition(":")
            params["since"] = stamp
            params["after_id"] = after_id
        else:
            params["since"] = str(_ms(since) if since else 0)
            params["after_id"] = "0"
        body = await self.client.get_json("/api/changes", params=params)
        tickets = tuple(self._ticket(r) for r in body["tickets"])
        if body["tickets"]:
            last = body["tickets"][-1]
            cursor = f"{last['updated']}:{last['id']}"
        return ChangePage(
            tickets=tickets,
            cursor=cursor or f"{params['since']}:{params['after_id']}",
            has_more=body["more"],
        )

    async def candidates(self, query: CandidateQuery) -> AsyncIterator[Ticket]:
        statuses = [k for k, v in STATUSES.items() if v in query.statuses]
        params = {"status": ",".join(sorted(statuses))}
        if query.updated_before:
            params["updated_before"] = str(_ms(query.updated_before))
        if query.updated_after:
            params["updated_after"] = str(_ms(query.updated_after))
        async for record in paginate_pages(
            self.client,
            "/api/search",
            params=params,
            items=lambda body: list(body["tickets"]),
            per_page=ToyEmulator.page_size,
        ):
            yield self._ticket(record)

    # writing -----------------------------------------------------------------------------------

    async def _patch(
        self, ticket: Ticket, action: BaseAction, body: dict[str, Any]
    ) -> ActionResult:
        await self.client.send_json("PATCH", f"/api/tickets/{ticket.id}", body)
        return self.result(action)

    async def apply_comment(self, ticket: Ticket, action: AddComment) -> ActionResult:
        marker = f"tw:{action.key}" if action.key else uuid.uuid4().hex

        async def send() -> dict[str, Any]:
            body = {"body": action.body, "public": action.public, "marker": marker}
            result: dict[str, Any] = await self.client.send_json(
                "POST", f"/api/tickets/{ticket.id}/comments", body
            )
            return result["comment"]

        async def find() -> dict[str, Any] | None:
            body = await self.client.get_json(f"/api/tickets/{ticket.id}/comments")
            return next((c for c in body["comments"] if c["marker"] == marker), None)

        comment = await create_once(send, find)
        return self.result(action, created_id=comment["id"])

    async def apply_set_status(self, ticket: Ticket, action: SetStatus) -> ActionResult:
        value = next(k for k, v in STATUSES.items() if v == action.status)
        return await self._patch(ticket, action, {"status": value})

    async def apply_set_severity(self, ticket: Ticket, action: SetSeverity) -> ActionResult:
        return await self._patch(ticket, action, {"severity": int(action.severity)})

    async def apply_set_priority(self, ticket: Ticket, action: SetPriority) -> ActionResult:
        return await self._patch(ticket, action, {"priority": action.priority.value})

    async def apply_add_tags(self, ticket: Ticket, action: AddTags) -> ActionResult:
        return await self._patch(ticket, action, {"tags_add": sorted(action.tags)})

    async def apply_remove_tags(self, ticket: Ticket, action: RemoveTags) -> ActionResult:
        return await self._patch(ticket, action, {"tags_remove": sorted(action.tags)})

    async def apply_set_field(self, ticket: Ticket, action: SetField) -> ActionResult:
        source = self.config.field_source(action.field)
        if source is None or source.kind != "custom":
            return self.result(
                action, Outcome.UNSUPPORTED, detail=f"field {action.field!r} is not mapped"
            )
        return await self._patch(ticket, action, {"custom": {source.id: action.value}})

    async def apply_escalate(self, ticket: Ticket, action: Escalate) -> ActionResult:
        target = self.config.escalation.get(action.target)
        if target is None:
            return self.result(
                action, Outcome.FAILED, detail=f"escalation target {action.target!r} is not mapped"
            )
        body = {"group": target.group, "assignee": target.assignee}
        return await self._patch(ticket, action, {k: v for k, v in body.items() if v})

    async def apply_resolve(self, ticket: Ticket, action: Resolve) -> ActionResult:
        body = {
            "status": "solved",
            "resolution": action.resolution,
            "tags_add": [f"{self.config.resolution_tag_prefix}{action.resolution}"],
        }
        return await self._patch(ticket, action, body)

    async def apply_close(self, ticket: Ticket, action: Close) -> ActionResult:
        return await self._patch(ticket, action, {"status": "closed"})

    async def apply_create_follow_up(self, ticket: Ticket, action: CreateFollowUp) -> ActionResult:
        marker = f"tw:{action.key}" if action.key else uuid.uuid4().hex
        body = {
            "subject": action.subject,
            "body": action.body,
            "requester": {"id": ticket.requester.id, "email": ticket.requester.email},
            "follow_up_of": ticket.id,
            "marker": marker,
        }

        async def send() -> dict[str, Any]:
            created: dict[str, Any] = await self.client.send_json("POST", "/api/tickets", body)
            return created["ticket"]

        async def find() -> dict[str, Any] | None:
            found = await self.client.get_json("/api/tickets", params={"marker": marker})
            return next(iter(found["tickets"]), None)

        record = await create_once(send, find)
        return self.result(action, created_id=record["id"])

    # webhooks ----------------------------------------------------------------------------------

    def parse_webhook(self, headers: Any, body: bytes, now: datetime) -> list[WebhookEvent]:
        signature = headers.get("x-toy-signature")
        stamp = headers.get("x-toy-timestamp")
        delivery = headers.get("x-toy-delivery")
        if not signature or not stamp:
            raise WebhookRejected("unsigned", "x-toy-signature or x-toy-timestamp missing")
        expected = hmac_sha256(self.webhook_secret, stamp.encode(), b".", body).hex()
        if not signatures_match(expected, signature):
            raise WebhookRejected("bad_signature")
        try:
            sent = datetime.fromtimestamp(int(stamp), UTC)
            data = json.loads(body)
            kind = EventKind(data["event"])
            ticket_id = str(data["ticket_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected("malformed", str(exc)) from None
        check_timestamp(sent, now, self.replay_window)
        return [
            WebhookEvent(
                delivery_id=delivery or f"{ticket_id}:{stamp}",
                ticket_id=ticket_id,
                kind=kind,
                at=sent,
            )
        ]
