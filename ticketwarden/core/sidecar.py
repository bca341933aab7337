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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
_JSON_TYPES = frozenset({"application/json"})


class GroupCommit:
    """Stores deliveries in the inbox, many concurrent requests per transaction.

    :meth:`put` waits until the transaction holding its delivery has committed. While one
    transaction runs (in a thread: the database call blocks), newly arriving deliveries queue
    and go into the next one together.
    """

    def __init__(self, inbox: Inbox, clock: Callable[[], datetime], max_batch: int = 500) -> None:
        self.inbox = inbox
        self.clock = clock
        self.max_batch = max_batch
        self._queue: list[tuple[Delivery, asyncio.Future[Stored]]] = []
        self._writing: asyncio.Task[None] | None = None
        self.committed = 0
        self.batches = 0

    async def put(self, delivery: Delivery) -> Stored:
        """Store one delivery; returns once it is committed (raises if the commit failed)."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.append((delivery, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write())
        return await asyncio.shield(future)

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                results = await asyncio.to_thread(
                    self.inbox.put, [d for d, _ in batch], self.clock()
                )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.committed += len(batch)
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
        self.app = Starlette(
            routes=[
                Route("/webhooks/{desk}", self.receive, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

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

    async def receive(self, request: Request) -> Response:
        """``POST /webhooks/{desk}``: verify, store durably, answer 202."""
        rid = request.headers.get("x-request-id", "")
        rid = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex
        token = request_id.set(rid)
        try:
            response = await self._receive(request)
        finally:
            request_id.reset(token)
        response.headers["x-request-id"] = rid
        return response

    async def _receive(self, request: Request) -> Response:
        desk = request.path_params["desk"]
        connector = self.verifiers.get(desk)
        if connector is None:
            return self._reject("-", "unknown_desk", 404, f"no desk named {desk!r}")
        if not self.accepting:
            return _problem(503, "shutting_down", "the sidecar is shutting down; retry")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _JSON_TYPES:
            return self._reject(
                desk, "unsupported_media_type", 415, f"expected application/json, not {media!r}"
            )
        limit = connector.config.webhooks.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return self._reject(desk, "too_large", 413, f"{declared} bytes; the limit is {limit}")
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    return self._reject(desk, "too_large", 413, f"more than {limit} bytes")
        except ClientDisconnect:
            return _problem(400, "disconnected", "the client went away")
        now = self.clock()
        try:
            events = connector.verify_webhook(dict(request.headers), bytes(body), now)
        except WebhookRejected as exc:
            return self._reject(desk, exc.reason, _STATUS.get(exc.reason, 400), exc.detail)
        except Exception as exc:  # a connector bug on hostile input is still the sender's 400
            log.warning("%s: the connector could not read a delivery: %r", desk, exc)
            return self._reject(desk, "malformed", 400, "the delivery could not be read")
        if not events:
            return JSONResponse({"stored": 0, "duplicates": 0}, status_code=202)
        delivery = Delivery(desk=desk, events=events, body_hash=body_hash(bytes(body)))
        try:
            stored = await self.writer.put(delivery)
        except Exception as exc:  # StoreError, a locked or unreachable database, …
            log.error("%s: could not store a delivery: %s", desk, exc)
            return _problem(503, "store_unavailable", "the delivery could not be stored; retry")
        if stored.replayed:
            return self._reject(
                desk, "replayed", 409, "this delivery id was received with a different body"
            )
        self.metrics.webhooks_received.labels(desk).inc()
        if stored.duplicates:
            self.metrics.webhooks_duplicate.labels(desk).inc(stored.duplicates)
        if stored.new and self.worker is not None:
            self.worker.wake()
        log.info(
            "%s: delivery %s stored (%d new, %d already stored)",
            desk,
            events[0].delivery_id,
            stored.new,
            stored.duplicates,
        )
        return JSONResponse(
            {"stored": stored.new, "duplicates": stored.duplicates}, status_code=202
        )

    def _reject(self, desk: str, reason: str, status: int, detail: str) -> Response:
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


def _problem(status: int, reason: str, detail: str) -> Response:
    """A JSON error body naming the reason (``bad_signature``, ``too_large``, …)."""
    return JSONResponse({"error": reason, "detail": detail}, status_code=status)


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
