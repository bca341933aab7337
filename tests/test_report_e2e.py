"""`ticketwarden report` end to end: a week of simulated support on the Zendesk emulator, synced
by the real sync job into a SQLite store, then the report in every format through the command
line — and the HTML page opened in headless Chromium."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ticketwarden.core.connector import Runtime
from ticketwarden.core.engine import Engine
from ticketwarden.core.model import Contact, Organization, Severity, Ticket
from ticketwarden.core.policy import default_policy
from ticketwarden.core.registry import load_plugins
from ticketwarden.core.store import Store
from ticketwarden.core.sync import DeskSync, SyncOptions
from ticketwarden.plugins.zendesk.connector import ZendeskConnector
from ticketwarden.plugins.zendesk.emulator import ZendeskEmulator
from ticketwarden.testing.emulator import FakeClock

from .conftest import COMPLETE_FIELDS
from .test_sync_e2e import environment, write_config

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
NOW = "2026-11-30T12:00:00+00:00"
PERIOD = ("--since", "2026-11-23T00:00:00+00:00", "--until", "2026-12-01T00:00:00+00:00")


@dataclass
class Simulation:
    """The store a simulated week left, and the environment the command line needs for it."""

    env: dict[str, str]
    tickets: dict[str, str]
    directory: Path


def hours(n: float) -> datetime:
    return START + timedelta(hours=n)


def run_week(directory: Path) -> Simulation:
    """Six tickets opened on Monday 09:00 Berlin, worked (or not) over eight days:

    - ``answered`` (severity 2): agent replies Mon 10:00 and Tue 09:00 Berlin, then nothing —
      first response met; one update interval (1 business day = 10 h) met, the next missed
      (due Wed 09:00 Berlin; flagged and escalated by the Wednesday sync).
    - ``ignored`` (severity 2): nobody answers — warned at 80 % of 4 business hours, breached,
      escalated (ESC-1).
    - ``workaround`` (severity 3): agent replies Mon 10:00 Berlin with a workaround (stop tag):
      first response met, no regular updates owed after it.
    - ``incomplete`` (severity 3): required fields missing — held (INTAKE-2), two reminders,
      auto-resolved after 7 days (CLOSE-3); no first response owed.
    - ``stranger`` (severity 3): the requester is not an authorized contact — rejected and
      waiting (AUTH-1), two reminders, auto-resolved.
    - ``outdated`` (severity 3): version 9.5 out of support — flagged (VER-1); nobody answers,
      so its first response (8 business hours) is breached and escalated.
    """
    clock = FakeClock(START)
    emulator = ZendeskEmulator(clock=clock)
    emulator.add_user("anna@acme.example", "Anna Berger", organization="acme", authorized=True)
    emulator.add_user("eve@acme.example", "Eve Stranger", organization="acme")
    store = Store(f"sqlite:///{directory / 'tw.db'}")
    engine = Engine(load_plugins(allow=None, block=()), default_policy())

    def add(severity: int, email: str = "anna@acme.example", **fields: str) -> str:
        merged = {**COMPLETE_FIELDS, **fields}
        return emulator.add_ticket(
            Ticket(
                id="new",
                number="new",
                subject="Dashboard totals differ",
                description="120 vs 118 devices. Expected: the same number.",
                severity=Severity(severity),
                requester=Contact(id=email, email=email),
                organization=Organization(id="acme"),
                fields={k: v for k, v in merged.items() if v},
                created_at=START,
                updated_at=START,
            )
        )

    tickets = {
        "answered": add(2),
        "ignored": add(2),
        "workaround": add(3),
        "incomplete": add(3, steps="", sample_machines=""),
        "stranger": add(3, email="eve@acme.example"),
        "outdated": add(3, version="9.5.3"),
    }

    def sync(at: datetime) -> None:
        clock.advance((at - clock.now()).total_seconds())

        async def one_pass() -> None:
            config, secrets = ZendeskConnector.conformance_config(emulator.base_url)
            config = config.model_copy(update={"name": "zd"})  # as in ticketwarden.toml
            runtime = Runtime(
                transport=emulator.transport(),
                clock=clock.monotonic,
                sleep=clock.sleep,
                wall_clock=clock.time,
            )
            async with ZendeskConnector(config, secrets, runtime) as connector:
                report = await DeskSync(connector, engine, store, SyncOptions(now=at)).run()
                assert report.ok, report.failures

        asyncio.run(one_pass())

    def agent(at: datetime, key: str, **changes: Any) -> None:
        clock.advance((at - clock.now()).total_seconds())
        emulator.agent_update(tickets[key], **changes)

    sync(hours(0.1))
    agent(hours(1), "answered", comment="Looking into it.")
    agent(
        hours(1),
        "workaround",
        comment="Workaround: export with the legacy exporter.",
        additional_tags=["workaround-provided"],
    )
    sync(hours(1.5))
    sync(hours(3.5))  # 11:30 Berlin: past 80 % of 4 business hours for "ignored"
    sync(hours(4.5))  # 13:30 Berlin: "ignored" breached
    agent(hours(24), "answered", comment="Still investigating; logs requested.")
    sync(hours(25.5))
    for day in (2, 5, 7):  # the reminders and the auto-resolve fire at 2, 5 and 7 days
        sync(hours(24 * day + 1))
    store.close()
    env = environment(directory, write_config(directory, emulator.base_url))
    return Simulation(env=env, tickets=tickets, directory=directory)


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Simulation:
    return run_week(tmp_path_factory.mktemp("report"))


def tw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticketwarden", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def report_json(week: Simulation, *extra: str) -> dict[str, Any]:
    result = tw(week.env, "report", "--as-of", NOW, *PERIOD, "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def target(data: dict[str, Any], desk: str, severity: str) -> dict[str, Any]:
    (found,) = [t for t in data["targets"] if t["desk"] == desk and t["severity"] == severity]
    return dict(found)


def test_json_report_counts_the_simulated_week(week: Simulation) -> None:
    data = report_json(week)
    sev2, sev3 = target(data, "zd", "2"), target(data, "zd", "3")
    assert sev2["tickets"] == 2 and sev3["tickets"] == 4
    assert sev2["first_response"] == {"met": 1, "missed": 1, "pending": 0, "rate": 0.5}
    # "workaround" met; "outdated" missed; "incomplete" and "stranger" waited, owed nothing
    assert sev3["first_response"] == {"met": 1, "missed": 1, "pending": 0, "rate": 0.5}
    assert sev2["update_interval"] == {"met": 1, "missed": 1, "pending": 0, "rate": 0.5}
    assert sev3["update_interval"] == {"met": 0, "missed": 0, "pending": 0, "rate": None}
    assert (sev2["warnings"], sev2["breaches"], sev2["updates_overdue"]) == (1, 1, 1)
    assert (sev3["warnings"], sev3["breaches"]) == (0, 1)
    (desk, total) = data["activity"]
    assert desk["desk"] == "zd" and total["desk"] == "all"
    assert desk["tickets_created"] == 6
    assert (desk["reminders"], desk["auto_resolves"]) == (4, 2)
    assert desk["resolved"] == 2 and desk["reopened"] == 0
    # ESC-1: the breached first responses of "ignored" and "outdated", the missed update
    assert (desk["escalations_automatic"], desk["escalations_requested"]) == (3, 0)
    assert desk["unauthorized"] == 1 and desk["unauthorized_rate"] == pytest.approx(1 / 6)
    assert desk["unsupported_version"] == 1
    assert data["unsupported_versions"] == {"9.5.3": 1}
    assert sum(d["reminders"] for d in data["daily"]) == 4
    assert data["notes"] == []


def test_the_period_and_desk_filters_narrow_the_report(week: Simulation) -> None:
    later = tw(
        week.env, "report", "--as-of", NOW, "--since", "2026-11-27T00:00:00+00:00",
        "--format", "json",
    )  # fmt: skip
    data = json.loads(later.stdout)
    everything = target(data, "all", "all")
    assert everything["tickets"] == 0, "all six were created before the period"
    (desk, _) = data["activity"]
    assert (desk["reminders"], desk["auto_resolves"]) == (2, 2)  # the 5-day ones and the end
    mine = report_json(week, "--desk", "zd")
    assert target(mine, "zd", "2") == target(report_json(week), "zd", "2")
    none = report_json(week, "--desk", "elsewhere")
    assert [a["desk"] for a in none["activity"]] == ["all"]
    assert none["activity"][0]["tickets_created"] == 0
    assert [(t["desk"], t["tickets"]) for t in none["targets"]] == [("all", 0)]


def test_csv_and_table_reports_carry_the_same_numbers(week: Simulation) -> None:
    result = tw(week.env, "report", "--as-of", NOW, *PERIOD, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    value = {(r["section"], r["desk"], r["key"], r["metric"]): r["value"] for r in rows}
    assert value[("targets", "zd", "2", "first_response_rate")] == "0.5000"
    assert value[("activity", "zd", "", "auto_resolves")] == "2"
    out = week.directory / "report.txt"
    table = tw(week.env, "report", "--as-of", NOW, *PERIOD, "--output", str(out))
    assert table.returncode == 0 and table.stdout == "", table.stderr
    text = out.read_text()
    assert "Response targets" in text and "50 %" in text and "9.5.3" in text


def test_bad_options_exit_2(week: Simulation) -> None:
    assert tw(week.env, "report", "--format", "xml").returncode == 2
    backwards = tw(week.env, "report", "--since", "2026-12-01T00:00:00Z", "--until", NOW)
    assert backwards.returncode == 2 and "before" in backwards.stderr
    naive = tw(week.env, "report", "--since", "2026-12-01")
    assert naive.returncode == 2 and "Traceback" not in naive.stderr


@pytest.fixture(scope="module")
def html_report(week: Simulation) -> Iterator[Path]:
    page = week.directory / "report.html"
    result = tw(week.env, "report", "--as-of", NOW, *PERIOD, "--html", str(page))
    assert result.returncode == 0, result.stderr
    assert "Response targets" in result.stdout, "the table is printed as well"
    yield page


def test_html_report_is_self_contained(html_report: Path) -> None:
    page = html_report.read_text(encoding="utf-8")
    assert page.count("<svg") == 2 and "<script" not in page and "src=" not in page
    assert "9.5.3" in page and "50 %" in page
