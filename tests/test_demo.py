"""`ticketwarden demo`: every rule that acts on tickets acts in it, the same seed gives the same
run, and the command leaves a report (and, with --keep, the database) behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ticketwarden.core.store import Store
from ticketwarden.demo.simulation import (
    CLOCK_RULES,
    DemoOptions,
    DemoResult,
    rules_without_actions,
    run_demo,
)


def demo(tmp_path: Path, **options: int) -> DemoResult:
    workdir = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    workdir.mkdir()
    return asyncio.run(run_demo(DemoOptions(workdir=workdir, **options)))


def test_a_fortnight_shows_every_rule_that_acts_on_tickets(tmp_path: Path) -> None:
    result = demo(tmp_path, days=14, tickets=40, seed=3)
    assert rules_without_actions(result) == []
    assert sum(result.tickets_by_desk.values()) == 40
    assert set(result.tickets_by_desk) == {"zendesk", "jira", "freshdesk"}
    # everything came through the sidecar's webhooks and the timers, and nothing failed
    assert result.webhooks > 40
    assert not result.failed
    assert result.citing > 0  # INTAKE-3: the number is cited in public comments
    assert set(result.rules) >= CLOCK_RULES
    # the store behind it is sound: a verified audit chain with the actions counted
    assert result.database is not None
    with Store(f"sqlite:///{result.database}") as store:
        assert store.verify_audit() is None
        rows = [r for r in store.audit() if r.outcome != "failed"]
    assert len(rows) == sum(result.actions.values())
    assert result.report_path is not None and result.report_path.stat().st_size > 10_000
    assert "<svg" in result.report_path.read_text(encoding="utf-8")


def test_the_same_seed_gives_the_same_run(tmp_path: Path) -> None:
    first = demo(tmp_path, days=5, tickets=24, seed=11)
    again = demo(tmp_path, days=5, tickets=24, seed=11)
    other = demo(tmp_path, days=5, tickets=24, seed=12)
    assert first.actions == again.actions
    assert first.tickets_by_desk == again.tickets_by_desk
    assert first.webhooks == again.webhooks
    assert (first.actions, first.tickets_by_desk) != (other.actions, other.tickets_by_desk)


def ticketwarden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "ticketwarden", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_command_prints_the_summary_and_keeps_what_it_is_asked_to(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    run = ticketwarden("demo", "--days", "3", "--tickets", "12", "--keep", str(kept), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Actions by rule and desk" in run.stdout
    assert "Response targets" in run.stdout
    assert f"report: {kept / 'report.html'}" in run.stdout
    assert (kept / "report.html").is_file() and (kept / "ticketwarden.db").is_file()
    assert "day 3:" in run.stdout  # progress, one line per simulated day off a terminal

    again = ticketwarden("demo", "--keep", str(kept), cwd=tmp_path)
    assert again.returncode == 2
    assert "already holds a demo database" in again.stderr

    plain = ticketwarden("demo", "--days", "1", "--tickets", "5", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    (line,) = [x for x in plain.stdout.splitlines() if x.startswith("report: ")]
    report = Path(line.split()[1])
    assert report.is_file()  # the report stays to be opened
    assert not list(report.parent.glob("ticketwarden.db*"))  # the database does not


@pytest.mark.parametrize("args", [["--days", "0"], ["--tickets", "0"], ["--days", "x"]])
def test_bad_options_are_refused(tmp_path: Path, args: list[str]) -> None:
    run = ticketwarden("demo", *args, cwd=tmp_path)
    assert run.returncode == 2
