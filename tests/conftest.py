"""Shared fixtures: a fresh plugin manager per test, the default policy, and a ticket factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ticketwarden.core.engine import Engine
from ticketwarden.core.model import (
    AuthorizedContact,
    Contact,
    Organization,
    Roster,
    RosterEntry,
    Ticket,
)
from ticketwarden.core.policy import Policy, default_policy
from ticketwarden.core.registry import Plugins, load_plugins

pytest_plugins = ["pytester"]

MONDAY = datetime.fromisoformat("2026-11-23T09:00:00+01:00")

COMPLETE_FIELDS = {
    "server_url": "https://kaseya.acme.example",
    "module": "Reporting",
    "steps": "1. open the dashboard 2. export the report",
    "sample_machines": "acme.berlin / ws-0042",
    "version": "10.1.2",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    from .pg import fresh_database, postgres_or_skip

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tw.db'}"
    else:
        with fresh_database(postgres_or_skip()) as url:
            yield url


@pytest.fixture
def plugins() -> Plugins:
    """A fresh plugin manager with the built-in rules, from the entry points."""
    return load_plugins(allow=None, block=())


@pytest.fixture
def policy() -> Policy:
    return default_policy()


@pytest.fixture
def engine(plugins: Plugins, policy: Policy) -> Engine:
    return Engine(plugins, policy)


@pytest.fixture
def roster() -> Roster:
    return Roster(
        entries=(
            RosterEntry(
                organization="acme",
                contacts=(
                    AuthorizedContact(email="anna@acme.example", name="Anna Berger"),
                    AuthorizedContact(email="ben@acme.example", name="Ben Hofmann"),
                ),
            ),
        )
    )


@pytest.fixture
def make_ticket() -> Callable[..., Ticket]:
    """Build a complete ticket from an authorized contact; keyword arguments override."""

    def make(**overrides: Any) -> Ticket:
        data: dict[str, Any] = {
            "id": "1",
            "number": "#1001",
            "subject": "Dashboard totals differ from the exported report",
            "description": "120 vs 118 devices. Expected: the same number.",
            "severity": 3,
            "requester": Contact(id="u1", name="Anna Berger", email="anna@acme.example"),
            "organization": Organization(id="acme", name="Acme"),
            "fields": dict(COMPLETE_FIELDS),
            "created_at": MONDAY,
            "updated_at": MONDAY,
        }
        data.update(overrides)
        return Ticket(**data)

    return make
