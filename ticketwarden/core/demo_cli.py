"""``ticketwarden demo``: the first ten minutes — two simulated weeks on every built-in
helpdesk's emulator, the sidecar and the sync job's timers, then a summary and the report.

Only the command's surface lives here; the simulation is :mod:`ticketwarden.demo.simulation`,
imported when the command runs (it builds on the built-in connectors and their emulators).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ticketwarden.core.cli import _fail, app, out


@app.command("demo")
def demo_command(
    days: Annotated[int, typer.Option("--days", min=1, max=60, help="simulated days to run")] = 14,
    tickets: Annotated[
        int, typer.Option("--tickets", min=1, max=5000, help="tickets the customers open")
    ] = 300,
    seed: Annotated[int, typer.Option("--seed", help="the same seed gives the same run")] = 1,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="keep the database and the report in this directory"),
    ] = None,
) -> None:
    """Two simulated weeks of support on every built-in helpdesk, in under a minute: fictitious
    customers open a few hundred tickets in the helpdesk emulators, whose signed webhooks reach
    the sidecar; ticketwarden enforces the whole policy; a summary and an HTML report follow."""
    from ticketwarden.demo.simulation import START, DemoOptions, run_demo

    if keep is not None:
        if keep.exists() and not keep.is_dir():
            raise _fail(f"--keep {keep}: not a directory")
        if keep.is_dir() and any(keep.glob("ticketwarden.db*")):
            raise _fail(f"--keep {keep}: already holds a demo database; choose an empty directory")
        keep.mkdir(parents=True, exist_ok=True)
        workdir = keep
    else:
        workdir = Path(tempfile.mkdtemp(prefix="ticketwarden-demo-"))
    terminal = sys.stdout.isatty()
    out.print(
        f"ticketwarden demo: {tickets} tickets over {days} simulated days on the Zendesk, Jira "
        f"Service Management and Freshdesk emulators (seed {seed})",
        markup=False,
    )
    started = time.monotonic()
    total_hours = days * 24
    options = DemoOptions(days=days, tickets=tickets, seed=seed, workdir=workdir)
    with _progress(terminal, total_hours) as update:

        def progress(now: datetime, created: int, actions: int) -> None:
            hours = int((now - START) / timedelta(hours=1))
            update(hours, f"day {hours // 24 + 1}: {created} tickets, {actions} audit records")

        try:
            result = asyncio.run(run_demo(options, progress=progress))
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    elapsed = time.monotonic() - started
    _summary(result, elapsed)
    if keep is None:
        for leftover in workdir.glob("ticketwarden.db*"):
            leftover.unlink()
        out.print(
            f"report: {result.report_path}  (the database was removed; --keep DIR keeps it)",
            markup=False,
        )
    else:
        out.print(f"report: {result.report_path}", markup=False)
        out.print(
            f"database: {result.database}  (try: TICKETWARDEN_DATABASE_URL=sqlite:///"
            f"{result.database} ticketwarden audit --verify)",
            markup=False,
        )
    from ticketwarden.demo.simulation import rules_without_actions

    missing = rules_without_actions(result)
    if missing:
        out.print(f"rules with no action in this run: {', '.join(missing)}", markup=False)


class _progress:
    """A progress bar over simulated hours on a terminal; a line per simulated day otherwise."""

    def __init__(self, terminal: bool, total: int) -> None:
        self.terminal = terminal
        self.total = total
        self.bar: Any = None
        self.task: Any = None
        self.last_day = -1

    def __enter__(self) -> Any:
        if self.terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=out,
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=self.total)
        return self.update

    def update(self, hours: int, text: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=hours, description=text)
        elif hours // 24 != self.last_day:
            self.last_day = hours // 24
            print(text, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _summary(result: Any, elapsed: float) -> None:
    from ticketwarden.demo.simulation import (
        CLOCK_RULES,
        WRAPPING_RULES,
        summary_desks,
        summary_rows,
    )
    from ticketwarden.reporting.text import report_table

    desks = summary_desks(result)
    tickets = ", ".join(f"{d} {result.tickets_by_desk[d]}" for d in desks)
    out.print(
        f"\n{sum(result.tickets_by_desk.values())} tickets ({tickets}), "
        f"{result.webhooks} signed webhooks, {(result.ended - result.started).days} simulated "
        f"days in {elapsed:.0f} s",
        markup=False,
    )
    table = Table("rule", *desks, "total", title="Actions by rule and desk", title_justify="left")
    for rule, counts, total in summary_rows(result):
        if rule in CLOCK_RULES and not total:
            table.add_row(rule, *["" for _ in desks], "the clocks of every target")
        elif rule in WRAPPING_RULES and not total:
            table.add_row(
                rule, *["" for _ in desks], f"{result.citing} public comments cite the number"
            )
        else:
            table.add_row(rule, *[str(c) for c in counts], str(total))
    out.print(table)
    failed = sum(result.failed.values())
    if failed:
        out.print(f"{failed} actions failed (see ticketwarden audit)", markup=False)
    if result.report is not None:
        out.print(report_table(result.report))
