"""A real Request Tracker for the tests: where it is, and how a test seeds and reads it.

CI starts RT with ``.ci/start_rt.sh`` (initialdata ``tests/rt_initialdata.pl``) and exports
``TICKETWARDEN_TEST_RT_URL`` (RT's web root). Without it the real-server tests skip — except
under ``CI=true``, where a missing RT fails them: CI must not pass by skipping.

Everything here talks to RT with plain httpx, never through ticketwarden, so the tests check
ticketwarden's effects by RT's own account. A customer writes the way customers write to RT:
an e-mail through RT's mail gateway (``/REST/1.0/NoAuth/mail-gateway``, what ``rt-mailgate``
posts), so their messages are theirs in RT's history.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

URL_ENV = "TICKETWARDEN_TEST_RT_URL"


@dataclass(frozen=True)
class LiveRT:
    """Where the test RT is and whom to log in as."""

    url: str  # RT's web root, e.g. http://127.0.0.1:18080
    user: str
    password: str

    @property
    def api(self) -> str:
        return f"{self.url}/REST/2.0"

    @property
    def rtname(self) -> str:
        """RT's ``$rtname`` — the tag customers' subjects carry (``[rt-test-18080 #12]``)."""
        port = httpx.URL(self.url).port
        return os.environ.get("TICKETWARDEN_TEST_RT_NAME", f"rt-test-{port}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, auth=(self.user, self.password), timeout=30)

    def new_queue(self) -> str:
        """A fresh queue, so that a test sees only its own tickets."""
        name = f"tw-{secrets.token_hex(4)}"
        with self.client() as rt:
            response = rt.post("/queue", json={"Name": name})
            assert response.status_code == 201, response.text
        return name

    def mail(self, queue: str, sender: str, subject: str, body: str) -> None:
        """The customer's e-mail, delivered as ``rt-mailgate`` delivers it."""
        message = (
            f"From: {sender}\nTo: rt@localhost\nSubject: {subject}\n"
            f"Message-ID: <{secrets.token_hex(8)}@customer.example>\n"
            "Content-Type: text/plain; charset=utf-8\n\n"
            f"{body}\n"
        )
        response = httpx.post(
            f"{self.url}/REST/1.0/NoAuth/mail-gateway",
            data={"queue": queue, "action": "correspond", "message": message},
            timeout=30,
        )
        assert response.status_code == 200 and response.text.startswith("ok"), response.text

    def reply(self, ticket_id: str, sender: str, body: str) -> None:
        """The customer replies by e-mail to the ticket (RT finds it by the subject tag)."""
        self.mail("General", sender, f"Re: [{self.rtname} #{ticket_id}] your ticket", body)

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        with self.client() as rt:
            response = rt.get(f"/ticket/{ticket_id}")
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    def custom(self, ticket_id: str) -> dict[str, list[str]]:
        return {cf["name"]: cf["values"] for cf in self.ticket(ticket_id)["CustomFields"]}

    def messages(self, ticket_id: str) -> list[dict[str, str]]:
        """Every Create/Correspond/Comment transaction: type, creator, text."""
        with self.client() as rt:
            history = rt.get(
                f"/ticket/{ticket_id}/history",
                params={"fields": "Type,Creator,Created", "per_page": 100},
            ).json()["items"]
            parts = rt.get(
                f"/ticket/{ticket_id}/attachments",
                params={"fields": "TransactionId,ContentType,Content", "per_page": 100},
            ).json()["items"]
        text: dict[str, str] = {}
        for part in parts:
            if str(part.get("ContentType", "")).startswith("text/plain"):
                text.setdefault(str(part["TransactionId"]), part.get("Content", ""))
        return [
            {"type": t["Type"], "creator": t["Creator"]["id"], "text": text.get(str(t["id"]), "")}
            for t in history
            if t["Type"] in ("Create", "Correspond", "Comment")
        ]

    def search(self, query: str) -> list[str]:
        with self.client() as rt:
            response = rt.get("/tickets", params={"query": query, "per_page": 100})
            response.raise_for_status()
            return [str(item["id"]) for item in response.json()["items"]]


def live_rt() -> LiveRT:
    """The test RT, else skip (outside CI) or fail (``CI=true``)."""
    url = os.environ.get(URL_ENV, "").rstrip("/").removesuffix("/REST/2.0")
    if not url:
        reason = f"no real RT: set {URL_ENV} (.ci/start_rt.sh prints it)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"CI needs a real RT: {reason}", pytrace=False)
        pytest.skip(reason)
    return LiveRT(
        url=url,
        user=os.environ.get("TICKETWARDEN_TEST_RT_USER", "root"),
        password=os.environ.get("TICKETWARDEN_TEST_RT_PASSWORD", "password"),
    )


class LiveClock:
    """Real time for a harness against a real RT, which stamps changes with its own clock.

    ``advance(seconds)`` cannot move RT's clock; it waits until the wall clock is in a later
    second than before (RT keeps whole seconds), which is what the standard tests need of it:
    that what happens after the advance is stamped strictly later than what happened before.
    """

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        start = int(time.time())
        while int(time.time()) <= start:
            time.sleep(0.05)

    async def sleep(self, seconds: float) -> None:
        import asyncio

        self.sleeps.append(seconds)
        await asyncio.sleep(seconds)


def wait_until_next_second() -> None:
    """Let RT's whole-second clock tick once."""
    LiveClock().advance(1)
