"""The ``ticketwarden`` command line.

Exit codes are part of the interface: 0 success; 1 a policy test failed; 2 bad input (a policy
or scenario file that cannot be used, an unknown path) — always with a message naming the file
and the problem, never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import tomli_w
import typer
from rich.console import Console
from rich.table import Table

from ticketwarden import __version__
from ticketwarden.core.policy import PolicyError, load_policy, policy_data
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
) -> None:
    """Print the effective policy as TOML: the built-in preset merged with FILE."""
    try:
        policy = load_policy(file)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
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
    emulator = emulator_class(seed=seed, rate_limit=rate_limit, base_url=f"http://127.0.0.1:{port}")
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
