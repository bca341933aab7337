"""The webhook sidecar in-process: the ASGI app through httpx's ASGI transport, the Zendesk
emulator behind the connectors, a real store (SQLite and PostgreSQL), an injected clock."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import httpx
import pytest

from ticketwarden.core import logs
from ticketwarden.core.connector import Runtime
from ticketwarden.core.engine import Engine
from ticketwarden.core.inbox import Delivery, Inbox, body_hash
from ticketwarden.core.model import Contact, EventKind, Organization, Severity, Status, Ticket
from ticketwarden.core.policy import default_policy
from ticketwarden.core.registry import load_plugins
from ticketwarden.core.settings import Config, ServeSettings
from ticketwarden.core.sidecar import Sidecar, build
from ticketwarden.core.store import Store
from ticketwarden.plugins.zendesk import fixtures
from ticketwarden.plugins.zendesk.connector import ZendeskConnector
from ticketwarden.plugins.zendesk.emulator import ZendeskEmulator
from ticketwarden.testing.emulator import FakeClock, Fault

pytestmark = pytest.mark.anyio

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin
SECRET = fixtures.WEBHOOK_SECRET


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Rig:
    """A Zendesk emulator, a store, the engine and the sidecar app, on one fake clock."""

    def __init__(self, db_url: str, *, max_body_bytes: int = 100_000, **serve: Any) -> None:
        self.clock = FakeClock(START)
        self.emulator = ZendeskEmulator(clock=self.clock)
        self.emulator.add_user("anna@acme.example", "Anna", organization="acme", authorized=True)
        desk, self.secrets = ZendeskConnector.conformance_config(self.emulator.base_url)
        webhooks = desk.webhooks.model_copy(update={"max_body_bytes": max_body_bytes})
        self.desk = desk.model_copy(update={"webhooks": webhooks})
        self.name = self.desk.name
        settings = {"retry_base": "10s", "retry_cap": "1m", "max_attempts": 8, **serve}
        self.config = Config(desks={self.name: self.desk}, serve=ServeSettings(**settings))
        self.store = Store(db_url)
        self.engine = Engine(load_plugins(allow=None, block=()), default_policy())
        self.sidecar: Sidecar = build(
            self.config,
            self.store,
            self.engine,
            {"zendesk": ZendeskConnector},
            {self.name: self.secrets},
            transport=lambda desk: self.emulator.transport(),
            runtime=Runtime(
                clock=self.clock.monotonic, sleep=self.clock.sleep, wall_clock=self.clock.time
            ),
            clock=self.clock.now,
            run_worker=False,
        )
        assert self.sidecar.worker is not None
        self.worker = self.sidecar.worker
        self.inbox = self.sidecar.inbox
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.sidecar.app), base_url="http://sidecar"
        )

    def add(self, **overrides: Any) -> str:
        now = self.clock.now()
        data: dict[str, Any] = {
            "id": "new",
            "number": "new",
            "subject": "Dashboard totals differ",
            "description": "120 vs 118. Expected: equal.",
            "status": Status.NEW,
            "severity": Severity.MEDIUM,
            "requester": Contact(id="u1", email="anna@acme.example"),
            "organization": Organization(id="acme"),
            "fields": {},
            "created_at": now,
            "updated_at": now,
        }
        data.update(overrides)
        return self.emulator.add_ticket(Ticket(**data))

    def signed(
        self, ticket_id: str, kind: EventKind = EventKind.UPDATED, **kw: Any
    ) -> tuple[dict[str, str], bytes]:
        return self.emulator.make_webhook(ticket_id, kind, SECRET, **kw)

    async def post(
        self, headers: dict[str, str], body: bytes, desk: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/webhooks/{desk or self.name}", content=body, headers=headers
        )

    async def deliver(self, ticket_id: str, kind: EventKind = EventKind.UPDATED) -> httpx.Response:
        return await self.post(*self.signed(ticket_id, kind))

    def ours(self, ticket_id: str) -> list[str]:
        """ticketwarden's comments on a ticket, as the emulator has them."""
        ticket = self.emulator.tickets[int(ticket_id)]
        return [c["body"] for c in ticket.comments if c["author_id"] == fixtures.AGENT_ID]

    def status(self, ticket_id: str) -> str:
        return self.emulator.tickets[int(ticket_id)].status

    def writes(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.emulator.requests if r.method != "GET"]

    async def metrics(self) -> str:
        return (await self.client.get("/metrics")).text


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    made = Rig(db_url)
    yield made
    await made.client.aclose()
    await made.worker.aclose()
    made.store.close()


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    return 0.0


# --- receiving and applying ----------------------------------------------------------------------


async def test_a_signed_webhook_is_stored_then_the_policy_applied(rig: Rig) -> None:
    tid = rig.add()  # no version, server URL, ...: INTAKE-2 holds it and says what is missing
    response = await rig.deliver(tid, EventKind.CREATED)
    assert response.status_code == 202, response.text
    assert response.json() == {"stored": 1, "duplicates": 0}
    assert response.headers["x-request-id"]
    (row,) = rig.inbox.rows()
    assert (row.status, row.ticket_id, row.kind) == ("pending", tid, "created")
    assert rig.writes() == []  # 202 means stored, not yet applied

    assert await rig.worker.drain() == 1
    assert rig.status(tid) == "pending"
    (comment,) = rig.ours(tid)
    assert "version" in comment
    assert rig.inbox.rows()[0].status == "done"
    assert {r.rule_id for r in rig.store.audit()} >= {"INTAKE-2"}
    text = await rig.metrics()
    assert metric(text, "ticketwarden_webhooks_received_total", desk=rig.name) == 1
    assert metric(text, "ticketwarden_events_processed_total", desk=rig.name) == 1
    assert metric(text, "ticketwarden_inbox_depth", status="pending") == 0
    assert (
        metric(
            text, "ticketwarden_actions_total", desk=rig.name, rule="INTAKE-2", outcome="applied"
        )
        >= 1
    )
    assert (
        metric(text, "ticketwarden_helpdesk_request_seconds_count", desk=rig.name, status="2xx")
        >= 2
    )


async def test_a_redelivery_is_accepted_and_stored_once(rig: Rig) -> None:
    tid = rig.add()
    headers, body = rig.signed(tid, EventKind.CREATED, delivery_id="01HREDELIVERED0000000000AA")
    first = await rig.post(headers, body)
    again = await rig.post(headers, body)  # the helpdesk did not see our 202 and retries
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == {"stored": 0, "duplicates": 1}
    assert len(rig.inbox.rows()) == 1
    await rig.worker.drain()
    assert len(rig.ours(tid)) == 1
    # and once carried out, a third copy changes nothing either
    assert (await rig.post(headers, body)).status_code == 202
    assert await rig.worker.drain() == 0
    assert len(rig.ours(tid)) == 1


async def test_events_of_one_ticket_are_carried_out_together_and_in_order(rig: Rig) -> None:
    first, second = rig.add(), rig.add()
    for tid in (first, second, first, first):
        assert (await rig.deliver(tid)).status_code == 202
    claim = rig.inbox.claim("host:1:test", rig.clock.now())
    assert claim is not None and claim.ticket_id == first
    assert [r.id for r in claim.rows] == sorted(r.id for r in claim.rows)
    assert len(claim.rows) == 3
    # the other ticket is free for another worker; the claimed one is not handed out twice
    other = rig.inbox.claim("host:2:test", rig.clock.now())
    assert other is not None and other.ticket_id == second
    assert rig.inbox.claim("host:3:test", rig.clock.now()) is None


# --- rejections: 4xx, nothing stored, nothing processed -------------------------------------------


def _bad_signature(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    headers, body = rig.signed(tid)
    headers["X-Zendesk-Webhook-Signature"] = "A" * 44
    return headers, body, None


def _wrong_secret(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    headers, body = rig.emulator.make_webhook(tid, EventKind.UPDATED, "not-the-secret-at-all")
    return headers, body, None


def _unsigned(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    headers, body = rig.signed(tid)
    del headers["X-Zendesk-Webhook-Signature"]
    return headers, body, None


def _expired(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    headers, body = rig.signed(tid, at=rig.clock.now() - timedelta(hours=1))
    return headers, body, None


def _tampered(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    headers, body = rig.signed(tid)
    return headers, body.replace(b'"updated"', b'"created"'), None


def _malformed(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    # signed correctly, but not a JSON object the connector can read
    import base64

    from pydantic import SecretStr

    from ticketwarden.core.connector import hmac_sha256

    headers, _ = rig.signed(tid)
    body = b'{"ticket_id": '
    stamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
    digest = hmac_sha256(SecretStr(SECRET), stamp.encode(), body)
    headers["X-Zendesk-Webhook-Signature"] = base64.b64encode(digest).decode()
    return headers, body, None


def _oversize(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    headers, body = rig.signed(tid)
    return headers, body + b" " * 200_000, None


def _not_json(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    headers, body = rig.signed(tid)
    headers["content-type"] = "text/plain"
    return headers, body, None


def _unknown_desk(rig: Rig, tid: str) -> tuple[dict[str, str], bytes, str | None]:
    headers, body = rig.signed(tid)
    return headers, body, "elsewhere"


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        (_bad_signature, 401, "bad_signature"),
        (_wrong_secret, 401, "bad_signature"),
        (_unsigned, 401, None),
        (_expired, 401, "expired"),
        (_tampered, 401, "bad_signature"),
        (_malformed, 400, "malformed"),
        (_oversize, 413, "too_large"),
        (_not_json, 415, "unsupported_media_type"),
        (_unknown_desk, 404, "unknown_desk"),
    ],
)
async def test_bad_deliveries_are_refused_and_nothing_is_stored(
    rig: Rig, make: Any, status: int, reason: str | None
) -> None:
    tid = rig.add()
    headers, body, desk = make(rig, tid)
    response = await rig.post(headers, body, desk)
    assert response.status_code == status, response.text
    if reason is not None:
        assert response.json()["error"] == reason
    assert rig.inbox.rows() == []
    assert await rig.worker.drain() == 0
    assert rig.writes() == []
    text = await rig.metrics()
    assert metric(text, "ticketwarden_webhooks_received_total", desk=rig.name) == 0
    if reason is not None:
        label = "-" if reason == "unknown_desk" else rig.name
        assert metric(text, "ticketwarden_webhooks_rejected_total", desk=label, reason=reason) == 1


async def test_a_reused_delivery_id_with_another_body_is_refused_as_a_replay(rig: Rig) -> None:
    first, second = rig.add(), rig.add()
    delivery = "01HREPLAYED00000000000000A"
    assert (await rig.post(*rig.signed(first, delivery_id=delivery))).status_code == 202
    replay = await rig.post(*rig.signed(second, delivery_id=delivery))
    assert replay.status_code == 409
    assert replay.json()["error"] == "replayed"
    assert [r.ticket_id for r in rig.inbox.rows()] == [first]
    await rig.worker.drain()
    assert rig.ours(second) == []


async def test_a_body_larger_than_its_content_length_claims_is_cut_off(rig: Rig) -> None:
    tid = rig.add()
    headers, body = rig.signed(tid)

    async def stream() -> AsyncIterator[bytes]:
        yield body
        for _ in range(30):
            yield b" " * 10_000

    response = await rig.client.post(f"/webhooks/{rig.name}", content=stream(), headers=headers)
    assert response.status_code == 413
    assert rig.inbox.rows() == []


# --- the helpdesk failing while events arrive ----------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="status", status=503),
        Fault(kind="rate_limit", retry_after=30),
        Fault(kind="timeout"),
        Fault(kind="timeout", when="after", method="WRITE"),
    ],
    ids=["5xx", "429", "timeout", "write-lost"],
)
async def test_a_failing_helpdesk_loses_nothing_and_catches_up_once_it_recovers(
    rig: Rig, fault: Fault
) -> None:
    tid = rig.add()
    rig.emulator.script(*([fault] * 12))  # more than the HTTP client's own retries
    assert (await rig.deliver(tid, EventKind.CREATED)).status_code == 202
    for _ in range(8):  # each attempt fails until the faults are spent, then it lands
        await rig.worker.drain()
        row = rig.inbox.rows()[0]
        if row.status == "done":
            break
        assert row.status == "pending" and row.last_error
        rig.clock.advance(120)  # past the backoff
    assert rig.inbox.rows()[0].status == "done"
    assert len(rig.ours(tid)) == 1  # exactly once, however many attempts it took
    assert rig.status(tid) == "pending"
    # and the ledger knows it: nothing is left pending to be mistaken for ours later
    assert rig.store.pending_kinds(rig.name, tid) == set()


async def test_a_crash_after_the_writes_landed_is_finished_without_repeating_them(
    rig: Rig,
) -> None:
    """The process dies after the helpdesk took the writes, before their outcome is recorded
    (as a SIGKILL would): the retry finishes the plan the ledger kept — comments found on the
    ticket are not said again — and leaves no entry pending."""
    tid = rig.add(severity=Severity.CRITICAL)
    desk = await rig.worker._desk(rig.name)
    real_apply = desk.connector.apply

    class Crash(Exception):
        pass

    async def apply_then_die(ticket: Ticket, actions: Any) -> Any:
        await real_apply(ticket, actions)
        raise Crash("killed after the requests landed")

    desk.connector.apply = apply_then_die  # type: ignore[method-assign]
    await rig.deliver(tid, EventKind.CREATED)
    await rig.worker.drain()
    assert rig.inbox.rows()[0].status == "pending"
    assert "set_priority" in rig.store.pending_kinds(rig.name, tid)
    pending_plan, unreadable = rig.store.pending_actions(rig.name, tid)
    assert {a.kind for a in pending_plan} >= {"comment", "set_priority"} and not unreadable
    writes = rig.writes()
    comments = rig.ours(tid)

    desk.connector.apply = real_apply  # type: ignore[method-assign]
    rig.clock.advance(60)
    await rig.worker.drain()
    assert rig.inbox.rows()[0].status == "done"
    assert rig.ours(tid) == comments  # nothing said twice
    # at most an idempotent field set is repeated (the escalation's group: nothing in the
    # ticket model says it landed), never a comment
    again = [r.json() for r in rig.emulator.requests if r.method != "GET"][len(writes) :]
    assert all("comment" not in body["ticket"] for body in again), again
    assert rig.store.pending_kinds(rig.name, tid) == set()
    # the interrupted plan was finished as planned: every action of it has its outcome, the
    # comments found on the ticket, the field sets sent once more
    ledger = rig.store.ledger(a.key for a in pending_plan)
    assert {e.status for e in ledger.values()} == {"applied"}
    assert {e.detail for e in ledger.values() if e.kind == "comment"} == {
        "found applied after an interrupted run"
    }


async def test_events_that_keep_failing_are_dead_lettered_and_can_be_retried(db_url: str) -> None:
    rig = Rig(db_url, max_attempts=3)
    tid = rig.add()
    rig.emulator.chaos(1.0, Fault(kind="status", status=500))
    assert (await rig.deliver(tid, EventKind.CREATED)).status_code == 202
    for _ in range(3):  # max_attempts = 3
        await rig.worker.drain()
        rig.clock.advance(120)
    (row,) = rig.inbox.rows()
    assert (row.status, row.attempts) == ("dead", 3)
    assert "500" in (row.last_error or "")
    text = await rig.metrics()
    assert metric(text, "ticketwarden_inbox_depth", status="dead") == 1
    assert metric(text, "ticketwarden_events_dead_lettered_total", desk=rig.name) == 1
    assert await rig.worker.drain() == 0  # a dead event is not tried again by itself
    rig.emulator.chaos(0.0)  # the helpdesk is healthy again
    assert rig.inbox.retry(None, rig.clock.now()) == 1
    assert await rig.worker.drain() == 1
    assert rig.inbox.rows()[0].status == "done"
    assert len(rig.ours(tid)) == 1
    await rig.client.aclose()
    rig.store.close()


async def test_an_event_waiting_for_its_retry_holds_back_later_events_of_its_ticket(
    rig: Rig,
) -> None:
    tid = rig.add()
    rig.emulator.chaos(1.0, Fault(kind="status", status=503))
    await rig.deliver(tid, EventKind.CREATED)
    await rig.worker.drain()  # fails; retried in 8-10 s
    rig.emulator.chaos(0.0)
    await rig.deliver(tid)
    assert await rig.worker.drain() == 0  # the newer event waits for the older one
    rig.clock.advance(30)
    assert await rig.worker.drain() == 1
    assert {r.status for r in rig.inbox.rows()} == {"done"}


# --- timers and catch-up: the sidecar alone enforces the whole policy ----------------------------


async def test_the_scheduler_fires_due_timers_and_catches_up_without_webhooks(rig: Rig) -> None:
    silent = rig.add(fields={"version": "10.1.2"})  # nobody sends a webhook for it
    await rig.worker.tick()  # catch-up through the change feed finds it
    assert rig.store.state(rig.name, silent) is not None
    held = rig.add()
    await rig.deliver(held, EventKind.CREATED)
    await rig.worker.drain()
    assert rig.status(held) == "pending"
    before = len(rig.ours(held))
    rig.clock.advance(timedelta(days=3, hours=2).total_seconds())  # past the first reminder
    await rig.worker.tick()
    assert len(rig.ours(held)) == before + 1  # CLOSE-1's reminder, by the sidecar's scheduler
    assert any(r.rule_id.startswith("CLOSE") for r in rig.store.audit())


# --- operations ----------------------------------------------------------------------------------


async def test_health_readiness_and_metrics(rig: Rig) -> None:
    assert (await rig.client.get("/healthz")).json() == {"status": "ok"}
    ready = await rig.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == Store.HEAD_REVISION
    text = await rig.metrics()
    for name in (
        "ticketwarden_inbox_depth",
        "ticketwarden_inbox_oldest_age_seconds",
        "ticketwarden_helpdesk_retries_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text
    rig.sidecar.accepting = False  # shutting down
    assert (await rig.client.get("/readyz")).status_code == 503
    assert (await rig.deliver(rig.add())).status_code == 503


async def test_the_oldest_waiting_event_shows_its_age(rig: Rig) -> None:
    await rig.deliver(rig.add())
    rig.clock.advance(90)
    assert metric(await rig.metrics(), "ticketwarden_inbox_oldest_age_seconds") == 90


def test_readiness_fails_while_the_schema_lags_or_the_store_is_down(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tw.db'}")
    sidecar = Sidecar(store, Inbox(store), {})
    assert sidecar._ready().ok
    # a replica started before `ticketwarden db upgrade` ran on a shared database
    store.revision = lambda: "0002_desk_snapshot"  # type: ignore[method-assign]
    ready = sidecar._ready()
    assert not ready.ok and "db upgrade" in ready.detail["reason"]

    def down() -> str:
        raise OSError("connection refused")

    store.revision = down  # type: ignore[method-assign]
    ready = sidecar._ready()
    assert not ready.ok and "unreachable" in ready.detail["reason"]
    store.close()


async def test_log_lines_are_json_with_the_request_id_and_never_a_secret(rig: Rig) -> None:
    stream = StringIO()
    secrets = [SECRET, fixtures.API_TOKEN]
    logs.configure("debug", stream=stream, secrets=secrets)
    try:
        tid = rig.add()
        headers, body = rig.signed(tid, EventKind.CREATED)
        headers["X-Request-ID"] = "req-42"
        await rig.post(headers, body)
        bad = dict(headers, **{"X-Zendesk-Webhook-Signature": SECRET})  # a secret in a header
        await rig.post(bad, body)
        logging.getLogger("ticketwarden.test").info("token %s leaked?", fixtures.API_TOKEN)
        await rig.worker.drain()
    finally:
        for name in ("ticketwarden", "uvicorn", "uvicorn.error"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(line.get("request_id") == "req-42" for line in lines)
    assert any(str(line.get("request_id", "")).startswith("inbox-") for line in lines)
    text = stream.getvalue()
    assert SECRET not in text and fixtures.API_TOKEN not in text
    assert "***" in text


# --- claims across processes ---------------------------------------------------------------------


async def test_a_ticket_claimed_by_a_live_process_is_not_written_by_another(rig: Rig) -> None:
    """The ticket claim (taken with the ledger's pending mark) keeps a sync job or a second
    replica from sending the same action while the first is sending it."""
    from ticketwarden.core.actions import AddComment
    from ticketwarden.core.store import TicketBusyError

    action = AddComment(rule_id="TEST-1", reason="r", body="hello", public=True, key="k1")
    with rig.store.transaction() as tx:
        rig.store.mark_pending(tx, rig.name, "7", [action], START, holder="otherhost:1:a")
    with pytest.raises(TicketBusyError), rig.store.transaction() as tx:
        rig.store.mark_pending(tx, rig.name, "7", [action], START, holder="otherhost:2:b")
    with rig.store.transaction() as tx:  # the holder releases: now it is free
        rig.store.release_ticket(tx, rig.name, "7", "otherhost:1:a")
    with rig.store.transaction() as tx:
        todo = rig.store.mark_pending(tx, rig.name, "7", [action], START, holder="otherhost:2:b")
    assert todo == [action]


def test_put_commits_many_deliveries_in_one_transaction(db_url: str) -> None:
    rig = Rig(db_url)
    try:
        tids = [rig.add() for _ in range(5)]
        deliveries = []
        for tid in tids:
            headers, body = rig.signed(tid)
            events = rig.sidecar.verifiers[rig.name].verify_webhook(headers, body, START)
            deliveries.append(Delivery(rig.name, events, body_hash(body)))
        results = rig.inbox.put(deliveries + deliveries[:1], START)
        assert [r.new for r in results] == [1, 1, 1, 1, 1, 0]
        assert results[-1].duplicates == 1
        assert len(rig.inbox.rows()) == 5
    finally:
        rig.store.close()


async def test_concurrent_deliveries_are_grouped_into_few_commits(rig: Rig) -> None:
    tids = [rig.add() for _ in range(40)]
    responses = await asyncio.gather(*(rig.deliver(t) for t in tids))
    assert {r.status_code for r in responses} == {202}
    assert len(rig.inbox.rows(limit=None)) == 40
    assert rig.sidecar.writer.batches < 40


# --- ticketwarden inbox ---------------------------------------------------------------------------


def test_the_inbox_commands_list_show_retry_and_drop_dead_letters(tmp_path: Any) -> None:
    """The operator's view of dead letters, through the console script."""
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'tw.db'}"
    store = Store(url)
    inbox = Inbox(store, max_attempts=1)
    verifier = ZendeskConnector(*ZendeskConnector.conformance_config("https://x.zendesk.com"))
    emulator = ZendeskEmulator(clock=FakeClock(START))
    for ticket in ("11", "12"):
        headers, body = emulator.make_webhook(ticket, EventKind.UPDATED, SECRET)
        events = verifier.verify_webhook(headers, body, START)
        inbox.put([Delivery(verifier.config.name, events, body_hash(body))], START)
    for _ in range(2):
        claim = inbox.claim("host:1:x", START)
        assert claim is not None
        assert inbox.failed(claim, "ServerError: 503 from the helpdesk", START) == "dead"
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETWARDEN_")}
    env.update(TICKETWARDEN_DATABASE_URL=url, TICKETWARDEN_CONFIG=str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")

    def tw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ticketwarden", "inbox", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = tw("list", "--status", "dead", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["ticket_id"] for r in rows} == {"11", "12"}
    assert all("503" in r["last_error"] for r in rows)
    first = min(r["id"] for r in rows)
    shown = tw("show", str(first))
    assert shown.returncode == 0 and json.loads(shown.stdout)["event"]["ticket_id"] in ("11", "12")
    assert tw("show", "999").returncode == 2
    assert "1 event(s) queued again" in tw("retry", str(first)).stdout
    assert tw("retry", str(first)).returncode == 1  # no longer dead
    assert tw("drop").returncode == 2  # ids or --all
    dropped = tw("drop", "--all", "--yes")
    assert "1 event(s) deleted" in dropped.stdout
    with Store(url) as again:
        left = Inbox(again).rows()
    assert [(r.id, r.status) for r in left] == [(first, "pending")]
