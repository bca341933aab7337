"""The state store, on SQLite and on PostgreSQL (see tests/pg.py for where the server comes from).

Every test taking ``db_url`` or ``store`` runs on both backends; on PostgreSQL each test gets
a database of its own.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ticketwarden.core import store as store_module
from ticketwarden.core.actions import AddComment, BaseAction, SetStatus
from ticketwarden.core.connector import ActionResult, Outcome
from ticketwarden.core.context import PauseSpan, TicketState
from ticketwarden.core.model import Severity, Status
from ticketwarden.core.store import (
    DEFAULT_DB_ENV,
    AuditEntry,
    AuditFilter,
    SchemaTooNewError,
    Store,
    StoreError,
    default_sqlite_path,
)

T0 = datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
HOUR = timedelta(hours=1)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as opened:
        yield opened


def comment(n: int, rule: str = "CLOSE-3") -> AddComment:
    return AddComment(rule_id=rule, reason=f"reminder {n}", body=f"hello {n}", key=f"k{n}")


def result(action: BaseAction, outcome: Outcome, **extra: Any) -> ActionResult:
    return ActionResult(key=action.key, kind=action.kind, outcome=outcome, **extra)


def entry(n: int, *, desk: str = "d", ticket: str = "1", rule: str = "CLOSE-3") -> AuditEntry:
    return AuditEntry(
        at=T0 + n * HOUR,
        actor="ticketwarden",
        desk=desk,
        ticket_id=ticket,
        rule_id=rule,
        action="comment",
        reason=f"reason {n}",
        outcome="applied",
        detail=f"comment body=hello {n}",
    )


# -- schema ---------------------------------------------------------------------------------------


def test_empty_database_is_migrated_to_head_and_matches_the_tables(db_url: str) -> None:
    with Store(db_url) as store:
        assert store.revision() == Store.HEAD_REVISION
        assert store.dialect == db_url.split(":")[0].split("+")[0]
        script = ScriptDirectory.from_config(store_module._alembic_config())
        assert script.get_current_head() == Store.HEAD_REVISION
        with store.transaction() as tx:
            # the migrations and the Core tables the store queries agree, column for column
            context = MigrationContext.configure(tx, opts={"compare_type": True})
            assert compare_metadata(context, store_module._meta) == []
            if store.dialect == "sqlite":
                assert tx.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert tx.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
                assert tx.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with Store(db_url, auto_upgrade=False) as again:  # up to date: opens without migrating
        assert again.revision() == Store.HEAD_REVISION


def test_a_newer_schema_is_refused_naming_both_revisions(db_url: str) -> None:
    with Store(db_url) as store, store.transaction() as tx:
        tx.exec_driver_sql("UPDATE alembic_version SET version_num = '0042_from_the_future'")
    for auto_upgrade in (True, False):
        with pytest.raises(SchemaTooNewError) as raised:
            Store(db_url, auto_upgrade=auto_upgrade)
        message = str(raised.value)
        assert "0042_from_the_future" in message
        assert Store.HEAD_REVISION in message
        assert "upgrade ticketwarden" in message


def test_an_empty_database_without_auto_upgrade_asks_for_db_upgrade(db_url: str) -> None:
    with pytest.raises(StoreError, match="run `ticketwarden db upgrade`"):
        Store(db_url, auto_upgrade=False)
    with Store(db_url) as store:
        assert store.revision() == Store.HEAD_REVISION


def test_an_older_schema_is_refused_or_upgraded(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = Store.HEAD_REVISION
    Store(db_url).close()  # at the shipped head
    # a newer ticketwarden: the shipped migrations plus one
    scripts = tmp_path / "migrations"
    shutil.copytree(
        str(files("ticketwarden") / "migrations"),
        scripts,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (scripts / "versions" / "0002_probe.py").write_text(
        textwrap.dedent(
            """
            import sqlalchemy as sa
            from alembic import op

            revision = "9999_probe"
            down_revision = "{head}"

            def upgrade():
                op.create_table("probe", sa.Column("id", sa.Integer(), primary_key=True))
            """
        ).format(head=head)
    )
    monkeypatch.setattr(store_module, "_script_location", lambda: str(scripts))
    monkeypatch.setattr(Store, "HEAD_REVISION", "9999_probe")
    with pytest.raises(StoreError, match="run `ticketwarden db upgrade`") as raised:
        Store(db_url, auto_upgrade=False)
    assert head in str(raised.value)
    assert "9999_probe" in str(raised.value)
    assert not isinstance(raised.value, SchemaTooNewError)
    with Store(db_url) as store:
        assert store.revision() == "9999_probe"
        with store.transaction() as tx:
            assert tx.exec_driver_sql("SELECT count(*) FROM probe").scalar() == 0


def test_urls_are_checked_and_passwords_hidden(db_url: str) -> None:
    with pytest.raises(StoreError, match="unsupported database"):
        Store("mysql://user@host/db")
    with pytest.raises(StoreError, match="SQLite file"):
        Store("sqlite://")
    if db_url.startswith("postgresql"):
        with_password = sa.make_url(db_url).set(password="s3cret-pw")  # trust auth ignores it
        with Store(with_password.render_as_string(hide_password=False)) as store:
            assert "s3cret-pw" not in store.url
            assert "***" in store.url
        unreachable = sa.make_url(db_url).set(port=1, password="s3cret-pw")
        with pytest.raises(StoreError, match="cannot use the database") as raised:
            Store(unreachable.render_as_string(hide_password=False))
        assert "s3cret-pw" not in str(raised.value)


def test_the_default_database_lives_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DEFAULT_DB_ENV, raising=False)
    monkeypatch.delenv("TICKETWARDEN_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    home_default = tmp_path / "home" / ".local" / "share" / "ticketwarden" / "ticketwarden.db"
    assert default_sqlite_path() == home_default
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_sqlite_path() == home_default
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_sqlite_path() == tmp_path / "xdg" / "ticketwarden" / "ticketwarden.db"
    monkeypatch.setenv("TICKETWARDEN_DATA_DIR", str(tmp_path / "data"))
    assert default_sqlite_path() == tmp_path / "data" / "ticketwarden.db"
    with Store() as store:
        assert store.url == f"sqlite:///{tmp_path / 'data' / 'ticketwarden.db'}"
        assert store.revision() == Store.HEAD_REVISION
    assert (tmp_path / "data" / "ticketwarden.db").is_file()
    monkeypatch.setenv(DEFAULT_DB_ENV, f"sqlite:///{tmp_path / 'from-env.db'}")
    with Store() as store:
        assert store.url.endswith("from-env.db")


# -- cursors and ticket state ---------------------------------------------------------------------


def test_cursor_round_trip(store: Store) -> None:
    assert store.cursor("zendesk") is None
    with store.transaction() as tx:
        store.save_cursor(tx, "zendesk", "1700000000:abc")
    with store.transaction() as tx:
        store.save_cursor(tx, "zendesk", "1700000100:def")
        store.save_cursor(tx, "jira", "42")
    assert store.cursor("zendesk") == "1700000100:def"
    assert store.cursor("jira") == "42"


def test_state_round_trips_exactly(store: Store) -> None:
    state = TicketState(
        created_seen=True,
        status=Status.WAITING_ON_CUSTOMER,
        severity=Severity.HIGH,
        waiting_since=T0,
        pauses=(PauseSpan(start=T0 - HOUR, end=T0), PauseSpan(start=T0 + HOUR)),
        resolved_at=T0.astimezone(UTC),
        next_due=T0 + 2 * HOUR,
        memory={"CLOSE-3:reminders": 2, "ESC-1:sent": ["a", "b"], "X-1:n": {"deep": None}},
    )
    assert store.state("d", "1") is None
    with store.transaction() as tx:
        store.save_state(tx, "d", "1", TicketState())
        store.save_state(tx, "d", "1", state)  # an upsert
    loaded = store.state("d", "1")
    assert loaded == state
    assert loaded is not None and loaded.model_dump_json() == state.model_dump_json()
    assert loaded.next_due is not None and loaded.next_due.utcoffset() == timedelta(hours=1)


def test_due_returns_the_due_tickets_earliest_first_through_the_index(store: Store) -> None:
    now = T0
    with store.transaction() as tx:
        for ticket, due in [("late", -1), ("later", 1), ("now", 0), ("earliest", -3)]:
            store.save_state(tx, "d", ticket, TicketState(next_due=now + due * HOUR))
        store.save_state(tx, "d", "never", TicketState())
        store.save_state(tx, "other", "x", TicketState(next_due=now - 5 * HOUR))
    assert store.due("d", now) == ["earliest", "late", "now"]
    assert store.due("d", now.astimezone(UTC), limit=2) == ["earliest", "late"]
    assert store.due("d", now - 4 * HOUR) == []
    assert store.known("d", ["late", "never", "x", "unknown", "late"]) == {"late", "never"}
    assert store.known("d", (str(n) for n in range(1200))) == set()  # chunked IN lists

    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "next_due <=" in statement:
            statements.append((statement, parameters))

    sa.event.listen(sa.Engine, "before_cursor_execute", capture)
    try:
        store.due("d", now)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", capture)
    [(statement, parameters)] = statements
    with store.transaction() as tx:
        if store.dialect == "sqlite":
            rows = tx.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plan = " | ".join(str(row[-1]) for row in rows)
            assert "USING COVERING INDEX ix_ticket_state_due" in plan
            assert "TEMP B-TREE" not in plan  # the index gives the order too
        else:
            tx.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table: force the choice
            rows = tx.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            plan = " | ".join(str(row[0]) for row in rows)
            assert "ix_ticket_state_due" in plan
            assert "Sort" not in plan


# -- action ledger ----------------------------------------------------------------------------


def test_ledger_goes_from_pending_to_outcome_and_never_downgrades_applied(store: Store) -> None:
    a1, a2, a3 = (
        comment(1),
        comment(2),
        SetStatus(rule_id="CLOSE-2", reason="hold", status=Status.ON_HOLD, key="k3"),
    )
    assert store.ledger(["k1"]) == {}
    with store.transaction() as tx:
        store.mark_pending(tx, "d", "7", [a1, a2, a1], T0)  # a duplicate is ignored
    pending = store.ledger(["k1", "k2", "k3"])
    assert {k: e.status for k, e in pending.items()} == {"k1": "pending", "k2": "pending"}
    assert pending["k1"].updated_at == T0
    assert pending["k1"].updated_at.tzinfo == UTC
    assert (pending["k2"].desk, pending["k2"].ticket_id, pending["k2"].rule_id) == (
        "d",
        "7",
        "CLOSE-3",
    )

    with store.transaction() as tx:
        store.record_results(
            tx,
            "d",
            "7",
            [
                (a1, result(a1, Outcome.APPLIED, created_id="c-99", detail="comment 99")),
                (a2, result(a2, Outcome.FAILED, detail="422 closed")),
            ],
            T0 + HOUR,
        )
    with store.transaction() as tx:  # a later report never downgrades an applied action
        store.record_results(tx, "d", "7", [(a1, result(a1, Outcome.FAILED))], T0 + 2 * HOUR)
    with store.transaction() as tx:  # a re-run marks again: existing rows are left alone
        store.mark_pending(tx, "d", "7", [a1, a2, a3], T0 + 3 * HOUR)

    entries = store.ledger(iter(["k1", "k2", "k3", "k4"]))
    assert {k: e.status for k, e in entries.items()} == {
        "k1": "applied",
        "k2": "failed",
        "k3": "pending",
    }
    assert (entries["k1"].created_id, entries["k1"].detail) == ("c-99", "comment 99")
    assert entries["k1"].updated_at == T0 + HOUR
    assert entries["k2"].detail == "422 closed"

    with store.transaction() as tx:  # a failed action is retried and lands
        store.record_results(tx, "d", "7", [(a2, result(a2, Outcome.APPLIED))], T0 + 4 * HOUR)
    assert store.ledger(["k2"])["k2"].status == "applied"

    audit = list(store.audit())
    assert [(r.rule_id, r.action, r.outcome) for r in audit] == [
        ("CLOSE-3", "comment", "applied"),
        ("CLOSE-3", "comment", "failed"),
        ("CLOSE-3", "comment", "failed"),
        ("CLOSE-3", "comment", "applied"),
    ]
    assert audit[0].detail == a1.describe()
    assert audit[0].reason == "reminder 1"
    assert (audit[0].desk, audit[0].ticket_id, audit[0].actor) == ("d", "7", "ticketwarden")
    assert audit[0].at == T0 + HOUR


def test_results_and_their_audit_rows_commit_or_roll_back_together(store: Store) -> None:
    a1 = comment(1)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.mark_pending(tx, "d", "7", [a1], T0)
        store.record_results(tx, "d", "7", [(a1, result(a1, Outcome.APPLIED))], T0, actor="bot")
        assert list(store.audit()) == []  # other connections see nothing before the commit
        raise RuntimeError("crash before commit")
    assert store.ledger(["k1"]) == {}
    assert list(store.audit()) == []
    with store.transaction() as tx:
        store.record_results(tx, "d", "7", [(a1, result(a1, Outcome.APPLIED))], T0, actor="bot")
    [row] = store.audit()
    assert (row.id, row.actor, row.prev_hash) == (1, "bot", store_module.GENESIS)
    assert store.ledger(["k1"])["k1"].status == "applied"
    with pytest.raises(StoreError, match="no idempotency key"), store.transaction() as tx:
        store.mark_pending(tx, "d", "7", [comment(2).model_copy(update={"key": ""})], T0)
    with pytest.raises(StoreError, match="result for"), store.transaction() as tx:
        store.record_results(tx, "d", "7", [(comment(2), result(a1, Outcome.APPLIED))], T0)


# -- audit trail ----------------------------------------------------------------------------------


def test_audit_chain_verifies_and_names_a_tampered_row(store: Store) -> None:
    assert store.verify_audit() is None
    with store.transaction() as tx:
        store.append_audit(tx, [entry(1), entry(2)])
        store.append_audit(tx, [])
    with store.transaction() as tx:
        store.append_audit(tx, [entry(3), entry(4), entry(5)])
    rows = list(store.audit())
    assert [r.id for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == store_module.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert rows[2].at == T0 + 3 * HOUR and rows[2].at.tzinfo == UTC
    assert rows[2].reason == "reason 3" and rows[2].detail == "comment body=hello 3"
    assert store.verify_audit() is None

    with store.transaction() as tx:
        tx.exec_driver_sql("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 3")
    broken = store.verify_audit()
    assert broken is not None and broken.id == 3 and broken.reason == "nothing to see"

    with store.transaction() as tx:  # put it back, then remove a row instead
        tx.exec_driver_sql("UPDATE audit_log SET reason = 'reason 3' WHERE id = 3")
    assert store.verify_audit() is None
    with store.transaction() as tx:
        tx.exec_driver_sql("DELETE FROM audit_log WHERE id = 2")
    broken = store.verify_audit()
    assert broken is not None and broken.id == 3


def test_audit_filters(store: Store) -> None:
    with store.transaction() as tx:
        store.append_audit(
            tx,
            [
                entry(0, desk="zd", ticket="1", rule="CLOSE-3"),
                entry(1, desk="zd", ticket="2", rule="ESC-1"),
                entry(2, desk="jira", ticket="1", rule="CLOSE-3"),
                entry(3, desk="zd", ticket="1", rule="ESC-1"),
            ],
        )

    def ids(filters: AuditFilter | None = None, limit: int | None = None) -> list[int]:
        if filters is None:
            return [row.id for row in store.audit(limit=limit)]
        return [row.id for row in store.audit(filters, limit=limit)]

    assert ids() == [1, 2, 3, 4]
    assert ids(limit=2) == [1, 2]
    assert ids(AuditFilter(desk="zd")) == [1, 2, 4]
    assert ids(AuditFilter(desk="zd", ticket_id="1")) == [1, 4]
    assert ids(AuditFilter(rule_id="CLOSE-3")) == [1, 3]
    assert ids(AuditFilter(since=T0 + HOUR)) == [2, 3, 4]
    assert ids(AuditFilter(until=T0 + 2 * HOUR)) == [1, 2]  # until is exclusive
    assert ids(AuditFilter(since=(T0 + HOUR).astimezone(UTC), until=T0 + 3 * HOUR)) == [2, 3]
    assert ids(AuditFilter(desk="zd", rule_id="ESC-1", since=T0 + 2 * HOUR)) == [4]


_APPENDER = """
import sys
from datetime import UTC, datetime
from ticketwarden.core.store import AuditEntry, Store

url, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(url, auto_upgrade=False)
print("ready", flush=True)
sys.stdin.readline()
for n in range(rounds):
    batch = [
        AuditEntry(datetime.now(UTC), name, "d", f"{name}-{n}", "TEST-1", "record", "r", "applied"),
        AuditEntry(datetime.now(UTC), name, "d", f"{name}-{n}", "TEST-1", "record", "s", "applied"),
    ]
    with store.transaction() as tx:
        store.append_audit(tx, batch)
store.close()
"""


def test_concurrent_appenders_keep_one_unbroken_chain(store: Store, db_url: str) -> None:
    """SQLite: two processes; PostgreSQL: two threads with their own connections."""
    rounds = 40
    if store.dialect == "sqlite":
        with ExitStack() as stack:
            workers = [
                stack.enter_context(
                    subprocess.Popen(
                        [sys.executable, "-c", _APPENDER, db_url, name, str(rounds)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
                for name in ("a", "b")
            ]
            for worker in workers:  # both have opened the store: now start them together
                assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            for worker in workers:
                worker.communicate(timeout=60)
                assert worker.returncode == 0
    else:
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def append(name: str) -> None:
            try:
                with Store(db_url, auto_upgrade=False) as own:
                    barrier.wait()
                    for n in range(rounds):
                        batch = [
                            AuditEntry(datetime.now(UTC), name, "d", f"{name}-{n}", "TEST-1", *x)
                            for x in (("record", "r", "applied"), ("record", "s", "applied"))
                        ]
                        with own.transaction() as tx:
                            own.append_audit(tx, batch)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=append, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
    rows = list(store.audit())
    assert [row.id for row in rows] == list(range(1, 4 * rounds + 1))
    assert sorted(row.ticket_id for row in rows) == sorted(
        f"{name}-{n}" for name in "ab" for n in range(rounds) for _ in range(2)
    )
    for first, second in zip(rows[::2], rows[1::2], strict=True):  # batches stay contiguous
        assert first.ticket_id == second.ticket_id and (first.reason, second.reason) == ("r", "s")
    assert store.verify_audit() is None


# -- desk lease -----------------------------------------------------------------------------------


def test_a_desk_lease_has_one_holder_until_it_expires_or_is_released(store: Store) -> None:
    ttl = timedelta(minutes=5)
    assert store.lease_holder("zd", T0) is None
    assert store.acquire_lease("zd", "host-a:1", ttl, T0)
    assert store.lease_holder("zd", T0) == "host-a:1"
    assert not store.acquire_lease("zd", "host-b:2", ttl, T0 + timedelta(minutes=4))
    assert store.acquire_lease("jira", "host-b:2", ttl, T0)  # another desk is free
    assert store.acquire_lease("zd", "host-a:1", ttl, T0 + timedelta(minutes=4))  # renews
    assert not store.acquire_lease("zd", "host-b:2", ttl, T0 + timedelta(minutes=8))
    assert store.lease_holder("zd", T0 + timedelta(minutes=9)) is None  # expired at 4 + 5
    assert store.acquire_lease("zd", "host-b:2", ttl, T0 + timedelta(minutes=9))
    store.release_lease("zd", "host-a:1")  # not the holder any more: no effect
    assert store.lease_holder("zd", T0 + timedelta(minutes=9)) == "host-b:2"
    store.release_lease("zd", "host-b:2")
    assert store.lease_holder("zd", T0 + timedelta(minutes=9)) is None
    assert store.acquire_lease("zd", "host-a:1", ttl, T0 + timedelta(minutes=9))
    with pytest.raises(ValueError, match="positive ttl"):
        store.acquire_lease("zd", "host-a:1", timedelta(0), T0)


def test_without_a_server_postgres_tests_skip_outside_ci_and_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests import pg

    monkeypatch.setattr(pg, "postgres_url", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server: set TICKETWARDEN_"):
        pg.postgres_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI needs PostgreSQL"):
        pg.postgres_or_skip()
