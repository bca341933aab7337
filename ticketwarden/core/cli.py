"""The ``ticketwarden`` command line.

Exit codes are part of the interface: 0 success; 1 a policy test failed; 2 bad input (a policy
or scenario file that cannot be used, an unknown path) — always with a message naming the file
and the problem, never a traceback.
"""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import tomli_w
import typer
from rich.console import Console
from rich.table import Table

from ticketwarden import __version__
from ticketwarden.core.policy import (
    PolicyError,
    load_policy,
    organization_report,
    policy_data,
)
from ticketwarden.core.registry import PluginError, Plugins, load_plugins
from ticketwarden.core.scenario import (
    ScenarioError,
    ScenarioResult,
    find_scenarios,
    run_scenario,
)

app = typer.Typer(
    name="ticketwarden",
    help="Enforce a technical-support policy inside the helpdesks you already use.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Show, check and test the support policy.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PolicyFile = Annotated[
    Path | None,
    typer.Option("--policy", "-p", help="policy TOML file (default: the built-in preset)"),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True)
    return typer.Exit(code)


def _plugins() -> Plugins:
    try:
        return load_plugins()
    except PluginError as exc:
        raise _fail(str(exc)) from None


def shipped_scenarios() -> Path:
    """The example scenarios: inside the installed package, or beside it in a source checkout."""
    packaged = Path(str(resources.files("ticketwarden"))) / "examples" / "scenarios"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "examples" / "scenarios"


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        out.print(f"ticketwarden {__version__}")
        raise typer.Exit()


@policy_app.command("show")
def policy_show(
    file: Annotated[Path | None, typer.Argument(help="policy file (default: built-in)")] = None,
    org: Annotated[
        str | None,
        typer.Option(
            "--org", help="the effective targets for this organization, naming each value's layer"
        ),
    ] = None,
) -> None:
    """Print the effective policy as TOML: the built-in preset merged with FILE; with --org,
    one organization's targets after its plan and its own overrides."""
    try:
        policy = load_policy(file)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    if org is not None:
        out.print(organization_report(policy, org), end="", markup=False)
        return
    out.print(tomli_w.dumps(policy_data(policy)), end="", markup=False)


@policy_app.command("check")
def policy_check(file: Annotated[Path, typer.Argument(help="policy file to validate")]) -> None:
    """Validate a policy file; exit 2 with the key and the problem when it is not valid."""
    try:
        policy = load_policy(file)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    calendars = ", ".join(["24x7", *policy.calendars])
    out.print(f"{file}: valid policy {policy.name!r} (calendars: {calendars})")


@policy_app.command("docs")
def policy_docs(
    check: Annotated[
        bool, typer.Option("--check", help="exit 1 when FILE's generated part is out of date")
    ] = False,
    write: Annotated[
        bool, typer.Option("--write", help="replace FILE's generated part with the current one")
    ] = False,
    file: Annotated[
        Path, typer.Option("--file", help="the page holding the generated part")
    ] = Path("docs/policy.md"),
) -> None:
    """Print every policy key — type, default, meaning, the rules it serves — as markdown,
    generated from the policy models; --check or --write compare with or update FILE."""
    from ticketwarden.core.policy_docs import generated_part, render, replace_generated

    generated = render()
    if not (check or write):
        out.print(generated, end="", markup=False)
        return
    try:
        text = file.read_text(encoding="utf-8")
        if write:
            file.write_text(replace_generated(text, generated), encoding="utf-8")
            out.print(f"{file}: generated part updated", markup=False)
            return
    except (OSError, ValueError) as exc:
        raise _fail(f"{file}: {exc}") from None
    current = generated_part(text)
    if current is None:
        raise _fail(f"{file}: no generated part (see ticketwarden/core/policy_docs.py)")
    if current != generated:
        raise _fail(
            f"{file}: the generated policy reference is out of date; run "
            f"`ticketwarden policy docs --write --file {file}`",
            1,
        )
    out.print(f"{file}: generated part up to date", markup=False)


def _display(path: Path) -> str:
    """A path relative to the working directory when it is below it, else its last parts."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(Path(*path.parts[-3:]))


def _report_failure(result: ScenarioResult, verbose: bool) -> None:
    out.rule(f"[red]{result.name}[/red]", characters="_")
    out.print(_display(Path(result.path)), markup=False)
    if result.error:
        out.print(result.error, markup=False)
        return
    for step in result.steps:
        if not step.failures and not verbose:
            continue
        out.print(f"step {step.index} at {step.at.isoformat()} ({step.step.event}):", markup=False)
        for failure in step.failures:
            out.print(f"  [red]E[/red] {failure}", markup=True)
        out.print("  actions taken in this step:" if step.taken else "  no actions in this step")
        for taken in step.taken:
            out.print(f"    {taken.line()}", markup=False)


@policy_app.command("test")
def policy_test(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="scenario files or directories (default: the shipped examples)"),
    ] = None,
    policy_file: PolicyFile = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show every step's actions")
    ] = False,
) -> None:
    """Run policy-test scenarios on simulated time; exit 1 if any fails, 2 on invalid files."""
    started = time.perf_counter()
    try:
        base = load_policy(policy_file) if policy_file else None
        files = find_scenarios(paths or [shipped_scenarios()])
    except (PolicyError, ScenarioError) as exc:
        raise _fail(str(exc)) from None
    if not files:
        raise _fail("no scenario files (*.yaml) found")
    plugins = _plugins()
    out.print(
        f"ticketwarden policy test — {len(files)} scenario(s), "
        f"policy: {policy_file or 'built-in preset'}",
        markup=False,
    )
    results = []
    for path in files:
        result = run_scenario(path, plugins, base_policy=base)
        results.append(result)
        colour = {"passed": "green", "failed": "red", "error": "yellow"}[result.outcome]
        out.print(
            f"{_display(path)}::{result.name} [{colour}]{result.outcome.upper()}[/{colour}]",
            markup=True,
        )
        if verbose and result.passed:
            _report_failure(result, verbose=True)
    bad = [r for r in results if not r.passed]
    if bad:
        out.rule("FAILURES", characters="=")
        for result in bad:
            _report_failure(result, verbose)
    counts = {k: sum(r.outcome == k for r in results) for k in ("passed", "failed", "error")}
    summary = f"{counts['passed']} passed, {counts['failed']} failed"
    if counts["error"]:
        summary += f", {counts['error']} error"
    out.rule(f"{summary} in {time.perf_counter() - started:.2f}s", characters="=")
    if counts["error"]:
        raise typer.Exit(2)
    if counts["failed"]:
        raise typer.Exit(1)


@app.command("plugins")
def plugins_command(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """List every registered plugin, where it came from, its hooks, rules and connectors."""
    plugins = _plugins()
    try:
        owners = plugins.connector_owners()
    except PluginError as exc:
        raise _fail(str(exc)) from None
    table = Table("plugin", "source", "hooks", "rules", "connectors")
    for info in plugins.info():
        plugin = plugins.pm.get_plugin(info.name)
        rules = list(getattr(plugin, "RULE_IDS", ()))
        provided = sorted(c for c, owner in owners.items() if owner == info.name)
        if as_json:
            record = {
                "plugin": info.name,
                "source": info.source,
                "hooks": list(info.hooks),
                "rules": rules,
                "connectors": provided,
            }
            out.print(json.dumps(record), markup=False, soft_wrap=True)
        else:
            table.add_row(
                info.name, info.source, ", ".join(info.hooks), ", ".join(rules), ", ".join(provided)
            )
    if not as_json:
        out.print(table)


@app.command("new-connector")
def new_connector_command(
    name: Annotated[str, typer.Argument(help="connector name: lowercase letters, digits, hyphens")],
    dest: Annotated[Path, typer.Option("--dest", help="directory to create the package in")] = Path(
        "."
    ),
) -> None:
    """Write a connector plugin package that passes the conformance suite as generated."""
    from ticketwarden.testing.scaffold import ScaffoldError, render_connector

    try:
        package = render_connector(name, dest)
    except ScaffoldError as exc:
        raise _fail(str(exc)) from None
    out.print(
        f"created {package}\nnext: cd {package} && pip install -e . && pytest -q",
        markup=False,
    )


@app.command("emulate")
def emulate_command(
    name: Annotated[str, typer.Argument(help="connector name, as `ticketwarden plugins` lists")],
    port: Annotated[int, typer.Option(help="loopback port to serve on")] = 8800,
    seed: Annotated[int, typer.Option(help="seed of the sample tickets")] = 1,
    tickets: Annotated[int, typer.Option(help="how many sample tickets to seed")] = 50,
    rate_limit: Annotated[
        int | None, typer.Option(help="requests a minute before 429s (default: none)")
    ] = None,
    control: Annotated[
        bool,
        typer.Option(help="serve POST /_emulator/clock to move the emulator's clock (tests)"),
    ] = False,
) -> None:
    """Serve a connector's helpdesk emulator with seeded tickets on 127.0.0.1:PORT."""
    from ticketwarden.testing.samples import sample_tickets

    connectors = _connectors()
    if name not in connectors:
        known = ", ".join(sorted(connectors)) or "none installed"
        raise _fail(f"no connector named {name!r} (known: {known})")
    emulator_class = connectors[name].emulator()
    if emulator_class is None:
        raise _fail(f"connector {name!r} ships no emulator")
    from ticketwarden.testing.emulator import RealClock, SettableClock

    clock = SettableClock() if control else RealClock()
    emulator = emulator_class(
        clock=clock, seed=seed, rate_limit=rate_limit, base_url=f"http://127.0.0.1:{port}"
    )
    for ticket in sample_tickets(seed, tickets):
        emulator.add_ticket(ticket)
    out.print(
        f"{name} emulator on http://127.0.0.1:{port} with {tickets} tickets (seed {seed}); "
        "Ctrl-C stops it",
        markup=False,
    )
    emulator.serve("127.0.0.1", port)


def _connectors() -> dict[str, type[Any]]:
    try:
        return _plugins().connectors()
    except PluginError as exc:
        raise _fail(str(exc)) from None


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="ticketwarden.toml (default: $TICKETWARDEN_CONFIG or ./)"),
]


AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="evaluate as if it were TIME (ISO, with zone)")
]


def _config(path: Path | None) -> Any:
    from ticketwarden.core.settings import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _store(config: Any) -> Any:
    from ticketwarden.core.settings import ConfigError, database_url
    from ticketwarden.core.store import Store, StoreError

    try:
        url = database_url(config)
        return Store(url.get_secret_value() if url is not None else None)
    except (ConfigError, StoreError) as exc:
        raise _fail(str(exc)) from None


def _moment(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(
            f"--as-of {text!r}: use an ISO time such as 2026-11-30T09:00:00+01:00"
        ) from None
    if at.tzinfo is None:
        raise _fail(f"{text!r} needs a time zone (e.g. +01:00 or Z)")
    return at


@app.command("init")
def init_command(
    path: Annotated[
        Path | None, typer.Argument(help="where to write (default: ./ticketwarden.toml)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented starter ticketwarden.toml."""
    from ticketwarden.core.settings import ConfigError, default_config_path, write_starter

    try:
        written = write_starter(path or default_config_path(), force=force)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    out.print(f"wrote {written}; edit it, then run `ticketwarden check --ping`", markup=False)


@app.command("check")
def check_command(
    config_path: ConfigOption = None,
    ping: Annotated[
        bool, typer.Option("--ping", help="reach each desk once with its credentials")
    ] = False,
) -> None:
    """Validate the configuration; with --ping, reach each desk and say exactly what fails."""
    from ticketwarden.core.settings import config_warnings
    from ticketwarden.core.settings import ping as ping_desks

    config = _config(config_path)
    desks = ", ".join(f"{name}: {d.connector}" for name, d in config.desks.items()) or "none"
    store = config.store.url or "default SQLite file"
    out.print(
        f"{config.path}: valid — policy {config.policy.name!r}, {len(config.desks)} desk(s) "
        f"({desks}), store: {store}",
        markup=False,
    )
    for warning in config_warnings(config):
        out.print(f"warning: {warning}", markup=False)
    if not ping:
        return
    results = asyncio.run(ping_desks(config))
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        out.print(f"{mark} {result.desk}: {result.message}", markup=False)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


db_app = typer.Typer(help="The state store.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade_command(config_path: ConfigOption = None) -> None:
    """Create or migrate the store's schema to this version of ticketwarden."""
    store = _store(_config(config_path))
    store.upgrade()
    out.print(f"{store.url}: schema at revision {store.revision()}", markup=False)


def _engine(config: Any) -> Any:
    from ticketwarden.core.engine import Engine

    return Engine(_plugins(), config.policy)


def _connector(config: Any, name: str) -> Any:
    from ticketwarden.core.settings import ConfigError, desk_secrets

    if name not in config.desks:
        raise _fail(f"no desk named {name!r} in {config.path} (desks: {', '.join(config.desks)})")
    desk = config.desks[name]
    connector_class = _connectors()[desk.connector]
    try:
        secrets = desk_secrets(desk, connector_class)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    return connector_class(desk, secrets)


@app.command("sync")
def sync_command(
    config_path: ConfigOption = None,
    desk: Annotated[
        list[str] | None, typer.Option("--desk", help="only this desk (repeatable)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan, change nothing")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="evaluate as if it were TIME")
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="repeat every DURATION until SIGTERM")
    ] = None,
) -> None:
    """One idempotent pass per desk: catch up on changes, then fire due timers."""
    from ticketwarden.core.clock import parse_span
    from ticketwarden.core.sync import DeskReport, DeskSync, SyncOptions, log_action_line

    config = _config(config_path)
    names = desk or list(config.desks)
    unknown = [n for n in names if n not in config.desks]
    if unknown:
        raise _fail(f"unknown desk(s) {', '.join(unknown)} (desks: {', '.join(config.desks)})")
    interval = None
    if every is not None:
        try:
            interval = parse_span(every).to_timedelta(timedelta(days=1))
        except ValueError as exc:
            raise _fail(f"--every: {exc}") from None
    store = _store(config)
    engine = _engine(config)
    stop = _stop_on_sigterm()
    terminal = sys.stdout.isatty()

    def on_action(name: str, ticket: Any, action: Any, result: Any) -> None:
        if not terminal:
            print(log_action_line(name, ticket, action, result), flush=True)
        elif dry_run:
            out.print(
                f"plan {name} {ticket.number}: {action.rule_id} {action.describe()}", markup=False
            )

    async def one_pass() -> list[DeskReport]:
        now = _moment(as_of)
        reports = []
        for name in names:
            if stop.is_set():
                break
            connector = _connector(config, name)
            options = SyncOptions(
                now=now,
                dry_run=dry_run,
                page_limit=config.sync.page_limit,
                candidate_lookback=config.sync.lookback,
                lease_ttl=config.sync.lease,
            )
            async with connector:
                with _progress(terminal, name) as progress:
                    sync = DeskSync(
                        connector, engine, store, options, on_action=on_action, on_progress=progress
                    )
                    reports.append(await sync.run())
        return reports

    while True:
        reports = asyncio.run(one_pass())
        _summary(reports, terminal)
        if interval is None or stop.is_set():
            break
        if stop.wait(interval.total_seconds()):
            break
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    return stop


@contextmanager
def _progress(terminal: bool, desk: str) -> Iterator[Callable[[str, int], None] | None]:
    if not terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=out, transient=True
    ) as progress:
        task = progress.add_task(f"{desk}: reading changes", total=None)

        def update(name: str, tickets: int) -> None:
            progress.update(task, description=f"{name}: {tickets} tickets read")

        yield update


def _summary(reports: Sequence[Any], terminal: bool) -> None:
    if not terminal:  # one structured line per desk, like the action lines
        for r in reports:
            record = {
                "summary": r.desk,
                "tickets": r.tickets_read,
                "events": r.events,
                "timers": r.timers,
                "actions_by_rule": dict(sorted(r.actions_by_rule.items())),
                "outcomes": dict(sorted(r.outcomes.items())),
                "failures": r.failures,
                "api_calls": r.api_calls,
                "rate_limited": r.rate_limited,
                "skipped": r.skipped,
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
        return
    table = Table(
        "desk",
        "tickets",
        "events",
        "timers",
        "actions by rule",
        "outcomes",
        "failures",
        "API calls",
        "429s",
    )
    for r in reports:
        rules = ", ".join(f"{k} {v}" for k, v in sorted(r.actions_by_rule.items()))
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))
        table.add_row(
            r.desk,
            str(r.tickets_read),
            str(r.events),
            str(r.timers),
            rules or "-",
            outcomes or ("planned" if r.planned else "-"),
            str(len(r.failures)),
            str(r.api_calls),
            str(r.rate_limited),
        )
    out.print(table)
    for r in reports:
        if r.skipped:
            out.print(r.skipped, markup=False)
        for failure in r.failures:
            err.print(f"failed: {r.desk} {failure}", markup=False)


@app.command("explain")
def explain_command(
    desk: Annotated[str, typer.Argument(help="desk name from ticketwarden.toml")],
    ticket_id: Annotated[str, typer.Argument(help="the desk's ticket id")],
    config_path: ConfigOption = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="evaluate as if it were TIME")
    ] = None,
) -> None:
    """Read-only: which rules fire now for a ticket, which would fire when, and why."""
    from ticketwarden.core.errors import HelpdeskError
    from ticketwarden.core.model import Event, EventKind
    from ticketwarden.core.sync import events_for

    config = _config(config_path)
    store = _store(config)
    engine = _engine(config)
    now = _moment(as_of)

    async def run() -> None:
        async with _connector(config, desk) as connector:
            ticket = await connector.read_ticket(ticket_id)
            state = store.state(desk, ticket_id)
            out.print(
                f"{desk} {ticket.number}: {ticket.subject} — {ticket.status}, severity "
                f"{ticket.severity or '-'} (as of {now.isoformat()})",
                markup=False,
            )
            for line in engine.describe_targets(ticket, state):
                out.print(line, markup=False)
            events = events_for(ticket, state) or [
                Event(id=f"explain:{ticket_id}", kind=EventKind.STALE, at=now)
            ]
            for event in [*events, Event(id=f"explain:{ticket_id}", kind=EventKind.STALE, at=now)]:
                evaluation = engine.evaluate(event, ticket, state, now)
                for line in evaluation.explanation.lines():
                    out.print(line, markup=False)
                ticket, state = evaluation.projected, evaluation.state

    try:
        asyncio.run(run())
    except HelpdeskError as exc:
        raise _fail(str(exc), 1) from None


@app.command("audit")
def audit_command(
    config_path: ConfigOption = None,
    desk: Annotated[str | None, typer.Option("--desk")] = None,
    ticket: Annotated[str | None, typer.Option("--ticket")] = None,
    rule: Annotated[str | None, typer.Option("--rule")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time, inclusive")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO time, exclusive")] = None,
    output: Annotated[str, typer.Option("--format", help="table, jsonl or csv")] = "table",
    verify: Annotated[bool, typer.Option("--verify", help="check the hash chain")] = False,
) -> None:
    """Show the audit trail, filtered; --verify checks the hash chain and names the first
    broken row."""
    from ticketwarden.core.store import AuditFilter

    if output not in ("table", "jsonl", "csv"):
        raise _fail(f"--format {output!r}: use table, jsonl or csv")
    store = _store(_config(config_path))
    if verify:
        broken = store.verify_audit()
        if broken is not None:
            err.print(
                f"audit trail broken at row {broken.id} ({broken.at.isoformat()}, "
                f"{broken.desk} {broken.ticket_id} {broken.rule_id})",
                markup=False,
            )
            raise typer.Exit(1)
        out.print("audit trail intact", markup=False)
        return
    filters = AuditFilter(
        desk=desk,
        ticket_id=ticket,
        rule_id=rule,
        since=_moment(since) if since else None,
        until=_moment(until) if until else None,
    )
    fields = [
        "id",
        "at",
        "actor",
        "desk",
        "ticket_id",
        "rule_id",
        "action",
        "reason",
        "outcome",
        "detail",
    ]
    rows = store.audit(filters)
    if output == "jsonl":
        for row in rows:
            record = {f: getattr(row, f) for f in fields}
            record["at"] = row.at.isoformat()
            print(json.dumps(record, ensure_ascii=False))
    elif output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(fields)
        for row in rows:
            writer.writerow([row.at.isoformat() if f == "at" else getattr(row, f) for f in fields])
    else:
        table = Table(*fields[:-1])
        for row in rows:
            table.add_row(
                *[row.at.isoformat() if f == "at" else str(getattr(row, f)) for f in fields[:-1]]
            )
        out.print(table)


@app.command("report")
def report_command(
    config_path: ConfigOption = None,
    desk: Annotated[
        list[str] | None, typer.Option("--desk", help="only this desk (repeatable)")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time, inclusive (default: 30 days back)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="ISO time, exclusive (default: now)")
    ] = None,
    as_of: AsOfOption = None,
    output_format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", help="write the table/CSV/JSON here")
    ] = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="also write a self-contained HTML page here")
    ] = None,
) -> None:
    """Response-target attainment and what the policy did, per severity and desk, over a
    period: from the store's audit trail and ticket states (see docs/report.md)."""
    from ticketwarden.reporting import load_report, report_csv, report_json, report_table
    from ticketwarden.reporting.text import table_text

    if output_format not in ("table", "csv", "json"):
        raise _fail(f"--format {output_format!r}: use table, csv or json")
    config = _config(config_path)
    now = _moment(as_of)
    end = _moment(until) if until else now
    start = _moment(since) if since else end - timedelta(days=30)
    if start >= end:
        raise _fail(f"--since {start.isoformat()} must be before --until {end.isoformat()}")
    report = load_report(
        _store(config), config.policy, since=start, until=end, now=now, desks=desk or ()
    )
    if html_path is not None:
        from ticketwarden.reporting.html import write_html

        write_html(report, html_path)
    if output_format == "table" and output is None and sys.stdout.isatty():
        out.print(report_table(report))
        return
    text = {"csv": report_csv, "json": report_json, "table": table_text}[output_format](report)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


# The sidecar's commands (serve, inbox) and the demo register themselves on ``app``.
from ticketwarden.core import demo_cli, serve_cli  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
