"""The connector conformance suite: the standard tests every connector must pass.

Turn it on in a connector package's tests with one line::

    from ticketwarden.testing.conformance import connector_test_class
    from my_connector import MyConnector

    TestMyConnector = connector_test_class(MyConnector)

Each standard test builds a fresh emulator of the connector (``MyConnector.emulator()``) and a
connector configured by ``MyConnector.conformance_config(base_url)``, joined in-process by the
emulator's transport and sharing a :class:`~ticketwarden.testing.emulator.FakeClock`, so rate
limits and ``Retry-After`` are checked without waiting. A test of a capability the connector
does not declare is skipped, saying so. Every assertion message shows the offending data.

This module is also a pytest plugin (entry point ``ticketwarden-conformance``): it registers the
``conformance`` marker the standard tests carry, so ``pytest -m conformance`` runs only them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

import pytest

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
    CandidateQuery,
    Connector,
    Outcome,
    Runtime,
    WebhookRejected,
)
from ticketwarden.core.model import (
    Contact,
    EventKind,
    Organization,
    Priority,
    Severity,
    Status,
    Ticket,
)
from ticketwarden.testing.emulator import Emulator, FakeClock, Fault

T = TypeVar("T")

ROUND_TRIP_KINDS = (
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
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``conformance`` marker."""
    config.addinivalue_line("markers", "conformance: a standard connector conformance test")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one standard test's coroutine (the suite needs no async pytest plugin)."""
    return asyncio.run(coro)


class Harness:
    """A fresh emulator and connector of one connector class, on one fake clock."""

    def __init__(self, connector_class: type[Connector], *, rate_limit: int | None = None) -> None:
        emulator_class = connector_class.emulator()
        if emulator_class is None:
            raise pytest.UsageError(f"{connector_class.__name__}.emulator() returns no emulator")
        self.connector_class = connector_class
        self.clock = FakeClock()
        self.emulator: Emulator = emulator_class(clock=self.clock, rate_limit=rate_limit)
        self.config, self.secrets = connector_class.conformance_config(self.emulator.base_url)
        self.connector = self.new_connector()
        self._seq = 0

    def new_connector(self) -> Connector:
        """Another connector instance on the same emulator (as after a restart)."""
        runtime = Runtime(
            transport=self.emulator.transport(),
            clock=self.clock.monotonic,
            sleep=self.clock.sleep,
            wall_clock=self.clock.time,
        )
        return self.connector_class(self.config, self.secrets, runtime)

    def sample(self, **overrides: Any) -> Ticket:
        """A complete ticket created now on the fake clock; keywords override."""
        self._seq += 1
        now = self.clock.now()
        data: dict[str, Any] = {
            "id": "new",
            "number": "new",
            "subject": f"Conformance ticket {self._seq}",
            "description": "The dashboard totals differ. Expected: the same totals.",
            "status": Status.OPEN,
            "severity": Severity.MEDIUM,
            "priority": Priority.NORMAL,
            "requester": Contact(id="u-1", name="Anna Berger", email="anna@acme.example"),
            "organization": Organization(id="acme", name="Acme"),
            "fields": {k: v for k, v in _SAMPLE_FIELDS.items() if k in self.config.fields},
            "tags": frozenset({"existing-tag"}),
            "created_at": now,
            "updated_at": now,
        }
        data.update(overrides)
        return Ticket(**data)

    def seed(self, count: int, *, same_timestamp: bool = False) -> list[str]:
        """Store ``count`` tickets; with ``same_timestamp`` they share one update time."""
        ids = []
        for _ in range(count):
            ids.append(self.emulator.add_ticket(self.sample()))
            if not same_timestamp:
                self.clock.advance(1)
        return ids

    def secret(self) -> str:
        """The webhook secret the connector verifies with."""
        if self.secrets.webhook_secret is None:
            raise pytest.UsageError("conformance_config() gives no webhook secret")
        return self.secrets.webhook_secret.get_secret_value()

    async def close(self) -> None:
        await self.connector.aclose()


_SAMPLE_FIELDS = {
    "server_url": "https://kaseya.acme.example",
    "module": "Reporting",
    "steps": "1. open the dashboard 2. export",
    "sample_machines": "acme.berlin / ws-0042",
    "version": "10.1.2",
}


def _sample_action(kind: str, harness: Harness, ticket: Ticket) -> BaseAction:
    """A representative action of each kind, with an idempotency key like the engine's."""
    common: dict[str, Any] = {"rule_id": "CONF-1", "reason": "conformance", "key": f"k-{kind}"}
    if kind == "comment":
        return AddComment(**common, body="Conformance comment — visible to the customer")
    if kind == "set_status":
        return SetStatus(**common, status=Status.WAITING_ON_CUSTOMER)
    if kind == "set_severity":
        return SetSeverity(**common, severity=Severity.HIGH)
    if kind == "set_priority":
        return SetPriority(**common, priority=Priority.HIGH)
    if kind == "add_tags":
        return AddTags(**common, tags=frozenset({"tw-conformance"}))
    if kind == "remove_tags":
        return RemoveTags(**common, tags=frozenset({"existing-tag"}))
    if kind == "set_field":
        name = next(iter(harness.config.fields), "version")
        return SetField(**common, field=name, value="conformance-value")
    if kind == "escalate":
        if not harness.config.escalation:
            pytest.skip("conformance_config() maps no escalation target")
        return Escalate(**common, target=next(iter(harness.config.escalation)))
    if kind == "resolve":
        return Resolve(**common, resolution="no_response")
    if kind == "close":
        return Close(**common)
    if kind == "create_follow_up":
        return CreateFollowUp(**common, subject="Follow-up to conformance", body="It is back.")
    raise AssertionError(f"no sample action for {kind}")


def _check_round_trip(
    kind: str, action: BaseAction, before: Ticket, after: Ticket, harness: Harness
) -> None:
    """Assert the ticket read back shows the action's effect (and nothing else was lost)."""
    if isinstance(action, AddComment):
        found = [c for c in after.comments if c.body == action.body]
        assert len(found) == 1, f"comment not read back exactly once: {after.comments!r}"
        assert found[0].public == action.public, f"public flag lost: {found[0]!r}"
    elif isinstance(action, SetStatus):
        assert after.status == action.status, f"status {after.status} != {action.status}"
    elif isinstance(action, SetSeverity):
        assert after.severity == action.severity, f"severity {after.severity}"
    elif isinstance(action, SetPriority):
        assert after.priority == action.priority, f"priority {after.priority}"
    elif isinstance(action, AddTags):
        assert action.tags <= after.tags, f"tags {sorted(after.tags)} lack {sorted(action.tags)}"
        assert before.tags <= after.tags, f"other tags lost: {sorted(before.tags - after.tags)}"
    elif isinstance(action, RemoveTags):
        assert not (action.tags & after.tags), f"tags still present: {sorted(after.tags)}"
    elif isinstance(action, SetField):
        assert after.field(action.field) == action.value, f"fields {dict(after.fields)!r}"
    elif isinstance(action, Escalate):
        target = harness.config.escalation[action.target]
        expected = target.group or target.assignee
        assert expected in (after.group, after.assignee), (
            f"escalated to {action.target!r} ({expected!r}) but group={after.group!r} "
            f"assignee={after.assignee!r}"
        )
    elif isinstance(action, Resolve):
        assert after.status == Status.RESOLVED, f"status {after.status}"
        assert after.resolution_reason == action.resolution, (
            f"resolution reason {after.resolution_reason!r} != {action.resolution!r}"
        )
    elif isinstance(action, Close):
        assert after.status == Status.CLOSED, f"status {after.status}"


class ConformanceTests:
    """The standard tests; :func:`connector_test_class` binds them to a connector class."""

    connector_class: type[Connector]

    def harness(self, **kwargs: Any) -> Harness:
        return Harness(self.connector_class, **kwargs)

    def need(self, capability: str) -> None:
        if capability not in self.connector_class.capabilities:
            pytest.skip(f"{self.connector_class.name} declares no {capability!r} capability")

    @pytest.mark.conformance
    def test_reads_a_ticket_with_its_fields(self) -> None:
        """A stored ticket reads back with subject, status, severity and mapped fields."""

        async def body(h: Harness) -> None:
            original = h.sample()
            tid = h.emulator.add_ticket(original)
            ticket = await h.connector.read_ticket(tid)
            assert ticket.id == tid, f"id {ticket.id!r} != {tid!r}"
            assert ticket.subject == original.subject, f"subject {ticket.subject!r}"
            assert ticket.status == original.status, f"status {ticket.status}"
            assert ticket.severity == original.severity, f"severity {ticket.severity}"
            for name, value in original.fields.items():
                assert ticket.field(name) == value, f"field {name}: {dict(ticket.fields)!r}"

        self._run(body)

    @pytest.mark.conformance
    @pytest.mark.parametrize("kind", ROUND_TRIP_KINDS)
    def test_round_trip_of_each_action_kind(self, kind: str) -> None:
        """Every declared action kind is applied, reported and visible when read back."""
        self.need(kind)

        async def body(h: Harness) -> None:
            # A follow-up is opened for a customer who writes to a *closed* ticket (CLOSE-5).
            status = Status.CLOSED if kind == "create_follow_up" else Status.OPEN
            tid = h.emulator.add_ticket(h.sample(status=status))
            before = await h.connector.read_ticket(tid)
            action = _sample_action(kind, h, before)
            results = await h.connector.apply(before, [action])
            assert [r.outcome for r in results] == [Outcome.APPLIED], f"results: {results!r}"
            assert results[0].key == action.key, f"result key {results[0].key!r}"
            after = await h.connector.read_ticket(tid)
            if isinstance(action, CreateFollowUp):
                created = results[0].created_id
                assert created, f"create_follow_up reported no created id: {results!r}"
                follow = await h.connector.read_ticket(created)
                assert follow.follow_up_of == tid, f"follow-up links {follow.follow_up_of!r}"
                assert follow.subject == action.subject, f"subject {follow.subject!r}"
            else:
                _check_round_trip(kind, action, before, after, h)

        self._run(body)

    @pytest.mark.conformance
    def test_undeclared_action_kinds_are_reported_unsupported(self) -> None:
        """An action the helpdesk cannot do is reported ``unsupported``, never faked."""
        missing = [k for k in ROUND_TRIP_KINDS if k not in self.connector_class.capabilities]
        if not missing:
            pytest.skip("the connector declares every action kind")

        async def body(h: Harness) -> None:
            ticket = await h.connector.read_ticket(h.emulator.add_ticket(h.sample()))
            actions = [_sample_action(k, h, ticket) for k in missing]
            results = await h.connector.apply(ticket, actions)
            assert {r.outcome for r in results} == {Outcome.UNSUPPORTED}, f"{results!r}"

        self._run(body)

    @pytest.mark.conformance
    def test_pages_through_more_tickets_than_one_page(self) -> None:
        """The change feed returns every ticket when there are more than one page holds."""
        self.need("changes")

        async def body(h: Harness) -> None:
            ids = h.seed(h.emulator.page_size * 2 + 3)
            seen = await _drain(h.connector, None)
            assert sorted(seen) == sorted(ids), f"missing {sorted(set(ids) - set(seen))}"

        self._run(body)

    @pytest.mark.conformance
    def test_cursor_resumption_loses_and_repeats_nothing(self) -> None:
        """Resuming from a stored cursor — across tickets sharing one update time — yields
        every ticket exactly once, and a later change exactly once more."""
        self.need("changes")

        async def body(h: Harness) -> None:
            ids = h.seed(h.emulator.page_size * 2 + 1, same_timestamp=True)
            seen: list[str] = []
            cursor: str | None = None
            for _ in range(100):
                connector = h.new_connector()  # a new process resuming from the cursor
                page = await connector.changes(cursor)
                await connector.aclose()
                seen += [t.id for t in page.tickets]
                cursor = page.cursor
                if not page.has_more:
                    break
            duplicates = sorted({i for i in seen if seen.count(i) > 1})
            assert not duplicates, f"tickets seen twice: {duplicates}"
            assert sorted(seen) == sorted(ids), f"tickets lost: {sorted(set(ids) - set(seen))}"
            h.clock.advance(5)
            h.emulator.customer_reply(ids[0], "One more thing.")
            again = await _drain(h.connector, cursor)
            assert again == [ids[0]], f"after one change the feed gave {again}"

        self._run(body)

    @pytest.mark.conformance
    def test_candidates_by_status_and_update_time(self) -> None:
        """The candidate search finds waiting tickets not updated since a time, and no others."""
        self.need("candidates")

        async def body(h: Harness) -> None:
            old = h.emulator.add_ticket(h.sample(status=Status.WAITING_ON_CUSTOMER))
            h.clock.advance(3600)
            cutoff = h.clock.now()
            h.clock.advance(3600)
            recent = h.sample(status=Status.WAITING_ON_CUSTOMER)
            h.emulator.add_ticket(recent)
            h.emulator.add_ticket(
                h.sample(
                    status=Status.OPEN,
                    created_at=cutoff - timedelta(hours=2),
                    updated_at=cutoff - timedelta(hours=2),
                )
            )
            query = CandidateQuery(
                statuses=frozenset({Status.WAITING_ON_CUSTOMER}), updated_before=cutoff
            )
            found = [t.id async for t in h.connector.candidates(query)]
            assert found == [old], f"candidates {found}, expected [{old!r}]"

        self._run(body)

    @pytest.mark.conformance
    def test_honours_retry_after(self) -> None:
        """After a 429, no request reaches the helpdesk before ``Retry-After`` has elapsed."""

        async def body(h: Harness) -> None:
            tid = h.emulator.add_ticket(h.sample())
            h.emulator.script(Fault("rate_limit", retry_after=7))
            await h.connector.read_ticket(tid)
            log = h.emulator.requests
            limited = [i for i, r in enumerate(log) if r.status == 429]
            assert limited, f"the injected 429 never happened: {[(r.path, r.status) for r in log]}"
            after = log[limited[0] + 1 :]
            assert after, "the request was not retried after the 429"
            waited = after[0].at - log[limited[0]].at
            assert waited >= 7, f"retried {waited:.1f}s after a 429 asking for 7s"

        self._run(body)

    @pytest.mark.conformance
    def test_stays_within_a_server_enforced_rate_limit(self) -> None:
        """With a server limit of 6 requests a minute, 20 reads draw no 429 once the rate-limit
        headers are known."""

        async def body(h: Harness) -> None:
            tid = h.emulator.add_ticket(h.sample())
            for _ in range(20):
                await h.connector.read_ticket(tid)
            statuses = [r.status for r in h.emulator.requests[1:]]
            assert 429 not in statuses, f"429s received: {statuses.count(429)} of {len(statuses)}"

        self._run(body, rate_limit=6)

    @pytest.mark.conformance
    def test_retries_server_errors(self) -> None:
        """Two 500s in a row are retried and the read succeeds."""

        async def body(h: Harness) -> None:
            tid = h.emulator.add_ticket(h.sample())
            h.emulator.script(Fault("status", status=500), Fault("status", status=503))
            ticket = await h.connector.read_ticket(tid)
            assert ticket.id == tid
            statuses = [r.status for r in h.emulator.requests]
            assert statuses[:3] == [500, 503, 200], f"statuses {statuses}"

        self._run(body)

    @pytest.mark.conformance
    def test_timed_out_comment_creation_is_not_duplicated(self) -> None:
        """A comment whose response is lost after it landed appears once; one that never
        landed is sent again and appears once."""
        self.need("comment")

        async def body(h: Harness) -> None:
            for when in ("after", "before"):
                ticket = await h.connector.read_ticket(h.emulator.add_ticket(h.sample()))
                action = AddComment(
                    rule_id="CONF-1",
                    reason="conformance",
                    key=f"timeout-{when}",
                    body=f"Comment whose request times out {when} the server handles it",
                )
                h.emulator.script(Fault("timeout", when=when, method="WRITE"))
                results = await h.connector.apply(ticket, [action])
                assert [r.outcome for r in results] == [Outcome.APPLIED], f"{results!r}"
                _assert_fault_fired(h, f"timeout-{when}")
                after = await h.connector.read_ticket(ticket.id)
                copies = [c for c in after.comments if c.body == action.body]
                assert len(copies) == 1, f"timeout {when}: the comment exists {len(copies)} times"

        self._run(body)

    @pytest.mark.conformance
    def test_timed_out_follow_up_creation_is_not_duplicated(self) -> None:
        """A follow-up ticket whose creation response is lost exists once, linked once."""
        self.need("create_follow_up")

        async def body(h: Harness) -> None:
            closed = h.sample(status=Status.CLOSED)
            ticket = await h.connector.read_ticket(h.emulator.add_ticket(closed))
            action = CreateFollowUp(
                rule_id="CONF-1",
                reason="conformance",
                key="follow-timeout",
                subject="Follow-up whose response was lost",
                body="It is back.",
            )
            h.emulator.script(Fault("timeout", when="after", method="WRITE"))
            results = await h.connector.apply(ticket, [action])
            assert [r.outcome for r in results] == [Outcome.APPLIED], f"{results!r}"
            _assert_fault_fired(h, "timeout-after")
            page = await _drain_tickets(h.connector)
            copies = [t for t in page if t.follow_up_of == ticket.id]
            assert len(copies) == 1, f"{len(copies)} follow-ups of {ticket.id} exist"

        self._run(body)

    @pytest.mark.conformance
    def test_unmapped_escalation_target_fails_visibly(self) -> None:
        """Escalating to a target the desk configuration does not map is reported failed,
        never faked as applied."""
        self.need("escalate")

        async def body(h: Harness) -> None:
            ticket = await h.connector.read_ticket(h.emulator.add_ticket(h.sample()))
            action = Escalate(
                rule_id="CONF-1",
                reason="conformance",
                key="esc",
                target="no-such-target-in-the-config",
            )
            results = await h.connector.apply(ticket, [action])
            assert [r.outcome for r in results] == [Outcome.FAILED], f"{results!r}"

        self._run(body)

    @pytest.mark.conformance
    def test_accepts_a_valid_webhook(self) -> None:
        """A correctly signed, fresh delivery is accepted and normalized."""
        self.need("webhooks")

        async def body(h: Harness) -> None:
            tid = h.emulator.add_ticket(h.sample())
            headers, payload = h.emulator.make_webhook(tid, EventKind.UPDATED, h.secret())
            events = h.connector.verify_webhook(headers, payload, h.clock.now())
            assert [(e.ticket_id, e.kind) for e in events] == [(tid, EventKind.UPDATED)], events

        self._run(body)

    @pytest.mark.conformance
    @pytest.mark.parametrize("attack", ["tampered", "unsigned", "expired", "replayed"])
    def test_rejects_a_bad_webhook(self, attack: str) -> None:
        """Tampered, unsigned, expired and replayed deliveries are rejected with that reason."""
        self.need("webhooks")

        async def body(h: Harness) -> None:
            tid = h.emulator.add_ticket(h.sample())
            now = h.clock.now()
            at = now - timedelta(hours=2) if attack == "expired" else None
            headers, payload = h.emulator.make_webhook(tid, EventKind.UPDATED, h.secret(), at=at)
            if attack == "tampered":
                payload = payload + b" "  # still valid JSON, but not what was signed
            if attack == "unsigned":
                headers = {k: v for k, v in headers.items() if "signature" not in k.lower()}
            if attack == "replayed":
                h.connector.accept_webhook(headers, payload, now)
            expected = {"tampered": "bad_signature"}.get(attack, attack)
            with pytest.raises(WebhookRejected) as rejected:
                h.connector.verify_webhook(headers, payload, now)
            assert rejected.value.reason == expected, f"rejected as {rejected.value.reason}"

        self._run(body)

    @pytest.mark.conformance
    def test_unicode_and_large_bodies_round_trip(self) -> None:
        """A 64 KB comment in several scripts and emoji is stored and read back unchanged."""
        self.need("comment")

        async def body(h: Harness) -> None:
            ticket = await h.connector.read_ticket(h.emulator.add_ticket(h.sample()))
            text = ("Grüße aus Köln — ÄÖÜß — 東京 — שלום — 🚀✅\n" * 1600)[:65536]
            action = AddComment(
                rule_id="CONF-1", reason="conformance", key="big", body=text, public=False
            )
            results = await h.connector.apply(ticket, [action])
            assert [r.outcome for r in results] == [Outcome.APPLIED], f"{results!r}"
            after = await h.connector.read_ticket(ticket.id)
            assert any(c.body == text and not c.public for c in after.comments), (
                f"comment bodies read back: {[len(c.body) for c in after.comments]} chars"
            )

        self._run(body)

    @pytest.mark.conformance
    def test_ignores_unknown_custom_fields(self) -> None:
        """A custom field no configuration mentions neither breaks reading nor leaks in."""

        async def body(h: Harness) -> None:
            tid = h.emulator.add_ticket(h.sample())
            h.emulator.add_unknown_field(tid)
            ticket = await h.connector.read_ticket(tid)
            unknown = set(ticket.fields) - set(h.config.fields)
            assert not unknown, f"unmapped fields leaked into the ticket: {sorted(unknown)}"

        self._run(body)

    def _run(self, body: Callable[[Harness], Awaitable[None]], **kwargs: Any) -> None:
        async def main() -> None:
            harness = self.harness(**kwargs)
            try:
                await body(harness)
            finally:
                await harness.close()

        run(main())


def _assert_fault_fired(h: Harness, fault: str) -> None:
    """A scripted fault that never matched a request would make a test pass vacuously."""
    fired = [r for r in h.emulator.requests if r.fault == fault]
    assert fired, (
        f"the injected {fault} never hit a request: "
        f"{[(r.method, r.path, r.fault) for r in h.emulator.requests]}"
    )


async def _drain(connector: Connector, cursor: str | None) -> list[str]:
    return [t.id for t in await _drain_tickets(connector, cursor)]


async def _drain_tickets(connector: Connector, cursor: str | None = None) -> list[Ticket]:
    """Every ticket the change feed yields after ``cursor``, following it to its end."""
    tickets: list[Ticket] = []
    for _ in range(1000):
        page = await connector.changes(cursor)
        tickets += page.tickets
        cursor = page.cursor
        if not page.has_more:
            return tickets
    raise AssertionError("the change feed did not end within 1000 pages")


def connector_test_class(connector_class: type[Connector]) -> type[ConformanceTests]:
    """The standard test class bound to ``connector_class``; assign it to a ``Test*`` name."""
    return type(
        f"Test{connector_class.__name__}Conformance",
        (ConformanceTests,),
        {"connector_class": connector_class, "__test__": True},
    )


ConformanceTests.__test__ = False  # type: ignore[attr-defined]

__all__ = ["ConformanceTests", "Harness", "connector_test_class"]
