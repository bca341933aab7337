"""The emulator base: a stateful in-process helpdesk that connector emulators build on.

An emulator is an ASGI app speaking one helpdesk's API subset with the vendor's real shapes.
This base gives every emulator the parts that are the same everywhere:

- **authentication**: every request must carry credentials the emulator accepts (401 otherwise);
- **a rate limit** per fixed one-minute window on the emulator's clock, answered with the
  vendor's own headers (:meth:`Emulator.rate_limit_headers`) and 429 + ``Retry-After``;
- **fault injection**, scripted (:meth:`Emulator.script`) or random (:meth:`Emulator.chaos`):
  5xx, 429 with ``Retry-After``, malformed JSON, and — at the transport, in-process — timeouts
  and dropped connections *before* the app sees the request or *after* it has processed it (the
  case where a created comment landed but its response was lost);
- **a request log** (:attr:`Emulator.requests`) with the emulator-clock time of each request;
- **a webhook emitter** that POSTs signed deliveries (:meth:`Emulator.make_webhook`,
  :meth:`Emulator.emit`) as the helpdesk's triggers would.

Use it in-process with :meth:`Emulator.transport` (an ``httpx`` transport, no sockets) or on a
loopback port with :meth:`Emulator.serve` (uvicorn). Time comes from an injectable clock
(:class:`FakeClock` in tests), so rate-limit windows and ``Retry-After`` need no real waiting.
"""

from __future__ import annotations

import abc
import asyncio
import json
import random
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ticketwarden.core.model import EventKind, Ticket

CONTROL_CLOCK = "/_emulator/clock"
"""The emulator-control route that moves a :class:`SettableClock`."""


class Clock(Protocol):
    """What an emulator and a client need of time."""

    def monotonic(self) -> float: ...
    def time(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """The machine's clocks (for ``ticketwarden emulate`` and loopback use)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SettableClock(RealClock):
    """The machine's clocks, except that the wall clock can be moved (forward or back).

    ``ticketwarden emulate --control`` serves with it, so an end-to-end test that runs
    ``ticketwarden sync --as-of T`` against an emulator in another process can first move the
    emulator to T (``POST /_emulator/clock {"at": "…"}``): the helpdesk then stamps its changes
    with the same simulated time the engine evaluates at.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def set(self, at: datetime) -> None:
        """Make the wall clock read ``at`` now (and advance in real time from there)."""
        self.offset = at.timestamp() - time.time()


class FakeClock:
    """Simulated time shared by an emulator and a client: ``sleep`` advances it instantly.

    ``sleeps`` records every wait, so tests can assert that a client waited exactly as long as
    ``Retry-After`` asked, without ever waiting for real.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._wall = (start or datetime(2026, 11, 23, 8, 0, tzinfo=UTC)).timestamp()
        self._mono = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def now(self) -> datetime:
        """The wall time as an aware datetime."""
        return datetime.fromtimestamp(self._wall, UTC)

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._mono += seconds
        self._wall += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


FaultKind = Literal["status", "rate_limit", "malformed", "timeout", "drop", "slow"]


@dataclass(frozen=True)
class Fault:
    """One injected failure.

    ``status``: answer ``status`` (default 500). ``rate_limit``: 429 with ``Retry-After``.
    ``malformed``: a 200 whose body is not JSON. ``timeout``/``drop``: the client sees a read
    timeout or a dropped connection, ``when`` ``before`` the app sees the request or ``after``
    it processed it. ``slow``: the response is delayed by ``delay`` seconds (real time on
    loopback; in-process past the client's read timeout it is a timeout).
    """

    kind: FaultKind
    status: int = 500
    retry_after: float = 30.0
    when: Literal["before", "after"] = "before"
    delay: float = 0.0
    method: str | None = None
    path: str | None = None  # a regular expression searched in the path

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to the request (``method="WRITE"``: any method but GET,
        HEAD and OPTIONS — for faults aimed at whatever request carries a change)."""
        wanted = self.method.upper() if self.method is not None else None
        if wanted == "WRITE":
            if method.upper() in ("GET", "HEAD", "OPTIONS"):
                return False
        elif wanted is not None and wanted != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass
class LoggedRequest:
    """One request the emulator received, with the emulator-clock time it arrived."""

    at: float
    method: str
    path: str
    query: str
    body: bytes
    status: int = 0
    fault: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The request body as JSON (``None`` for an empty body)."""
        return json.loads(self.body) if self.body else None


class NoWebhooks(RuntimeError):
    """The emulated helpdesk has no webhooks (its connector declares no ``webhooks``)."""


class _Dropped(Exception):
    """Internal: the transport must fail this request."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault


class Emulator(abc.ABC):
    """Base of every helpdesk emulator; subclasses add the vendor's routes and shapes.

    Subclasses implement :meth:`routes` and the seeding/inspection methods the conformance
    suite uses (:meth:`add_ticket`, :meth:`customer_reply`, :meth:`add_unknown_field`,
    :meth:`make_webhook`), and override :meth:`authenticate`, :meth:`rate_limit_headers` and
    :meth:`error_body` with the vendor's behaviour. ``__init__`` builds the router from
    :meth:`routes`, so a subclass sets up its own state *before* calling ``super().__init__``.
    """

    name: ClassVar[str] = "emulator"
    page_size: ClassVar[int] = 100
    """How many tickets one page of the change feed holds (the suite pages past it)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limit: int | None = None,
        seed: int = 0,
        base_url: str = "http://emulator.test",
    ) -> None:
        self.clock: Clock = clock or RealClock()
        self.rate_limit = rate_limit
        self.base_url = base_url
        self.random = random.Random(seed)
        self.requests: list[LoggedRequest] = []
        self._script: deque[Fault] = deque()
        self._chaos: tuple[float, tuple[Fault, ...]] = (0.0, ())
        self._window: tuple[int, int] = (-1, 0)
        self._pending_transport_fault: Fault | None = None
        self.router = Starlette(routes=self.routes())

    # --- what subclasses provide -------------------------------------------------------------

    @abc.abstractmethod
    def routes(self) -> list[Route]:
        """The vendor API routes this emulator serves."""

    @abc.abstractmethod
    def add_ticket(self, ticket: Ticket) -> str:
        """Store a normalized ticket in the vendor's shape; return the desk's ticket id."""

    @abc.abstractmethod
    def customer_reply(self, ticket_id: str, body: str) -> None:
        """The customer writes to the ticket (it changes and reappears in the change feed)."""

    @abc.abstractmethod
    def add_unknown_field(self, ticket_id: str) -> None:
        """Give the ticket a custom field value no configuration mentions."""

    def make_webhook(
        self,
        ticket_id: str,
        kind: EventKind,
        secret: str,
        *,
        delivery_id: str | None = None,
        at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A signed delivery as the helpdesk would POST it: ``(headers, body)``."""
        raise NoWebhooks(f"the {self.name} emulator sends no webhooks")

    def authenticate(self, request: Request) -> bool:
        """Whether the request carries credentials this helpdesk accepts."""
        return bool(request.headers.get("authorization"))

    def rate_limit_headers(self, limit: int, remaining: int, reset: int) -> dict[str, str]:
        """The vendor's rate-limit headers for a response."""
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(reset),
        }

    def error_body(self, status: int, message: str) -> Any:
        """The vendor's error body shape."""
        return {"error": message}

    # --- faults ----------------------------------------------------------------------------------

    def script(self, *faults: Fault) -> None:
        """Queue faults for the next matching requests, in order."""
        self._script.extend(faults)

    def chaos(self, probability: float, *faults: Fault) -> None:
        """Inject one of ``faults`` at random (seeded) into that share of requests."""
        self._chaos = (probability, faults)

    def _next_fault(self, method: str, path: str) -> Fault | None:
        for i, fault in enumerate(self._script):
            if fault.matches(method, path):
                del self._script[i]
                return fault
        probability, faults = self._chaos
        if faults and self.random.random() < probability:
            candidates = [f for f in faults if f.matches(method, path)]
            if candidates:
                return self.random.choice(candidates)
        return None

    # --- the ASGI app ---------------------------------------------------------------------------

    def json(
        self, body: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON response as helpdesk APIs send it (UTF-8 declared); routes use it."""
        return JSONResponse(
            body,
            status_code=status,
            headers={"content-type": "application/json; charset=utf-8", **(headers or {})},
        )

    def now(self) -> datetime:
        """The emulator's wall clock to the second (helpdesks' timestamp precision)."""
        return datetime.fromtimestamp(int(self.clock.time()), UTC)

    def _rate_headers(self) -> tuple[dict[str, str], bool]:
        if self.rate_limit is None:
            return {}, False
        now = self.clock.monotonic()
        window = int(now // 60)
        start, count = self._window
        if start != window:
            start, count = window, 0
        reset = max(1, int((window + 1) * 60 - now + 0.999))
        over = count >= self.rate_limit
        if not over:
            count += 1
        self._window = (start, count)
        return self.rate_limit_headers(
            self.rate_limit, max(self.rate_limit - count, 0), reset
        ), over

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = Request(scope)
        if request.url.path == CONTROL_CLOCK and isinstance(self.clock, SettableClock):
            await self._control_clock(request, body)(scope, receive, send)
            return
        entry = LoggedRequest(
            at=self.clock.monotonic(),
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            body=body,
            headers={k: v for k, v in request.headers.items() if k != "authorization"},
        )
        self.requests.append(entry)
        response = await self._respond(scope, body, entry)
        entry.status = response.status_code

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await response(scope, replay, send)

    async def _respond(self, scope: Scope, body: bytes, entry: LoggedRequest) -> Response:
        fault = self._next_fault(entry.method, entry.path)
        if fault is not None and fault.kind in ("timeout", "drop"):
            entry.fault = f"{fault.kind}-{fault.when}"
            if fault.when == "before":
                raise _Dropped(fault)
            self._pending_transport_fault = fault
        request = Request(scope)
        if not self.authenticate(request):
            return self.json(self.error_body(401, "Couldn't authenticate you"), 401)
        headers, over = self._rate_headers()
        if over:
            retry = headers.get("retry-after") or str(self._seconds_to_reset())
            return self.json(
                self.error_body(429, "Too many requests"), 429, {**headers, "retry-after": retry}
            )
        if fault is not None and fault.kind == "rate_limit":
            entry.fault = "rate_limit"
            return self.json(
                self.error_body(429, "Too many requests"),
                429,
                {**headers, "retry-after": str(int(fault.retry_after))},
            )
        if fault is not None and fault.kind == "status":
            entry.fault = f"status-{fault.status}"
            return self.json(
                self.error_body(fault.status, "injected failure"), fault.status, headers
            )
        if fault is not None and fault.kind == "slow":
            entry.fault = "slow"
            await self.clock.sleep(fault.delay)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.router(scope, receive, capture)  # type: ignore[arg-type]
        out_headers = {k.decode(): v.decode() for k, v in captured["headers"]}
        out_headers.pop("content-length", None)
        out_headers.update(headers)
        content = captured["body"]
        if fault is not None and fault.kind == "malformed":
            entry.fault = "malformed"
            content = b'{"ticket": {"id": 1, "subject": "trunc'
        return Response(content, status_code=captured["status"], headers=out_headers)

    def _control_clock(self, request: Request, body: bytes) -> Response:
        """``POST /_emulator/clock {"at": ISO}`` moves a settable clock (emulator control only;
        not part of any vendor's API, and only served by ``ticketwarden emulate --control``)."""
        assert isinstance(self.clock, SettableClock)
        if request.method != "POST":
            return self.json({"at": datetime.fromtimestamp(self.clock.time(), UTC).isoformat()})
        try:
            at = datetime.fromisoformat(json.loads(body)["at"])
        except (ValueError, KeyError, TypeError) as exc:
            return self.json({"error": f'send {{"at": ISO time}}: {exc}'}, 400)
        if at.tzinfo is None:
            return self.json({"error": "the time needs a zone"}, 400)
        self.clock.set(at)
        return self.json({"at": at.isoformat()})

    def _seconds_to_reset(self) -> int:
        now = self.clock.monotonic()
        return max(1, int((int(now // 60) + 1) * 60 - now + 0.999))

    # --- transports and serving ------------------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An in-process transport to this emulator, applying timeout and drop faults."""
        return EmulatorTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 8800) -> None:
        """Serve on a loopback port until interrupted (``ticketwarden emulate``)."""
        import uvicorn

        uvicorn.run(self, host=host, port=port, log_level="warning")

    # --- webhooks ---------------------------------------------------------------------------------

    async def emit(
        self,
        url: str,
        ticket_id: str,
        kind: EventKind,
        secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> httpx.Response:
        """POST a signed delivery for a change to ``url`` (a trigger firing)."""
        headers, body = self.make_webhook(ticket_id, kind, secret)
        async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
            return await client.post(url, content=body, headers=headers)


class EmulatorTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` around an emulator, turning timeout/drop faults into the errors a
    real network produces: before the app saw the request, or after it processed it."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.inner = httpx.ASGITransport(app=emulator)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
        except _Dropped as dropped:
            raise _network_error(dropped.fault, request) from None
        fault = self.emulator._pending_transport_fault
        if fault is not None:
            self.emulator._pending_transport_fault = None
            await response.aclose()
            raise _network_error(fault, request)
        return response


def _network_error(fault: Fault, request: httpx.Request) -> httpx.TransportError:
    if fault.kind == "timeout":
        return httpx.ReadTimeout("injected read timeout", request=request)
    if fault.when == "before":
        return httpx.ConnectError("injected: connection refused", request=request)
    return httpx.RemoteProtocolError("injected: server disconnected", request=request)


def epoch(at: datetime) -> int:
    """Whole seconds since the epoch (many vendors' timestamp format)."""
    return int(at.timestamp())


def iso(at: datetime) -> str:
    """``2026-11-23T08:00:00Z``: the ISO form most vendors use."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Handler = Callable[[Request], Any]
