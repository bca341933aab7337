"""A PostgreSQL server for the tests that need one.

:func:`postgres_url` returns ``$TICKETWARDEN_TEST_PG_URL`` when set (CI starts a server and
sets it); otherwise it starts a throwaway cluster for this test session — initdb into a temp
directory, trust authentication, listening on 127.0.0.1 on a free port, stopped and deleted at
exit — when the server binaries are installed (Debian's ``/usr/lib/postgresql/*/bin`` or on
``PATH``). As root, the cluster runs as the ``postgres`` user, since initdb refuses root.

:func:`postgres_or_skip` turns "no server" into a skip with the reason, or into a failure when
``CI=true``: CI must not pass by skipping. :func:`fresh_database` gives each test its own
database and drops it afterwards.
"""

from __future__ import annotations

import atexit
import functools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

URL_ENV = "TICKETWARDEN_TEST_PG_URL"
NO_SERVER = "no PostgreSQL server: set TICKETWARDEN_TEST_PG_URL or install postgresql"

_why_not: list[str] = []  # why the throwaway cluster could not start, for the skip message


def _bindir() -> Path | None:
    """The newest installed server's bin directory (it must hold initdb and pg_ctl)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for path in reversed(candidates):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_cluster() -> str | None:
    bindir = _bindir()
    if bindir is None:
        _why_not.append("no initdb/pg_ctl found")
        return None
    as_user: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="tw-pg-test."))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            _why_not.append("running as root without runuser")
            return None
        try:
            shutil.chown(data, "postgres")
        except (LookupError, PermissionError) as error:
            _why_not.append(f"cannot hand the data directory to the postgres user: {error}")
            return None
        as_user = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {data} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    initdb = [str(bindir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"]
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "server.log")]
    commands = [
        [*initdb, "-E", "UTF8", "--no-locale", "--no-sync"],
        [*pg_ctl, "-o", options, "-w", "-t", "30", "start"],
    ]
    for command in commands:
        run = subprocess.run([*as_user, *command], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            log = data / "server.log"
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            _why_not.append(f"{Path(command[0]).name} failed: {run.stderr.strip()[-500:]} {tail}")
            _stop(as_user, bindir, data)
            return None
    atexit.register(_stop, as_user, bindir, data)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


def _stop(as_user: list[str], bindir: Path, data: Path) -> None:
    if (data / "db" / "postmaster.pid").exists():
        stop = [*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate"]
        subprocess.run([*stop, "-w", "stop"], capture_output=True, check=False)
    shutil.rmtree(data, ignore_errors=True)


@functools.cache
def postgres_url() -> str | None:
    """A URL of a PostgreSQL server's maintenance database, or ``None`` if none can be had."""
    return os.environ.get(URL_ENV) or _start_cluster()


def postgres_or_skip() -> str:
    """:func:`postgres_url`, else skip the test (outside CI) or fail it (``CI=true``)."""
    url = postgres_url()
    if url is not None:
        return url
    reason = NO_SERVER + (f" ({'; '.join(_why_not)})" if _why_not else "")
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"CI needs PostgreSQL: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database on the server of ``url``: yields its URL, drops it afterwards."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    server = make_url(url).set(drivername="postgresql+psycopg")
    name = f"tw_{secrets.token_hex(6)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
