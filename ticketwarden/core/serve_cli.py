"""``ticketwarden serve`` and ``ticketwarden inbox``: the sidecar's commands.

Kept apart from :mod:`ticketwarden.core.cli` (which imports this module last, to register
them) because they are the only commands that run a web server and manage the inbox.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from ticketwarden.core.cli import (
    ConfigOption,
    _config,
    _connectors,
    _engine,
    _fail,
    _store,
    app,
    out,
)

inbox_app = typer.Typer(
    help="The sidecar's webhook inbox: list, show, retry or drop stored events.",
    no_args_is_help=True,
)
app.add_typer(inbox_app, name="inbox")


@app.command("serve")
def serve_command(
    config_path: ConfigOption = None,
    host: Annotated[
        str | None, typer.Option("--host", help="address to listen on (default: [serve] host)")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="port to listen on (default: [serve] port)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="inbox worker tasks in this process; 0 only receives"),
    ] = None,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler/--no-scheduler", help="fire due timers and catch up in this process"
        ),
    ] = True,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning")] = "info",
) -> None:
    """Run the webhook sidecar: receive signed webhooks, apply the policy within seconds."""
    import uvicorn

    from ticketwarden.core import logs
    from ticketwarden.core.settings import ConfigError, desk_secrets
    from ticketwarden.core.sidecar import build

    config = _config(config_path)
    if not config.desks:
        raise _fail(f"{config.path or 'the configuration'} has no [desks.NAME]: nothing to serve")
    classes = _connectors()
    try:
        secrets = {
            name: desk_secrets(desk, classes[desk.connector]) for name, desk in config.desks.items()
        }
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    missing = [n for n, s in secrets.items() if s.webhook_secret is None]
    if missing:
        raise _fail(
            f"desk(s) {', '.join(missing)} have no webhook secret: set "
            "TICKETWARDEN_DESK_<DESK>_WEBHOOK_SECRET (or the secrets file); every webhook "
            "would be refused"
        )
    known: list[str] = []
    for s in secrets.values():
        if s.webhook_secret is not None:
            known.append(s.webhook_secret.get_secret_value())
        if s.credentials is not None:
            known += s.credentials.secrets()
    logs.configure(log_level, secrets=known)
    store = _store(config)
    sidecar = build(
        config, store, _engine(config), classes, secrets, workers=workers, scheduler=scheduler
    )
    server = uvicorn.Server(
        uvicorn.Config(
            sidecar.app,
            host=host or config.serve.host,
            port=port or config.serve.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            interface="asgi3",
            timeout_graceful_shutdown=int(config.serve.span("shutdown_grace").total_seconds()),
        )
    )
    # uvicorn handles SIGTERM/SIGINT (stop accepting, finish requests, run the shutdown that
    # lets in-flight events finish) and then re-raises the signal to the handler found before
    # it started: make that one a no-op, so a graceful stop exits 0 instead of dying by signal
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    server.run()
    store.close()
    if not server.started:
        raise _fail(f"could not serve on {server.config.host}:{server.config.port}", 1)


def _inbox(config_path: Any) -> Any:
    from ticketwarden.core.inbox import Inbox

    config = _config(config_path)
    return Inbox(_store(config), max_attempts=config.serve.max_attempts)


StatusOption = Annotated[
    str | None,
    typer.Option("--status", help="pending, processing, done or dead (default: all)"),
]


@inbox_app.command("list")
def inbox_list(
    config_path: ConfigOption = None,
    status: StatusOption = None,
    desk: Annotated[str | None, typer.Option("--desk", help="only this desk")] = None,
    limit: Annotated[int, typer.Option("--limit", help="at most this many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Stored webhook events, newest first, with their status and last error."""
    from ticketwarden.core.inbox import STATUSES, describe

    if status is not None and status not in STATUSES:
        raise _fail(f"--status {status!r}: use one of {', '.join(STATUSES)}")
    inbox = _inbox(config_path)
    rows = inbox.rows(status=status, desk=desk, limit=limit)
    depth = inbox.depth()
    if as_json:
        for row in rows:
            print(json.dumps(describe(row), ensure_ascii=False))
        return
    table = Table("id", "desk", "ticket", "kind", "received", "status", "tries", "last error")
    for row in rows:
        table.add_row(
            str(row.id),
            row.desk,
            row.ticket_id,
            row.kind,
            row.received_at.isoformat(timespec="seconds"),
            row.status,
            str(row.attempts),
            (row.last_error or "")[:80],
        )
    out.print(table)
    out.print(
        f"{depth.pending} pending, {depth.processing} in progress, {depth.dead} dead-lettered",
        markup=False,
    )


@inbox_app.command("show")
def inbox_show(
    row_id: Annotated[int, typer.Argument(help="the event's id (from inbox list)")],
    config_path: ConfigOption = None,
) -> None:
    """One stored event in full, as JSON: the normalized event and its last error."""
    from ticketwarden.core.inbox import describe

    row = _inbox(config_path).get(row_id)
    if row is None:
        raise _fail(f"no inbox event {row_id}")
    print(json.dumps(describe(row), indent=2, ensure_ascii=False))


IdsArgument = Annotated[list[int] | None, typer.Argument(help="event ids (from inbox list)")]
AllOption = Annotated[bool, typer.Option("--all", help="every dead-lettered event")]


def _which(ids: list[int] | None, every: bool) -> list[int] | None:
    if ids and every:
        raise _fail("give event ids or --all, not both")
    if not ids and not every:
        raise _fail("give the ids of dead-lettered events, or --all")
    return None if every else ids


@inbox_app.command("retry")
def inbox_retry(
    ids: IdsArgument = None, every: AllOption = False, config_path: ConfigOption = None
) -> None:
    """Put dead-lettered events back to be tried afresh (after fixing what failed them)."""
    chosen = _which(ids, every)
    count = _inbox(config_path).retry(chosen, datetime.now(UTC))
    out.print(f"{count} event(s) queued again", markup=False)
    if chosen is not None and count < len(chosen):
        raise _fail(f"{len(chosen) - count} of the ids are not dead-lettered events", 1)


@inbox_app.command("drop")
def inbox_drop(
    ids: IdsArgument = None,
    every: AllOption = False,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    config_path: ConfigOption = None,
) -> None:
    """Delete dead-lettered events for good (the sync job still sees their tickets)."""
    chosen = _which(ids, every)
    if not yes and not typer.confirm(
        f"delete {'every dead-lettered event' if chosen is None else f'{len(chosen)} event(s)'}?"
    ):
        raise typer.Exit(1)
    count = _inbox(config_path).drop(chosen)
    out.print(f"{count} event(s) deleted", markup=False)
    if chosen is not None and count < len(chosen):
        raise _fail(f"{len(chosen) - count} of the ids are not dead-lettered events", 1)
