"""The sync job against the ToyDesk emulator and a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ticketwarden.core.connector import ActionResult, Runtime
from ticketwarden.core.engine import Engine
from ticketwarden.core.model import Contact, Organization, Severity, Status, Ticket
from ticketwarden.core.policy import policy_from_data
from ticketwarden.core.registry import load_plugins
from ticketwarden.core.store import Store
from ticketwarden.core.sync import DeskSync, SyncOptions, events_for
from ticketwarden.testing.emulator import FakeClock

from .toydesk import ToyConnector, ToyEmulator

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin

POLICY = policy_from_data(
    {
        "intake": {
            "fields": [
                {"name": "subject", "label": "a subject"},
                {"name": "description", "label": "a description"},
                {"name": "severity", "label": "the severity"},
                {"name": "version", "label": "the version number"},
            ]
        },
        "contacts": {"unknown_organization": "allow"},
    }
)


class Desk:
    """A ToyDesk emulator on a fake clock, a store and the engine: one simulated helpdesk."""

    def __init__(self, db_url: str) -> None:
        self.clock = FakeClock(START)
        self.emulator = ToyEmulator(clock=self.clock)
        self.store = Store(db_url)
        self.engine = Engine(load_plugins(allow=None, block=()), POLICY)

    def connector(self) -> ToyConnector:
        config, secrets = ToyConnector.conformance_config(self.emulator.base_url)
        runtime = Runtime(
            transport=self.emulator.transport(),
            clock=self.clock.monotonic,
            sleep=self.clock.sleep,
            wall_clock=self.clock.time,
        )
        return ToyConnector(config, secrets, runtime)

    def add(self, **overrides: Any) -> str:
        now = self.clock.now()
        data: dict[str, Any] = {
            "id": "new",
            "number": "new",
            "subject": "Dashboard totals differ",
            "description": "120 vs 118. Expected: equal.",
            "status": Status.OPEN,
            "severity": Severity.MEDIUM,
            "requester": Contact(id="u1", email="anna@acme.example"),
            "organization": Organization(id="acme"),
            "fields": {"version": "10.1.2"},
            "created_at": now,
            "updated_at": now,
        }
        data.update(overrides)
        return self.emulator.add_ticket(Ticket(**data))

    def run(self, at: datetime | None = None, **options: Any) -> Any:
        if at is not None and at > self.clock.now():
            self.clock.advance((at - self.clock.now()).total_seconds())
        now = self.clock.now()

        async def go() -> Any:
            async with self.connector() as connector:
                sync = DeskSync(connector, self.engine, self.store, SyncOptions(now=now, **options))
                return await sync.run()

        return asyncio.run(go())

    def comments(self, tid: str) -> list[str]:
        return [c["body"] for c in self.emulator.tickets[tid]["comments"]]


@pytest.fixture
def desk(db_url: str) -> Any:
    opened = Desk(db_url)
    yield opened
    opened.store.close()


def test_first_pass_applies_the_policy_and_records_everything(desk: Desk) -> None:
    complete = desk.add()
    incomplete = desk.add(fields={})
    report = desk.run(at=START + timedelta(minutes=5))
    assert report.ok, report.failures
    assert report.tickets_read == 2
    assert desk.emulator.tickets[complete]["priority"] == "normal"  # SEV-3
    held = desk.emulator.tickets[incomplete]
    assert held["status"] == "pending"  # INTAKE-2
    assert any("version number" in body for body in desk.comments(incomplete))
    assert desk.store.cursor("toy") == report.cursor
    rows = list(desk.store.audit())
    assert {r.rule_id for r in rows} >= {"SEV-3", "INTAKE-2"}
    assert desk.store.verify_audit() is None
    assert desk.store.state("toy", complete) is not None


def test_a_second_pass_repeats_nothing(desk: Desk) -> None:
    tid = desk.add(fields={})
    desk.run(at=START + timedelta(minutes=5))
    before = desk.comments(tid)
    audit_rows = len(list(desk.store.audit()))
    report = desk.run(at=START + timedelta(minutes=6))
    assert desk.comments(tid) == before
    assert sum(report.outcomes.values()) == 0
    assert len(list(desk.store.audit())) == audit_rows


def test_timers_remind_and_resolve_a_silent_customer_over_simulated_days(desk: Desk) -> None:
    """CLOSE-3 through the sync job: the same actions the policy scenario predicts."""
    tid = desk.add(fields={})
    desk.run(at=START + timedelta(minutes=5))  # held for the version (INTAKE-2)
    for hours in (24, 47):
        desk.run(at=START + timedelta(hours=hours))
    assert not [b for b in desk.comments(tid) if "reminder" in b]
    desk.run(at=START + timedelta(days=2, minutes=10))
    assert len([b for b in desk.comments(tid) if "reminder 1 of 2" in b]) == 1
    desk.run(at=START + timedelta(days=5, minutes=10))
    assert len([b for b in desk.comments(tid) if "reminder 2 of 2" in b]) == 1
    desk.run(at=START + timedelta(days=7, minutes=10))
    record = desk.emulator.tickets[tid]
    assert record["status"] == "solved" and record["resolution"] == "no_response"
    desk.run(at=START + timedelta(days=14, minutes=20))
    assert desk.emulator.tickets[tid]["status"] == "closed"  # CLOSE-5
    bodies = desk.comments(tid)
    assert len(bodies) == len(set(bodies)), "no comment twice"


def test_a_customer_reply_is_an_event(desk: Desk) -> None:
    tid = desk.add(fields={})
    desk.run(at=START + timedelta(minutes=5))
    desk.clock.advance(3600)
    desk.emulator.customer_reply(tid, "Please escalate this to your management.")
    desk.run(at=desk.clock.now() + timedelta(minutes=1))
    assert desk.emulator.tickets[tid]["group"] == "management"  # ESC-2
    assert any("passed to support management" in b for b in desk.comments(tid))


def test_dry_run_plans_but_changes_nothing(desk: Desk) -> None:
    tid = desk.add(fields={})
    report = desk.run(at=START + timedelta(minutes=5), dry_run=True)
    assert any("INTAKE-2" in line for line in report.planned)
    assert desk.comments(tid) == []
    assert desk.emulator.tickets[tid]["status"] == "open"
    assert desk.store.cursor("toy") is None
    assert list(desk.store.audit()) == []
    writes = [r for r in desk.emulator.requests if r.method != "GET"]
    assert writes == []


def test_a_run_killed_after_sending_never_duplicates_a_comment(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger says *pending*; the re-run finds the comment landed and does not resend it."""
    tid = desk.add(fields={})
    original = ToyConnector.apply

    async def apply_then_die(
        self: ToyConnector, ticket: Ticket, actions: Any
    ) -> list[ActionResult]:
        await original(self, ticket, actions)
        raise KeyboardInterrupt("killed after the requests landed")

    monkeypatch.setattr(ToyConnector, "apply", apply_then_die)
    with pytest.raises(KeyboardInterrupt):
        desk.run(at=START + timedelta(minutes=5))
    assert {e.status for e in desk.store.ledger(_keys(desk)).values()} == {"pending"}
    monkeypatch.setattr(ToyConnector, "apply", original)
    desk.run(at=START + timedelta(minutes=6))
    bodies = desk.comments(tid)
    assert len([b for b in bodies if "version number" in b]) == 1
    assert len(bodies) == len(set(bodies))


def _keys(desk: Desk) -> list[str]:
    with desk.store.transaction() as tx:
        rows = tx.exec_driver_sql("SELECT key FROM action_ledger").fetchall()
    return [r[0] for r in rows]


def test_a_second_sync_of_the_same_desk_is_skipped(desk: Desk) -> None:
    desk.add()
    assert desk.store.acquire_lease("toy", "other-host:1", timedelta(minutes=10), START)
    report = desk.run(at=START + timedelta(minutes=5))
    assert report.skipped and "other-host:1" in report.skipped
    assert report.tickets_read == 0


def test_events_for_a_known_ticket() -> None:
    from ticketwarden.core.context import TicketState
    from ticketwarden.core.model import AuthorRole, Comment, EventKind

    now = START
    ticket = Ticket(
        id="9",
        number="#9",
        requester=Contact(id="c"),
        status=Status.RESOLVED,
        severity=Severity.HIGH,
        created_at=now,
        updated_at=now + timedelta(hours=2),
        comments=(
            Comment(id="a", author_role=AuthorRole.CUSTOMER, body="hi", created_at=now),
            Comment(id="b", author_role=AuthorRole.SYSTEM, body="auto", created_at=now),
        ),
    )
    assert [e.kind for e in events_for(ticket, None)] == []  # already resolved: no retro hold
    state = TicketState(created_seen=True, status=Status.OPEN, severity=Severity.MEDIUM)
    kinds = [(e.kind, e.change.kind if e.change else None) for e in events_for(ticket, state)]
    assert (EventKind.UPDATED, "customer_reply") in kinds
    assert (EventKind.UPDATED, "status_change") in kinds
    assert (EventKind.RESOLVED, None) in kinds
    assert all(
        e.change is None or e.change.comment is None or e.change.comment.id != "b"
        for e in events_for(ticket, state)
    )


def test_a_lease_left_by_a_dead_process_on_this_machine_is_taken_over(desk: Desk) -> None:
    import socket
    import subprocess
    import sys

    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{finished.stdout.strip()}:deadbeef"
    desk.add()
    assert desk.store.acquire_lease("toy", dead, timedelta(minutes=10), START)
    report = desk.run(at=START + timedelta(minutes=5))
    assert report.skipped is None and report.tickets_read == 1


def test_the_same_text_is_never_posted_twice_on_a_ticket(desk: Desk) -> None:
    """Even when a comment's occasion shifts (a timer recomputed after a crash), the words
    already on the ticket are recognised and not posted again."""
    from ticketwarden.core.actions import AddComment
    from ticketwarden.core.sync import _already_said

    tid = desk.add(fields={})
    desk.run(at=START + timedelta(minutes=5))
    ticket = asyncio.run(_read(desk, tid))
    hold = next(c for c in ticket.comments if "version number" in c.body)
    again = AddComment(rule_id="INTAKE-2", reason="r", body=hold.body + "\n", key="other-key")
    assert _already_said(ticket, again)
    assert not _already_said(ticket, again.model_copy(update={"public": False}))


async def _read(desk: Desk, tid: str) -> Ticket:
    async with desk.connector() as connector:
        return await connector.read_ticket(tid)


def test_roster_changes_seen_by_sync_are_audited(db_url: str) -> None:
    """AUTH-2: the roster read from the desk is compared with last pass's copy."""
    from ticketwarden.plugins.zendesk.connector import ZendeskConnector
    from ticketwarden.plugins.zendesk.emulator import ZendeskEmulator

    clock = FakeClock(START)
    emulator = ZendeskEmulator(clock=clock)
    emulator.add_user("anna@acme.example", "Anna Berger", organization="Acme", authorized=True)
    store = Store(db_url)
    engine = Engine(load_plugins(allow=None, block=()), POLICY)

    def run(at: datetime) -> Any:
        config, secrets = ZendeskConnector.conformance_config(emulator.base_url)
        runtime = Runtime(
            transport=emulator.transport(),
            clock=clock.monotonic,
            sleep=clock.sleep,
            wall_clock=clock.time,
        )

        async def go() -> Any:
            async with ZendeskConnector(config, secrets, runtime) as connector:
                return await DeskSync(connector, engine, store, SyncOptions(now=at)).run()

        return asyncio.run(go())

    run(START + timedelta(minutes=5))
    assert [r for r in store.audit() if r.rule_id == "AUTH-2"] == []  # first copy only
    emulator.add_user("ben@acme.example", "Ben Hofmann", organization="Acme", authorized=True)
    clock.advance(3600)
    report = run(START + timedelta(hours=1, minutes=5))
    rows = [r for r in store.audit() if r.rule_id == "AUTH-2"]
    assert len(rows) == 1 and "ben@acme.example added" in rows[0].detail, rows
    assert report.actions_by_rule["AUTH-2"] == 1
    run(START + timedelta(hours=1, minutes=10))
    assert len([r for r in store.audit() if r.rule_id == "AUTH-2"]) == 1, "nothing new twice"
    assert store.verify_audit() is None
    store.close()


def test_own_pending_writes_raise_no_status_or_field_events() -> None:
    """After a crash, a status or tag our own pending actions set is not taken for an agent's."""
    from ticketwarden.core.context import TicketState
    from ticketwarden.core.sync import SEEN_FIELDS

    ticket = Ticket(
        id="9",
        number="#9",
        requester=Contact(id="c"),
        status=Status.WAITING_ON_CUSTOMER,
        tags=frozenset({"intake-incomplete"}),
        created_at=START,
        updated_at=START,
    )
    state = TicketState(
        created_seen=True, status=Status.OPEN, memory={SEEN_FIELDS: {"fields": {}, "tags": []}}
    )
    assert {e.change.kind for e in events_for(ticket, state) if e.change} == {
        "status_change",
        "field_change",
    }
    own = frozenset({"set_status", "add_tags", "comment"})
    assert events_for(ticket, state, own_pending=own) == []
