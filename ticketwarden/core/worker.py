"""The sidecar's worker: carries inbox events out, fires due timers, and catches up.

Worker tasks claim the ready events of one ticket at a time (:class:`~ticketwarden.core.inbox.
Inbox`), take the ticket as the webhook carried it or read it again when the payload was partial,
and hand it to the very code the sync job runs for a changed ticket (:meth:`DeskSync.process`):
events from the difference to the stored state, the engine, the ledger, the connector. A
scheduler task runs the sync job's pass on every desk — due timers every ``timers_every``, and
the change feed every ``catch_up_every`` for changes whose webhook never came — so a sidecar
alone enforces the whole policy.

Everything a worker does is safe to repeat: an event retried after a crash re-reads the ticket
and the ledger settles what had already landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection

from ticketwarden.core.actions import BaseAction
from ticketwarden.core.connector import ActionResult, Connector
from ticketwarden.core.engine import Engine
from ticketwarden.core.http import ClientStats
from ticketwarden.core.inbox import Claim, Inbox
from ticketwarden.core.logs import request_id
from ticketwarden.core.metrics import Metrics
from ticketwarden.core.model import Roster, Ticket
from ticketwarden.core.store import Store
from ticketwarden.core.sync import DeskSync, SyncOptions

__all__ = ["Worker", "WorkerOptions", "process_holder"]

log = logging.getLogger("ticketwarden.worker")


def process_holder() -> str:
    """``host:pid:nonce``: who holds claims and leases (dead holders are recognised)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class WorkerOptions:
    """How the worker runs."""

    workers: int = 4
    timers_every: timedelta = timedelta(seconds=30)
    catch_up_every: timedelta = timedelta(minutes=5)
    keep_done: timedelta = timedelta(days=2)
    idle_poll: float = 1.0
    """Seconds an idle worker waits before looking at the inbox again (other processes' events;
    its own sidecar wakes it at once)."""
    scheduler: bool = True
    lease_ttl: timedelta = timedelta(minutes=10)
    candidate_lookback: timedelta = timedelta(days=30)
    page_limit: int = 1000


@dataclass
class _Lane:
    """One event loop of the worker: its wake-up and stop events and its connectors (an
    HTTP client belongs to the loop it was made in)."""

    loop: asyncio.AbstractEventLoop
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    desks: dict[str, _Desk] = field(default_factory=dict)

    def call(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` in this lane's loop, from any thread."""
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(callback)


@dataclass
class _Desk:
    connector: Connector
    roster: Roster | None = None
    last_catch_up: float | None = None
    last_timers: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Worker:
    """Inbox workers and the scheduler for the desks of one sidecar process.

    ``connectors`` builds a connector per desk (called once per desk, inside the worker's event
    loop). ``clock`` is the policy's *now*; ``monotonic`` paces the scheduler. Run it with
    :meth:`run` in a loop of your own, or :meth:`start` in a thread of its own (``serve``).
    """

    def __init__(
        self,
        store: Store,
        inbox: Inbox,
        engine: Engine,
        desks: list[str],
        connectors: Callable[[str], Connector],
        *,
        options: WorkerOptions | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.inbox = inbox
        self.engine = engine
        self.desk_names = list(desks)
        self.make_connector = connectors
        self.options = options or WorkerOptions()
        self.metrics = metrics
        self.clock = clock
        self.monotonic = monotonic
        self.holder = process_holder()
        self._lanes: list[_Lane] = []
        self._lanes_lock = threading.Lock()
        self._local = threading.local()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stats: dict[str, ClientStats] = {}

    # -- running -----------------------------------------------------------------------------

    def _lane(self) -> _Lane:
        """This thread's lane (its event loop's wake-up and stop events, its connectors)."""
        lane: _Lane | None = getattr(self._local, "lane", None)
        loop = asyncio.get_running_loop()
        if lane is None or lane.loop is not loop:
            lane = _Lane(loop)
            self._local.lane = lane
            with self._lanes_lock:
                self._lanes.append(lane)
            if self._stop.is_set():
                lane.stopping.set()
        return lane

    @property
    def _desks(self) -> dict[str, _Desk]:
        return self._lane().desks

    async def run(self) -> None:
        """Work in this event loop until :meth:`stop`: the worker tasks and the scheduler;
        in-flight events finish."""
        self._lane()
        await asyncio.to_thread(self.inbox.release_dead)
        try:
            tasks = [
                asyncio.create_task(self._work(i), name=f"inbox-worker-{i}")
                for i in range(self.options.workers)
            ]
            if self.options.scheduler:
                tasks.append(asyncio.create_task(self._schedule(), name="scheduler"))
            await asyncio.gather(*tasks)
        finally:
            await self.aclose()

    def start(self) -> None:
        """Run each worker task, and the scheduler, in a thread of its own with its own event
        loop: a database commit (an fsync on SQLite) then stalls one task, not the web server
        nor the other workers, whose helpdesk requests go on meanwhile."""
        self.inbox.release_dead()
        jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (f"ticketwarden-worker-{i}", functools.partial(self._work, i))
            for i in range(self.options.workers)
        ]
        if self.options.scheduler:
            jobs.append(("ticketwarden-scheduler", self._schedule))
        for name, job in jobs:
            ready = threading.Event()
            thread = threading.Thread(
                target=self._thread_main, args=(job, ready), name=name, daemon=True
            )
            thread.start()
            ready.wait()
            self._threads.append(thread)

    def _thread_main(self, job: Callable[[], Awaitable[None]], ready: threading.Event) -> None:
        async def body() -> None:
            self._lane()
            ready.set()
            try:
                await job()
            finally:
                await self.aclose()

        try:
            asyncio.run(body())
        except Exception:
            log.exception("a worker thread stopped on an error")
        finally:
            ready.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop claiming; let in-flight events finish (within ``timeout`` seconds in all when
        started with :meth:`start`). True when everything finished in time."""
        self._stop.set()
        with self._lanes_lock:
            lanes = list(self._lanes)
        for lane in lanes:
            lane.call(lane.stopping.set)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            thread.join(left)
        return not any(t.is_alive() for t in self._threads)

    def wake(self) -> None:
        """New events are in the inbox: idle workers look now (callable from any thread)."""
        with self._lanes_lock:
            lanes = list(self._lanes)
        for lane in lanes:
            lane.call(lane.wake.set)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    async def aclose(self) -> None:
        """Close every connector this thread's lane opened."""
        lane = self._lane()
        for desk in lane.desks.values():
            name = desk.connector.config.name
            stats = desk.connector.http_stats()
            with self._lanes_lock:
                self._stats[name] = self._stats[name] + stats if name in self._stats else stats
            await desk.connector.aclose()
        lane.desks.clear()

    def http_stats(self) -> Mapping[str, ClientStats]:
        """Each desk's HTTP client counters, over every lane (for ``/metrics``)."""
        with self._lanes_lock:
            stats = dict(self._stats)
            lanes = list(self._lanes)
        for lane in lanes:
            for name, desk in list(lane.desks.items()):
                now = desk.connector.http_stats()
                stats[name] = stats[name] + now if name in stats else now
        return stats

    # -- the inbox ---------------------------------------------------------------------------

    async def _work(self, index: int) -> None:
        holder = f"{self.holder}-w{index}"
        lane = self._lane()
        while not lane.stopping.is_set():
            handled = await self.work_once(holder)
            if handled:
                continue
            lane.wake.clear()
            waiters = [
                asyncio.create_task(lane.wake.wait()),
                asyncio.create_task(lane.stopping.wait()),
            ]
            await asyncio.wait(
                waiters, timeout=self.options.idle_poll, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()

    async def work_once(self, holder: str | None = None) -> bool:
        """Claim and carry out the ready events of one ticket; false when none was ready."""
        holder = holder or f"{self.holder}-w0"
        now = self.clock()
        claim = await asyncio.to_thread(self.inbox.claim, holder, now, self.desk_names)
        if claim is None:
            return False
        token = request_id.set(f"inbox-{claim.ids[0]}")
        try:
            await self._carry_out(claim)
        finally:
            request_id.reset(token)
        return True

    async def drain(self, limit: int = 100_000) -> int:
        """Carry out every ready event now (tests, ``serve --once``); returns tickets handled."""
        handled = 0
        while handled < limit and await self.work_once():
            handled += 1
        return handled

    async def _carry_out(self, claim: Claim) -> None:
        started = self.clock()
        saved = False
        try:
            desk = await self._desk(claim.desk)
            ok, error, saved = await self._process(desk, claim)
        except Exception as exc:  # anything at all: the events must not be lost
            log.exception("inbox event %s of %s failed", claim.ids, claim.desk)
            ok, error = False, f"{type(exc).__name__}: {exc}"
        now = self.clock()
        if ok:
            if not saved:
                await asyncio.to_thread(self.inbox.done, claim, now)
            if self.metrics is not None:
                self.metrics.events_processed.labels(claim.desk).inc(len(claim.rows))
                oldest = min(r.received_at for r in claim.rows)
                self.metrics.webhook_to_action.labels(claim.desk).observe(
                    max((now - oldest).total_seconds(), 0.0)
                )
            log.debug(
                "carried out %d event(s) of %s ticket %s in %.3fs",
                len(claim.rows),
                claim.desk,
                claim.ticket_id,
                (now - started).total_seconds(),
            )
            return
        status = await asyncio.to_thread(self.inbox.failed, claim, error, now)
        if self.metrics is not None:
            self.metrics.events_failed.labels(claim.desk).inc(len(claim.rows))
            if status == "dead":
                self.metrics.events_dead.labels(claim.desk).inc(len(claim.rows))
        log.warning(
            "%s ticket %s: %s; %s",
            claim.desk,
            claim.ticket_id,
            error,
            "dead-lettered" if status == "dead" else "will retry",
        )

    async def _process(self, desk: _Desk, claim: Claim) -> tuple[bool, str, bool]:
        """Carry the claim's ticket through the sync job's code; returns whether it went well,
        the failures, and whether the events were already marked done with the ticket's state."""
        events = [row.webhook_event() for row in claim.rows]
        carried = [e.ticket for e in events if e.ticket is not None]
        sync = self._sync(desk, f"{claim.holder}")
        clean = len(sync.report.failures)
        saved = False

        def mark_done(tx: Connection) -> None:
            nonlocal saved
            if len(sync.report.failures) == clean:  # a failed action leaves them to retry
                self.inbox.mark_done(tx, claim, self.clock())
                saved = True

        sync.on_save = mark_done
        if carried:  # the payload held the whole ticket: the newest copy is the ticket now
            ticket: Ticket = max(carried, key=lambda t: t.updated_at)
        else:
            ticket = await desk.connector.read_ticket(claim.ticket_id)
        ok = await sync.process(ticket, complete=True)
        return ok, "; ".join(sync.report.failures), saved

    def _sync(self, desk: _Desk, holder: str) -> DeskSync:
        options = SyncOptions(
            now=self.clock(),
            holder=holder,
            lease_ttl=self.options.lease_ttl,
            candidate_lookback=self.options.candidate_lookback,
            page_limit=self.options.page_limit,
        )
        sync = DeskSync(desk.connector, self.engine, self.store, options, on_action=self._action)
        if desk.roster is not None:
            sync.roster = desk.roster
        return sync

    def _action(
        self, desk: str, ticket: Ticket, action: BaseAction, result: ActionResult | None
    ) -> None:
        if self.metrics is not None and result is not None:
            self.metrics.actions.labels(desk, action.rule_id, result.outcome.value).inc()
        if result is not None:
            log.info(
                "%s %s: %s %s",
                desk,
                ticket.number,
                action.rule_id,
                action.describe(),
                extra={"desk": desk, "rule": action.rule_id, "outcome": result.outcome.value},
            )

    async def _desk(self, name: str) -> _Desk:
        desk = self._desks.get(name)
        if desk is None:
            desk = self._desks[name] = _Desk(self.make_connector(name))
        if desk.roster is None:
            async with desk.lock:
                if desk.roster is None:
                    sync = self._sync(desk, f"{self.holder}-r")
                    await sync.refresh_roster()
                    desk.roster = sync.roster
        return desk

    # -- the scheduler -----------------------------------------------------------------------

    async def _schedule(self) -> None:
        lane = self._lane()
        while not lane.stopping.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    lane.stopping.wait(), timeout=self.options.timers_every.total_seconds()
                )

    async def tick(self) -> None:
        """One scheduler round: every desk whose timers (or catch-up) are due gets the sync
        job's pass; carried-out events past ``keep_done`` are purged."""
        for name in self.desk_names:
            if self.stopping:
                return
            await self._tick_desk(name)
        await asyncio.to_thread(self.inbox.release_dead)
        await asyncio.to_thread(self.inbox.purge, self.clock() - self.options.keep_done)

    async def _tick_desk(self, name: str) -> None:
        now = self.monotonic()
        try:
            desk = await self._desk(name)
        except Exception as exc:
            log.warning("%s: cannot reach the desk for its timers: %s", name, exc)
            return
        catch_up = desk.last_catch_up is None or (
            now - desk.last_catch_up >= self.options.catch_up_every.total_seconds()
        )
        sync = self._sync(desk, f"{self.holder}-s")
        try:
            report = await sync.run(catch_up=catch_up)
        except Exception as exc:
            log.warning("%s: scheduler pass failed: %s", name, exc)
            return
        desk.roster = sync.roster
        desk.last_timers = now
        if catch_up and report.skipped is None:
            desk.last_catch_up = now
        if self.metrics is not None:
            self.metrics.timer_passes.labels(name, "catch_up" if catch_up else "timers").inc()
        for failure in report.failures:
            log.warning("%s: %s", name, failure)
        if report.skipped:
            log.info(report.skipped)
