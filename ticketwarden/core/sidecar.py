"""The webhook sidecar: an ASGI app (Starlette) that receives signed helpdesk webhooks, stores
them durably, and has the worker apply the policy within seconds.

``POST /webhooks/{desk}`` answers:

- **202** once every event of the delivery is committed to the inbox (a redelivery of a stored
  event is answered 202 too, and stored once);
- **401** for a missing or wrong signature or a timestamp outside the replay window, **409**
  for a delivery id reused with a different body, **400** for a body the connector cannot
  read, **413** past the desk's size limit, **415** for a body that is not JSON, **404** for an
  unknown desk — and in every one of these cases nothing is stored;
- **503** while the sidecar shuts down or the store cannot take the write (the helpdesk
  retries).

Concurrent deliveries are committed together (group commit): each request still waits for
the commit that holds its events, so a 202 is always durable, but a burst costs one
transaction per batch instead of one per request.

``GET /healthz`` says the process is alive; ``GET /readyz`` that the store is reachable and its
schema current; ``GET /metrics`` is the Prometheus exposition.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ticketwarden.core.connector import Connector, DeskSecrets, Runtime, WebhookRejected
from ticketwarden.core.engine import Engine
from ticketwarden.core.inbox import Backoff, Delivery, Inbox, Stored, body_hash
from ticketwarden.core.logs import request_id
from ticketwarden.core.metrics import CONTENT_TYPE, Metrics
from ticketwarden.core.settings import Config
from ticketwarden.core.store import Store
from ticketwarden.core.worker import Worker, WorkerOptions

__all__ = ["GroupCommit", "Sidecar", "build"]

log = logging.getLogger("ticketwarden.sidecar")

_STATUS = {
    "unsigned": 401,
    "bad_signature": 401,
    "expired": 401,
    "replayed": 409,
    "malformed": 400,
    "too_large": 413,
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_WEBHOOK_PATH = re.compile(r"^/webhooks/([^/]+)$")
_ID_PREFIX = f"{uuid.uuid4().hex[:12]}-"
_ID_COUNTER = itertools.count(1)
"""Request ids: unique per process start, without a random draw per request."""
_JSON_TYPES = frozenset({"application/json"})


class GroupCommit:
    """Stores deliveries in the inbox, many concurrent requests per transaction.

    :meth:`put` waits until the transaction holding its delivery has committed. Deliveries
    that arrive while one transaction is being written queue and go into the next together.
    On SQLite the write runs on the event loop itself: a local commit takes a fraction of a
    millisecond, less than handing it to a thread and back; a network database (PostgreSQL) is
    written from a thread, so its round trips never stall the loop.
    """

    def __init__(
        self,
        inbox: Inbox,
        clock: Callable[[], datetime],
        max_batch: int = 500,
        *,
        in_thread: bool | None = None,
    ) -> None:
        self.inbox = inbox
        self.clock = clock
        self.max_batch = max_batch
        self.in_thread = inbox.store.dialect != "sqlite" if in_thread is None else in_thread
        self._queue: list[tuple[Delivery, asyncio.Future[Stored]]] = []
        self._writing: asyncio.Task[None] | None = None
        self.batches = 0

    async def put(self, delivery: Delivery) -> Stored:
        """Store one delivery; returns once it is committed (raises if the commit failed)."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.append((delivery, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write())
        # not shielded: a request cancelled while it waits leaves the batch's write alone
        # (results go only to futures not yet done)
        return await future

    async def _write(self) -> None:
        while self._queue:
            if not self.in_thread:
                await asyncio.sleep(0)  # let the requests already read join this batch
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            deliveries = [d for d, _ in batch]
            try:
                if self.in_thread:
                    results = await asyncio.to_thread(self.inbox.put, deliveries, self.clock())
                else:
                    results = self.inbox.put(deliveries, self.clock())
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def flush(self) -> None:
        """Wait until everything queued is written."""
        while self._writing is not None and not self._writing.done():
            await asyncio.wait([self._writing])


@dataclass
class _Ready:
    ok: bool
    detail: dict[str, Any]


class Sidecar:
    """The webhook receiver and its worker, as one ASGI app (:attr:`app`).

    ``verifiers`` are one connector per desk, used only to verify and parse deliveries (no
    network); the worker builds its own connectors in its own thread. With ``worker=None``
    the app only receives (a receiver-only replica; some other process works the inbox).
    """

    def __init__(
        self,
        store: Store,
        inbox: Inbox,
        verifiers: Mapping[str, Connector],
        *,
        worker: Worker | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        shutdown_grace: float = 30.0,
        run_worker: bool = True,
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.verifiers = dict(verifiers)
        self.worker = worker
        self.metrics = metrics or Metrics(
            depth=inbox.depth, http_stats=worker.http_stats if worker else None
        )
        self.clock = clock
        self.shutdown_grace = shutdown_grace
        self.run_worker = run_worker and worker is not None
        self.writer = GroupCommit(inbox, clock)
        self.accepting = True
        self.web = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )
        self.paths = ("/webhooks/{desk}", "/healthz", "/readyz", "/metrics")
        self._received: dict[str, Any] = {}

    @property
    def app(self) -> Sidecar:
        """The ASGI application (the sidecar itself)."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app: webhooks on the hot path, the rest (and the lifespan) by Starlette.

        ``POST /webhooks/{desk}`` is served as plain ASGI: on the one route that takes the
        helpdesk's bursts, a framework's request and response objects would cost more than
        verifying the signature does.
        """
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _WEBHOOK_PATH.match(scope["path"])
            if match is not None:
                await self._webhook(match.group(1), scope, receive, send)
                return
        await self.web(scope, receive, send)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.run_worker and self.worker is not None:
            self.worker.start()
        log.info("sidecar up: desks %s", ", ".join(sorted(self.verifiers)) or "none")
        try:
            yield
        finally:
            # uvicorn has stopped accepting and finished the requests in flight by now
            self.accepting = False
            await self.writer.flush()
            if self.run_worker and self.worker is not None:
                finished = await asyncio.to_thread(self.worker.stop, self.shutdown_grace)
                if not finished:
                    log.warning(
                        "the worker did not finish within %.0fs; its claimed events are "
                        "retried after the restart",
                        self.shutdown_grace,
                    )
            log.info("sidecar stopped")

    # -- webhooks ------------------------------------------------------------------------------

    async def _webhook(self, desk: str, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /webhooks/{desk}``: verify, store durably, answer 202."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id", "")
        rid = rid if _REQUEST_ID.match(rid) else f"{_ID_PREFIX}{next(_ID_COUNTER):x}"
        token = request_id.set(rid)
        try:
            status, payload = await self._receive(desk, headers, receive)
        finally:
            request_id.reset(token)
        body = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _receive(
        self, desk: str, headers: dict[str, str], receive: Receive
    ) -> tuple[int, dict[str, Any]]:
        connector = self.verifiers.get(desk)
        if connector is None:
            return self._reject("-", "unknown_desk", 404, f"no desk named {desk!r}")
        if not self.accepting:
            return _problem(503, "shutting_down", "the sidecar is shutting down; retry")
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _JSON_TYPES:
            return self._reject(
                desk, "unsupported_media_type", 415, f"expected application/json, not {media!r}"
            )
        limit = connector.config.webhooks.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return self._reject(desk, "too_large", 413, f"{declared} bytes; the limit is {limit}")
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _problem(400, "disconnected", "the client went away")
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return self._reject(desk, "too_large", 413, f"more than {limit} bytes")
        raw = bytes(body)
        now = self.clock()
        try:
            events = connector.verify_webhook(headers, raw, now)
        except WebhookRejected as exc:
            return self._reject(desk, exc.reason, _STATUS.get(exc.reason, 400), exc.detail)
        except Exception as exc:  # a connector bug on hostile input is still the sender's 400
            log.warning("%s: the connector could not read a delivery: %r", desk, exc)
            return self._reject(desk, "malformed", 400, "the delivery could not be read")
        if not events:
            return 202, {"stored": 0, "duplicates": 0}
        delivery = Delivery(desk=desk, events=events, body_hash=body_hash(raw))
        try:
            stored = await self.writer.put(delivery)
        except Exception as exc:  # StoreError, a locked or unreachable database, …
            log.error("%s: could not store a delivery: %s", desk, exc)
            return _problem(503, "store_unavailable", "the delivery could not be stored; retry")
        if stored.replayed:
            return self._reject(
                desk, "replayed", 409, "this delivery id was received with a different body"
            )
        self._count(desk, stored)
        if stored.new and self.worker is not None:
            self.worker.wake()
        log.debug(
            "%s: delivery %s stored (%d new, %d already stored)",
            desk,
            events[0].delivery_id,
            stored.new,
            stored.duplicates,
        )
        return 202, {"stored": stored.new, "duplicates": stored.duplicates}

    def _count(self, desk: str, stored: Stored) -> None:
        counters = self._received.get(desk)
        if counters is None:  # label lookups once per desk, not per request
            counters = self._received[desk] = (
                self.metrics.webhooks_received.labels(desk),
                self.metrics.webhooks_duplicate.labels(desk),
            )
        counters[0].inc()
        if stored.duplicates:
            counters[1].inc(stored.duplicates)

    def _reject(
        self, desk: str, reason: str, status: int, detail: str
    ) -> tuple[int, dict[str, Any]]:
        self.metrics.webhooks_rejected.labels(desk, reason).inc()
        log.info("%s: delivery refused (%s): %s", desk, reason, detail)
        return _problem(status, reason, detail)

    # -- operations ----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        """Alive: the process answers."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready: accepting, the store reachable, its schema the one this code needs."""
        ready = await asyncio.to_thread(self._ready)
        return JSONResponse(
            {"status": "ready" if ready.ok else "not ready", **ready.detail},
            status_code=200 if ready.ok else 503,
        )

    def _ready(self) -> _Ready:
        if not self.accepting:
            return _Ready(False, {"reason": "shutting down"})
        try:
            revision = self.store.revision()
        except Exception as exc:
            return _Ready(False, {"reason": f"store unreachable: {type(exc).__name__}"})
        if revision != Store.HEAD_REVISION:
            return _Ready(
                False,
                {"reason": f"schema at {revision}, needs {Store.HEAD_REVISION}: run db upgrade"},
            )
        return _Ready(True, {"revision": revision})

    async def metrics_endpoint(self, request: Request) -> Response:
        """The Prometheus text exposition."""
        started = time.perf_counter()
        body = await asyncio.to_thread(self.metrics.render)
        log.debug("metrics rendered in %.1f ms", (time.perf_counter() - started) * 1000)
        return Response(body, media_type=CONTENT_TYPE)


def _problem(status: int, reason: str, detail: str) -> tuple[int, dict[str, Any]]:
    """A JSON error body naming the reason (``bad_signature``, ``too_large``, …)."""
    return status, {"error": reason, "detail": detail}


def build(
    config: Config,
    store: Store,
    engine: Engine,
    connector_classes: Mapping[str, type[Connector]],
    secrets: Mapping[str, DeskSecrets],
    *,
    transport: Callable[[str], httpx.AsyncBaseTransport | None] = lambda desk: None,
    runtime: Runtime | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    monotonic: Callable[[], float] = time.monotonic,
    workers: int | None = None,
    scheduler: bool = True,
    run_worker: bool = True,
) -> Sidecar:
    """A sidecar for every desk of ``config`` (with ``[serve]`` settings; ``workers`` and
    ``scheduler`` override them). ``transport`` gives a desk's HTTP transport (an emulator's in
    tests; ``None`` for the network); ``runtime`` the connectors' clocks (a fake one in tests)."""
    serve = config.serve
    inbox = Inbox(
        store,
        max_attempts=serve.max_attempts,
        backoff=Backoff(base=serve.span("retry_base"), cap=serve.span("retry_cap")),
    )
    holder: dict[str, Any] = {}
    metrics = Metrics(
        depth=inbox.depth,
        http_stats=lambda: holder["worker"].http_stats() if "worker" in holder else {},
        wall_clock=clock,
    )

    def connector(desk: str) -> Connector:
        inner = transport(desk) or httpx.AsyncHTTPTransport()
        measured = metrics.transport(desk, inner)
        timing = dataclasses.replace(runtime, transport=measured) if runtime else None
        connected = timing or Runtime(transport=measured)
        return connector_classes[config.desks[desk].connector](
            config.desks[desk], secrets[desk], connected
        )

    verifiers = {
        name: connector_classes[desk.connector](desk, secrets[name], Runtime(transport=_NO_NETWORK))
        for name, desk in config.desks.items()
    }
    worker = Worker(
        store,
        inbox,
        engine,
        list(config.desks),
        connector,
        options=WorkerOptions(
            workers=serve.workers if workers is None else workers,
            timers_every=serve.span("timers_every"),
            catch_up_every=serve.span("catch_up_every"),
            keep_done=serve.span("keep_done"),
            scheduler=scheduler,
            lease_ttl=config.sync.lease,
            candidate_lookback=config.sync.lookback,
            page_limit=config.sync.page_limit,
        ),
        metrics=metrics,
        clock=clock,
        monotonic=monotonic,
    )
    holder["worker"] = worker
    return Sidecar(
        store,
        inbox,
        verifiers,
        worker=worker,
        metrics=metrics,
        clock=clock,
        shutdown_grace=serve.span("shutdown_grace").total_seconds(),
        run_worker=run_worker,
    )


class _NoNetwork(httpx.AsyncBaseTransport):
    """The verifiers' transport: verifying a webhook never needs the helpdesk."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a webhook verifier made an HTTP request")


_NO_NETWORK = _NoNetwork()
