"""Deliberately broken ToyDesk connectors: each must fail exactly the standard test(s) that
exist to catch its bug, and pass all the others."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from ticketwarden.core.actions import AddComment
from ticketwarden.core.connector import (
    ActionResult,
    ChangePage,
    Runtime,
    WebhookEvent,
    WebhookRejected,
    hmac_sha256,
    signatures_match,
)
from ticketwarden.core.errors import OutcomeUnknownError
from ticketwarden.core.model import EventKind, Ticket

from .toydesk import ToyConnector, ToyEmulator


class ResendsTimedOutComments(ToyConnector):
    """Retries a comment whose request timed out without checking whether it landed."""

    async def apply_comment(self, ticket: Ticket, action: AddComment) -> ActionResult:
        body = {"body": action.body, "public": action.public, "marker": uuid.uuid4().hex}
        for _ in range(3):
            try:
                created = await self.client.send_json(
                    "POST", f"/api/tickets/{ticket.id}/comments", body
                )
                return self.result(action, created_id=created["comment"]["id"])
            except OutcomeUnknownError:
                continue
        raise AssertionError("unreachable in the tests")


class _ImpatientTransport(httpx.AsyncBaseTransport):
    """Re-sends a rate-limited request at once, as a naive hand-written retry would."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if response.status_code == 429:
            await response.aclose()
            response = await self.inner.handle_async_request(request)
        return response


class IgnoresRetryAfter(ToyConnector):
    """Sends the next request right after a 429, before Retry-After has elapsed."""

    def __init__(self, config: Any, secrets: Any = None, runtime: Runtime | None = None) -> None:
        runtime = runtime or Runtime()
        assert runtime.transport is not None
        patched = Runtime(
            transport=_ImpatientTransport(runtime.transport),
            clock=runtime.clock,
            sleep=runtime.sleep,
            wall_clock=runtime.wall_clock,
        )
        super().__init__(config, secrets, patched)


class LosesTicketsAtCursorBoundary(ToyConnector):
    """Keeps only the last update time as its cursor and asks for strictly later changes, so
    tickets sharing that time on the next page are lost."""

    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        params = {"since": cursor or "0", "limit": str(ToyEmulator.page_size)}
        body = await self.client.get_json("/api/changes", params=params)
        tickets = tuple(self._ticket(r) for r in body["tickets"])
        last = str(body["tickets"][-1]["updated"]) if body["tickets"] else params["since"]
        return ChangePage(tickets=tickets, cursor=last, has_more=body["more"])


class AcceptsTamperedWebhooks(ToyConnector):
    """Signs only the timestamp it checks, not the body: a tampered body goes through."""

    def parse_webhook(self, headers: Any, body: bytes, now: datetime) -> list[WebhookEvent]:
        signature = headers.get("x-toy-signature")
        stamp = headers.get("x-toy-timestamp")
        if not signature or not stamp:
            raise WebhookRejected("unsigned")
        assert self.secrets.webhook_secret is not None
        expected = hmac_sha256(self.secrets.webhook_secret, stamp.encode(), b".", body).hex()
        data = json.loads(body)
        if not signatures_match(expected, signature) and data.get("ticket_id") is None:
            raise WebhookRejected("bad_signature")
        sent = datetime.fromtimestamp(int(stamp), UTC)
        if abs((now - sent).total_seconds()) > 300:
            raise WebhookRejected("expired")
        return [
            WebhookEvent(
                delivery_id=headers.get("x-toy-delivery", stamp),
                ticket_id=str(data["ticket_id"]),
                kind=EventKind(data["event"]),
                at=sent,
            )
        ]
