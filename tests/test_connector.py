"""The connector contract: desk configuration, declared capabilities, webhook helpers."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr, ValidationError

from ticketwarden.core.actions import Close, Record, SetStatus
from ticketwarden.core.connector import (
    ChangePage,
    Connector,
    DeskConfig,
    FieldSource,
    Outcome,
    ReplayGuard,
    WebhookRejected,
    check_timestamp,
    hmac_sha256,
    signatures_match,
)
from ticketwarden.core.model import Contact, Status, Ticket

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def desk(**overrides: Any) -> DeskConfig:
    data: dict[str, Any] = {
        "name": "support",
        "connector": "toydesk",
        "base_url": "https://x.test/",
    }
    data.update(overrides)
    return DeskConfig.model_validate(data)


def test_field_mapping_is_written_as_text_and_validated() -> None:
    config = desk(
        fields={"severity": "custom:360001", "priority": "native:priority", "module": "tag:module-"}
    )
    assert config.field_source("severity") == FieldSource(kind="custom", id="360001")
    assert str(config.fields["module"]) == "tag:module-"
    assert config.base_url == "https://x.test"
    with pytest.raises(ValidationError, match="write native:NAME, custom:ID or tag:PREFIX"):
        desk(fields={"severity": "360001"})
    with pytest.raises(ValidationError, match="kind"):
        desk(fields={"severity": "magic:1"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_url": "ftp://x.test"}, "is not an http(s) URL"),
        ({"name": "Support Desk"}, "name"),
        ({"severity_values": {"P1": 0}}, "severities are 1–4"),
        ({"escalation": {"support-leads": {}}}, "needs a group, an assignee or both"),
        ({"contacts": {"where": "roster_file"}}, "needs roster_file"),
        ({"statuses": {"2": "pending"}}, "statuses.2"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_desk_configuration_names_the_problem(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        desk(**overrides)


def test_freshdesk_style_numeric_statuses_map_to_normalized_ones() -> None:
    config = desk(
        statuses={"2": "open", "3": "waiting_on_customer", "4": "resolved", "5": "closed"}
    )
    assert config.statuses["3"] == Status.WAITING_ON_CUSTOMER


class Minimal(Connector):
    name: ClassVar[str] = "minimal"
    capabilities: ClassVar[frozenset[str]] = frozenset({"read", "set_status"})

    async def read_ticket(self, ticket_id: str) -> Ticket:
        return Ticket(
            id=ticket_id,
            number=ticket_id,
            requester=Contact(id="c"),
            created_at=NOW,
            updated_at=NOW,
        )

    async def changes(self, cursor: str | None, *, since: datetime | None = None) -> ChangePage:
        return ChangePage(tickets=(), cursor=cursor or "", has_more=False)

    async def apply_set_status(self, ticket: Ticket, action: SetStatus) -> Any:
        return self.result(action)


def test_undeclared_kinds_are_unsupported_and_internal_kinds_unchanged() -> None:
    async def scenario() -> list[Any]:
        async with Minimal(desk()) as connector:
            ticket = await connector.read_ticket("1")
            return await connector.apply(
                ticket,
                [
                    SetStatus(rule_id="X-1", reason="r", status=Status.OPEN, key="a"),
                    Close(rule_id="X-1", reason="r", key="b"),
                    Record(rule_id="X-1", reason="r", message="m", key="c"),
                ],
            )

    results = asyncio.run(scenario())
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.UNSUPPORTED, Outcome.UNCHANGED]
    assert [r.key for r in results] == ["a", "b", "c"]


def test_capabilities_must_be_known_and_backed_by_methods() -> None:
    with pytest.raises(TypeError, match="unknown capabilities"):
        type("Bad", (Minimal,), {"capabilities": frozenset({"teleport"})})
    with pytest.raises(TypeError, match=r"declares \['close'\] but has no apply_<kind>"):
        type("Bad", (Minimal,), {"capabilities": frozenset({"close"})})


def test_a_connector_without_webhooks_rejects_deliveries() -> None:
    connector = Minimal(desk())
    with pytest.raises(WebhookRejected, match="unsigned"):
        connector.verify_webhook({}, b"{}", NOW)
    asyncio.run(connector.aclose())


def test_oversized_deliveries_are_rejected_before_parsing() -> None:
    from ticketwarden.core.connector import DeskSecrets

    connector = Minimal(
        desk(webhooks={"max_body_bytes": 10}), DeskSecrets(webhook_secret=SecretStr("s"))
    )
    with pytest.raises(WebhookRejected) as rejected:
        connector.verify_webhook({}, b"x" * 11, NOW)
    assert rejected.value.reason == "too_large"
    asyncio.run(connector.aclose())


def test_signatures_and_timestamps() -> None:
    secret = SecretStr("k")
    mac = hmac_sha256(secret, b"1700000000", b"body")
    assert signatures_match(mac, hmac_sha256(secret, b"1700000000body"))
    assert not signatures_match(mac, hmac_sha256(SecretStr("other"), b"1700000000body"))
    check_timestamp(NOW - timedelta(minutes=4), NOW, timedelta(minutes=5))
    with pytest.raises(WebhookRejected, match="expired"):
        check_timestamp(NOW - timedelta(minutes=6), NOW, timedelta(minutes=5))
    with pytest.raises(WebhookRejected, match="expired"):
        check_timestamp(NOW + timedelta(minutes=6), NOW, timedelta(minutes=5))


def test_replay_guard_forgets_only_after_the_window() -> None:
    guard = ReplayGuard(timedelta(minutes=5))
    guard.check_and_remember("d1", NOW)
    with pytest.raises(WebhookRejected, match="replayed"):
        guard.check_and_remember("d1", NOW + timedelta(minutes=9))
    guard.check_and_remember("d1", NOW + timedelta(minutes=11))


def test_a_delivery_is_a_replay_only_once_it_was_accepted() -> None:
    """A delivery whose storing failed must get through when the helpdesk retries it."""
    guard = ReplayGuard(timedelta(minutes=5))
    guard.check("d2", NOW)
    guard.check("d2", NOW)
    guard.remember("d2", NOW)
    with pytest.raises(WebhookRejected, match="replayed"):
        guard.check("d2", NOW)


def test_a_bare_helpdesk_domain_means_https() -> None:
    assert desk(base_url="acme.freshdesk.com").base_url == "https://acme.freshdesk.com"
    with pytest.raises(ValidationError, match="is not an http"):
        desk(base_url="acme")
