"""The emulator answers like a real RT: one request script, run against both, compared.

For every step the status code must be equal, an RT message list must carry the same
messages (up to ticket ids), and every JSON object the emulator returns must have the real
server's shape: each key it sends is one the real RT sends, with a value of the same JSON
type, recursively (lists by their elements). The emulator leaves out keys the connector never
reads (``Told``, ``TicketCustomFields``, most ``_hyperlinks`` kinds…); it must not invent any.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from rt_live import LiveRT, live_rt
from ticketwarden_rt.emulator import PASSWORD, USER, RTEmulator

SCRIPT: list[tuple[str, str, Any]] = [
    (
        "POST",
        "/ticket",
        {
            "Queue": "General",
            "Subject": "it's \\ odd",
            "Requestor": "shape@example.com",
            "Content": "Grüße",
            "ContentType": "text/plain",
            "CustomFields": {"Severity": "high", "Version": "10.1"},
        },
    ),
    ("GET", "/ticket/{id}", None),
    ("PUT", "/ticket/{id}", {"Status": "bogus"}),
    ("PUT", "/ticket/{id}", {"Status": "stalled"}),
    ("PUT", "/ticket/{id}", {"CustomFields": {"No Such Field": "x"}}),
    ("PUT", "/ticket/{id}", {"CustomFields": {"Severity": "enormous"}}),
    ("PUT", "/ticket/{id}", {"Queue": "No Such Queue"}),
    ("PUT", "/ticket/{id}", {"Owner": "no-such-user"}),
    ("POST", "/ticket/{id}/comment", {"Content": "note", "ContentType": "text/plain"}),
    ("POST", "/ticket/{id}/correspond", {"Content": "reply", "ContentType": "text/plain"}),
    ("GET", "/ticket/{id}/history?fields=Type,Creator,Created&per_page=100", None),
    ("GET", "/ticket/{id}/attachments?fields=TransactionId,ContentType,Content&per_page=100", None),
    (
        "GET",
        "/tickets?query=id%20%3D%20{id}%20AND%20Subject%20%3D%20%27it%5C%27s%20%5C%5C%20odd%27"
        "&fields=Subject,Status,LastUpdated,CustomFields",
        None,
    ),
    ("GET", "/tickets?query=id%20%3D%20{id}%20AND%20Status%20%3D%20%27nope%27", None),
    ("GET", "/ticket/999999", None),
    ("GET", "/user/root", None),
    ("GET", "/queue/1", None),
]


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def differences(emulated: Any, real: Any, path: str = "") -> list[str]:
    if isinstance(emulated, dict) and isinstance(real, dict):
        found = []
        for key, value in emulated.items():
            if key not in real:
                found.append(f"{path}.{key}: only the emulator sends it")
            else:
                found += differences(value, real[key], f"{path}.{key}")
        return found
    if isinstance(emulated, list) and isinstance(real, list):
        if emulated and real:
            return differences(emulated[0], real[0], path + "[]")
        return []
    return [] if emulated == real else [f"{path}: emulator {emulated!r}, RT {real!r}"]


def play(client: httpx.Client) -> list[tuple[int, Any]]:
    answers: list[tuple[int, Any]] = []
    ticket = ""
    for method, path, body in SCRIPT:
        response = client.request(method, path.replace("{id}", ticket), json=body)
        data = response.json() if response.content else None
        if method == "POST" and path == "/ticket":
            ticket = str(data["id"])
        answers.append((response.status_code, data))
    return answers


def messages(data: Any) -> Any:
    if isinstance(data, list) and all(isinstance(m, str) for m in data):
        return [re.sub(r"Ticket \d+", "Ticket N", m) for m in data]
    return None


@pytest.fixture
def rt() -> LiveRT:
    return live_rt()


def test_the_emulator_answers_the_script_as_rt_does(rt: LiveRT) -> None:
    with rt.client() as client:
        real = play(client)
    emulator = RTEmulator()

    async def emulated_answers() -> list[tuple[int, Any]]:
        async with httpx.AsyncClient(
            transport=emulator.transport(),
            base_url="http://emulator.test/REST/2.0",
            auth=(USER, PASSWORD),
        ) as client:
            answers = []
            ticket = ""
            for method, path, body in SCRIPT:
                response = await client.request(method, path.replace("{id}", ticket), json=body)
                data = response.json() if response.content else None
                if method == "POST" and path == "/ticket":
                    ticket = str(data["id"])
                answers.append((response.status_code, data))
            return answers

    emulated = asyncio.run(emulated_answers())
    problems = []
    for (method, path, _), (e_status, e_body), (r_status, r_body) in zip(
        SCRIPT, emulated, real, strict=True
    ):
        step = f"{method} {path}"
        if e_status != r_status:
            problems.append(f"{step}: status {e_status} (RT {r_status})")
        if messages(r_body) is not None and messages(e_body) != messages(r_body):
            problems.append(f"{step}: messages {e_body!r} (RT {r_body!r})")
        problems += [f"{step}: {d}" for d in differences(shape(e_body), shape(r_body))]
    assert not problems, "\n".join(problems)
