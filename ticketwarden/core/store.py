"""The durable state: desk cursors, ticket policy state, the action ledger, the audit trail and
desk leases, on SQLAlchemy Core.

SQLite (one file, WAL) is the embedded default; PostgreSQL (psycopg 3) is for several sidecar
replicas and sync workers sharing one store. Both behave the same:

- **Transactions.** Writes go through :meth:`Store.transaction`. On SQLite it starts with
  ``BEGIN IMMEDIATE``, taking the write lock up front: two processes queue (``busy_timeout``)
  instead of both reading and then deadlocking on the upgrade to a write lock. Never open a
  second write transaction while holding one in the same thread: it would wait for itself.
- **Ledger.** Every action's idempotency key is marked ``pending`` before it is sent and gets
  its outcome after; an ``applied`` row is never downgraded, so nothing is applied twice.
- **Audit trail.** Append-only and hash-chained: each row stores the previous row's hash and
  ``sha256(prev_hash + canonical JSON of its fields)``. Appends lock the one-row chain head
  (``audit_chain``), so concurrent writers queue instead of forking the chain, and ids are
  gapless in chain order.
- **Time.** Timestamps are timezone-aware UTC in and out: ``timestamptz`` on PostgreSQL,
  fixed-width ISO-8601 UTC text on SQLite (which sorts like the instants it names).
- **Schema.** Alembic migrations ship in :mod:`ticketwarden.migrations` and run
  programmatically; an empty or older database is upgraded on open (``auto_upgrade``), and a
  database newer than this code is refused rather than misread.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Final

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ticketwarden.core.actions import Action, BaseAction
from ticketwarden.core.connector import ActionResult, Outcome
from ticketwarden.core.context import TicketState
from ticketwarden.core.errors import ConflictError, TicketwardenError

__all__ = [
    "DEFAULT_DB_ENV",
    "AuditEntry",
    "AuditFilter",
    "AuditRow",
    "LedgerEntry",
    "SchemaTooNewError",
    "Store",
    "StoreError",
    "TicketBusyError",
    "default_sqlite_path",
    "holder_is_dead",
]

DEFAULT_DB_ENV = "TICKETWARDEN_DATABASE_URL"
"""The environment variable naming the database; unset, the SQLite file is used."""

DATA_DIR_ENV = "TICKETWARDEN_DATA_DIR"
GENESIS: Final = "0" * 64
"""The ``prev_hash`` of the first audit row."""

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's write transaction before failing."""

_BEGIN_IMMEDIATE = "ticketwarden_begin_immediate"
_UPGRADE_LOCK = 0x7469636B  # "tick": the advisory lock serializing migrations on PostgreSQL
_CHUNK = 500  # ids per IN (...) query
_CHAIN_FIELDS = ("id", "prev_hash", "hash")


class StoreError(TicketwardenError):
    """The store cannot be used as asked: unreachable, unsupported URL, wrong schema."""


class SchemaTooNewError(StoreError):
    """The database's schema comes from a newer ticketwarden than this one."""


class TicketBusyError(ConflictError):
    """Another live process is writing to this ticket right now; try again shortly."""


CLAIM_TTL = timedelta(minutes=5)
"""How long a ticket claim outlives a holder that stopped without releasing it."""


def default_sqlite_path() -> Path:
    """Where the embedded database lives when no URL is given.

    ``$TICKETWARDEN_DATA_DIR/ticketwarden.db``, else ``$XDG_DATA_HOME/ticketwarden/``, else
    ``~/.local/share/ticketwarden/`` (the XDG default; a relative XDG_DATA_HOME is ignored, as
    the specification says).
    """
    if data_dir := os.environ.get(DATA_DIR_ENV):
        return Path(data_dir).expanduser() / "ticketwarden.db"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "ticketwarden" / "ticketwarden.db"


@dataclass(frozen=True)
class LedgerEntry:
    """What is known about one action, by its idempotency key.

    ``status`` is ``pending`` (about to be sent; its outcome is unknown after a crash), or the
    connector's outcome: ``applied``, ``unchanged``, ``unsupported``, ``failed``.
    """

    key: str
    desk: str
    ticket_id: str
    rule_id: str
    kind: str
    status: str
    detail: str
    created_id: str | None
    updated_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One audit record to append: who did what to which ticket, under which rule, and why."""

    at: datetime
    actor: str
    desk: str
    ticket_id: str
    rule_id: str
    action: str
    reason: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class AuditRow:
    """A stored audit record with its position in the hash chain."""

    id: int
    at: datetime
    actor: str
    desk: str
    ticket_id: str
    rule_id: str
    action: str
    reason: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditFilter:
    """Which audit rows to read; ``since`` is inclusive, ``until`` exclusive."""

    desk: str | None = None
    ticket_id: str | None = None
    rule_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_ALL = AuditFilter()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store takes timezone-aware datetimes, not {value.isoformat()}")
    return value.astimezone(UTC)


class _UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out: ``timestamptz`` on PostgreSQL, fixed-width
    ISO-8601 UTC text on SQLite (lexical order is time order there)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = _utc(value)
        return utc.isoformat(timespec="microseconds") if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        return _utc(value)


# The tables as the migrations leave them (ticketwarden/migrations/versions); a test checks
# that they agree.
_meta = sa.MetaData()
_id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid itself

_cursor = sa.Table(
    "desk_cursor",
    _meta,
    sa.Column("desk", sa.String(), primary_key=True),
    sa.Column("cursor", sa.Text(), nullable=False),
)
_state = sa.Table(
    "ticket_state",
    _meta,
    sa.Column("desk", sa.String(), primary_key=True),
    sa.Column("ticket_id", sa.String(), primary_key=True),
    sa.Column("state", sa.Text(), nullable=False),
    sa.Column("next_due", _UTCDateTime(), nullable=True),
    sa.Index("ix_ticket_state_due", "desk", "next_due", "ticket_id"),
)
_ledger = sa.Table(
    "action_ledger",
    _meta,
    sa.Column("key", sa.String(), primary_key=True),
    sa.Column("desk", sa.String(), nullable=False),
    sa.Column("ticket_id", sa.String(), nullable=False),
    sa.Column("rule_id", sa.String(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("created_id", sa.String(), nullable=True),
    sa.Column("updated_at", _UTCDateTime(), nullable=False),
    sa.Index("ix_action_ledger_ticket", "desk", "ticket_id"),
)
_audit = sa.Table(
    "audit_log",
    _meta,
    sa.Column("id", _id_type, primary_key=True, autoincrement=False),
    sa.Column("at", _UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(), nullable=False),
    sa.Column("desk", sa.String(), nullable=False),
    sa.Column("ticket_id", sa.String(), nullable=False),
    sa.Column("rule_id", sa.String(), nullable=False),
    sa.Column("action", sa.String(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("outcome", sa.String(), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_ticket", "desk", "ticket_id"),
    sa.Index("ix_audit_log_rule", "rule_id"),
    sa.Index("ix_audit_log_at", "at"),
)
_chain = sa.Table(
    "audit_chain",
    _meta,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.BigInteger(), nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)
_snapshot = sa.Table(
    "desk_snapshot",
    _meta,
    sa.Column("desk", sa.String(), primary_key=True),
    sa.Column("name", sa.String(), primary_key=True),
    sa.Column("data", sa.Text(), nullable=False),
)
_lease = sa.Table(
    "desk_lease",
    _meta,
    sa.Column("desk", sa.String(), primary_key=True),
    sa.Column("holder", sa.String(), nullable=False),
    sa.Column("expires_at", _UTCDateTime(), nullable=False),
)
inbox_table = sa.Table(
    "webhook_inbox",
    _meta,
    sa.Column("id", _id_type, primary_key=True, autoincrement=True),
    sa.Column("desk", sa.String(), nullable=False),
    sa.Column("delivery_id", sa.String(), nullable=False),
    sa.Column("ticket_id", sa.String(), nullable=False),
    sa.Column("kind", sa.String(), nullable=False),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("event", sa.Text(), nullable=False),
    sa.Column("received_at", _UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", _UTCDateTime(), nullable=False),
    sa.Column("claimed_by", sa.String(), nullable=True),
    sa.Column("claimed_until", _UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("done_at", _UTCDateTime(), nullable=True),
    sa.UniqueConstraint("desk", "delivery_id", "ticket_id", name="uq_webhook_inbox_delivery"),
    sa.Index("ix_webhook_inbox_ready", "status", "next_attempt_at"),
    sa.Index("ix_webhook_inbox_ticket", "desk", "ticket_id", "status"),
)
"""The sidecar's webhook inbox (its operations live in :mod:`ticketwarden.core.inbox`)."""
_claim = sa.Table(
    "ticket_claim",
    _meta,
    sa.Column("desk", sa.String(), primary_key=True),
    sa.Column("ticket_id", sa.String(), primary_key=True),
    sa.Column("holder", sa.String(), nullable=False),
    sa.Column("expires_at", _UTCDateTime(), nullable=False),
)


def _audit_hash(prev_hash: str, row_id: int, entry: AuditEntry) -> str:
    """``sha256(prev_hash + canonical JSON)`` of a row: sorted keys, no spaces, UTC time."""
    fields: dict[str, Any] = asdict(entry)
    fields["at"] = _utc(entry.at).isoformat(timespec="microseconds")
    fields["id"] = row_id
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _parse_url(url: str) -> URL:
    """The SQLAlchemy URL for a ``sqlite:///…`` or ``postgresql://…`` URL (psycopg 3)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError("not a database URL: use sqlite:///PATH or postgresql://…") from None
    name = parsed.drivername
    if name in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if name in ("sqlite", "sqlite+pysqlite"):
        if parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed.query):
            raise StoreError("the store needs a SQLite file, not an in-memory database")
        return parsed
    raise StoreError(
        f"unsupported database {name!r}: use sqlite:///PATH or postgresql://… (psycopg 3)"
    )


def _default_url() -> str:
    """``$TICKETWARDEN_DATABASE_URL``, else the default SQLite file (its directory created)."""
    if url := os.environ.get(DEFAULT_DB_ENV):
        return url
    path = default_sqlite_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str(path)).render_as_string()


def _create_engine(url: str) -> Engine:
    """An engine for ``url``; on SQLite with WAL, a busy timeout, foreign keys, full sync, and
    BEGIN emitted by SQLAlchemy (DEFERRED to read, IMMEDIATE in :func:`_write_transaction`)."""
    parsed = _parse_url(url)
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(
            parsed, pool_pre_ping=True, connect_args={"application_name": "ticketwarden"}
        )
    engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # sqlite3 must not BEGIN on its own
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed "pending" survives a power cut, so nothing is applied twice
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    """One committed transaction; ``BEGIN IMMEDIATE`` on SQLite (see :func:`_create_engine`)."""
    with engine.connect() as connection:
        connection.execution_options(**{_BEGIN_IMMEDIATE: True})
        with connection.begin():
            yield connection


def _script_location() -> str:
    """The migrations directory inside the installed package."""
    return str(files("ticketwarden") / "migrations")


def _alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic configuration without ``alembic.ini`` (and without logging setup)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _script_location().replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of the shipped migrations (else a newer code made it)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(revision) is not None
    except CommandError:  # alembic's wrapper of an unknown or ambiguous revision
        return False


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for value in dict.fromkeys(values):
        chunk.append(value)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Store:
    """ticketwarden's database: open it once per process and share it between threads.

    :param url: ``sqlite:///PATH`` or ``postgresql://…`` (also ``postgresql+psycopg://``).
        ``None``: ``$TICKETWARDEN_DATABASE_URL`` if set, else the SQLite file at
        :func:`default_sqlite_path` (its directory is created).
    :param auto_upgrade: bring an empty or older schema up to :attr:`HEAD_REVISION` on open.
        Without it such a database is refused with "run `ticketwarden db upgrade`".
    :raises SchemaTooNewError: the database was migrated by a newer ticketwarden.
    :raises StoreError: unsupported URL, unreachable database, or an old schema.
    """

    HEAD_REVISION: ClassVar[str] = "0003_webhook_inbox"
    """The newest migration this code knows (a test keeps it equal to the scripts' head)."""

    def __init__(self, url: str | None = None, *, auto_upgrade: bool = True) -> None:
        self._engine = _create_engine(url if url is not None else _default_url())
        # SQLite has one writer at a time: threads of this process queue here, where a waiter
        # wakes the moment the lock is free, instead of in SQLite's busy handler, which polls
        # with sleeps of up to 100 ms (other processes still queue there)
        self._writer = threading.RLock() if self.dialect == "sqlite" else None
        try:
            self._check_schema(auto_upgrade)
        except DBAPIError as error:
            self._engine.dispose()
            raise StoreError(f"cannot use the database {self.url}: {error.orig}") from error
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def url(self) -> str:
        """The database URL, with any password replaced by ``***``."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------------

    def _check_schema(self, auto_upgrade: bool) -> None:
        current = self.revision()
        if current == self.HEAD_REVISION:
            return
        if current is not None and not _is_known_revision(current):
            raise self._too_new(current)
        if not auto_upgrade:
            raise StoreError(
                f"the database {self.url} has schema revision {current or 'none (empty)'}, "
                f"this ticketwarden needs {self.HEAD_REVISION}: run `ticketwarden db upgrade`"
            )
        self.upgrade()

    def _too_new(self, current: str) -> SchemaTooNewError:
        return SchemaTooNewError(
            f"the database {self.url} has schema revision {current}, which this ticketwarden "
            f"does not know (its newest is {self.HEAD_REVISION}): a newer ticketwarden migrated "
            "it; upgrade ticketwarden"
        )

    @staticmethod
    def _revision_in(connection: Connection) -> str | None:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        return versions.scalar()

    def revision(self) -> str | None:
        """The database's schema revision; ``None`` for an empty database."""
        with self._engine.connect() as connection:
            return self._revision_in(connection)

    def upgrade(self) -> None:
        """Run the migrations up to :attr:`HEAD_REVISION` (``ticketwarden db upgrade``).

        One transaction, serialized across processes (``BEGIN IMMEDIATE`` on SQLite, an
        advisory lock on PostgreSQL), so concurrent first starts migrate once.
        """
        from alembic import command

        with self.transaction() as tx:
            if self.dialect == "postgresql":
                tx.execute(sa.select(sa.func.pg_advisory_xact_lock(_UPGRADE_LOCK)))
            current = self._revision_in(tx)
            if current == self.HEAD_REVISION:
                return
            if current is not None and not _is_known_revision(current):
                raise self._too_new(current)
            command.upgrade(_alembic_config(tx), "head")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One committed transaction for the ``save_*``/``mark_*``/``record_*``/``append_*``
        methods; rolled back if the block raises. ``BEGIN IMMEDIATE`` on SQLite."""
        if self._writer is None:
            with _write_transaction(self._engine) as tx:
                yield tx
            return
        with self._writer, _write_transaction(self._engine) as tx:
            yield tx

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads outside any write transaction."""
        with self._engine.connect() as connection:
            yield connection

    def insert(self, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT with the dialect's ``ON CONFLICT`` clauses, for modules that keep tables
        of their own in this store (the inbox)."""
        return self._insert(table)

    def _insert(self, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- cursors -------------------------------------------------------------------------------

    def cursor(self, desk: str) -> str | None:
        """Where the desk's last sync stopped reading changes; ``None`` before the first."""
        with self._engine.connect() as connection:
            query = sa.select(_cursor.c.cursor).where(_cursor.c.desk == desk)
            return connection.execute(query).scalar()

    def save_cursor(self, tx: Connection, desk: str, cursor: str) -> None:
        """Move the desk's cursor (call it in the transaction that records the page's work)."""
        insert = self._insert(_cursor).values(desk=desk, cursor=cursor)
        tx.execute(insert.on_conflict_do_update(index_elements=["desk"], set_={"cursor": cursor}))

    # -- desk snapshots ------------------------------------------------------------------------

    def snapshot(self, desk: str, name: str) -> str | None:
        """The last saved copy of desk-wide data (``roster``), as text; ``None`` before one."""
        query = sa.select(_snapshot.c.data).where(
            _snapshot.c.desk == desk, _snapshot.c.name == name
        )
        with self._engine.connect() as connection:
            return connection.execute(query).scalar()

    def save_snapshot(self, tx: Connection, desk: str, name: str, data: str) -> None:
        """Replace the saved copy of desk-wide data."""
        insert = self._insert(_snapshot).values(desk=desk, name=name, data=data)
        tx.execute(
            insert.on_conflict_do_update(index_elements=["desk", "name"], set_={"data": data})
        )

    # -- ticket policy state -------------------------------------------------------------------

    def state(self, desk: str, ticket_id: str) -> TicketState | None:
        """The ticket's stored policy state; ``None`` for a ticket never evaluated."""
        query = sa.select(_state.c.state).where(
            _state.c.desk == desk, _state.c.ticket_id == ticket_id
        )
        with self._engine.connect() as connection:
            stored = connection.execute(query).scalar()
        return None if stored is None else TicketState.model_validate_json(stored)

    def save_state(self, tx: Connection, desk: str, ticket_id: str, state: TicketState) -> None:
        """Store the ticket's policy state; ``next_due`` also goes to its indexed column."""
        values = {"state": state.model_dump_json(), "next_due": state.next_due}
        insert = self._insert(_state).values(desk=desk, ticket_id=ticket_id, **values)
        tx.execute(insert.on_conflict_do_update(index_elements=["desk", "ticket_id"], set_=values))

    def due(self, desk: str, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of the desk's tickets whose next due time is at or before ``now``, earliest
        first (one range scan of ``ix_ticket_state_due``)."""
        query = (
            sa.select(_state.c.ticket_id)
            .where(_state.c.desk == desk, _state.c.next_due <= now)
            .order_by(_state.c.next_due, _state.c.ticket_id)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def known(self, desk: str, ticket_ids: Iterable[str]) -> set[str]:
        """Which of ``ticket_ids`` have a stored state on this desk."""
        found: set[str] = set()
        with self._engine.connect() as connection:
            for chunk in _chunks(ticket_ids):
                query = sa.select(_state.c.ticket_id).where(
                    _state.c.desk == desk, _state.c.ticket_id.in_(chunk)
                )
                found.update(connection.execute(query).scalars())
        return found

    def states(self, desk: str | None = None) -> Iterator[tuple[str, str, TicketState]]:
        """Every stored ticket policy state (of one desk, or all) as ``(desk, ticket_id,
        state)``, streamed in desk and ticket order: for reports across tickets."""
        query = sa.select(_state.c.desk, _state.c.ticket_id, _state.c.state).order_by(
            _state.c.desk, _state.c.ticket_id
        )
        if desk is not None:
            query = query.where(_state.c.desk == desk)
        return self._state_rows(query)

    def _state_rows(
        self, query: sa.Select[Any]
    ) -> Generator[tuple[str, str, TicketState], None, None]:
        with (
            self._engine.connect() as connection,
            connection.execution_options(yield_per=1000).execute(query) as result,
        ):
            for desk, ticket_id, stored in result:
                yield desk, ticket_id, TicketState.model_validate_json(stored)

    # -- action ledger -------------------------------------------------------------------------

    def ledger(self, keys: Iterable[str]) -> dict[str, LedgerEntry]:
        """The ledger entries of those ``keys`` that have one."""
        entries: dict[str, LedgerEntry] = {}
        with self._engine.connect() as connection:
            for chunk in _chunks(keys):
                rows = connection.execute(sa.select(_ledger).where(_ledger.c.key.in_(chunk)))
                for row in rows.mappings():
                    entries[row["key"]] = LedgerEntry(**row)
        return entries

    def pending_kinds(self, desk: str, ticket_id: str) -> set[str]:
        """Action kinds still *pending* for a ticket: sent by a run that died before recording
        their outcome."""
        query = sa.select(_ledger.c.kind).where(
            _ledger.c.desk == desk, _ledger.c.ticket_id == ticket_id, _ledger.c.status == "pending"
        )
        with self._engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def pending_actions(self, desk: str, ticket_id: str) -> tuple[list[BaseAction], set[str]]:
        """The actions a run that died left *pending* for a ticket, as they were planned, and
        the kinds of pending entries whose plan cannot be read (written by an older version)."""
        query = sa.select(_ledger.c.kind, _ledger.c.detail).where(
            _ledger.c.desk == desk, _ledger.c.ticket_id == ticket_id, _ledger.c.status == "pending"
        )
        actions: list[BaseAction] = []
        unreadable: set[str] = set()
        with self._engine.connect() as connection:
            for kind, detail in connection.execute(query):
                try:
                    actions.append(_ACTION_ADAPTER.validate_json(detail))
                except ValidationError:
                    unreadable.add(kind)
        return actions, unreadable

    def mark_pending(
        self,
        tx: Connection,
        desk: str,
        ticket_id: str,
        actions: Sequence[BaseAction],
        at: datetime,
        *,
        holder: str | None = None,
        wall: datetime | None = None,
    ) -> list[BaseAction]:
        """Record that ``actions`` are about to be sent; keys already in the ledger (in any
        status) are left alone. Returns the actions still to send.

        With a ``holder``, the ticket is first claimed for it (until ``wall + CLAIM_TTL``; a
        claim of a dead process on this machine is taken over), so no two processes send to
        one ticket at once — :class:`TicketBusyError` while another live holder has it. Under
        the claim, actions another process settled meanwhile are left out of the result.
        """
        todo = list(actions)
        if holder is not None:
            self._claim(tx, desk, ticket_id, holder, wall or datetime.now(UTC))
            settled = {
                key
                for chunk in _chunks(_key(a) for a in actions)
                for key in tx.execute(
                    sa.select(_ledger.c.key).where(
                        _ledger.c.key.in_(chunk), _ledger.c.status != "pending"
                    )
                ).scalars()
            }
            todo = [a for a in actions if a.key not in settled]
        rows = {
            _key(action): {
                "key": action.key,
                "desk": desk,
                "ticket_id": ticket_id,
                "rule_id": action.rule_id,
                "kind": action.kind,
                "status": "pending",
                # the whole action, so a run that dies can be finished as it was planned
                "detail": action.model_dump_json(),
                "created_id": None,
                "updated_at": at,
            }
            for action in todo
        }
        if rows:
            insert = self._insert(_ledger).on_conflict_do_nothing(index_elements=["key"])
            tx.execute(insert, list(rows.values()))
        return todo

    def _claim(self, tx: Connection, desk: str, ticket_id: str, holder: str, now: datetime) -> None:
        insert = self._insert(_claim).values(
            desk=desk, ticket_id=ticket_id, holder=holder, expires_at=now + CLAIM_TTL
        )
        upsert = insert.on_conflict_do_update(
            index_elements=["desk", "ticket_id"],
            set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
            where=sa.or_(_claim.c.holder == holder, _claim.c.expires_at <= now),
        )
        tx.execute(upsert)
        where = (_claim.c.desk == desk, _claim.c.ticket_id == ticket_id)
        current = tx.execute(sa.select(_claim.c.holder).where(*where)).scalar_one()
        if current == holder:
            return
        if holder_is_dead(current):
            tx.execute(
                sa.update(_claim)
                .where(*where, _claim.c.holder == current)
                .values(holder=holder, expires_at=now + CLAIM_TTL)
            )
            return
        raise TicketBusyError(desk, f"ticket {ticket_id} is being updated by {current}")

    def settle_interrupted(
        self,
        desk: str,
        ticket_id: str,
        keep: Iterable[str],
        at: datetime,
        holder: str,
        actor: str = "ticketwarden",
    ) -> list[LedgerEntry]:
        """Settle a ticket's *pending* entries that a run interrupted and that re-evaluating
        the ticket no longer asks for (all but ``keep``), as ``unchanged``, with an audit row
        each. The engine drops an action whose effect the fresh ticket already shows, so such
        an entry either landed before the crash or is no longer needed; left pending, it would
        make the sync job take the ticket's later status changes for its own forever.

        Runs under ``holder``'s claim on the ticket (:class:`TicketBusyError` while another
        live process is writing to it, whose entries these may be). Returns what it settled.
        """
        kept = set(keep)
        with self.transaction() as tx:
            self._claim(tx, desk, ticket_id, holder, datetime.now(UTC))
            rows = tx.execute(
                sa.select(_ledger).where(
                    _ledger.c.desk == desk,
                    _ledger.c.ticket_id == ticket_id,
                    _ledger.c.status == "pending",
                )
            ).mappings()
            stale = [LedgerEntry(**row) for row in rows if row["key"] not in kept]
            detail = (
                "interrupted before its outcome was recorded; re-evaluating the ticket no longer "
                "asks for it (it landed, or is no longer needed)"
            )
            if stale:
                tx.execute(
                    sa.update(_ledger)
                    .where(_ledger.c.key.in_([e.key for e in stale]), _ledger.c.status == "pending")
                    .values(status=Outcome.UNCHANGED.value, detail=detail, updated_at=at)
                )
                self.append_audit(
                    tx,
                    [
                        AuditEntry(
                            at=at,
                            actor=actor,
                            desk=desk,
                            ticket_id=ticket_id,
                            rule_id=e.rule_id,
                            action=e.kind,
                            reason="settling an interrupted run",
                            outcome=Outcome.UNCHANGED.value,
                            detail=detail,
                        )
                        for e in stale
                    ],
                )
            self.release_ticket(tx, desk, ticket_id, holder)
        return stale

    def release_ticket(self, tx: Connection, desk: str, ticket_id: str, holder: str) -> None:
        """Give up ``holder``'s claim on a ticket (see :meth:`mark_pending`)."""
        tx.execute(
            sa.delete(_claim).where(
                _claim.c.desk == desk, _claim.c.ticket_id == ticket_id, _claim.c.holder == holder
            )
        )

    def record_results(
        self,
        tx: Connection,
        desk: str,
        ticket_id: str,
        results: Sequence[tuple[BaseAction, ActionResult]],
        at: datetime,
        actor: str = "ticketwarden",
    ) -> None:
        """Store each action's outcome in the ledger and append one audit entry per action,
        in the caller's transaction. An ``applied`` row keeps its status, detail and created id
        whatever is reported later."""
        rows: dict[str, dict[str, Any]] = {}
        for action, result in results:
            key = _key(action)
            if result.key != key:
                raise StoreError(f"result for {result.key!r} given for action {key!r}")
            if rows.get(key, {}).get("status") == Outcome.APPLIED.value:
                continue  # the same action twice in one batch: applied wins here too
            rows[key] = {
                "key": key,
                "desk": desk,
                "ticket_id": ticket_id,
                "rule_id": action.rule_id,
                "kind": action.kind,
                "status": Outcome(result.outcome).value,
                "detail": result.detail,
                "created_id": result.created_id,
                "updated_at": at,
            }
        if not rows:
            return
        insert = self._insert(_ledger)
        excluded = insert.excluded
        tx.execute(
            insert.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "status": excluded.status,
                    "detail": excluded.detail,
                    "created_id": sa.func.coalesce(excluded.created_id, _ledger.c.created_id),
                    "updated_at": excluded.updated_at,
                },
                where=_ledger.c.status != Outcome.APPLIED.value,
            ),
            list(rows.values()),
        )
        self.append_audit(
            tx,
            [
                AuditEntry(
                    at=at,
                    actor=actor,
                    desk=desk,
                    ticket_id=ticket_id,
                    rule_id=action.rule_id,
                    action=action.kind,
                    reason=action.reason,
                    outcome=Outcome(result.outcome).value,
                    detail=action.describe(),
                )
                for action, result in results
            ],
        )

    # -- audit trail ---------------------------------------------------------------------------

    def append_audit(self, tx: Connection, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` to the hash chain, in order, in the caller's transaction.

        The chain head row is locked (``FOR UPDATE``; on SQLite the ``BEGIN IMMEDIATE`` of
        :meth:`transaction` already serializes writers) until the transaction ends.
        """
        if not entries:
            return
        head = sa.select(_chain.c.last_id, _chain.c.last_hash).where(_chain.c.id == 1)
        last_id, prev_hash = tx.execute(head.with_for_update()).one()
        rows: list[dict[str, Any]] = []
        for entry in entries:
            last_id += 1
            digest = _audit_hash(prev_hash, last_id, entry)
            rows.append({**asdict(entry), "id": last_id, "prev_hash": prev_hash, "hash": digest})
            prev_hash = digest
        tx.execute(sa.insert(_audit), rows)
        tx.execute(
            sa.update(_chain).where(_chain.c.id == 1).values(last_id=last_id, last_hash=prev_hash)
        )

    def audit(self, filters: AuditFilter = _ALL, *, limit: int | None = None) -> Iterator[AuditRow]:
        """The audit rows matching ``filters``, oldest (lowest id) first, streamed."""
        query = sa.select(_audit).order_by(_audit.c.id)
        for column, value in (
            (_audit.c.desk, filters.desk),
            (_audit.c.ticket_id, filters.ticket_id),
            (_audit.c.rule_id, filters.rule_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if filters.since is not None:
            query = query.where(_audit.c.at >= filters.since)
        if filters.until is not None:
            query = query.where(_audit.c.at < filters.until)
        if limit is not None:
            query = query.limit(limit)
        return self._audit_rows(query)

    def _audit_rows(self, query: sa.Select[Any]) -> Generator[AuditRow, None, None]:
        # streamed: a server-side cursor on PostgreSQL, closed with the generator
        with (
            self._engine.connect() as connection,
            connection.execution_options(yield_per=1000).execute(query) as result,
        ):
            for row in result.mappings():
                yield AuditRow(**row)

    def verify_audit(self) -> AuditRow | None:
        """Check the whole hash chain: ``None`` when intact, else the first row whose stored
        ``prev_hash`` is not the previous row's hash or whose ``hash`` does not match its
        fields (an edited row, or the row after a deleted one)."""
        prev_hash = GENESIS
        with closing(
            self._audit_rows(sa.select(_audit).order_by(_audit.c.id))
        ) as rows:  # an early return closes the server-side cursor
            for row in rows:
                fields = {k: v for k, v in asdict(row).items() if k not in _CHAIN_FIELDS}
                digest = _audit_hash(row.prev_hash, row.id, AuditEntry(**fields))
                if row.prev_hash != prev_hash or row.hash != digest:
                    return row
                prev_hash = row.hash
        return None

    # -- desk lease ----------------------------------------------------------------------------

    def acquire_lease(self, desk: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take (or renew) the desk's lease until ``now + ttl``: true if it was free, expired
        or already ``holder``'s; false while another holder has it."""
        if ttl <= timedelta(0):
            raise ValueError(f"a lease needs a positive ttl, not {ttl}")
        insert = self._insert(_lease).values(desk=desk, holder=holder, expires_at=now + ttl)
        upsert = insert.on_conflict_do_update(
            index_elements=["desk"],
            set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
            where=sa.or_(_lease.c.holder == holder, _lease.c.expires_at <= now),
        )
        with self.transaction() as tx:
            tx.execute(upsert)
            query = sa.select(_lease.c.holder).where(_lease.c.desk == desk)
            return bool(tx.execute(query).scalar_one() == holder)

    def release_lease(self, desk: str, holder: str) -> None:
        """Give the lease up, if ``holder`` still has it."""
        with self.transaction() as tx:
            tx.execute(sa.delete(_lease).where(_lease.c.desk == desk, _lease.c.holder == holder))

    def lease_holder(self, desk: str, now: datetime) -> str | None:
        """Who holds the desk's unexpired lease at ``now``, if anyone."""
        query = sa.select(_lease.c.holder).where(_lease.c.desk == desk, _lease.c.expires_at > now)
        with self._engine.connect() as connection:
            return connection.execute(query).scalar()


_ACTION_ADAPTER: TypeAdapter[BaseAction] = TypeAdapter(Action)


def _key(action: BaseAction) -> str:
    if not action.key:
        raise StoreError(f"{action.rule_id} {action.kind}: the action has no idempotency key")
    return action.key


def holder_is_dead(holder: str) -> bool:
    """Whether a lease or claim holder ``host:pid:nonce`` is a process of this machine that has
    ended (so what it held can be taken over at once instead of waiting for it to expire)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
