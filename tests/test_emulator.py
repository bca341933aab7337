"""The emulator base: authentication, rate limits, faults, request log, webhooks, loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn

from ticketwarden.core.connector import DeskSecrets, Runtime
from ticketwarden.core.errors import OutcomeUnknownError, ProtocolError
from ticketwarden.core.model import EventKind
from ticketwarden.testing.emulator import FakeClock, Fault
from ticketwarden.testing.samples import sample_tickets

from .toydesk import TOKEN, WEBHOOK_SECRET, ToyConnector, ToyEmulator

AUTH = {"authorization": f"Bearer {TOKEN}"}


def emulator(**kwargs: Any) -> ToyEmulator:
    emu = ToyEmulator(clock=FakeClock(), **kwargs)
    for ticket in sample_tickets(1, 3):
        emu.add_ticket(ticket)
    return emu


async def get(emu: ToyEmulator, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=emu.transport(), base_url=emu.base_url) as client:
        return await client.get(path, **kwargs)


def test_requests_without_credentials_are_refused() -> None:
    emu = emulator()
    response = asyncio.run(get(emu, "/api/tickets/101"))
    assert response.status_code == 401
    assert asyncio.run(get(emu, "/api/tickets/101", headers=AUTH)).status_code == 200


def test_rate_limit_answers_with_headers_and_429_until_the_window_ends() -> None:
    emu = emulator(rate_limit=3)

    async def scenario() -> list[httpx.Response]:
        return [await get(emu, "/api/tickets/101", headers=AUTH) for _ in range(4)]

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses[:3]] == ["2", "1", "0"]
    assert int(responses[3].headers["retry-after"]) > 0
    assert isinstance(emu.clock, FakeClock)
    emu.clock.advance(60)
    assert asyncio.run(get(emu, "/api/tickets/101", headers=AUTH)).status_code == 200


def test_scripted_faults_apply_in_order_to_matching_requests() -> None:
    emu = emulator()
    emu.script(Fault("status", status=503, path="/comments"), Fault("status", status=502))

    async def scenario() -> list[int]:
        statuses = []
        for path in ("/api/tickets/101", "/api/tickets/101/comments", "/api/tickets/101"):
            statuses.append((await get(emu, path, headers=AUTH)).status_code)
        return statuses

    assert asyncio.run(scenario()) == [502, 503, 200]
    assert [r.fault for r in emu.requests] == ["status-502", "status-503", None]


def connector(emu: ToyEmulator) -> ToyConnector:
    config, secrets = ToyConnector.conformance_config(emu.base_url)
    assert isinstance(emu.clock, FakeClock)
    runtime = Runtime(
        transport=emu.transport(),
        clock=emu.clock.monotonic,
        sleep=emu.clock.sleep,
        wall_clock=emu.clock.time,
    )
    return ToyConnector(config, secrets, runtime)


def test_malformed_json_becomes_a_protocol_error() -> None:
    emu = emulator()
    emu.script(Fault("malformed"))

    async def scenario() -> None:
        async with connector(emu) as desk:
            await desk.read_ticket("101")

    with pytest.raises(ProtocolError, match="101"):
        asyncio.run(scenario())


@pytest.mark.parametrize(("when", "landed"), [("before", 0), ("after", 1)])
def test_a_timeout_before_or_after_the_server_handled_the_request(when: str, landed: int) -> None:
    emu = emulator()
    emu.script(Fault("timeout", when=when, method="POST"))  # type: ignore[arg-type]

    async def scenario() -> None:
        async with connector(emu) as desk:
            await desk.client.send_json(
                "POST", "/api/tickets/101/comments", {"body": "hello", "public": True}
            )

    with pytest.raises(OutcomeUnknownError):
        asyncio.run(scenario())
    assert len(emu.tickets["101"]["comments"]) == landed
    assert len(emu.requests) == 1, "a non-idempotent request must not be re-sent blindly"


@pytest.mark.parametrize(
    ("when", "error"), [("before", httpx.ConnectError), ("after", httpx.RemoteProtocolError)]
)
def test_dropped_connections(when: str, error: type[Exception]) -> None:
    emu = emulator()
    emu.script(Fault("drop", when=when))  # type: ignore[arg-type]
    with pytest.raises(error):
        asyncio.run(get(emu, "/api/tickets/101", headers=AUTH))


def test_random_faults_are_reproducible_with_a_seed() -> None:
    def run(seed: int) -> list[str | None]:
        emu = ToyEmulator(clock=FakeClock(), seed=seed)
        emu.add_ticket(sample_tickets(1, 1)[0])
        emu.chaos(0.5, Fault("status", status=500), Fault("rate_limit"))

        async def scenario() -> None:
            for _ in range(20):
                await get(emu, "/api/tickets/101", headers=AUTH)

        asyncio.run(scenario())
        return [r.fault for r in emu.requests]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert {"status-500", "rate_limit", None} == set(first)


def test_request_log_keeps_times_and_never_credentials() -> None:
    emu = emulator()
    assert isinstance(emu.clock, FakeClock)
    start = emu.clock.monotonic()
    asyncio.run(get(emu, "/api/tickets/101", headers=AUTH))
    emu.clock.advance(5)
    asyncio.run(get(emu, "/api/tickets/102", headers=AUTH))
    assert [r.at - start for r in emu.requests] == [0, 5]
    assert all("authorization" not in r.headers for r in emu.requests)


def test_webhook_emitter_posts_signed_deliveries_a_connector_accepts() -> None:
    emu = emulator()
    received: list[tuple[dict[str, str], bytes]] = []

    async def receiver(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    response = asyncio.run(
        emu.emit(
            "http://sidecar.test/webhooks/toy",
            "101",
            EventKind.UPDATED,
            WEBHOOK_SECRET,
            transport=httpx.ASGITransport(app=receiver),
        )
    )
    assert response.status_code == 202
    headers, body = received[0]
    desk = connector(emu)
    assert isinstance(emu.clock, FakeClock)
    events = desk.verify_webhook(headers, body, emu.clock.now())
    assert [(e.ticket_id, e.kind) for e in events] == [("101", EventKind.UPDATED)]
    asyncio.run(desk.aclose())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serves_on_a_loopback_port() -> None:
    emu = ToyEmulator(seed=3)
    for ticket in sample_tickets(3, 2):
        emu.add_ticket(ticket)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(emu, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        response = httpx.get(f"http://127.0.0.1:{port}/api/tickets/101", headers=AUTH, timeout=5)
        assert response.status_code == 200
        assert response.json()["ticket"]["id"] == "101"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_secrets_are_not_printed_in_configuration() -> None:
    _, secrets = ToyConnector.conformance_config("http://x.test")
    assert TOKEN not in repr(secrets) and TOKEN not in str(DeskSecrets.model_dump(secrets))
