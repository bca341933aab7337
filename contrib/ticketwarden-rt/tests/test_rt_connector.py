"""The RT connector's own behaviour against the emulator: RT's 200-with-a-refusal answers
become typed errors and failed actions, TicketSQL values are escaped, token authentication,
the change cursor across equal timestamps, and the Scrip's webhook signature."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr
from ticketwarden_rt import RTConnector, ticketsql
from ticketwarden_rt.auth import RTToken
from ticketwarden_rt.emulator import TOKEN

from ticketwarden.core.actions import Escalate, SetField, SetStatus
from ticketwarden.core.connector import DeskSecrets, Outcome, Runtime, WebhookRejected
from ticketwarden.core.errors import AuthenticationError, RejectedError
from ticketwarden.core.model import EventKind, Status
from ticketwarden.testing.conformance import Harness

T = TypeVar("T")


def run(body: Callable[[Harness], Awaitable[T]]) -> T:
    async def main() -> T:
        harness = Harness(RTConnector)
        try:
            return await body(harness)
        finally:
            await harness.close()

    return asyncio.run(main())


def test_a_refused_status_is_a_typed_error_not_a_success() -> None:
    async def body(h: Harness) -> None:
        tid = h.emulator.add_ticket(h.sample())
        connector = h.connector
        assert isinstance(connector, RTConnector)
        with pytest.raises(RejectedError) as refused:
            await connector.update_ticket(tid, {"Status": "bogus"})
        assert "isn't a valid status" in refused.value.message
        assert refused.value.status_code == 200

    run(body)


def test_a_silently_dropped_custom_field_is_caught_by_reading_back() -> None:
    async def body(h: Harness) -> None:
        tid = h.emulator.add_ticket(h.sample())
        connector = h.connector
        assert isinstance(connector, RTConnector)
        with pytest.raises(RejectedError, match="No Such Field"):
            await connector.update_ticket(tid, {"CustomFields": {"No Such Field": "x"}})

    run(body)


def test_refusals_surface_as_failed_actions_with_rts_words() -> None:
    async def body(h: Harness) -> None:
        tid = h.emulator.add_ticket(h.sample())
        ticket = await h.connector.read_ticket(tid)
        base: dict[str, Any] = {"rule_id": "RT-1", "reason": "test"}
        data = h.config.model_dump()
        data["escalation"] = {"nowhere": {"group": "No Such Queue"}}
        data["statuses"] = {"pending-vendor": Status.ON_HOLD}
        config = type(h.config).model_validate(data)
        connector = RTConnector(config, h.secrets, Runtime(transport=h.emulator.transport()))
        results = await connector.apply(
            ticket,
            [
                Escalate(**base, target="nowhere", key="a"),
                SetStatus(**base, status=Status.ON_HOLD, key="b"),
                SetField(**base, field="version", value="10.2", key="c"),
            ],
        )
        await connector.aclose()
        assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED, Outcome.APPLIED]
        assert "Queue No Such Queue does not exist" in results[0].detail
        assert "pending-vendor" in results[1].detail, results[1]
        after = await h.connector.read_ticket(tid)
        assert after.group == "General" and after.field("version") == "10.2"

    run(body)


def test_ticketsql_values_are_escaped() -> None:
    assert ticketsql.quote("it's a \\ path") == "'it\\'s a \\\\ path'"
    assert ticketsql.rt_time(datetime(2026, 11, 26, 4, 8, 51, tzinfo=timedelta_tz(1))) == (
        "'2026-11-26 03:08:51 +0000'"
    )
    with pytest.raises(ValueError):
        ticketsql.quote("a\nb' OR id > 0")
    with pytest.raises(ValueError):
        ticketsql.ticket_id("1 OR 1=1")


def timedelta_tz(hours: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours))


def test_queue_names_in_the_query_are_escaped() -> None:
    async def body(h: Harness) -> list[str]:
        config = h.config.model_copy(
            update={"options": {**h.config.options, "queues": ["Ops' OR id > 0"]}}
        )
        connector = RTConnector(config, h.secrets, Runtime(transport=h.emulator.transport()))
        h.emulator.add_ticket(h.sample())
        page = await connector.changes(None)
        await connector.aclose()
        (search,) = [r for r in h.emulator.requests if r.path.endswith("/tickets")]
        query = parse_qs(urlsplit("?" + search.query).query)["query"][0]
        assert "Queue = 'Ops\\' OR id > 0'" in query, query
        return [t.id for t in page.tickets]

    assert run(body) == [], "a queue name must not widen the search"


def test_token_authentication_sends_rts_scheme() -> None:
    async def body(h: Harness) -> None:
        tid = h.emulator.add_ticket(h.sample())
        good = DeskSecrets(credentials=RTToken(token=SecretStr(TOKEN)))
        config = h.config.model_copy(update={"options": {**h.config.options, "agent_user": "root"}})
        connector = RTConnector(config, good, Runtime(transport=h.emulator.transport()))
        assert (await connector.read_ticket(tid)).id == tid
        await connector.aclose()
        bad = DeskSecrets(credentials=RTToken(token=SecretStr("1-14-wrong")))
        connector = RTConnector(config, bad, Runtime(transport=h.emulator.transport()))
        with pytest.raises(AuthenticationError) as denied:
            await connector.read_ticket(tid)
        assert "1-14-wrong" not in str(denied.value)
        await connector.aclose()

    run(body)


def test_token_without_agent_user_fails_at_start_up() -> None:
    harness_config, _ = RTConnector.conformance_config("http://rt.test")
    secrets = RTConnector.secrets_from({"TOKEN": SecretStr(TOKEN)})
    assert isinstance(secrets.credentials, RTToken)
    with pytest.raises(ValueError, match="agent_user"):
        RTConnector(harness_config, secrets)


def test_the_cursor_keeps_its_place_among_tickets_of_one_second() -> None:
    async def body(h: Harness) -> None:
        ids = h.seed(7, same_timestamp=True)
        first = await h.connector.changes(None)
        assert [t.id for t in first.tickets] == ids
        h.clock.advance(1)
        extra = h.emulator.add_ticket(h.sample())
        again = await h.connector.changes(first.cursor)
        assert [t.id for t in again.tickets] == [extra]

    run(body)


def test_webhook_kinds_follow_the_transaction() -> None:
    async def body(h: Harness) -> None:
        tid = h.emulator.add_ticket(h.sample())
        now = h.clock.now()
        for kind in (EventKind.CREATED, EventKind.RESOLVED, EventKind.UPDATED):
            headers, payload = h.emulator.make_webhook(tid, kind, h.secret())
            (event,) = h.connector.accept_webhook(headers, payload, now)
            assert (event.ticket_id, event.kind) == (tid, kind)
        headers, payload = h.emulator.make_webhook(tid, EventKind.UPDATED, "wrong-secret")
        with pytest.raises(WebhookRejected) as rejected:
            h.connector.verify_webhook(headers, payload, now)
        assert rejected.value.reason == "bad_signature"

    run(body)


def test_read_maps_roles_visibility_and_queue() -> None:
    async def body(h: Harness) -> None:
        tid = h.emulator.add_ticket(h.sample(status=Status.WAITING_ON_CUSTOMER))
        h.emulator.customer_reply(tid, "Here is the log.")
        ticket = await h.connector.read_ticket(tid)
        assert ticket.status == Status.WAITING_ON_CUSTOMER  # RT's "stalled"
        assert ticket.group == "General"
        assert [(c.author_role.value, c.public) for c in ticket.comments] == [
            ("customer", True),
            ("customer", True),
        ]
        assert ticket.resolved_at is None and ticket.created_at.tzinfo == UTC

    run(body)
