"""The sidecar end to end, as operators run it: `ticketwarden serve` in its own process, the
Zendesk emulator in another, a burst of 2,000 signed webhooks over loopback — and the sidecar
killed with SIGKILL in the middle of it, then restarted.

What must hold afterwards, read from the emulator and the store, not from the sidecar's word:
every delivery answered 2xx is stored once and carried out; no action is missing (the ledger
has nothing left pending and every ticket named by a webhook has been evaluated) and none is
duplicated (no ticket carries the same ticketwarden comment twice, and every comment the ledger
says was applied is on its ticket exactly once).
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from ticketwarden.core.connector import hmac_sha256
from ticketwarden.core.inbox import Inbox
from ticketwarden.core.model import EventKind
from ticketwarden.core.store import Store
from ticketwarden.plugins.zendesk import fixtures
from ticketwarden.plugins.zendesk.emulator import ZendeskEmulator

from .test_sync_e2e import AUTH, Emulator, environment, free_port, write_config

BURST = 2000
TICKETS = 400
KILL_AFTER = 700  # acknowledged deliveries before the SIGKILL
HIGH_LIMIT = 1_000_000
"""Requests a minute the emulator allows and advertises: the client paces itself by the
advertised limit (Zendesk's plan default of 700 would make this a test of patience)."""
BODIES: dict[str, bytes] = {}
"""Each delivery's body as first sent (the helpdesk's retries repeat it)."""


class Sidecar:
    """`ticketwarden serve` in a subprocess (no scheduler: only webhooks may cause actions)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ticketwarden",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    "4",
                    "--no-scheduler",
                    "--log-level",
                    os.environ.get("TW_LOG", "info"),
                ],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the sidecar did not become ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        """Kill it if a failed test left it running."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def ticket_ids(emulator: Emulator) -> list[str]:
    ids: list[str] = []
    page = 1
    while True:
        body = httpx.get(
            f"{emulator.url}/api/v2/tickets.json?page={page}&per_page=100", auth=AUTH, timeout=10
        ).json()
        ids += [str(t["id"]) for t in body["tickets"]]
        if not body.get("next_page"):
            return ids
        page += 1


def our_comments(emulator: Emulator, ticket_id: str) -> list[str]:
    url = f"{emulator.url}/api/v2/tickets/{ticket_id}/comments.json"
    comments = httpx.get(url, auth=AUTH, timeout=10).json()["comments"]
    return [c["body"] for c in comments if c["author_id"] == fixtures.AGENT_ID]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tw.db'}"
        return
    from .pg import fresh_database, postgres_or_skip

    with fresh_database(postgres_or_skip()) as url:
        yield url


def test_a_burst_of_signed_webhooks_survives_a_sigkill_exactly_once(
    tmp_path: Path, database: str
) -> None:
    emulator = Emulator(seed=11, tickets=TICKETS, rate_limit=HIGH_LIMIT)
    with ExitStack() as stack:
        stack.callback(emulator.stop)
        ids = ticket_ids(emulator)
        assert len(ids) == TICKETS
        env = environment(tmp_path, write_config(tmp_path, emulator.url))
        env["TICKETWARDEN_DATABASE_URL"] = database
        sidecar = Sidecar(env, tmp_path / "sidecar.log")
        stack.callback(sidecar.close)
        sidecar.start()
        signer = ZendeskEmulator()
        plan = [
            (f"01BURST{i:019d}", ids[i % len(ids)], EventKind.CREATED if i < len(ids) else None)
            for i in range(BURST)
        ]
        acknowledged, refused = asyncio.run(_burst(sidecar, signer, plan, kill_after=KILL_AFTER))
        assert KILL_AFTER <= len(acknowledged) < BURST, "the kill must land mid-burst"
        assert not refused, refused[:5]

        sidecar.start()  # restarted on a new port, as an orchestrator would
        missing = [p for p in plan if p[0] not in acknowledged]
        again = [p for p in plan if p[0] in acknowledged][:200]  # the helpdesk retries some too
        acknowledged2, refused2 = asyncio.run(_burst(sidecar, signer, missing + again))
        assert not refused2, refused2[:5]
        assert acknowledged2 == {p[0] for p in missing + again}

        store = stack.enter_context(closing(Store(database)))
        inbox = Inbox(store)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            depth = inbox.depth()
            if depth.pending == depth.processing == 0:
                break
            time.sleep(0.5)
        assert sidecar.terminate() == 0  # SIGTERM: a graceful exit
        depth = inbox.depth()
        assert (depth.pending, depth.processing, depth.dead) == (0, 0, 0)

        # every delivery stored exactly once, and carried out
        rows = inbox.rows(limit=None)
        stored = Counter(r.delivery_id for r in rows)
        assert set(stored) == {p[0] for p in plan}
        assert set(stored.values()) == {1}
        assert {r.status for r in rows} == {"done"}

        # nothing missing: every ticket evaluated, nothing left pending in the ledger
        with store.reading() as connection:
            pending = connection.execute(
                sa.text("SELECT count(*) FROM action_ledger WHERE status = 'pending'")
            ).scalar_one()
            applied = connection.execute(
                sa.text(
                    "SELECT ticket_id, count(*) FROM action_ledger "
                    "WHERE status = 'applied' AND kind = 'comment' GROUP BY ticket_id"
                )
            ).all()
            # comments the kill interrupted and re-evaluation no longer asked for: the ledger
            # cannot know whether they landed (settle_interrupted), so they may or may not be
            interrupted = connection.execute(
                sa.text(
                    "SELECT ticket_id, count(*) FROM action_ledger WHERE status = 'unchanged' "
                    "AND kind = 'comment' AND detail LIKE 'interrupted%' GROUP BY ticket_id"
                )
            ).all()
            left = connection.execute(
                sa.text(
                    "SELECT ticket_id, rule_id, kind, key FROM action_ledger "
                    "WHERE status = 'pending'"
                )
            ).all()
        assert pending == 0, [tuple(r) for r in left]
        assert all(store.state("zd", tid) is not None for tid in ids)
        assert sum(n for _, n in applied) > 0

        # nothing twice: no repeated comment on any ticket; the ledger's comments are all there
        applied_by_ticket, interrupted_by_ticket = dict(applied), dict(interrupted)
        for tid in ids:
            bodies = our_comments(emulator, tid)
            assert len(bodies) == len(set(bodies)), (tid, bodies)
            landed = applied_by_ticket.get(tid, 0)
            assert landed <= len(bodies) <= landed + interrupted_by_ticket.get(tid, 0), tid


async def _burst(
    sidecar: Sidecar,
    signer: ZendeskEmulator,
    plan: list[tuple[str, str, EventKind | None]],
    *,
    kill_after: int | None = None,
    concurrency: int = 32,
) -> tuple[set[str], list[str]]:
    """Send the planned deliveries concurrently; kill the sidecar after ``kill_after`` 2xx.
    Returns the acknowledged delivery ids and any 4xx/5xx answers."""
    acknowledged: set[str] = set()
    refused: list[str] = []
    bodies = BODIES
    queue: asyncio.Queue[tuple[str, str, EventKind | None]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    killed = False

    async def send(client: httpx.AsyncClient) -> None:
        nonlocal killed
        while not queue.empty():
            delivery, tid, kind = queue.get_nowait()
            headers, body = signer.make_webhook(
                tid, kind or EventKind.UPDATED, fixtures.WEBHOOK_SECRET, delivery_id=delivery
            )
            # a retry repeats the first attempt's body, signed afresh (as Zendesk does)
            body = bodies.setdefault(delivery, body)
            stamp = headers["X-Zendesk-Webhook-Signature-Timestamp"]
            digest = hmac_sha256(SecretStr(fixtures.WEBHOOK_SECRET), stamp.encode(), body)
            headers["X-Zendesk-Webhook-Signature"] = base64.b64encode(digest).decode()
            try:
                response = await client.post(
                    f"{sidecar.url}/webhooks/zd", content=body, headers=headers
                )
            except httpx.TransportError:
                continue  # not acknowledged: the helpdesk will retry it
            if response.status_code == 202:
                acknowledged.add(delivery)
            else:
                refused.append(f"{response.status_code} {response.text}")
            if kill_after is not None and not killed and len(acknowledged) >= kill_after:
                killed = True
                sidecar.kill()

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(send(client) for _ in range(concurrency)))
    return acknowledged, refused


def test_sigterm_finishes_in_flight_work_and_exits_cleanly(tmp_path: Path) -> None:
    emulator = Emulator(seed=3, tickets=20, rate_limit=HIGH_LIMIT)
    try:
        ids = ticket_ids(emulator)
        env = environment(tmp_path, write_config(tmp_path, emulator.url))
        sidecar = Sidecar(env, tmp_path / "sidecar.log")
        sidecar.start()
        signer = ZendeskEmulator()
        plan = [(f"01TERM{i:020d}", tid, EventKind.CREATED) for i, tid in enumerate(ids)]
        acknowledged, _ = asyncio.run(_burst(sidecar, signer, plan))
        assert sidecar.terminate() == 0
        store = Store(env["TICKETWARDEN_DATABASE_URL"])
        rows = Inbox(store).rows(limit=None)
        assert {r.delivery_id for r in rows} == acknowledged
        # whatever was claimed finished; whatever was not is still waiting, none half-done
        assert {r.status for r in rows} <= {"done", "pending"}
        with store.reading() as connection:
            pending = connection.execute(
                sa.text("SELECT count(*) FROM action_ledger WHERE status = 'pending'")
            ).scalar_one()
        assert pending == 0
        log = (tmp_path / "sidecar.log").read_text()
        assert "sidecar stopped" in log
        assert fixtures.API_TOKEN not in log and fixtures.WEBHOOK_SECRET not in log
        store.close()
    finally:
        emulator.stop()
