"""Benchmark: ``DeskClient`` overhead against bare ``httpx``, and rate-limit compliance.

``python bench/http_client.py [--requests N]`` (default N=3000)

1. **Overhead.** One in-process emulator (``emulator.transport()``: ASGI, no sockets) with a
   single route ``GET /api/tickets/{id}`` returning a ~1 KB JSON ticket, Bearer auth, no rate
   limit. N GETs of the same ticket through a bare ``httpx.AsyncClient`` and through
   ``DeskClient`` (budget far too large to throttle), sequentially and with 10 concurrent
   workers (``asyncio.gather``). Best of 3, interleaved bare/client/bare/client… so drift hits
   both alike. Overhead = 1 - client_rps / bare_rps.
2. **No 429 once the headers are known.** The emulator enforces R=120 requests a minute with
   Zendesk-style headers (``x-rate-limit``, ``x-rate-limit-remaining``, ``ratelimit-reset``) on a
   ``FakeClock`` shared with the client; ``DeskClient``'s budget is the plan (R, share 1.0).
   1,000 GETs; 429s are counted from the emulator's request log, the first request excluded
   (the client cannot know the window before it). Simulated minutes and the achieved rate vs
   R are reported. A bare httpx client on the same setup is the baseline (it does get 429s).
3. Ends with exactly three goal lines: http_client_overhead (sequential row),
   http_client_429s_after_headers, http_client_rate_use. Always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

try:
    import ticketwarden  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticketwarden.core.http import (
    BearerToken,
    DeskClient,
    HttpSettings,
    RateBudget,
)
from ticketwarden.core.model import Ticket
from ticketwarden.testing.emulator import Emulator, FakeClock

OVERHEAD_TARGET = 0.25
RATE_USE_TARGET = 0.90
PLAN_LIMIT = 120  # requests a minute the emulator enforces in section 2
LIMIT_REQUESTS = 1000
CONCURRENCY = 10
ROUNDS = 3

TOKEN = "bench-secret-token"
BASE_URL = "http://bench.desk.test"
TICKET_ID = "4711"
PATH = f"/api/tickets/{TICKET_ID}"

# --- The emulator ---------------------------------------------------------------------------------


def _ticket_record() -> dict[str, Any]:
    """A ticket in a Zendesk-like shape, ~1 KB as JSON."""
    return {
        "id": int(TICKET_ID),
        "url": f"{BASE_URL}/api/tickets/{TICKET_ID}.json",
        "subject": "Agents show offline after the server update (site 12)",
        "description": (
            "Hello support,\n\nSince we applied the latest server update last night, roughly "
            "140 agents show offline in the console although the machines are running and "
            "reachable. The last check-in time is stuck at the moment of the update. We "
            "restarted the service and rebooted the server, without any change.\n\n"
            "Kind regards,\nAnna Berger"
        ),
        "status": "open",
        "priority": "high",
        "type": "incident",
        "requester_id": 372019,
        "submitter_id": 372019,
        "assignee_id": 9001,
        "organization_id": 55,
        "group_id": 7,
        "tags": ["berlin", "rollout", "vip"],
        "custom_fields": [
            {"id": 360001, "value": "https://rmm.acme.example/"},
            {"id": 360002, "value": "10.1.3"},
            {"id": 360003, "value": "Agent"},
            {"id": 360004, "value": "group 12 / machine 48213, group 3 / machine 10077"},
        ],
        "created_at": "2026-05-12T06:14:02Z",
        "updated_at": "2026-05-13T09:41:55Z",
        "via": {"channel": "email"},
    }


class BenchEmulator(Emulator):
    """One route, Bearer auth, Zendesk-style rate-limit headers."""

    name = "benchdesk"

    def __init__(self, **kwargs: Any) -> None:
        self.record = _ticket_record()
        super().__init__(base_url=BASE_URL, **kwargs)

    def routes(self) -> list[Route]:
        return [Route("/api/tickets/{id}", self.get_ticket, methods=["GET"])]

    def authenticate(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def rate_limit_headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "x-rate-limit": str(limit),
            "x-rate-limit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }

    async def get_ticket(self, request: Request) -> Response:
        if request.path_params["id"] != TICKET_ID:
            return self.json({"error": "RecordNotFound"}, 404)
        return self.json({"ticket": self.record})

    # The bench serves one fixed ticket; the seeding hooks the conformance suite needs change
    # that one record so the emulator stays a complete Emulator.

    def add_ticket(self, ticket: Ticket) -> str:
        self.record = {**self.record, "subject": ticket.subject, "tags": sorted(ticket.tags)}
        return TICKET_ID

    def customer_reply(self, ticket_id: str, body: str) -> None:
        self.record = {**self.record, "description": f"{self.record['description']}\n{body}"}

    def add_unknown_field(self, ticket_id: str) -> None:
        fields = [*self.record["custom_fields"], {"id": 999999, "value": "unknown"}]
        self.record = {**self.record, "custom_fields": fields}


def bare_client(emulator: Emulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=emulator.transport(),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
    )


def desk_client(
    emulator: Emulator, budget: RateBudget, clock: FakeClock | None = None
) -> DeskClient:
    timing: dict[str, Any] = (
        {"clock": clock.monotonic, "sleep": clock.sleep, "wall_clock": clock.time}
        if clock is not None
        else {}
    )
    return DeskClient(
        "benchdesk",
        BASE_URL,
        credentials=BearerToken(token=SecretStr(TOKEN)),
        settings=HttpSettings(budget=budget),
        transport=emulator.transport(),
        **timing,
    )


# --- Section 1: overhead --------------------------------------------------------------------------

Get = Callable[[], Awaitable[httpx.Response]]


async def _run(get: Get, n: int, concurrency: int) -> float:
    """Seconds for n GETs, by `concurrency` workers; every response must be a 200."""

    async def worker(count: int) -> None:
        for _ in range(count):
            response = await get()
            if response.status_code != 200:
                raise RuntimeError(f"unexpected status {response.status_code}")

    shares = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    t0 = time.perf_counter()
    if concurrency == 1:
        await worker(n)
    else:
        await asyncio.gather(*(worker(k) for k in shares))
    return time.perf_counter() - t0


async def overhead_section(n: int) -> list[tuple[str, float, float, list[float], list[float]]]:
    emulator = BenchEmulator()  # no rate limit, real clock (never consulted without one)
    budget = RateBudget(requests_per_minute=10**9, share=1.0, burst=10**6)
    rows = []
    async with bare_client(emulator) as bare, desk_client(emulator, budget) as client:

        async def bare_get() -> httpx.Response:
            return await bare.get(PATH)

        async def client_get() -> httpx.Response:
            return await client.request("GET", PATH)

        for get in (bare_get, client_get):  # warm-up: imports, caches, first-call paths
            await _run(get, 200, 1)
        for label, concurrency in (("sequential", 1), (f"concurrency {CONCURRENCY}", CONCURRENCY)):
            bare_times: list[float] = []
            client_times: list[float] = []
            for _ in range(ROUNDS):
                for get, times in ((bare_get, bare_times), (client_get, client_times)):
                    emulator.requests.clear()
                    gc.collect()
                    times.append(await _run(get, n, concurrency))
            bare_rps = n / min(bare_times)
            client_rps = n / min(client_times)
            rows.append((label, bare_rps, client_rps, bare_times, client_times))
        if client.stats.retries or client.stats.rate_limited:
            print(f"  (warning: client retried {client.stats.retries} times in section 1)")
    return rows


# --- Section 2: rate limit ------------------------------------------------------------------------


async def limit_run(use_desk_client: bool, concurrency: int = 1) -> dict[str, Any]:
    clock = FakeClock()
    emulator = BenchEmulator(clock=clock, rate_limit=PLAN_LIMIT)
    start = clock.monotonic()
    errors = 0
    if use_desk_client:
        budget = RateBudget(requests_per_minute=PLAN_LIMIT, share=1.0)
        async with desk_client(emulator, budget, clock) as client:

            async def get() -> httpx.Response:
                return await client.request("GET", PATH)

            await _limit_workers(get, concurrency)
            errors = client.stats.errors
    else:
        async with bare_client(emulator) as bare:

            async def get() -> httpx.Response:
                return await bare.get(PATH)

            await _limit_workers(get, concurrency)
    elapsed = clock.monotonic() - start
    log = emulator.requests
    ok = sum(1 for r in log if r.status == 200)
    after_first = sum(1 for r in log[1:] if r.status == 429)
    minutes = elapsed / 60.0
    return {
        "sent": len(log),
        "ok": ok,
        "429_after_first": after_first,
        "minutes": minutes,
        "rate": ok / minutes if minutes > 0 else float("inf"),
        "errors": errors,
    }


async def _limit_workers(get: Get, concurrency: int) -> None:
    remaining = [LIMIT_REQUESTS]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            with contextlib.suppress(Exception):  # a raised 429 is counted from the log
                await get()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# --- Main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    n = max(CONCURRENCY, args.requests)
    goals: list[str] = []

    t_start = time.perf_counter()
    try:
        rows = asyncio.run(overhead_section(n))
        size = len(httpx.Response(200, json={"ticket": _ticket_record()}).content)
        print(
            f"overhead: {n} GETs of one ~{size} byte ticket, in-process emulator, "
            f"best of {ROUNDS} interleaved"
        )
        print(f"  {'':<18}{'bare httpx req/s':>18}{'DeskClient req/s':>18}{'overhead':>10}")
        for label, bare_rps, client_rps, _, _ in rows:
            overhead = 1.0 - client_rps / bare_rps
            print(f"  {label:<18}{bare_rps:>18,.0f}{client_rps:>18,.0f}{overhead:>10.1%}")
        for label, _, _, bare_times, client_times in rows:
            print(
                f"  runs {label}: bare {', '.join(f'{t:.2f}s' for t in bare_times)}; "
                f"client {', '.join(f'{t:.2f}s' for t in client_times)}"
            )
        overhead = 1.0 - rows[0][2] / rows[0][1]
        goals.append(
            f"goal http_client_overhead: {overhead * 100:.1f}% "
            f"(target < {OVERHEAD_TARGET * 100:.1f}%) "
            f"{'PASS' if overhead < OVERHEAD_TARGET else 'MISS'}"
        )
    except Exception:
        traceback.print_exc()
        goals.append(
            f"goal http_client_overhead: error (target < {OVERHEAD_TARGET * 100:.1f}%) MISS"
        )

    print()
    try:
        results = [
            ("DeskClient, sequential", asyncio.run(limit_run(True))),
            (f"DeskClient, concurrency {CONCURRENCY}", asyncio.run(limit_run(True, CONCURRENCY))),
            ("bare httpx, sequential", asyncio.run(limit_run(False))),
        ]
        print(
            f"rate limit: {LIMIT_REQUESTS} GETs against an emulator enforcing {PLAN_LIMIT}/min "
            "(Zendesk headers), FakeClock; 429s counted after the first request"
        )
        print(
            f"  {'':<26}{'sent':>6}{'200s':>6}{'429s':>6}{'sim. min':>10}"
            f"{'200s/min':>10}{'vs limit':>10}"
        )
        for label, r in results:
            timed = r["minutes"] > 0  # a client that never waits spends no simulated time
            print(
                f"  {label:<26}{r['sent']:>6}{r['ok']:>6}{r['429_after_first']:>6}"
                f"{r['minutes']:>10.2f}"
                + (
                    f"{r['rate']:>10.1f}{r['rate'] / PLAN_LIMIT:>10.2f}"
                    if timed
                    else f"{'-':>10}{'-':>10}"
                )
            )
        main_run = results[0][1]
        count = main_run["429_after_first"]
        use = main_run["rate"] / PLAN_LIMIT
        goals.append(
            f"goal http_client_429s_after_headers: {count} (target == 0) "
            f"{'PASS' if count == 0 else 'MISS'}"
        )
        goals.append(
            f"goal http_client_rate_use: {use:.2f} (target >= {RATE_USE_TARGET:.2f}) "
            f"{'PASS' if use >= RATE_USE_TARGET else 'MISS'}"
        )
    except Exception:
        traceback.print_exc()
        goals.append("goal http_client_429s_after_headers: error (target == 0) MISS")
        goals.append(f"goal http_client_rate_use: error (target >= {RATE_USE_TARGET:.2f}) MISS")

    print()
    print(f"total {time.perf_counter() - t_start:.1f}s")
    print()
    for line in goals:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
