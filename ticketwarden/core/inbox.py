"""The sidecar's durable webhook inbox: verified events wait here until a worker carries them out.

A delivery is answered 202 only after its events are committed here, so an acknowledged webhook
survives any crash. Workers then claim the events of one ticket at a time, in arrival order;
whatever happens while one is carried out, it is marked done, retried with backoff, or — after
``max_attempts`` — dead-lettered for an operator (``ticketwarden inbox``).

- **Duplicates.** A helpdesk redelivering an event (same delivery id, same body) is answered as
  accepted and stored once. The same delivery id with a *different* body is refused as a
  replay: whoever sent it is not repeating what the helpdesk said.
- **Claims.** A worker claims every ready event of one ticket, so a ticket's events are never
  handled by two workers at once nor out of order; a ticket whose earlier event is backing off
  waits for it. On PostgreSQL the candidate row is taken ``FOR UPDATE SKIP LOCKED`` and the
  ticket with a transaction-scoped advisory lock, so any number of replicas claim without
  blocking one another; on SQLite ``BEGIN IMMEDIATE`` serializes claims. A claim lapses after
  ``claim_ttl``, and at once when its holder, a process of this machine, has died.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from ticketwarden.core.connector import WebhookEvent
from ticketwarden.core.store import Store, holder_is_dead, inbox_table

__all__ = [
    "Backoff",
    "Claim",
    "Delivery",
    "Inbox",
    "InboxDepth",
    "InboxRow",
    "Stored",
    "body_hash",
]

RowStatus = Literal["pending", "processing", "done", "dead"]
STATUSES: tuple[RowStatus, ...] = ("pending", "processing", "done", "dead")
_t = inbox_table
_CLAIM_TRIES = 8


_INSERT_COLUMNS = (
    "desk",
    "delivery_id",
    "ticket_id",
    "kind",
    "body_hash",
    "event",
    "received_at",
    "status",
    "attempts",
    "next_attempt_at",
)
_TIME_COLUMNS = frozenset({"received_at", "next_attempt_at"})


def body_hash(body: bytes) -> str:
    """The SHA-256 of a delivery's body: what tells a redelivery from a replayed id."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Delivery:
    """One verified webhook delivery to store: its desk, events and body hash."""

    desk: str
    events: Sequence[WebhookEvent]
    body_hash: str


@dataclass(frozen=True)
class Stored:
    """What storing one delivery did: events newly stored, events already there, or a
    refused replay (nothing stored)."""

    new: int = 0
    duplicates: int = 0
    replayed: bool = False


@dataclass(frozen=True)
class InboxRow:
    """One stored event and where it stands."""

    id: int
    desk: str
    delivery_id: str
    ticket_id: str
    kind: str
    received_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None
    claimed_until: datetime | None
    last_error: str | None
    done_at: datetime | None
    event: str

    @classmethod
    def of(cls, row: RowMapping) -> InboxRow:
        """The row as read from the table."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def webhook_event(self) -> WebhookEvent:
        """The normalized event as the connector parsed it."""
        return WebhookEvent.model_validate_json(self.event)


@dataclass(frozen=True)
class Claim:
    """The ready events of one ticket, claimed by one worker."""

    desk: str
    ticket_id: str
    holder: str
    rows: tuple[InboxRow, ...]

    @property
    def ids(self) -> list[int]:
        """The claimed rows' ids."""
        return [r.id for r in self.rows]

    @property
    def attempts(self) -> int:
        """How often these events were tried before (the most of any row)."""
        return max(r.attempts for r in self.rows)


@dataclass(frozen=True)
class InboxDepth:
    """The inbox at a glance, for ``/metrics`` and ``/readyz``."""

    pending: int
    processing: int
    dead: int
    oldest_pending: datetime | None


@dataclass
class Backoff:
    """Retry delays: ``base · 2^(attempt-1)``, at most ``cap``, times a random factor in
    ``[1 - jitter, 1]`` so a burst of failures does not come back as a burst."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=10)
    jitter: float = 0.2
    random: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> timedelta:
        """The wait before retry number ``attempt`` (1 for the first retry)."""
        exponent = max(attempt - 1, 0)
        raw = self.base * (2 ** min(exponent, 32))
        bounded: timedelta = min(raw, self.cap)
        factor: float = 1 - self.jitter * self.random.random()
        return bounded * factor


class Inbox:
    """The inbox's operations over a :class:`~ticketwarden.core.store.Store`."""

    def __init__(
        self,
        store: Store,
        *,
        max_attempts: int = 8,
        claim_ttl: timedelta = timedelta(minutes=5),
        backoff: Backoff | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.store = store
        self.max_attempts = max_attempts
        self.claim_ttl = claim_ttl
        self.backoff = backoff or Backoff()

    # -- receiving -------------------------------------------------------------------------------

    def put(self, deliveries: Sequence[Delivery], now: datetime) -> list[Stored]:
        """Store several deliveries in one committed transaction (the sidecar commits
        concurrent requests together); one result per delivery, in order. One query reads
        what is already stored, one statement inserts the rest."""
        if not deliveries:
            return []
        with self.store.transaction() as tx:
            known = self._known(tx, deliveries)
            results: list[Stored] = []
            rows: list[dict[str, Any]] = []
            for delivery in deliveries:
                ids = {(delivery.desk, e.delivery_id) for e in delivery.events}
                stored = [known.get(i, {}) for i in ids]
                if any(h != delivery.body_hash for tickets in stored for h in tickets.values()):
                    results.append(Stored(replayed=True))
                    continue
                fresh = [
                    e
                    for e in _unique(delivery.events)
                    if e.ticket_id not in known.get((delivery.desk, e.delivery_id), {})
                ]
                for event in fresh:
                    seen = known.setdefault((delivery.desk, event.delivery_id), {})
                    seen[event.ticket_id] = delivery.body_hash
                    rows.append(
                        {
                            "desk": delivery.desk,
                            "delivery_id": event.delivery_id,
                            "ticket_id": event.ticket_id,
                            "kind": event.kind.value,
                            "body_hash": delivery.body_hash,
                            "event": event.model_dump_json(),
                            "received_at": now,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                        }
                    )
                results.append(Stored(new=len(fresh), duplicates=len(delivery.events) - len(fresh)))
            if rows:
                self._insert(tx, rows)
        return results

    def _insert(self, tx: Connection, rows: list[dict[str, Any]]) -> None:
        """One executemany of the new rows, straight to the driver: this runs for every burst
        the helpdesk sends, and SQLAlchemy's per-row parameter processing would cost more than
        the database does. Times go in as the store's own column type writes them."""
        sqlite = self.store.dialect == "sqlite"
        marker = "?" if sqlite else "%s"
        sql = (
            f"INSERT INTO webhook_inbox ({', '.join(_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join([marker] * len(_INSERT_COLUMNS))}) "
            "ON CONFLICT (desk, delivery_id, ticket_id) DO NOTHING"
        )
        stamp = rows[0]["received_at"]
        when: Any = stamp.astimezone(UTC).isoformat(timespec="microseconds") if sqlite else stamp
        tx.exec_driver_sql(
            sql,
            [tuple(when if c in _TIME_COLUMNS else r[c] for c in _INSERT_COLUMNS) for r in rows],
        )

    def _known(
        self, tx: Connection, deliveries: Sequence[Delivery]
    ) -> dict[tuple[str, str], dict[str, str]]:
        """For each (desk, delivery id) of these deliveries already stored: the body hash of
        each of its events, by ticket."""
        by_desk: dict[str, set[str]] = {}
        for delivery in deliveries:
            by_desk.setdefault(delivery.desk, set()).update(e.delivery_id for e in delivery.events)
        known: dict[tuple[str, str], dict[str, str]] = {}
        for desk, ids in by_desk.items():
            ordered = sorted(ids)
            for start in range(0, len(ordered), 500):
                query = sa.select(_t.c.delivery_id, _t.c.ticket_id, _t.c.body_hash).where(
                    _t.c.desk == desk, _t.c.delivery_id.in_(ordered[start : start + 500])
                )
                for row in tx.execute(query):
                    known.setdefault((desk, row.delivery_id), {})[row.ticket_id] = row.body_hash
        return known

    # -- working ---------------------------------------------------------------------------------

    def has_ready(self, now: datetime, desks: Collection[str] | None = None) -> bool:
        """Whether any event might be claimable now (a cheap read before a write lock)."""
        query = sa.select(_t.c.id).where(self._claimable(now)).limit(1)
        if desks is not None:
            query = query.where(_t.c.desk.in_(list(desks)))
        with self.store.reading() as connection:
            return connection.execute(query).first() is not None

    def claim(
        self, holder: str, now: datetime, desks: Collection[str] | None = None
    ) -> Claim | None:
        """Claim the ready events of the ticket whose ready event is oldest, or ``None``."""
        skip: list[tuple[str, str]] = []
        for _ in range(_CLAIM_TRIES):
            with self.store.transaction() as tx:
                candidate = self._candidate(tx, now, desks, skip)
                if candidate is None:
                    return None
                desk, ticket_id = candidate
                if not self._lock_ticket(tx, desk, ticket_id) or self._busy(
                    tx, desk, ticket_id, holder, now
                ):
                    skip.append(candidate)
                    continue
                rows = self._take(tx, desk, ticket_id, holder, now)
                if rows:
                    return Claim(desk=desk, ticket_id=ticket_id, holder=holder, rows=rows)
                skip.append(candidate)
        return None

    def _claimable(self, now: datetime) -> sa.ColumnElement[bool]:
        return sa.or_(
            sa.and_(_t.c.status == "pending", _t.c.next_attempt_at <= now),
            sa.and_(_t.c.status == "processing", _t.c.claimed_until <= now),
        )

    def _candidate(
        self,
        tx: Connection,
        now: datetime,
        desks: Collection[str] | None,
        skip: Sequence[tuple[str, str]],
    ) -> tuple[str, str] | None:
        later = _t.alias("later")
        backing_off = (
            sa.select(later.c.id)
            .where(
                later.c.desk == _t.c.desk,
                later.c.ticket_id == _t.c.ticket_id,
                later.c.status == "pending",
                later.c.next_attempt_at > now,
            )
            .exists()
        )
        query = (
            sa.select(_t.c.desk, _t.c.ticket_id)
            .where(self._claimable(now), ~backing_off)
            .order_by(_t.c.id)
            .limit(1)
        )
        if desks is not None:
            query = query.where(_t.c.desk.in_(list(desks)))
        for desk, ticket_id in skip:
            query = query.where(sa.not_(sa.and_(_t.c.desk == desk, _t.c.ticket_id == ticket_id)))
        if self.store.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=_t)
        row = tx.execute(query).first()
        return (str(row.desk), str(row.ticket_id)) if row is not None else None

    def _lock_ticket(self, tx: Connection, desk: str, ticket_id: str) -> bool:
        if self.store.dialect != "postgresql":
            return True  # BEGIN IMMEDIATE: this transaction is the only writer
        key = sa.func.hashtextextended(f"inbox/{desk}/{ticket_id}", 0)
        return bool(tx.execute(sa.select(sa.func.pg_try_advisory_xact_lock(key))).scalar())

    def _busy(self, tx: Connection, desk: str, ticket_id: str, holder: str, now: datetime) -> bool:
        """Whether another live worker is carrying out events of this ticket."""
        query = sa.select(_t.c.claimed_by).where(
            _t.c.desk == desk,
            _t.c.ticket_id == ticket_id,
            _t.c.status == "processing",
            _t.c.claimed_until > now,
            _t.c.claimed_by != holder,
        )
        holders = set(tx.execute(query).scalars())
        return any(h is not None and not holder_is_dead(h) for h in holders)

    def _take(
        self, tx: Connection, desk: str, ticket_id: str, holder: str, now: datetime
    ) -> tuple[InboxRow, ...]:
        # no live worker holds this ticket (checked under the lock): every processing row of
        # it was abandoned by a worker that died or let its claim lapse
        mine = sa.and_(
            _t.c.desk == desk,
            _t.c.ticket_id == ticket_id,
            sa.or_(
                sa.and_(_t.c.status == "pending", _t.c.next_attempt_at <= now),
                _t.c.status == "processing",
            ),
        )
        tx.execute(
            sa.update(_t)
            .where(mine)
            .values(status="processing", claimed_by=holder, claimed_until=now + self.claim_ttl)
        )
        query = (
            sa.select(_t)
            .where(
                _t.c.desk == desk,
                _t.c.ticket_id == ticket_id,
                _t.c.status == "processing",
                _t.c.claimed_by == holder,
            )
            .order_by(_t.c.id)
        )
        return tuple(InboxRow.of(r) for r in tx.execute(query).mappings())

    def done(self, claim: Claim, now: datetime) -> None:
        """The claimed events were carried out."""
        with self.store.transaction() as tx:
            self.mark_done(tx, claim, now)

    def mark_done(self, tx: Connection, claim: Claim, now: datetime) -> None:
        """:meth:`done` in the caller's transaction (the one that saves the ticket's state)."""
        tx.execute(
            sa.update(_t)
            .where(_t.c.id.in_(claim.ids), _t.c.claimed_by == claim.holder)
            .values(status="done", done_at=now, claimed_by=None, claimed_until=None)
        )

    def failed(self, claim: Claim, error: str, now: datetime) -> RowStatus:
        """Carrying the claimed events out failed: back off and retry, or dead-letter them
        after ``max_attempts``. Returns the rows' new status."""
        attempt = claim.attempts + 1
        status: RowStatus = "dead" if attempt >= self.max_attempts else "pending"
        retry_at = now + self.backoff.delay(attempt) if status == "pending" else now
        with self.store.transaction() as tx:
            tx.execute(
                sa.update(_t)
                .where(_t.c.id.in_(claim.ids), _t.c.claimed_by == claim.holder)
                .values(
                    status=status,
                    attempts=attempt,
                    next_attempt_at=retry_at,
                    last_error=error[:4000],
                    claimed_by=None,
                    claimed_until=None,
                )
            )
        return status

    def release(self, claim: Claim) -> None:
        """Give claimed events back untried (a worker stopping before it began them)."""
        with self.store.transaction() as tx:
            tx.execute(
                sa.update(_t)
                .where(_t.c.id.in_(claim.ids), _t.c.claimed_by == claim.holder)
                .values(status="pending", claimed_by=None, claimed_until=None)
            )

    def release_dead(self) -> int:
        """Give back the events claimed by processes of this machine that have died (a
        sidecar killed mid-event), so a restart carries them out at once."""
        query = sa.select(_t.c.claimed_by).where(_t.c.status == "processing").distinct()
        with self.store.reading() as connection:
            holders = [h for h in connection.execute(query).scalars() if h is not None]
        dead = [h for h in holders if holder_is_dead(h)]
        if not dead:
            return 0
        with self.store.transaction() as tx:
            result = tx.execute(
                sa.update(_t)
                .where(_t.c.status == "processing", _t.c.claimed_by.in_(dead))
                .values(status="pending", claimed_by=None, claimed_until=None)
            )
        return int(result.rowcount)

    # -- looking and managing --------------------------------------------------------------------

    def depth(self) -> InboxDepth:
        """How many events wait, are being worked on, or are dead; the oldest waiting one."""
        counts = sa.select(_t.c.status, sa.func.count()).group_by(_t.c.status)
        oldest = sa.select(sa.func.min(_t.c.received_at)).where(
            _t.c.status.in_(["pending", "processing"])
        )
        with self.store.reading() as connection:
            by_status = {str(s): int(n) for s, n in connection.execute(counts)}
            first = connection.execute(oldest).scalar()
        if isinstance(first, str):  # SQLite: min() over the text column bypasses the type
            first = datetime.fromisoformat(first)
        return InboxDepth(
            pending=by_status.get("pending", 0),
            processing=by_status.get("processing", 0),
            dead=by_status.get("dead", 0),
            oldest_pending=first,
        )

    def rows(
        self,
        *,
        status: str | None = None,
        desk: str | None = None,
        ticket_id: str | None = None,
        limit: int | None = 100,
    ) -> list[InboxRow]:
        """Stored events, newest first, optionally of one status, desk or ticket."""
        query = sa.select(_t).order_by(_t.c.id.desc())
        if status is not None:
            query = query.where(_t.c.status == status)
        if desk is not None:
            query = query.where(_t.c.desk == desk)
        if ticket_id is not None:
            query = query.where(_t.c.ticket_id == ticket_id)
        if limit is not None:
            query = query.limit(limit)
        with self.store.reading() as connection:
            return [InboxRow.of(r) for r in connection.execute(query).mappings()]

    def get(self, row_id: int) -> InboxRow | None:
        """One stored event by id."""
        with self.store.reading() as connection:
            row = connection.execute(sa.select(_t).where(_t.c.id == row_id)).mappings().first()
        return InboxRow.of(row) if row is not None else None

    def retry(self, ids: Sequence[int] | None, now: datetime) -> int:
        """Put dead-lettered events (``ids``, or all when ``None``) back to be tried afresh."""
        where: list[Any] = [_t.c.status == "dead"]
        if ids is not None:
            where.append(_t.c.id.in_(list(ids)))
        with self.store.transaction() as tx:
            result = tx.execute(
                sa.update(_t)
                .where(*where)
                .values(status="pending", attempts=0, next_attempt_at=now, last_error=None)
            )
        return int(result.rowcount)

    def drop(self, ids: Sequence[int] | None) -> int:
        """Delete dead-lettered events (``ids``, or all when ``None``) an operator gave up on."""
        where: list[Any] = [_t.c.status == "dead"]
        if ids is not None:
            where.append(_t.c.id.in_(list(ids)))
        with self.store.transaction() as tx:
            return int(tx.execute(sa.delete(_t).where(*where)).rowcount)

    def purge(self, done_before: datetime) -> int:
        """Delete events carried out before ``done_before`` (kept until then to recognise
        redeliveries)."""
        with self.store.transaction() as tx:
            result = tx.execute(
                sa.delete(_t).where(_t.c.status == "done", _t.c.done_at < done_before)
            )
        return int(result.rowcount)


def _unique(events: Sequence[WebhookEvent]) -> list[WebhookEvent]:
    """The events with one per (delivery, ticket), first wins."""
    seen: set[tuple[str, str]] = set()
    kept: list[WebhookEvent] = []
    for event in events:
        if (event.delivery_id, event.ticket_id) not in seen:
            seen.add((event.delivery_id, event.ticket_id))
            kept.append(event)
    return kept


def describe(row: InboxRow) -> dict[str, Any]:
    """A row as plain JSON-able data (``ticketwarden inbox show``)."""
    data: dict[str, Any] = {
        name: getattr(row, name) for name in InboxRow.__dataclass_fields__ if name != "event"
    }
    for name, value in data.items():
        if isinstance(value, datetime):
            data[name] = value.isoformat()
    data["event"] = json.loads(row.event)
    return data
